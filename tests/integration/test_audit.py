"""The audit log, black-box: every mutation writes one event with the
fields of docs/contract.md, in one SHA-256 hash chain; GET /v1/audit-events
filters (since, until, key_id), pages with a cursor and shows an
organisation only its own events; `portcullis audit verify` accepts an
untouched chain and names the first event that was edited.
"""
import datetime
import re
import sqlite3
import time

from conftest import assert_problem, run_cli
from test_keys import TIME_RE, admin, create_key

EVENT_FIELDS = {"id", "at", "org_id", "actor", "action", "target", "request_id", "prev_hash",
                "hash"}
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
HASH_RE = re.compile(r"^[0-9a-f]{64}$")
GENESIS = "0" * 64


def all_events(inst, key=None, query=""):
    """Every event visible to key (root when None), following the cursor."""
    key = key or inst.root_key
    out, cursor = [], None
    for _ in range(100):
        sep = "&" if query else ""
        q = "/v1/audit-events?" + query + (f"{sep}cursor={cursor}" if cursor else "")
        r = inst.request("GET", q, key=key)
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["data"]
        cursor = body["next_cursor"]
        if not cursor:
            return out
    raise AssertionError("cursor never ended")


def check_event(ev):
    assert EVENT_FIELDS <= set(ev), EVENT_FIELDS - set(ev)
    assert ULID_RE.match(ev["id"])
    assert TIME_RE.match(ev["at"])
    assert set(ev["actor"]) == {"type", "id"}
    assert ev["actor"]["type"] in ("root", "key", "user", "system")
    assert HASH_RE.match(ev["prev_hash"]) and HASH_RE.match(ev["hash"])


def test_every_mutation_writes_an_audit_event_with_the_contract_fields(gw):
    done = []  # (action, response, actor type, actor id, target id, org id)
    root_id = gw.root_key.split("_")[2].split(".")[0]

    def did(action, resp, actor, actor_id, target, org):
        assert resp.status_code in (200, 201), resp.text
        done.append((action, resp.headers["X-Request-Id"], actor, actor_id, target, org))
        return resp

    r = did("org.created", gw.root("POST", "/v1/orgs", json={"name": "acme"}), "root", root_id,
            None, None)
    org = r.json()["id"]
    done[-1] = done[-1][:4] + (org, org)
    did("org.updated", gw.root("PATCH", f"/v1/orgs/{org}", json={"name": "Acme"}), "root",
        root_id, org, org)
    r = gw.root("POST", f"/v1/orgs/{org}/api-keys",
                json={"name": "admin", "scopes": ["gateway", "keys:read", "keys:write"]})
    adm = did("api_key.created", r, "root", root_id, r.json()["id"], org).json()
    a = adm["key"]
    r = gw.request("POST", "/v1/projects", key=a, json={"name": "web"})
    did("project.created", r, "key", adm["id"], r.json()["id"], org)
    r = gw.request("POST", "/v1/api-keys", key=a, json={"name": "k"})
    k = did("api_key.created", r, "key", adm["id"], r.json()["id"], org).json()
    kid = k["id"]
    did("api_key.killed", gw.request("POST", f"/v1/api-keys/{kid}/kill", key=a), "key",
        adm["id"], kid, org)
    did("api_key.kill_lifted", gw.request("DELETE", f"/v1/api-keys/{kid}/kill", key=a), "key",
        adm["id"], kid, org)
    did("api_key.rotated", gw.request("POST", f"/v1/api-keys/{kid}/rotate", key=a), "key",
        adm["id"], kid, org)
    did("api_key.revoked", gw.request("DELETE", f"/v1/api-keys/{kid}", key=a), "key",
        adm["id"], kid, org)
    did("org.killed", gw.root("POST", f"/v1/orgs/{org}/kill"), "root", root_id, org, org)
    did("org.kill_lifted", gw.root("DELETE", f"/v1/orgs/{org}/kill"), "root", root_id, org, org)
    did("global.killed", gw.root("POST", "/v1/kill-switch"), "root", root_id, None, None)
    did("global.kill_lifted", gw.root("DELETE", "/v1/kill-switch"), "root", root_id, None, None)

    events = all_events(gw)
    # `portcullis init` made the sealed-secret key pair, then the root key.
    assert events[0]["action"] == "secret_key.created"
    assert events[0]["actor"]["type"] == "system"
    assert events[0]["prev_hash"] == GENESIS
    assert events[1]["action"] == "api_key.created"
    assert events[1]["actor"]["type"] == "system"
    assert events[1]["target"]["id"] == root_id
    for prev, ev in zip(events, events[1:]):
        assert ev["prev_hash"] == prev["hash"]
    for ev in events:
        check_event(ev)
    rest = events[2:]
    assert [e["action"] for e in rest] == [d[0] for d in done]
    for ev, (action, rid, actor, actor_id, target, org_id) in zip(rest, done):
        assert ev["request_id"] == rid, action
        assert ev["actor"] == {"type": actor, "id": actor_id}, action
        assert ev["target"]["id"] == target, action
        assert ev["org_id"] == org_id, action


