"""Kill switches, black-box: 503 KILL_SWITCH with details.scope key,
organization or global, widest first and ahead of revocation; who may lift
what; the notice a kill leaves in the log; the operator CLI (`portcullis
kill|unkill`) reaching a running server; a change the change log does not
name still reaching the caches.
"""
import json
import re
import sqlite3
import time

from conftest import assert_problem, run_cli
from test_keys import TIME_RE, admin, create_key, rfc3339_in, secret_of, verify, wait_for


def kill_scope(resp):
    return assert_problem(resp, 503, "KILL_SWITCH")["details"]["scope"]


def test_killed_and_revoked_key_answers_503_kill_switch(gw):
    org, adm = admin(gw)
    a = create_key(gw, adm["key"], name="killed then revoked")
    b = create_key(gw, adm["key"], name="revoked then killed")
    assert gw.request("POST", f"/v1/api-keys/{a['id']}/kill", key=adm["key"]).status_code == 200
    assert gw.request("DELETE", f"/v1/api-keys/{a['id']}", key=adm["key"]).status_code == 200
    assert gw.request("DELETE", f"/v1/api-keys/{b['id']}", key=adm["key"]).status_code == 200
    assert_problem(verify(gw, b["key"]), 401, "REVOKED")
    assert gw.request("POST", f"/v1/api-keys/{b['id']}/kill", key=adm["key"]).status_code == 200
    for k in (a, b):
        assert kill_scope(verify(gw, k["key"])) == "key"
    # Lifting the kill leaves the revocation.
    assert gw.request("DELETE", f"/v1/api-keys/{a['id']}/kill", key=adm["key"]).status_code == 200
    assert_problem(verify(gw, a["key"]), 401, "REVOKED")


def test_kill_switch_outranks_expiry_and_missing_scope(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"], expires_at=rfc3339_in(0.5))
    assert gw.request("POST", f"/v1/api-keys/{k['id']}/kill", key=adm["key"]).status_code == 200
    time.sleep(0.7)
    assert kill_scope(verify(gw, k["key"])) == "key"
    # A gateway-only key asking for keys:read: the kill answers, not the scope.
    assert kill_scope(gw.request("GET", "/v1/api-keys", key=k["key"])) == "key"
    assert gw.request("DELETE", f"/v1/api-keys/{k['id']}/kill", key=adm["key"]).status_code == 200
    assert_problem(verify(gw, k["key"]), 401, "EXPIRED")


def test_org_kill_set_by_root_answers_503_scope_organization(gw):
    org, adm = admin(gw, "a")
    k = create_key(gw, adm["key"])
    other_org, other = admin(gw, "b")
    assert verify(gw, k["key"]).status_code == 200
    r = gw.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "abuse report"})
    assert r.status_code == 200, r.text
    ks = r.json()["kill_switch"]
    assert ks["engaged"] is True and ks["set_by"] == "root" and ks["reason"] == "abuse report"
    for key in (k["key"], adm["key"]):
        assert kill_scope(verify(gw, key)) == "organization"
    # The management API is stopped too: the organisation cannot lift its own kill.
    assert kill_scope(gw.request("GET", "/v1/api-keys", key=adm["key"])) == "organization"
    assert verify(gw, other["key"]).status_code == 200
    got = gw.root("GET", f"/v1/orgs/{org}").json()["kill_switch"]
    assert got["engaged"] is True and TIME_RE.match(got["at"])
    assert gw.root("DELETE", f"/v1/orgs/{org}/kill").status_code == 200
    assert verify(gw, k["key"]).status_code == 200


def test_global_kill_set_by_root_answers_503_scope_global(gw):
    org_a, a = admin(gw, "a")
    org_b, b = admin(gw, "b")
    r = gw.root("POST", "/v1/kill-switch", json={"reason": "incident 42"})
    assert r.status_code == 200, r.text
    assert r.json()["kill_switch"]["engaged"] is True
    for key in (a["key"], b["key"]):
        assert kill_scope(verify(gw, key)) == "global"
    # The operator is not locked out of its own switch.
    assert gw.root("GET", "/v1/orgs").status_code == 200
    assert gw.root("DELETE", "/v1/kill-switch").status_code == 200
    for key in (a["key"], b["key"]):
        assert verify(gw, key).status_code == 200


