"""GET /v1/verify behind nginx auth_request, with the configuration that
docs/verify.md shows (read from the page itself), against a real nginx and
the real binary.

One private nginx per test serves three things on free loopback ports: an
upstream that echoes the X-Portcullis-* headers (and Authorization) it
received as JSON, the minimal auth_request front of docs/verify.md, and the
front with the status mapping (429 and 503 passed on instead of nginx's 500)
and keep-alive connections to Portcullis.
Skipped when nginx is not installed (scripts/deps.sh all installs it).
"""
import http.client
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
import requests

from conftest import flip_last, free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                  else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(ROOT, "docs", "verify.md")


def doc_nginx_blocks():
    """The ```nginx code blocks of docs/verify.md: minimal, status mapping, keep-alive."""
    with open(DOC) as f:
        blocks = re.findall(r"```nginx\n(.*?)```", f.read(), re.S)
    assert len(blocks) == 3, "docs/verify.md: expected the three nginx examples"
    return blocks


def braced(block, opener, inner=False):
    """The lines of block from the first one starting with opener to its closing brace
    (braces inside quoted strings come in pairs on one line); inner: without those two."""
    lines = block.split("\n")
    first = next(i for i, line in enumerate(lines) if line.strip().startswith(opener))
    depth, out = 0, []
    for line in lines[first:]:
        out.append(line)
        depth += line.count("{") - line.count("}")
        if depth == 0:
            break
    return "\n".join(out[1:-1] if inner else out)


# The configuration is read from docs/verify.md, never copied, so that what the page tells
# people to paste is what runs here. Its addresses (Portcullis on 127.0.0.1:8080, the API on
# 127.0.0.1:9000) become the test's ports.
_MINIMAL, _MAPPED, _KEEPALIVE = doc_nginx_blocks()
AUTH_LOCATION = braced(_MINIMAL, "location = /_portcullis")
IDENTITY = braced(_MINIMAL, "location / {", inner=True)
MAPPING = "\n".join(
    line for line in braced(_MAPPED, "location / {", inner=True).split("\n")
    if not line.strip().startswith(("auth_request ", "#", "proxy_pass")))
REFUSED = braced(_MAPPED, "location @portcullis_refused")
UPSTREAM = braced(_KEEPALIVE, "upstream portcullis")
AUTH_LOCATION_KEEPALIVE = braced(_KEEPALIVE, "location = /_portcullis")


def with_ports(text, pcl, up):
    return text.replace("127.0.0.1:8080", f"127.0.0.1:{pcl}").replace("127.0.0.1:9000",
                                                                    f"127.0.0.1:{up}")


CONF = """
worker_processes 1;
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;

    server {  # the upstream: shows what reached it
        listen 127.0.0.1:%(up)d;
        default_type application/json;
        location / {
            return 200 '{"org":"$http_x_portcullis_org_id","project":"$http_x_portcullis_project_id","key":"$http_x_portcullis_key_id","env":"$http_x_portcullis_key_env","authorization":"$http_authorization","method":"$request_method","uri":"$request_uri"}';
        }
    }
    server {  # minimal front
        listen 127.0.0.1:%(plain)d;
%(auth)s
        location / {
%(identity)s
        }
    }
%(upstream)s
    server {  # front with the status mapping, keep-alive to Portcullis
        listen 127.0.0.1:%(mapped)d;
%(auth_keepalive)s
%(refused)s
        location / {
%(identity)s
%(mapping)s
        }
    }
}
"""