def test_deleting_a_revoked_key_again_writes_no_second_event(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    first = gw.request("DELETE", f"/v1/api-keys/{k['id']}", key=adm["key"])
    again = gw.request("DELETE", f"/v1/api-keys/{k['id']}", key=adm["key"])
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    events = all_events(gw, adm["key"], f"key_id={k['id']}")
    assert [e["action"] for e in events] == ["api_key.created", "api_key.revoked"]
    assert events[1]["request_id"] == first.headers["X-Request-Id"]


def test_audit_events_filter_by_since_until_and_key_id(gw):
    org, adm = admin(gw)
    a = adm["key"]
    k1 = create_key(gw, a, name="one")
    time.sleep(0.05)
    cut = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.05)
    k2 = create_key(gw, a, name="two")
    gw.request("POST", f"/v1/api-keys/{k2['id']}/kill", key=a)
    gw.request("POST", f"/v1/api-keys/{k1['id']}/rotate", key=a)
    since = cut.strftime("%Y-%m-%dT%H:%M:%S.") + f"{cut.microsecond // 1000:03d}Z"
    everything = all_events(gw, a)
    after = all_events(gw, a, f"since={since}")
    before = all_events(gw, a, f"until={since}")
    assert after and before
    assert [e["id"] for e in before] + [e["id"] for e in after] == [e["id"] for e in everything]
    assert all(e["at"] >= since for e in after)
    assert all(e["at"] < since for e in before)
    assert [e["action"] for e in after] == ["api_key.created", "api_key.killed",
                                            "api_key.rotated"]
    about_k2 = all_events(gw, a, f"key_id={k2['id']}")
    assert [e["action"] for e in about_k2] == ["api_key.created", "api_key.killed"]
    assert all(e["target"]["id"] == k2["id"] for e in about_k2)
    both = all_events(gw, a, f"since={since}&key_id={k1['id']}")
    assert [e["action"] for e in both] == ["api_key.rotated"]
    bad = gw.request("GET", "/v1/audit-events?since=yesterday", key=a)
    assert assert_problem(bad, 400, "BAD_REQUEST")["details"]["field"] == "since"


