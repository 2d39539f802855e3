"""GET /v1/verify behind nginx auth_request, with the configuration that
docs/verify.md shows, against a real nginx and the real binary.

One private nginx per test serves three things on free loopback ports: an
upstream that echoes the X-Portcullis-* headers (and Authorization) it
received as JSON, the minimal auth_request front of docs/verify.md, and the
front with the status mapping (429 and 503 passed on instead of nginx's 500)
and keep-alive connections to Portcullis.
Skipped when nginx is not installed (scripts/deps.sh all installs it).
"""
import os
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

# The auth location and the identity headers, exactly as in docs/verify.md
# (with the Portcullis address filled in).
AUTH_LOCATION = """
        location = /_portcullis {
            internal;
            proxy_pass http://127.0.0.1:%(pcl)d/v1/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Authorization $http_authorization;
        }
"""
IDENTITY = """
            auth_request /_portcullis;
            auth_request_set $pcl_org     $upstream_http_x_portcullis_org_id;
            auth_request_set $pcl_project $upstream_http_x_portcullis_project_id;
            auth_request_set $pcl_key     $upstream_http_x_portcullis_key_id;
            auth_request_set $pcl_env     $upstream_http_x_portcullis_key_env;
            proxy_set_header X-Portcullis-Org-Id     $pcl_org;
            proxy_set_header X-Portcullis-Project-Id $pcl_project;
            proxy_set_header X-Portcullis-Key-Id     $pcl_key;
            proxy_set_header X-Portcullis-Key-Env    $pcl_env;
            proxy_set_header Authorization "";
            proxy_pass http://127.0.0.1:%(up)d;
"""
# The same auth location over kept-alive connections (docs/verify.md, "Full
# example"): the mapped front uses this one.
AUTH_LOCATION_KEEPALIVE = """
        location = /_portcullis {
            internal;
            proxy_pass http://portcullis/v1/verify;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Authorization $http_authorization;
        }
"""
# The status mapping of docs/verify.md.
MAPPING = """
            auth_request_set $pcl_status      $upstream_status;
            auth_request_set $pcl_retry_after $upstream_http_retry_after;
            auth_request_set $pcl_request_id  $upstream_http_x_request_id;
            error_page 500 = @portcullis_refused;
"""
REFUSED = """
        location @portcullis_refused {
            default_type application/json;
            add_header Retry-After  $pcl_retry_after always;
            add_header X-Request-Id $pcl_request_id always;
            if ($pcl_status = 429) {
                return 429 '{"status":429,"title":"Too many requests"}';
            }
            if ($pcl_status = 503) {
                return 503 '{"status":503,"title":"Service unavailable"}';
            }
            return 500 '{"status":500,"title":"Authentication unavailable"}';
        }
"""

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
    upstream portcullis {
        server 127.0.0.1:%(pcl)d;
        keepalive 16;
    }
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
        v["auth"] = AUTH_LOCATION % v
        v["auth_keepalive"] = AUTH_LOCATION_KEEPALIVE
        v["identity"] = IDENTITY % v
        v["refused"] = REFUSED
        v["mapping"] = MAPPING
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
    return make_instance().start()


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
    assert r.json() == {"status": 429, "title": "Too many requests"}


def test_killed_org_gets_500_plain_and_503_with_the_mapping(gw, front):
    org = new_org(gw)
    k = new_key(gw, org)
    assert front.get("mapped", "/", key=k["key"]).status_code == 200
    r = gw.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "test"})
    assert r.status_code in (200, 201, 204), r.text
    assert front.get("plain", "/", key=k["key"]).status_code == 500
    r = front.get("mapped", "/", key=k["key"])
    assert r.status_code == 503, r.text
    assert r.json() == {"status": 503, "title": "Service unavailable"}


def test_portcullis_down_gives_500_with_the_mapping(gw, front):
    org = new_org(gw)
    k = new_key(gw, org)
    gw.stop()
    r = front.get("mapped", "/", key=k["key"])
    assert r.status_code == 500
    assert r.json()["title"] == "Authentication unavailable"
