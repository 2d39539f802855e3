"""The incident report (INCIDENT.md "The incident report", docs/incident.md), black-box
on SQLite and PostgreSQL: a key used from two regions (the suite's geo-IP database,
X-Forwarded-For from a trusted proxy) with two clients, refused attempts that named it,
a rotation and a kill shows each, with the webhook messages of the window, the sibling
keys and the next steps; GET /v1/incidents/report and `portcullis incident report`
in JSON agree, and the text form is aligned within 80 columns with hourly bars; an
organisation key gets 404 for another organisation's key.
"""
import json
import time

from conftest import assert_problem, run_cli
from test_forward import Upstream, upstream, upstream_conf  # noqa: F401
from test_keys import admin, create_key
from test_usage import GEO, wrong_secret

US, NL = "8.8.8.8", "193.0.6.139"  # in the suite's geo-IP database: US and NL


def conf(up):
    return upstream_conf(up) + f"\n[geoip]\ndatabase = {GEO}\n" \
        "[server]\ntrusted_proxies = 127.0.0.1, ::1\n"


def call(gw, key, addr, agent, path="/orders/1"):
    return gw.request("GET", path, key=key, headers={"X-Forwarded-For": addr,
                                                      "User-Agent": agent})


def report(gw, key, key_id, **query):
    r = gw.request("GET", "/v1/incidents/report", key=key, params={"key_id": key_id, **query})
    assert r.status_code == 200, r.text
    return r.json()


def wait_report(gw, key, key_id, requests, refused, timeout=15):
    """The report once the request-log writer has written what was sent."""
    deadline = time.time() + timeout
    while True:
        rep = report(gw, key, key_id)
        done = (rep["traffic"]["requests"], rep["refused"]["attempts"]) == (requests, refused)
        if done or time.time() > deadline:
            return rep
        time.sleep(0.1)


def by(rows, member):
    return {r[member]: r for r in rows}


def test_report_shows_regions_clients_refused_attempts_rotation_and_kill(make_instance,
                                                                         upstream):
    gw = make_instance(config=conf(upstream)).start()
    org, adm = admin(gw)
    r = gw.request("POST", "/v1/projects", key=adm["key"], json={"name": "billing"})
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    k = create_key(gw, adm["key"], name="billing-sync", project_id=project, scopes=["gateway"])
    sibling = create_key(gw, adm["key"], name="billing-web", project_id=project)

    for _ in range(3):
        assert call(gw, k["key"], US, "billing-sync/1.4").status_code == 200
    for _ in range(2):  # the leak: somewhere new, with another client
        assert call(gw, k["key"], NL, "curl/8.4.0").status_code == 200
    for _ in range(2):
        assert call(gw, wrong_secret(k["key"]), NL, "curl/8.4.0").status_code == 401
    r = gw.request("POST", f"/v1/api-keys/{k['id']}/rotate", key=adm["key"],
                   json={"grace_seconds": 0})
    assert r.status_code == 200, r.text
    new_secret = r.json()["key"]
    assert call(gw, new_secret, US, "billing-sync/1.5").status_code == 200
    r = gw.request("POST", f"/v1/api-keys/{k['id']}/kill", key=adm["key"],
                   json={"reason": "leaked on a paste site"})
    assert r.status_code == 200, r.text
    assert call(gw, new_secret, NL, "curl/8.4.0").status_code == 503  # KILL_SWITCH

    rep = wait_report(gw, adm["key"], k["id"], requests=6, refused=3)
    assert rep["key"]["id"] == k["id"] and rep["key"]["status"] == "killed"
    assert rep["organization"]["id"] == org and rep["project"]["id"] == project
    assert rep["kill_switches"]["key"]["reason"] == "leaked on a paste site"
    assert rep["kill_switches"]["organization"] is None

    t = rep["traffic"]
    assert t["requests"] == 6
    regions = by(t["by_region"], "region")
    assert set(regions) == {"US", "NL"}
    assert regions["US"]["requests"] == 4 and regions["NL"]["requests"] == 2
    assert regions["NL"]["new"] and regions["US"]["new"]  # the key is new: both first seen now
    agents = by(t["by_user_agent"], "user_agent")
    assert agents["billing-sync/1.4"]["requests"] == 3
    assert agents["billing-sync/1.5"]["requests"] == 1
    assert agents["curl/8.4.0"]["requests"] == 2 and agents["curl/8.4.0"]["refused"] == 3
    assert by(t["by_status"], "status")[200]["requests"] == 6
    assert sum(h["requests"] for h in t["by_hour"]) == 6
    assert sum(h["refused"] for h in t["by_hour"]) == 3

    refused = rep["refused"]
    assert refused["attempts"] == 3
    reasons = {}
    for row in refused["by_hour_region"]:
        reasons[(row["region"], row["reason"])] = \
            reasons.get((row["region"], row["reason"]), 0) + row["attempts"]
    assert reasons.get(("NL", "wrong_secret")) == 2
    assert sum(n for (region, why), n in reasons.items() if region == "NL") == 3

    actions = [e["action"] for e in rep["history"]]
    assert actions == ["api_key.created", "api_key.rotated", "api_key.killed"]
    assert all(e["actor"] == {"type": "key", "id": adm["id"]} for e in rep["history"])

    types = {m["type"] for m in rep["webhook_messages"]}
    assert {"api_key.rotated", "api_key.killed"} <= types

    assert [s["id"] for s in rep["sibling_keys"]["project"]] == [sibling["id"]]
    assert adm["id"] in [s["id"] for s in rep["sibling_keys"]["organization"]]

    steps = rep["next_steps"]
    assert [s["action"] for s in steps] == ["kill", "replace", "update", "verify", "revoke"]
    assert steps[0]["done"] and not steps[4]["done"]
    assert steps[0]["cli"].startswith(f"portcullis kill key {k['id']} --reason ")
    assert steps[0]["http"] == f"POST /v1/api-keys/{k['id']}/kill"
    assert steps[1]["http"] == f"POST /v1/orgs/{org}/api-keys"
    assert steps[1]["body"]["project_id"] == project and steps[1]["body"]["scopes"] == ["gateway"]
    assert steps[4]["http"] == f"DELETE /v1/api-keys/{k['id']}"

    # A window that ends before any of it: nothing, and no region is new in it.
    empty = report(gw, adm["key"], k["id"], since="2026-01-01T00:00:00Z",
                   until="2026-01-02T00:00:00Z")
    assert empty["traffic"]["requests"] == 0 and empty["traffic"]["by_region"] == []
    assert empty["refused"]["attempts"] == 0 and empty["webhook_messages"] == []

    # The CLI says the same, in JSON and as text.
    p = run_cli("incident", "report", "--key", k["id"], "--format", "json", "-c", gw.conf,
                env=gw.env, check=True)
    cli = json.loads(p.stdout)
    api = report(gw, adm["key"], k["id"])
    for section in ("key", "organization", "project", "kill_switches", "history", "traffic",
                    "refused", "webhook_messages", "sibling_keys"):
        assert cli[section] == api[section], section
    assert [s["http"] for s in cli["next_steps"]][:3] == [s["http"] for s in steps][:3]

    p = run_cli("incident", "report", "--key", k["id"], "-c", gw.conf, env=gw.env, check=True)
    text = p.stdout
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert f"INCIDENT REPORT  key {k['id']}" in lines[0]
    assert "TRAFFIC  6 requests (0 4xx, 0 5xx), 3 refused attempts" in text
    assert "\u2588" in text  # the busiest hour's full bar
    nl = [line for line in lines if line.startswith("    NL ")]
    assert nl and "NEW" in nl[0]
    assert "REFUSED ATTEMPTS naming this key: 3" in text
    assert "api_key.rotated" in text and "api_key.killed" in text
    assert f"$ portcullis kill key {k['id']} --reason" in text
    assert sibling["id"] in text