class Nginx:
    def __init__(self, workdir, pcl_port):
        self.dir = str(workdir)
        self.ports = {"up": free_port(), "plain": free_port(), "mapped": free_port()}
        v = dict(self.ports, dir=self.dir, pcl=pcl_port)
        for name, text in (("auth", AUTH_LOCATION), ("auth_keepalive", AUTH_LOCATION_KEEPALIVE),
                           ("identity", IDENTITY), ("refused", REFUSED), ("mapping", MAPPING),
                           ("upstream", UPSTREAM)):
            v[name] = with_ports(text, pcl_port, self.ports["up"])
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(CONF % v)
        args = [NGINX, "-p", self.dir, "-e", os.path.join(self.dir, "error.log"), "-c", self.conf]
        t = subprocess.run(args + ["-t", "-q"], capture_output=True, text=True)
        assert t.returncode == 0, t.stderr
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                requests.get(self.url("up", "/"), timeout=1)
                requests.get(self.url("mapped", "/"), timeout=1)
                break
            except requests.ConnectionError:
                assert self.proc.poll() is None, self.error_log()
                assert time.time() < deadline, "nginx did not start: " + self.error_log()
                time.sleep(0.05)

    def url(self, which, path):
        return f"http://127.0.0.1:{self.ports[which]}{path}"

    def get(self, which, path, key=None, headers=None, method="GET", **kw):
        h = dict(headers or {})
        if key:
            h["Authorization"] = "Bearer " + key
        return requests.request(method, self.url(which, path), headers=h, timeout=10, **kw)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def gw(make_instance):
    # As docs/verify.md says: nginx (on loopback here) is named a trusted proxy, and its
    # X-Forwarded-For line gives Portcullis each client's address. Three failures block one.
    return make_instance(config="[server]\ntrusted_proxies = 127.0.0.1\n"
                                "[auth]\nfailed_attempts_max = 3\n").start()


@pytest.fixture
def front(gw, tmp_path):
    n = Nginx(tmp_path, gw.port)
    yield n
    n.stop()


def new_org(gw, name="acme", **fields):
    r = gw.root("POST", "/v1/orgs", json={"name": name, **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def new_key(gw, org, **fields):
    r = gw.root("POST", f"/v1/orgs/{org}/api-keys", json={"name": "k", **fields})
    assert r.status_code == 201, r.text
    return r.json()


def wrong_secret(key, other):
    """key's prefix and key id with other's secret: well-formed, wrong."""
    return key.split(".", 1)[0] + "." + other.split(".", 1)[1]


def test_valid_key_reaches_the_upstream_with_its_identity_and_without_the_key(gw, front):
    org = new_org(gw)
    k = new_key(gw, org)
    for which in ("plain", "mapped"):
        r = front.get(which, "/orders/7?x=1", key=k["key"])
        assert r.status_code == 200, (which, r.status_code, r.text)
        seen = r.json()
        assert seen["org"] == org
        assert seen["key"] == k["id"]
        assert seen["env"] == "live"
        assert seen["project"] == ""
        assert seen["authorization"] == ""  # the key stops at nginx
        assert seen["uri"] == "/orders/7?x=1"


def test_project_key_passes_its_project_id(gw, front):
    org = new_org(gw)
    adm = new_key(gw, org, scopes=["gateway", "keys:write"])
    r = gw.request("POST", "/v1/projects", key=adm["key"], json={"name": "app"})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    k = new_key(gw, org, project_id=pid, env="test")
    seen = front.get("plain", "/", key=k["key"]).json()
    assert (seen["org"], seen["project"], seen["key"], seen["env"]) == (org, pid, k["id"], "test")


def test_client_cannot_inject_identity_headers(gw, front):
    org = new_org(gw)
    k = new_key(gw, org)
    forged = {"X-Portcullis-Org-Id": "org_forged", "X-Portcullis-Project-Id": "prj_forged",
              "X-Portcullis-Key-Id": "forged", "X-Portcullis-Key-Env": "root"}
    seen = front.get("plain", "/", key=k["key"], headers=forged).json()
    assert (seen["org"], seen["project"], seen["key"], seen["env"]) == (org, "", k["id"], "live")


def test_post_with_a_body_is_checked_and_forwarded(gw, front):
    org = new_org(gw)
    k = new_key(gw, org)
    r = front.get("plain", "/orders", key=k["key"], method="POST", json={"n": 1})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "POST"
    assert r.json()["org"] == org


@pytest.mark.parametrize("which", ["plain", "mapped"])
def test_bad_or_missing_key_gets_401_and_never_reaches_the_upstream(gw, front, which):
    org = new_org(gw)
    k = new_key(gw, org)
    other = new_key(gw, org)
    bad_sum = flip_last(k["key"])
    cases = {
        "wrong secret": {"Authorization": "Bearer " + wrong_secret(k["key"], other["key"])},
        "bad checksum": {"Authorization": "Bearer " + bad_sum},
        "garbage": {"Authorization": "Bearer nonsense"},
        "no key": {},
    }
    for name, headers in cases.items():
        r = front.get(which, "/orders", headers=headers)
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.headers.get("WWW-Authenticate") == "Bearer", name  # copied by auth_request
        assert "org" not in r.text, name  # nginx's own 401 page, not the upstream


def test_rate_limited_org_gets_500_plain_and_429_with_the_mapping(gw, front):
    org = new_org(gw, rate_limit={"requests": 1, "per_seconds": 3600, "burst": 0})
    k = new_key(gw, org)
    assert front.get("plain", "/", key=k["key"]).status_code == 200
    # Without the mapping nginx turns Portcullis's 429 into 500...
    assert front.get("plain", "/", key=k["key"]).status_code == 500
    assert "auth request unexpected status: 429" in front.error_log()
    # ...with it the client gets 429 and Portcullis's Retry-After and request id.
    r = front.get("mapped", "/", key=k["key"])
    assert r.status_code == 429, r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert r.headers["X-Request-Id"].startswith("req_")
    assert r.json() == {"status": 429, "title": "Too Many Requests"}


def test_killed_org_gets_500_plain_and_503_with_the_mapping(gw, front):
    org = new_org(gw)
    k = new_key(gw, org)
    assert front.get("mapped", "/", key=k["key"]).status_code == 200
    r = gw.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "test"})
    assert r.status_code in (200, 201, 204), r.text
    assert front.get("plain", "/", key=k["key"]).status_code == 500
    r = front.get("mapped", "/", key=k["key"])
    assert r.status_code == 503, r.text
    assert r.json() == {"status": 503, "title": "Service Unavailable"}