def test_widest_kill_scope_is_reported_first(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert gw.request("POST", f"/v1/api-keys/{k['id']}/kill", key=adm["key"]).status_code == 200
    assert gw.root("POST", f"/v1/orgs/{org}/kill").status_code == 200
    assert gw.root("POST", "/v1/kill-switch").status_code == 200
    assert kill_scope(verify(gw, k["key"])) == "global"
    assert gw.root("DELETE", "/v1/kill-switch").status_code == 200
    assert kill_scope(verify(gw, k["key"])) == "organization"
    assert gw.root("DELETE", f"/v1/orgs/{org}/kill").status_code == 200
    assert kill_scope(verify(gw, k["key"])) == "key"


def test_org_cannot_lift_a_key_kill_the_operator_set_but_root_can(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    r = gw.root("POST", f"/v1/api-keys/{k['id']}/kill", json={"reason": "operator"})
    assert r.status_code == 200, r.text
    assert r.json()["kill_switch"]["set_by"] == "root"
    assert_problem(gw.request("DELETE", f"/v1/api-keys/{k['id']}/kill", key=adm["key"]),
                   403, "FORBIDDEN")
    assert kill_scope(verify(gw, k["key"])) == "key"
    assert gw.root("DELETE", f"/v1/api-keys/{k['id']}/kill").status_code == 200
    assert verify(gw, k["key"]).status_code == 200


def test_org_cannot_take_over_a_key_kill_the_operator_set(gw):
    """Re-killing must not turn the operator's kill into one the org may lift."""
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert gw.root("POST", f"/v1/api-keys/{k['id']}/kill",
                   json={"reason": "operator"}).status_code == 200
    r = gw.request("POST", f"/v1/api-keys/{k['id']}/kill", key=adm["key"],
                   json={"reason": "mine now"})
    assert assert_problem(r, 403, "FORBIDDEN")["details"]["set_by"] == "root"
    got = gw.request("GET", f"/v1/api-keys/{k['id']}", key=adm["key"]).json()["kill_switch"]
    assert got["set_by"] == "root" and got["reason"] == "operator"
    assert_problem(gw.request("DELETE", f"/v1/api-keys/{k['id']}/kill", key=adm["key"]),
                   403, "FORBIDDEN")
    assert kill_scope(verify(gw, k["key"])) == "key"


def test_engaging_a_kill_logs_a_notice_without_the_contact_address_or_a_key(make_instance):
    gw = make_instance().start()
    email = "security-team@acme.example"
    org, adm = admin(gw, contact_email=email)
    k = create_key(gw, adm["key"])
    r = gw.request("POST", f"/v1/api-keys/{k['id']}/kill", key=adm["key"],
                   json={"reason": "rotating"})
    assert r.status_code == 200
    o = gw.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "abuse"})
    assert o.status_code == 200
    g = gw.root("POST", "/v1/kill-switch", json={"reason": "incident"})
    assert g.status_code == 200
    gw.stop()
    notices = [e for e in gw.log_events() if e.get("event") == "notice"]
    engaged = {n["request_id"]: n for n in notices if n.get("notice") == "kill_switch.engaged"}
    assert set(engaged) == {r.headers["X-Request-Id"], o.headers["X-Request-Id"],
                            g.headers["X-Request-Id"]}
    n = engaged[r.headers["X-Request-Id"]]
    assert (n["scope"], n["target_id"], n["org_id"]) == ("key", k["id"], org)
    n = engaged[o.headers["X-Request-Id"]]
    assert (n["scope"], n["target_id"], n["org_id"]) == ("organization", org, org)
    assert engaged[g.headers["X-Request-Id"]]["scope"] == "global"
    log = gw.read_log()
    assert email not in log and "acme.example" not in log
    for key in (k["key"], adm["key"], gw.root_key):
        assert secret_of(key) not in log


# ---- the operator CLI against a running server ----

def cli(gw, *args):
    return run_cli(*args, "-c", gw.conf, env=gw.env)