def test_another_organisations_key_is_not_found_and_windows_are_checked(gw):
    org, adm = admin(gw, "acme")
    other, other_adm = admin(gw, "globex")
    k = create_key(gw, other_adm["key"], name="theirs")
    r = gw.request("GET", "/v1/incidents/report", key=adm["key"], params={"key_id": k["id"]})
    assert_problem(r, 404, "NOT_FOUND")
    assert report(gw, other_adm["key"], k["id"])["key"]["id"] == k["id"]
    assert report(gw, gw.root_key, k["id"])["organization"]["id"] == other
    for query, field in (({}, "key_id"), ({"key_id": "nope"}, "key_id"),
                         ({"key_id": k["id"], "since": "yesterday"}, "since"),
                         ({"key_id": k["id"], "since": "2026-02-01T00:00:00Z",
                           "until": "2026-01-01T00:00:00Z"}, "since"),
                         ({"key_id": k["id"], "since": "2024-01-01T00:00:00Z",
                           "until": "2026-01-01T00:00:00Z"}, "since"),
                         ({"key_id": k["id"], "limit": "5"}, "limit")):
        r = gw.request("GET", "/v1/incidents/report", key=other_adm["key"], params=query)
        assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == field, query
    # A key without logs:read may not read it.
    weak = create_key(gw, other_adm["key"], name="weak", scopes=["gateway"])
    r = gw.request("GET", "/v1/incidents/report", key=weak["key"], params={"key_id": k["id"]})
    assert r.status_code == 403
    # The CLI: an unknown key is a usage error, a bad format too.
    p = run_cli("incident", "report", "--key", "01M82YZC82RGBDPS238NXRY03Q", "-c", gw.conf,
                env=gw.env)
    assert p.returncode == 2 and "no such key" in p.stderr
    p = run_cli("incident", "report", "--key", k["id"], "--format", "yaml", "-c", gw.conf,
                env=gw.env)
    assert p.returncode == 2 and "--format" in p.stderr
