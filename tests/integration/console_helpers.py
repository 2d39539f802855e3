"""Helpers of the console tests (test_console_*.py): an instance with a
console listener mailing through a real local SMTP server (aiosmtpd), a
Browser that keeps its own cookie jar (requests' jar never sends a Secure
cookie over http://, and the console's cookies are all Secure), magic-link
sign-in end to end, and raw SQL on the instance's database (SQLite or
PostgreSQL) to move a token's or a session's clock.
"""
import re
import sqlite3
import time

import requests

from conftest import free_port, run_cli
from webhook_peers import webhooks_config

LINK_RE = re.compile(r"(http://\S+/console/auth/(?:magic-link/callback|invitation)\?token=[\w-]{43})")


def console_config(port, ca=None, smtp=None, extra=""):
    """[console] on 127.0.0.1:port (public_url the same), and [mail] to smtp."""
    text = (f"[console]\nlisten = 127.0.0.1:{port}\npublic_url = http://127.0.0.1:{port}\n"
            + extra + "\n")
    if smtp is not None:
        text += webhooks_config(ca, smtp=smtp)
    return text


def console_instance(make_instance, ca, smtp, extra="", config="", start=True, **kw):
    port = free_port()
    inst = make_instance(config=console_config(port, ca, smtp, extra) + config, **kw)
    inst.console_port = port
    inst.console = f"http://127.0.0.1:{port}"
    if start:
        inst.start()
    return inst


def user_create(inst, email, *extra):
    p = run_cli("user", "create", "--email", email, *extra, "-c", inst.conf, env=inst.env)
    assert p.returncode == 0, p.stderr
    return re.search(r"user ([0-9A-HJKMNP-TV-Z]{26}) created", p.stdout).group(1)


def set_cookies(resp):
    """Every Set-Cookie header of resp, as sent."""
    return resp.raw.headers.getlist("Set-Cookie")


class Browser:
    """One browser: its cookies, its Origin (the console's public_url)."""

    def __init__(self, base, origin=None):
        self.base = base
        self.origin = origin or base
        self.cookies = {}
        self.csrf = None

    def request(self, method, path, headers=None, origin=True, csrf=True, base=None, **kw):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if origin and method not in ("GET", "HEAD"):
            h.setdefault("Origin", self.origin)
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            h.setdefault("X-CSRF-Token", self.csrf)
        kw.setdefault("timeout", 30)
        kw.setdefault("allow_redirects", False)
        r = requests.request(method, (base or self.base) + path, headers=h, **kw)
        for c in set_cookies(r):
            name, value = c.split(";", 1)[0].split("=", 1)
            if "Max-Age=0" in c:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def me(self):
        r = self.get("/console/api/me")
        if r.status_code == 200:
            self.csrf = r.json()["csrf_token"]
        return r


def ask_link(browser, email, **kw):
    r = browser.post("/console/auth/magic-link", json={"email": email}, **kw)
    assert r.status_code == 202, r.text
    return r


def mailed_link(smtp, to, n=1, timeout=20):
    """The link of the n-th mail to `to`."""
    got = smtp.wait_mails(n, timeout=timeout, to=to)
    assert len(got) >= n, [m.rcpt_tos for m in smtp.mails]
    m = LINK_RE.search(got[n - 1].text())
    assert m, got[n - 1].text()
    return m.group(1)


def sign_in(inst, smtp, email, browser=None):
    """A Browser signed in as email by magic link (its CSRF token read)."""
    b = browser or Browser(inst.console)
    before = len(smtp.wait_mails(0, timeout=0, to=email))
    ask_link(b, email)
    link = mailed_link(smtp, email, before + 1)
    r = b.get(link[len(inst.console):])
    assert r.status_code == 303, r.text
    assert b.me().status_code == 200
    return b


def db_exec(inst, sql, params=()):
    """Run sql (with ? placeholders) on the instance's database; the rows."""
    url = inst.env.get("PORTCULLIS_STORE_URL")
    if url:
        import psycopg2
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            rows = cur.fetchall() if cur.description else []
        conn.close()
        return rows
    conn = sqlite3.connect(inst.dir + "/portcullis.db", timeout=10)
    try:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()
    finally:
        conn.close()
    return rows


def now_ms():
    return int(time.time() * 1000)