def test_cli_kill_key_stops_the_key_on_a_running_server_and_unkill_lifts_it(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert verify(gw, k["key"]).status_code == 200
    p = cli(gw, "kill", "key", k["id"], "--reason", "leaked")
    assert p.returncode == 0, p.stderr
    r = wait_for(lambda: (lambda r: r if r.status_code == 503 else None)(verify(gw, k["key"])),
                 timeout=3.0)
    assert r is not None, "the running server did not see the CLI kill"
    assert kill_scope(r) == "key"
    ks = gw.request("GET", f"/v1/api-keys/{k['id']}", key=adm["key"]).json()["kill_switch"]
    assert ks["set_by"] == "root" and ks["reason"] == "leaked"
    # An operator's kill: the organisation cannot lift it.
    assert_problem(gw.request("DELETE", f"/v1/api-keys/{k['id']}/kill", key=adm["key"]),
                   403, "FORBIDDEN")
    p = cli(gw, "unkill", "key", k["id"])
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: verify(gw, k["key"]).status_code == 200, timeout=3.0)


def test_cli_kill_org_answers_503_scope_organization(gw):
    org, adm = admin(gw)
    p = cli(gw, "kill", "org", org, "--reason", "unpaid")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: verify(gw, adm["key"]).status_code == 503, timeout=3.0)
    assert kill_scope(verify(gw, adm["key"])) == "organization"
    p = cli(gw, "unkill", "org", org)
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: verify(gw, adm["key"]).status_code == 200, timeout=3.0)


def test_cli_kill_global_answers_503_scope_global(gw):
    org, adm = admin(gw)
    p = cli(gw, "kill", "global", "--reason", "incident")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: verify(gw, adm["key"]).status_code == 503, timeout=3.0)
    assert kill_scope(verify(gw, adm["key"])) == "global"
    p = cli(gw, "unkill", "global")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: verify(gw, adm["key"]).status_code == 200, timeout=3.0)


def test_cli_kill_requires_a_reason_and_a_known_target(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert cli(gw, "kill", "key", k["id"]).returncode != 0
    assert cli(gw, "kill", "key", "01" + "Z" * 24, "--reason", "x").returncode != 0
    assert cli(gw, "kill", "org", "not-an-id", "--reason", "x").returncode != 0
    assert verify(gw, k["key"]).status_code == 200
    assert json.dumps(gw.root("GET", "/v1/orgs").json()).count('"engaged": true') == 0


def db_exec(inst, script):
    """Run script (SQL statements) straight against inst's database, in one transaction."""
    if inst.store == "sqlite":
        con = sqlite3.connect(inst.db_path, timeout=5, isolation_level=None)
        con.executescript("BEGIN; " + script + " COMMIT;")
        con.close()
        return
    import psycopg2
    con = psycopg2.connect(inst.env["PORTCULLIS_STORE_URL"])
    with con, con.cursor() as cur:
        cur.execute(script)
    con.close()


def counter(inst, name):
    text = inst.request("GET", "/metrics").text
    m = re.search(rf"^{re.escape(name)} (\d+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return int(m.group(1))


def test_a_version_bump_the_change_log_does_not_name_rechecks_every_cached_key(gw):
    """Nodes re-read only what the change log names; a state-version bump it
    does not name (a database restored from a backup, or changed by hand) is
    still caught by the next one-second poll, which then re-reads every
    cached key: a revocation made that way holds within about a second."""
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert verify(gw, k["key"]).status_code == 200
    time.sleep(1.5)  # the poll has applied the key's creation
    rechecks = counter(gw, "portcullis_change_rechecks_total")
    db_exec(gw, f"UPDATE api_keys SET revoked_at = 1, version = version + 1 WHERE id = '{k['id']}'; "
            "UPDATE state_version SET version = version + 1 WHERE id = 1;")
    assert wait_for(lambda: verify(gw, k["key"]).status_code == 401, timeout=5)
    assert_problem(verify(gw, k["key"]), 401, "REVOKED")
    assert counter(gw, "portcullis_change_rechecks_total") == rechecks + 1
    assert verify(gw, adm["key"]).status_code == 200