def test_audit_events_page_with_a_cursor(gw):
    org, adm = admin(gw)
    for i in range(5):
        create_key(gw, adm["key"], name=f"k{i}")
    everything = all_events(gw, adm["key"])
    assert len(everything) >= 7  # org, admin key, 5 keys
    pages, cursor, seen = 0, None, []
    while True:
        q = "/v1/audit-events?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = gw.request("GET", q, key=adm["key"]).json()
        assert len(body["data"]) <= 3
        seen += [e["id"] for e in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [e["id"] for e in everything]
    assert pages == (len(everything) + 2) // 3


def test_audit_events_show_only_the_own_organisation_and_root_sees_all(gw):
    org_a, a = admin(gw, "a")
    org_b, b = admin(gw, "b")
    create_key(gw, a["key"], name="a1")
    create_key(gw, b["key"], name="b1")
    gw.root("POST", "/v1/kill-switch")
    gw.root("DELETE", "/v1/kill-switch")
    seen_a = all_events(gw, a["key"])
    seen_b = all_events(gw, b["key"])
    seen_root = all_events(gw)
    assert seen_a and all(e["org_id"] == org_a for e in seen_a)
    assert seen_b and all(e["org_id"] == org_b for e in seen_b)
    ids_root = {e["id"] for e in seen_root}
    assert {e["id"] for e in seen_a} | {e["id"] for e in seen_b} < ids_root
    assert {"global.killed", "global.kill_lifted"} <= {e["action"] for e in seen_root}
    # key_id of another organisation's key shows nothing.
    assert all_events(gw, a["key"], f"key_id={b['id']}") == []


def cli(inst, *args):
    return run_cli(*args, "-c", inst.conf, env=inst.env)


def test_audit_verify_accepts_an_untouched_chain(make_instance):
    inst = make_instance().start()
    org, adm = admin(inst)
    k = create_key(inst, adm["key"])
    inst.request("POST", f"/v1/api-keys/{k['id']}/rotate", key=adm["key"])
    p = cli(inst, "audit", "verify")
    assert p.returncode == 0, p.stdout + p.stderr
    # key pair and root key (init), org, 2 keys, rotation
    assert re.search(r"\b6\b", p.stdout), p.stdout
    inst.stop()
    p = cli(inst, "audit", "verify")
    assert p.returncode == 0, p.stdout + p.stderr


def test_audit_verify_names_the_edited_event(make_instance):
    inst = make_instance().start()
    org, adm = admin(inst)
    create_key(inst, adm["key"])
    inst.stop()
    con = sqlite3.connect(inst.db_path)
    try:
        seq, eid = con.execute("SELECT seq, id FROM audit_events ORDER BY seq LIMIT 1 OFFSET 2"
                               ).fetchone()
        assert con.execute("SELECT count(*) FROM audit_events").fetchone()[0] == 5
        con.execute("UPDATE audit_events SET action = 'api_key.viewed' WHERE seq = ?", (seq,))
        con.commit()
    finally:
        con.close()
    p = cli(inst, "audit", "verify")
    assert p.returncode != 0, p.stdout
    assert eid in p.stdout + p.stderr


def test_verify_endpoint_gives_the_chain_check_result(make_instance):
    """GET /v1/audit-events/verify (the console's audit page): the verdict for
    every caller; the count and the broken event's id for operator keys only."""
    inst = make_instance().start()
    org, adm = admin(inst)
    create_key(inst, adm["key"])
    r = inst.root("GET", "/v1/audit-events/verify")
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "checked": 5, "bad_id": None}
    r = inst.request("GET", "/v1/audit-events/verify", key=adm["key"])
    assert r.json() == {"ok": True, "checked": None, "bad_id": None}
    assert_problem(inst.root("GET", "/v1/audit-events/verify?x=1"), 400, "BAD_REQUEST")
    inst.stop()
    con = sqlite3.connect(inst.db_path)
    try:
        seq, eid = con.execute("SELECT seq, id FROM audit_events ORDER BY seq LIMIT 1 OFFSET 2"
                               ).fetchone()
        con.execute("UPDATE audit_events SET action = 'api_key.viewed' WHERE seq = ?", (seq,))
        con.commit()
    finally:
        con.close()
    inst.start()
    r = inst.root("GET", "/v1/audit-events/verify")
    assert r.json() == {"ok": False, "checked": 2, "bad_id": eid}, r.text
    r = inst.request("GET", "/v1/audit-events/verify", key=adm["key"])
    assert r.json() == {"ok": False, "checked": None, "bad_id": None}, r.text


def test_cli_operations_write_audit_events_as_the_system_actor(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert cli(gw, "kill", "key", k["id"], "--reason", "cli").returncode == 0
    assert cli(gw, "unkill", "key", k["id"]).returncode == 0
    assert cli(gw, "kill", "org", org, "--reason", "cli").returncode == 0
    assert cli(gw, "unkill", "org", org).returncode == 0
    assert cli(gw, "kill", "global", "--reason", "cli").returncode == 0
    assert cli(gw, "unkill", "global").returncode == 0
    p = cli(gw, "root-key", "create", "--name", "second operator")
    assert p.returncode == 0, p.stderr
    events = all_events(gw)[-7:]
    assert [e["action"] for e in events] == [
        "api_key.killed", "api_key.kill_lifted", "org.killed", "org.kill_lifted",
        "global.killed", "global.kill_lifted", "api_key.created"]
    for ev in events:
        check_event(ev)
        assert ev["actor"] == {"type": "system", "id": "cli"}, ev
    assert events[0]["target"]["id"] == k["id"] and events[0]["org_id"] == org
    assert events[2]["target"]["id"] == org
    assert cli(gw, "audit", "verify").returncode == 0
