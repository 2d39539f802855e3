"""Magic-link sign-in, black-box, through a real SMTP server (aiosmtpd with
STARTTLS on the test CA), on SQLite and on PostgreSQL (docs/console.md
"Magic links"): the console listener and its redirect; the link mailed,
built from public_url (never Host), bound to the browser that asked (in
another browser nothing changes and the token stays usable), single use,
expired after 10 minutes; the cookies' attributes; an unknown address gets
the same status and body in about the same time and no mail; the rate
limits per address and per client; config load refuses plain HTTP off
loopback.
"""
import statistics
import time

import pytest

from conftest import assert_problem, free_port, run_cli
from console_helpers import (Browser, ask_link, console_instance, db_exec, mailed_link, now_ms,
                             set_cookies, sign_in, user_create)
from test_webhooks import ca  # noqa: F401
from test_mail import smtp  # noqa: F401

ADA = "ada@example.com"


@pytest.fixture
def con(make_instance, ca, smtp):  # noqa: F811
    inst = console_instance(make_instance, ca, smtp)
    user_create(inst, ADA, "--name", "Ada")
    return inst


def test_root_redirects_to_the_console_and_the_listener_is_logged(con):
    b = Browser(con.console)
    r = b.get("/")
    assert r.status_code == 302 and r.headers["Location"] == "/console/"
    r = b.get("/console/")
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"]
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert "<script" in r.text and "<script>" not in r.text  # no inline script
    (ev,) = [e for e in con.log_events() if "listening_console" in (e.get("msg"), e.get("event"))]
    assert ev["public_url"] == con.console and ev["tls"] == "off"
    # The data plane is not on the console listener.
    assert con.request("GET", "/v1/verify").status_code == 401  # main listener
    assert_problem(b.get("/v1/verify"), 404, "NOT_FOUND")
    assert_problem(b.get("/hello"), 404, "NOT_FOUND")


def test_magic_link_end_to_end(con, smtp):
    a, other = Browser(con.console), Browser(con.console)
    # The Host header has no say in the link.
    r = ask_link(a, ADA, headers={"Host": "evil.example"})
    (login,) = [c for c in set_cookies(r) if c.startswith("__Host-pcl_login=")]
    assert login.endswith("; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=600"), login
    link = mailed_link(smtp, ADA)
    assert link.startswith(con.console + "/console/auth/magic-link/callback?token=")
    assert "evil.example" not in link
    (mail,) = smtp.wait_mails(1, to=ADA)
    assert mail.tls and mail.rcpt_tos == [ADA]
    path = link[len(con.console):]
    token = path.split("token=")[1]
    # The token is not stored, only its SHA-256.
    assert db_exec(con, "SELECT COUNT(*) FROM login_tokens WHERE token_hash = ?", (token,)) \
        == [(0,)]
    assert token not in con.read_log()
    # Another browser (a mail scanner): nothing happens, the token stays usable.
    r = other.get(path)
    assert r.status_code == 403, r.text
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert not any(c.startswith("__Host-pcl_session=") for c in set_cookies(r))
    assert db_exec(con, "SELECT COUNT(*) FROM login_tokens WHERE used_at IS NOT NULL") == [(0,)]
    # The browser that asked signs in.
    r = a.get(path)
    assert r.status_code == 303 and r.headers["Location"] == "/console/", r.text
    assert r.headers["Referrer-Policy"] == "no-referrer"
    (sess,) = [c for c in set_cookies(r) if c.startswith("__Host-pcl_session=")]
    sid = sess.split(";")[0].split("=", 1)[1]
    assert sess == f"__Host-pcl_session={sid}; Secure; HttpOnly; SameSite=Lax; Path=/"
    assert len(sid) == 43
    assert "__Host-pcl_login" not in a.cookies  # cleared
    me = a.me()
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["user"]["email"] == ADA and body["user"]["name"] == "Ada"
    assert body["user"]["operator"] is False and body["memberships"] == []
    assert len(body["csrf_token"]) == 43 and body["csrf_token"] != sid
    # Only the session id's hash is stored.
    assert db_exec(con, "SELECT COUNT(*) FROM sessions WHERE token_hash = ?", (sid,)) == [(0,)]
    assert sid not in con.read_log()
    # Used: the link works no more, in any browser.
    fresh = Browser(con.console)
    fresh.cookies = {k: v for k, v in a.cookies.items() if k != "__Host-pcl_session"}
    assert a.get(path).status_code == 400
    # The login is audited as the user.
    r = con.root("GET", "/v1/audit-events?limit=100")
    (ev,) = [e for e in r.json()["data"] if e["action"] == "user.login"]
    assert ev["actor"] == {"type": "user", "id": body["user"]["id"]}
    assert ev["details"] == {"method": "magic_link", "session_id": body["session"]["id"]}


