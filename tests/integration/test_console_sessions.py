"""Console sessions and CSRF, black-box, on SQLite and on PostgreSQL
(docs/console.md "Sessions" and "CSRF"): idle and absolute expiry (the
session's clock moved back in the database), logout and DELETE of a
session, the user's own sessions listed, a disabled user's sessions ended
on a running server, every state-changing session request needs the
session's X-CSRF-Token and is refused cross-site or from another Origin;
a session cookie is nothing on the data plane, /v1/verify and ingest; an
API key is nothing on /console/*; logout on one node ends the session on
another (two serve processes on one PostgreSQL).
"""
import re

import pytest
import requests

from conftest import REDIS_URL, add_node, assert_problem, free_port, run_cli
from console_helpers import Browser, console_instance, db_exec, now_ms, sign_in, user_create
from test_keys import new_org, org_key
from test_webhooks import ca  # noqa: F401
from test_mail import smtp  # noqa: F401

ADA = "ada@example.com"
MIN = 60 * 1000


@pytest.fixture
def con(make_instance, ca, smtp):  # noqa: F811
    inst = console_instance(make_instance, ca, smtp, extra="session_idle_minutes = 5\n"
                            "session_max_hours = 2\n")
    inst.uid = user_create(inst, ADA, "--operator")
    return inst


def test_idle_expiry(con, smtp):
    b = sign_in(con, smtp, ADA)
    sid = b.me().json()["session"]["id"]
    # Used 4 minutes ago: still in (and the use is recorded).
    db_exec(con, "UPDATE sessions SET last_seen_at = ? WHERE id = ?", (now_ms() - 4 * MIN, sid))
    assert b.me().status_code == 200
    assert db_exec(con, "SELECT last_seen_at FROM sessions WHERE id = ?", (sid,))[0][0] \
        > now_ms() - MIN
    # Idle for 5 minutes: ended, and the row is gone.
    db_exec(con, "UPDATE sessions SET last_seen_at = ? WHERE id = ?", (now_ms() - 5 * MIN, sid))
    assert_problem(b.me(), 401, "UNAUTHENTICATED")
    assert db_exec(con, "SELECT COUNT(*) FROM sessions WHERE id = ?", (sid,)) == [(0,)]


def test_absolute_expiry(con, smtp):
    b = sign_in(con, smtp, ADA)
    body = b.me().json()
    created = db_exec(con, "SELECT created_at, expires_at FROM sessions")[0]
    assert created[1] - created[0] == 2 * 3600 * 1000  # session_max_hours
    assert body["session"]["absolute_expires_at"] >= body["session"]["expires_at"]
    # Busy all along, but past the absolute expiry: ended.
    db_exec(con, "UPDATE sessions SET expires_at = ?", (now_ms() - 1,))
    assert_problem(b.me(), 401, "UNAUTHENTICATED")


def test_logout_and_deleting_a_session(con, smtp):
    b1 = sign_in(con, smtp, ADA)
    b2 = sign_in(con, smtp, ADA, browser=Browser(con.console))
    r = b1.get("/console/api/sessions", headers={"User-Agent": "browser one"})
    assert r.status_code == 200, r.text
    rows = r.json()["data"]
    assert len(rows) == 2 and sum(s["current"] for s in rows) == 1
    assert {"id", "created_at", "last_seen_at", "expires_at", "user_agent", "current"} \
        == set(rows[0])
    other = [s for s in rows if not s["current"]][0]["id"]
    # DELETE another session of one's own: that browser is out.
    r = b1.request("DELETE", f"/console/api/sessions/{other}")
    assert r.status_code == 204, r.text
    assert_problem(b2.me(), 401, "UNAUTHENTICATED")
    assert_problem(b1.request("DELETE", f"/console/api/sessions/{other}"), 404, "NOT_FOUND")
    # Logout: the cookie is removed and the session ends.
    sid = b1.cookies["__Host-pcl_session"]
    r = b1.post("/console/auth/logout")
    assert r.status_code == 204, r.text
    assert "__Host-pcl_session" not in b1.cookies
    b1.cookies["__Host-pcl_session"] = sid
    assert_problem(b1.me(), 401, "UNAUTHENTICATED")
    actions = [e["action"] for e in con.root("GET", "/v1/audit-events?limit=100").json()["data"]
               if e["actor"] == {"type": "user", "id": con.uid}]
    assert actions == ["user.login", "user.login", "session.ended", "user.logout"], actions


def test_disabling_a_user_ends_their_sessions_on_a_running_server(con, smtp):
    b = sign_in(con, smtp, ADA)
    p = run_cli("user", "disable", "--email", ADA, "-c", con.conf, env=con.env)
    assert p.returncode == 0 and "1 session(s) ended" in p.stdout, p.stdout
    assert_problem(b.me(), 401, "UNAUTHENTICATED")