def test_portcullis_down_gives_500_with_the_mapping(gw, front):
    org = new_org(gw)
    k = new_key(gw, org)
    gw.stop()
    r = front.get("mapped", "/", key=k["key"])
    assert r.status_code == 500
    assert r.json()["title"] == "Authentication unavailable"


def status_from(front, which, source, headers):
    """GET / on a front from the loopback address source (127.0.0.2, ...): another client."""
    conn = http.client.HTTPConnection("127.0.0.1", front.ports[which], timeout=10,
                                      source_address=(source, 0))
    try:
        conn.request("GET", "/", headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


@pytest.mark.parametrize("which", ["plain", "mapped"])
def test_brute_force_guard_tells_clients_apart_through_either_front(gw, front, which):
    # Both /_portcullis locations of docs/verify.md send X-Forwarded-For, so the guard
    # blocks the client that sent wrong keys, not every client behind nginx. (The keep-alive
    # one did not: every client reached Portcullis as 127.0.0.1 and one blocked them all.)
    org = new_org(gw)
    k = new_key(gw, org)
    other = new_key(gw, org)
    wrong = {"Authorization": "Bearer " + wrong_secret(k["key"], other["key"])}
    for _ in range(3):
        assert status_from(front, which, "127.0.0.2", wrong) == 401
    assert status_from(front, which, "127.0.0.2", wrong) == (429 if which == "mapped" else 500)
    assert status_from(front, which, "127.0.0.3", wrong) == 401  # another client: not blocked
    fresh = new_key(gw, org)  # never verified: the guard would stop it for a blocked client
    assert status_from(front, which, "127.0.0.4", {"Authorization": "Bearer " + fresh["key"]}) \
        == 200
