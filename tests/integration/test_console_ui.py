"""The web UI's files on the console listener (src/console/assets.c), black-box:
/console/ and every page route are index.html, the files by path with their
content types, every answer with the UI's Content-Security-Policy, nosniff,
no-referrer and no-cache with a strong ETag; If-None-Match gives 304; HEAD has
GET's headers and no body; anything else under /console/ is 404 problem+json
with the same headers; the UI is not on the main listener.
"""
import hashlib
import json
import os

import pytest
import requests

from conftest import assert_problem
from console_helpers import console_instance
from test_mail import smtp  # noqa: F401
from test_webhooks import ca  # noqa: F401

UI = os.path.join(os.path.dirname(__file__), "..", "..", "ui")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@pytest.fixture
def con(make_instance, ca, smtp):  # noqa: F811
    return console_instance(make_instance, ca, smtp)


def ui_bytes(rel):
    with open(os.path.join(UI, rel), "rb") as f:
        return f.read()


def check_headers(r):
    assert r.headers["Content-Security-Policy"] == CSP, r.headers
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_pages_and_files_are_served_with_the_ui_headers(con):
    base = con.console
    index = ui_bytes("index.html")
    etag = '"%s"' % hashlib.sha256(index).hexdigest()[:20]
    pages = [p["path"] for p in json.loads(ui_bytes("pages.json"))]
    for path in ["/console/"] + [f"/console/{p}" for p in pages]:
        r = requests.get(base + path, timeout=10)
        assert r.status_code == 200, path
        assert r.content == index
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert r.headers["ETag"] == etag and r.headers["Cache-Control"] == "no-cache"
        check_headers(r)
    for rel, ctype in [("app.js", "text/javascript; charset=utf-8"),
                       ("style.css", "text/css; charset=utf-8"),
                       ("pages/keys.js", "text/javascript; charset=utf-8"),
                       ("pages.json", "application/json"), ("favicon.svg", "image/svg+xml")]:
        r = requests.get(f"{base}/console/{rel}", timeout=10)
        assert r.status_code == 200 and r.content == ui_bytes(rel), rel
        assert r.headers["Content-Type"] == ctype
        assert r.headers["ETag"] == '"%s"' % hashlib.sha256(r.content).hexdigest()[:20]
        check_headers(r)


def test_if_none_match_is_304_and_head_has_no_body(con):
    url = con.console + "/console/app.js"
    g = requests.get(url, timeout=10)
    tag = g.headers["ETag"]
    for inm in (tag, "W/" + tag, f'"other", {tag}', "*"):
        r = requests.get(url, headers={"If-None-Match": inm}, timeout=10)
        assert r.status_code == 304 and r.content == b"", inm
        assert r.headers["ETag"] == tag
        check_headers(r)
    r = requests.get(url, headers={"If-None-Match": '"other"'}, timeout=10)
    assert r.status_code == 200 and r.content == g.content
    h = requests.head(url, timeout=10)
    assert h.status_code == 200 and h.content == b""
    assert h.headers["ETag"] == tag and h.headers["Content-Length"] == str(len(g.content))
    check_headers(h)


def test_unknown_paths_are_404_problems_and_the_main_listener_has_no_ui(con):
    for path in ("/console/nope", "/console/keys/x", "/console/pages/nope.js",
                 "/console/api/nope", "/console/a/b/c", "/console/INDEX.HTML"):
        r = requests.get(con.console + path, timeout=10)
        assert_problem(r, 404, "NOT_FOUND")
        check_headers(r)
        assert r.headers["Cache-Control"] == "no-store"
    r = requests.post(con.console + "/console/keys", timeout=10)
    assert r.status_code == 405
    # On the main listener /console/ is the data plane's: no upstream, no UI.
    r = con.request("GET", "/console/")
    assert r.status_code != 200 or r.content != ui_bytes("index.html")