def test_state_changing_requests_need_csrf_and_the_console_origin(con, smtp):
    b = sign_in(con, smtp, ADA)
    org = new_org(con, "acme")
    # Without the token, with another session's token, cross-site, from another Origin.
    cases = [
        ({"X-CSRF-Token": ""}, "csrf"),
        ({"X-CSRF-Token": "A" * 43}, "csrf"),
        ({"Sec-Fetch-Site": "cross-site"}, "cross_site"),
        ({"Origin": "https://evil.example"}, "origin"),
        ({"Origin": con.console + ":1"}, "origin"),
    ]
    for headers, reason in cases:
        for method, path in (("POST", "/console/auth/logout"),
                             ("POST", f"/v1/orgs/{org}/kill"),
                             ("POST", "/v1/orgs")):
            r = b.request(method, path, headers=headers, json={"name": "x"})
            body = assert_problem(r, 403, "FORBIDDEN")
            assert body["details"]["reason"] == reason, (headers, path, body)
    r = b.post("/console/auth/logout", origin=False)
    assert assert_problem(r, 403, "FORBIDDEN")["details"]["reason"] == "origin"
    # Reads need no token, but not cross-site.
    assert b.get("/v1/orgs").status_code == 200
    assert_problem(b.get("/v1/orgs", headers={"Sec-Fetch-Site": "cross-site"}), 403,
                   "FORBIDDEN")
    # Nothing happened: not killed, still signed in.
    assert con.root("GET", f"/v1/orgs/{org}").json()["kill_switch"]["engaged"] is False
    # With the token and the Origin: it works.
    r = b.post(f"/v1/orgs/{org}/kill", json={"reason": "test"})
    assert r.status_code == 200, r.text
    assert b.post("/console/auth/logout").status_code == 204


def test_session_cookie_is_nothing_on_the_data_plane(make_instance, ca, smtp):  # noqa: F811
    ingest_port = free_port()
    con = console_instance(make_instance, ca, smtp,
                           config=f"[ingest]\nlisten = 127.0.0.1:{ingest_port}\n"
                           "[upstream]\nurl = http://127.0.0.1:9\n")
    user_create(con, ADA, "--operator")
    b = sign_in(con, smtp, ADA)
    cookie = {"Cookie": "__Host-pcl_session=" + b.cookies["__Host-pcl_session"]}
    # The main listener's data plane and /v1/verify: 401 as for no credential.
    for path in ("/v1/verify", "/hello", "/v1/api-key"):
        assert_problem(requests.get(con.url(path), headers=cookie), 401, "UNAUTHENTICATED")
    # Ingest: the same.
    r = requests.post(f"http://127.0.0.1:{ingest_port}/v1/track", headers=cookie,
                      json={"userId": "u", "event": "e"})
    assert_problem(r, 401, "UNAUTHENTICATED")
    # The session still works where it belongs.
    assert b.me().status_code == 200


def test_api_keys_are_nothing_on_the_console(con, smtp):
    b = sign_in(con, smtp, ADA)
    org = new_org(con, "acme")
    key = org_key(con, org, scopes=["keys:read", "keys:write"])["key"]
    for method, path in (("GET", "/console/api/me"), ("GET", "/console/api/sessions"),
                         ("POST", "/console/auth/logout")):
        # A valid API key, alone or with a valid session, is refused.
        for browser in (Browser(con.console), b):
            r = browser.request(method, path, headers={"Authorization": "Bearer " + key})
            assert_problem(r, 401, "UNAUTHENTICATED")
        r = Browser(con.console).request(method, path,
                                         headers={"Authorization": "Bearer " + con.root_key})
        assert_problem(r, 401, "UNAUTHENTICATED")
    assert b.me().status_code == 200


def test_logout_on_one_node_ends_the_session_on_the_other(make_instance, ca, smtp):  # noqa: F811
    if not REDIS_URL:
        pytest.skip("needs Redis (scripts/test-servers.sh)")
    first = console_instance(make_instance, ca, smtp, store="postgres",
                             env={"PORTCULLIS_KV_URL": REDIS_URL}, start=False)
    second = add_node(make_instance, first)
    port2 = free_port()
    with open(second.conf) as f:
        text = f.read()
    # The second node: its own console port, the same public_url (one address behind a
    # load balancer).
    text = re.sub(r"(?m)^(\[console\]\nlisten = 127\.0\.0\.1:)\d+", rf"\g<1>{port2}", text)
    with open(second.conf, "w") as f:
        f.write(text)
    first.start()
    second.start()
    user_create(first, ADA, "--operator")
    b1 = sign_in(first, smtp, ADA)
    b2 = Browser(f"http://127.0.0.1:{port2}", origin=first.console)
    b2.cookies = dict(b1.cookies)
    assert b2.me().status_code == 200  # the same session, seen by the second node
    assert b2.get("/v1/orgs").status_code == 200
    r = b1.post("/console/auth/logout")
    assert r.status_code == 204, r.text
    assert_problem(b2.me(), 401, "UNAUTHENTICATED")
    assert_problem(b2.get("/v1/orgs"), 401, "UNAUTHENTICATED")