def test_a_new_session_id_at_every_login_and_the_old_one_ends(con, smtp):
    b = sign_in(con, smtp, ADA)
    first = b.cookies["__Host-pcl_session"]
    sign_in(con, smtp, ADA, browser=b)
    second = b.cookies["__Host-pcl_session"]
    assert first != second
    old = Browser(con.console)
    old.cookies = {"__Host-pcl_session": first}
    assert_problem(old.get("/console/api/me"), 401, "UNAUTHENTICATED")


def test_expired_link_is_refused(con, smtp):
    b = Browser(con.console)
    ask_link(b, ADA)
    link = mailed_link(smtp, ADA)
    db_exec(con, "UPDATE login_tokens SET expires_at = ?", (now_ms() - 1,))
    r = b.get(link[len(con.console):])
    assert r.status_code == 400, r.text
    assert "__Host-pcl_session" not in b.cookies
    assert_problem(b.get("/console/api/me"), 401, "UNAUTHENTICATED")


def test_bad_tokens_and_bodies(con):
    b = Browser(con.console)
    for q in ("", "?token=short", "?token=" + "A" * 42 + "+"):
        r = b.get("/console/auth/magic-link/callback" + q)
        assert r.status_code == 400, (q, r.text)
        assert r.headers["Referrer-Policy"] == "no-referrer"
    assert b.get("/console/auth/magic-link/callback?token=" + "A" * 43).status_code == 400
    body = assert_problem(b.post("/console/auth/magic-link", json={"email": "not an address"}),
                          400, "BAD_REQUEST")
    assert body["details"]["field"] == "email"
    assert_problem(b.post("/console/auth/magic-link", json={"email": ADA, "x": 1}), 400,
                   "BAD_REQUEST")
    assert_problem(b.post("/console/auth/magic-link", data="email=x",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
                   "UNSUPPORTED_MEDIA_TYPE")
    # Cross-site: refused before anything else.
    assert_problem(b.post("/console/auth/magic-link", json={"email": ADA},
                          headers={"Origin": "https://evil.example"}), 403, "FORBIDDEN")
    assert_problem(b.post("/console/auth/magic-link", json={"email": ADA},
                          headers={"Sec-Fetch-Site": "cross-site"}), 403, "FORBIDDEN")
    assert_problem(b.post("/console/auth/magic-link", json={"email": ADA}, origin=False), 403,
                   "FORBIDDEN")


def test_unknown_address_same_answer_same_time_no_mail(make_instance, ca, smtp):  # noqa: F811
    # Client addresses from X-Forwarded-For (a trusted proxy), so the per-client limit
    # does not end the sampling; several known users, so the per-address one does not.
    inst = console_instance(make_instance, ca, smtp,
                            config="[server]\ntrusted_proxies = 127.0.0.1\n")
    known = [f"user{i}@example.com" for i in range(12)]
    for e in known:
        user_create(inst, e)
    samples = {"known": [], "unknown": []}
    bodies = set()
    for i in range(48):
        kind = "known" if i % 2 == 0 else "unknown"
        email = known[(i // 2) % 12] if kind == "known" else f"nobody{i}@example.com"
        b = Browser(inst.console)
        t0 = time.perf_counter()
        r = b.post("/console/auth/magic-link", json={"email": email},
                   headers={"X-Forwarded-For": f"10.0.{i}.1"})
        samples[kind].append(time.perf_counter() - t0)
        assert r.status_code == 202, r.text
        bodies.add(r.text)
        cookies = [c.split("=", 1)[0] + ";" + c.split(";", 1)[1] for c in set_cookies(r)]
        assert cookies == ["__Host-pcl_login; Secure; HttpOnly; SameSite=Lax; Path=/; "
                           "Max-Age=600"], cookies
    assert len(bodies) == 1, bodies
    mk, mu = statistics.median(samples["known"]), statistics.median(samples["unknown"])
    # The same work for both (one user read, one invitation read, one token write).
    assert abs(mk - mu) < max(0.005, 0.5 * min(mk, mu)), (mk, mu)
    print(f"median 202 time: known {mk * 1000:.2f} ms, unknown {mu * 1000:.2f} ms")
    smtp.wait_mails(24, timeout=60)
    time.sleep(0.5)
    tos = sorted(t for m in smtp.mails for t in m.rcpt_tos)
    assert all(t in known for t in tos), tos
    assert len(tos) == 24
    # A row each (the dummy ones sign nobody in).
    assert db_exec(inst, "SELECT COUNT(*) FROM login_tokens") == [(48,)]


def test_rate_limits_per_address_and_per_client(con):
    for i in range(5):
        ask_link(Browser(con.console), ADA)
    r = Browser(con.console).post("/console/auth/magic-link", json={"email": ADA})
    assert_problem(r, 429, "RATE_LIMITED")
    assert int(r.headers["Retry-After"]) > 0
    # Unknown addresses are limited alike (a 429 tells nothing about the address).
    for i in range(5):
        ask_link(Browser(con.console), "ghost@example.com")
    assert_problem(Browser(con.console).post("/console/auth/magic-link",
                                             json={"email": "ghost@example.com"}),
                   429, "RATE_LIMITED")
    # Per client: 20 at once from one address, whatever the addresses asked for.
    codes = [Browser(con.console).post("/console/auth/magic-link",
                                       json={"email": f"x{i}@example.com"}).status_code
             for i in range(12)]
    assert codes[:10] == [202] * 10 and codes[-1] == 429, codes


def test_disabled_user_gets_no_link(con, smtp):
    p = run_cli("user", "disable", "--email", ADA, "-c", con.conf, env=con.env)
    assert p.returncode == 0, p.stderr
    ask_link(Browser(con.console), ADA)
    time.sleep(1)
    assert smtp.wait_mails(1, timeout=1, to=ADA) == []


@pytest.mark.parametrize("extra,msg", [
    ("[console]\nlisten = 0.0.0.0:{p}\n", "not a loopback address"),
    ("[console]\nlisten = 127.0.0.1:{p}\npublic_url = ftp://console.example.com\n",
     "public_url"),
    ("[console]\nlisten = 127.0.0.1:{p}\ntls_cert = /nonexistent\n", "together"),
    ("[console]\nlisten = 127.0.0.1:{p}\npublic_url = https://c.example.com/path\n",
     "public_url"),
    ("[console]\nlisten = 0.0.0.0:{p}\ntls_cert = a.pem\ntls_key = b.pem\n", "public_url"),
])
def test_config_refuses_plain_http_off_loopback(make_instance, extra, msg):
    inst = make_instance(config=extra.format(p=free_port()))
    p = run_cli("config", "check", "-c", inst.conf, env=inst.env)
    assert p.returncode == 2 and msg in p.stderr, (p.stdout, p.stderr)
