"""docs/openapi.yaml against the real server, black-box: the spec is valid OpenAPI
(@apidevtools/swagger-parser, scripts/openapi-check.js), and every operation it documents is
driven through Prism's validating proxy (`prism proxy --errors`) in front of a real instance,
so that each request and each response is checked against the spec. A response that does not
match (status not documented, body or header off schema) comes back from Prism as an error
instead of the server's answer; so does a request the spec would not allow. Both npm packages
are installed into third_party/openapi by scripts/deps.sh.

Redirects are checked the same way (Prism's upstream fetch follows them): sent straight to the
server, a 303 must be documented with every header its operation lists.

HEAD is the exception: Prism parses a HEAD answer's empty body as the JSON its Content-Type
announces and fails (as it does for other empty JSON bodies, stoplightio/prism#1361). Each HEAD
operation is checked here instead: sent straight to the server, it must answer a status its
`head` operation documents, with the headers it documents, no body, and the same status and
header names as the GET twin.
"""
import base64
import json
import os
import re
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import free_port, run_cli
from test_keys import ADMIN_SCOPES

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPEC = os.path.join(ROOT, "docs", "openapi.yaml")
NODE_DIR = os.path.join(ROOT, "third_party", "openapi", "node_modules")
PRISM = os.path.join(NODE_DIR, ".bin", "prism")
CHECK = os.path.join(ROOT, "scripts", "openapi-check.js")
METHODS = ("get", "head", "post", "put", "patch", "delete")
NO_ID = "01M82YZC82RGBDPS238NXRY03Q"  # well-formed, never created


def spec_json():
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        p = subprocess.run(["node", CHECK, SPEC, f.name], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        return json.load(open(f.name))


def test_spec_is_valid_openapi():
    p = subprocess.run(["node", CHECK, SPEC], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "is valid OpenAPI 3.1" in p.stdout


class Prism:
    """`prism proxy --errors SPEC upstream` on a free loopback port, stopped by close()."""

    def __init__(self, upstream):
        assert os.path.exists(PRISM), "run scripts/deps.sh test (installs third_party/openapi)"
        self.upstream = upstream
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [PRISM, "proxy", "--errors", "--cors=false", "--host", "127.0.0.1",
             "--port", str(self.port), "-v", "warn", SPEC, upstream],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        try:
            while True:
                assert self.proc.poll() is None, self.output()
                try:
                    requests.get(self.url("/healthz"), timeout=2)
                    return
                except requests.ConnectionError:
                    assert time.time() < deadline, "prism did not start: " + self.output()
                    time.sleep(0.2)
        except BaseException:
            self.close()  # never leave a Prism running
            raise

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def prism_gw(make_instance, tmp_path):
    # A small header limit, so that 431 can be provoked through Prism (Node's own limit is
    # 16 KiB); a rate limit of 3 at once for the verify 429.
    # An ingest listener, with a Prism of its own (the ingest operations' server).
    # A console listener printing its sign-in mails (no [mail] url), with a Prism of its own.
    ingest_port, console_port = free_port(), free_port()
    gw = make_instance(config="[server]\nmax_header_bytes = 4096\n"
                              "[rate_limit]\nrequests = 1\nper_seconds = 60\nburst = 2\n"
                              f"[ingest]\nlisten = 127.0.0.1:{ingest_port}\nrate_limit = 100\n"
                              f"[console]\nlisten = 127.0.0.1:{console_port}\n"
                              "dev_print_links = true\n" + oidc_down(tmp_path)).start()
    gw.ingest_base = f"http://127.0.0.1:{ingest_port}"
    gw.console_base = f"http://127.0.0.1:{console_port}"
    prisms = []
    try:
        for base in (gw.base, gw.ingest_base, gw.console_base):
            prisms.append(Prism(base))
    except BaseException:
        for p in prisms:
            p.close()
        raise
    prism, gw.ingest_prism, gw.console_prism = prisms
    yield gw, prism
    for p in prisms:
        p.close()


def oidc_down(tmp_path):
    """An [oidc.down] provider that nothing answers for (port 9 on loopback, let through by
    allow_ranges): its routes' refusals can be driven without a provider."""
    secret = tmp_path / "oidc-down.secret"
    secret.write_text("not-used\n")
    return ("[oidc.down]\nissuer = https://127.0.0.1:9\nclient_id = portcullis\n"
            f"client_secret_file = {secret}\nallow_ranges = 127.0.0.0/8\n")


# Headers whose values (or presence) differ from one answer to the next.
VOLATILE = {"date", "x-request-id", "ratelimit", "retry-after", "content-length", "connection",
            "keep-alive"}


class Driver:
    """Sends requests through Prism and records which documented operations were driven."""

    def __init__(self, gw, prism, spec):
        self.gw = gw
        self.prism = prism
        self.spec = spec
        self.driven = set()

    def head(self, template, path, status, params, headers):
        op = self.spec["paths"][template]["head"]
        r = requests.head(self.gw.url(path), params=params, headers=headers, timeout=30)
        g = requests.get(self.gw.url(path), params=params, headers=headers, timeout=30)
        assert r.status_code == status == g.status_code, (path, r.status_code, g.status_code)
        assert r.content == b""
        documented = op["responses"].get(str(status)) or op["responses"]["default"]
        for name in documented.get("headers", {}):
            if not name.startswith("X-Portcullis-Project") and name not in VOLATILE:
                assert name in r.headers, (path, name, r.headers)
        names = {k.lower() for k in r.headers} - VOLATILE
        assert names == {k.lower() for k in g.headers} - VOLATILE, (path, r.headers, g.headers)
        return r

    def redirect(self, method, template, path, status, params, headers, kw):
        """A redirect, sent straight to the server (Prism's upstream fetch follows it):
        the status and every header its operation documents."""
        kw.pop("allow_redirects", None)
        r = requests.request(method, self.prism.upstream + path, params=params,
                             headers=headers, timeout=30, allow_redirects=False, **kw)
        op = self.spec["paths"][template][method.lower()]
        assert r.status_code == status and str(status) in op["responses"], (path, r.text)
        for name in op["responses"][str(status)].get("headers", {}):
            assert name in r.headers, (path, name, r.headers)
        return r

    def __call__(self, method, template, status, key=None, params=None, path_args=None,
                 **kw):
        assert method.lower() in self.spec["paths"][template], (method, template)
        path = template.format(**(path_args or {}))
        headers = kw.pop("headers", {})
        if key:
            headers["Authorization"] = "Bearer " + key
        if method == "HEAD":
            self.driven.add(("head", template))
            return self.head(template, path, status, params, headers)
        if status in (301, 302, 303, 307, 308):
            self.driven.add((method.lower(), template))
            return self.redirect(method, template, path, status, params, headers, kw)
        r = requests.request(method, self.prism.url(path), params=params, headers=headers,
                             timeout=30, **kw)
        violations = r.headers.get("sl-violations")
        assert r.status_code == status and not violations, (
            f"{method} {path}: {r.status_code} (want {status}) {violations or ''} "
            f"{r.text[:2000]}")
        self.driven.add((method.lower(), template))
        return r


def printed_link(gw, kind, n):
    """The n-th link of kind (magic-link/callback, invitation) serve printed (dev_print_links)."""
    pat = re.compile(r"/console/auth/" + kind + r"\?token=([\w-]{43})")
    deadline = time.time() + 15
    while True:
        found = pat.findall(gw.read_log())
        if len(found) >= n:
            return found[n - 1]
        assert time.time() < deadline, gw.read_log()[-2000:]
        time.sleep(0.1)


def cookie_of(r, name):
    for c in r.raw.headers.getlist("Set-Cookie"):
        if c.startswith(name + "=") and "Max-Age=0" not in c:
            return c.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie: {r.headers}")


def drive_console(gw, spec, call, oid):
    """The console listener's operations through its own Prism (docs/console.md)."""
    con = Driver(gw, gw.console_prism, spec)
    p = run_cli("user", "create", "--email", "op@example.com", "--operator", "-c", gw.conf,
                env=gw.env)
    assert p.returncode == 0, p.stderr
    origin = {"Origin": gw.console_base}
    r = con("POST", "/console/auth/magic-link", 202, headers=dict(origin),
            json={"email": "op@example.com"})
    login = cookie_of(r, "__Host-pcl_login")
    con("POST", "/console/auth/magic-link", 400, headers=dict(origin), json={"email": "x"})
    con("POST", "/console/auth/magic-link", 403, headers={"Origin": "https://evil.example"},
        json={"email": "op@example.com"})
    token = printed_link(gw, "magic-link/callback", 1)
    con("GET", "/console/auth/magic-link/callback", 403, params={"token": token},
        allow_redirects=False)
    r = con("GET", "/console/auth/magic-link/callback", 303, params={"token": token},
            headers={"Cookie": login}, allow_redirects=False)
    session = {"Cookie": cookie_of(r, "__Host-pcl_session")}
    con("GET", "/console/auth/magic-link/callback", 400, params={"token": token},
        headers={"Cookie": login}, allow_redirects=False)
    me = con("GET", "/console/api/me", 200, headers=dict(session)).json()
    con("GET", "/console/api/me", 401, headers={"Cookie": "__Host-pcl_session=" + "A" * 43})
    con("GET", "/console/api/me", 403, headers={**session, "Sec-Fetch-Site": "cross-site"})
    con("GET", "/console/api/sessions", 200, headers=dict(session))
    con("POST", "/console/auth/logout", 403,
        headers={**session, **origin, "X-CSRF-Token": "A" * 43})
    # An invitation (an operator key), its page, and its acceptance.
    call("POST", "/v1/orgs/{orgId}/invitations", 201, key=gw.root_key, path_args=oid,
         json={"email": "new@example.com", "role": "viewer"})
    call("POST", "/v1/orgs/{orgId}/invitations", 400, key=gw.root_key, path_args=oid,
         json={"email": "not an address", "role": "viewer"})
    inv = printed_link(gw, "invitation", 1)
    con("GET", "/console/auth/invitation", 200, params={"token": inv})
    form = {**origin, "Content-Type": "application/x-www-form-urlencoded"}
    r = con("POST", "/console/auth/invitation", 303, data=f"token={inv}", headers=dict(form),
            allow_redirects=False)
    invitee = {"Cookie": cookie_of(r, "__Host-pcl_session")}
    con("POST", "/console/auth/invitation", 400, data=f"token={inv}", headers=dict(form),
        allow_redirects=False)
    invitee_csrf = con("GET", "/console/api/me", 200, headers=dict(invitee)).json()["csrf_token"]
    con("POST", "/console/auth/logout", 204,
        headers={**invitee, **origin, "X-CSRF-Token": invitee_csrf})
    con("POST", "/console/auth/logout", 401,
        headers={**invitee, **origin, "X-CSRF-Token": invitee_csrf})
    sid = {"sessionId": me["session"]["id"]}
    csrf = {**session, **origin, "X-CSRF-Token": me["csrf_token"]}
    con("DELETE", "/console/api/sessions/{sessionId}", 404, path_args={"sessionId": NO_ID},
        headers=dict(csrf))
    con("DELETE", "/console/api/sessions/{sessionId}", 204, path_args=sid, headers=dict(csrf))
    con("DELETE", "/console/api/sessions/{sessionId}", 401, path_args=sid, headers=dict(csrf))
    # OpenID Connect (docs/console.md): test_oidc.py signs in through a real provider; here
    # the routes' other answers, with a provider that cannot be reached.
    r = con("GET", "/console/api/providers", 200)
    assert r.json()["data"] == [{"name": "down", "start": "/console/auth/oidc/down/start"}]
    con("GET", "/console/api/providers", 401, headers={"Authorization": "Bearer " + gw.root_key})
    con("GET", "/console/auth/oidc/{name}/start", 502, path_args={"name": "down"},
        allow_redirects=False)
    con("GET", "/console/auth/oidc/{name}/start", 404, path_args={"name": "nope"},
        allow_redirects=False)
    con("GET", "/console/auth/oidc/{name}/callback", 400, path_args={"name": "down"},
        params={"state": "A" * 43, "code": "c"}, allow_redirects=False)
    con("GET", "/console/auth/oidc/{name}/callback", 404, path_args={"name": "nope"},
        params={"state": "A" * 43, "code": "c"}, allow_redirects=False)
    return con.driven


def test_every_documented_operation_validates_through_prism(prism_gw):
    gw, prism = prism_gw
    spec = spec_json()
    call = Driver(gw, prism, spec)
    root = gw.root_key

    # Service endpoints.
    for path in ("/healthz", "/readyz", "/metrics", "/.well-known/security.txt"):
        call("GET", path, 200)
        call("HEAD", path, 200)

    # Operator: organisations, their keys and kill switches.
    org = call("POST", "/v1/orgs", 201, key=root,
               json={"name": "Acme", "contact_email": "sec@acme.example"}).json()
    oid = {"orgId": org["id"]}
    call("GET", "/v1/orgs", 200, key=root, params={"limit": 10})
    call("HEAD", "/v1/orgs", 200, key=root)
    call("GET", "/v1/orgs/{orgId}", 200, key=root, path_args=oid)
    call("HEAD", "/v1/orgs/{orgId}", 200, key=root, path_args=oid)
    call("GET", "/v1/orgs/{orgId}", 404, key=root, path_args={"orgId": NO_ID})
    call("HEAD", "/v1/orgs/{orgId}", 404, key=root, path_args={"orgId": NO_ID})
    call("PATCH", "/v1/orgs/{orgId}", 200, key=root, path_args=oid,
         json={"rate_limit": {"requests": 1, "per_seconds": 60, "burst": 2}})
    call("PATCH", "/v1/orgs/{orgId}", 400, key=root, path_args=oid,
         json={"contact_email": "not an address"})
    adm = call("POST", "/v1/orgs/{orgId}/api-keys", 201, key=root, path_args=oid,
               json={"name": "admin", "scopes": ADMIN_SCOPES}).json()
    call("POST", "/v1/orgs/{orgId}/kill", 200, key=root, path_args=oid,
         json={"reason": "drill"})
    call("GET", "/v1/api-keys", 503, key=adm["key"])  # the organisation's kill
    call("DELETE", "/v1/orgs/{orgId}/kill", 200, key=root, path_args=oid)
    call("POST", "/v1/kill-switch", 200, key=root, json={"reason": "drill"})
    call("DELETE", "/v1/kill-switch", 200, key=root)

    # Projects and keys, with the organisation's admin key.
    k = adm["key"]
    proj = call("POST", "/v1/projects", 201, key=k, json={"name": "Mobile"}).json()
    pid = {"projectId": proj["id"]}
    call("GET", "/v1/projects", 200, key=k)
    call("HEAD", "/v1/projects", 200, key=k, params={"limit": 1})
    call("GET", "/v1/projects/{projectId}", 200, key=k, path_args=pid)
    call("HEAD", "/v1/projects/{projectId}", 200, key=k, path_args=pid)
    call("PATCH", "/v1/projects/{projectId}", 200, key=k, path_args=pid,
         json={"budget": {"requests_per_month": 1000, "notify_at": [50, 100]}})
    call("GET", "/v1/projects/{projectId}", 200, key=k, path_args=pid)
    call("PATCH", "/v1/projects/{projectId}", 400, key=k, path_args=pid,
         json={"budget": {"requests_per_month": 10, "notify_at": [100, 50]}})
    call("PATCH", "/v1/projects/{projectId}", 200, key=k, path_args=pid, json={"budget": None})
    call("PATCH", "/v1/projects/{projectId}", 404, key=k, path_args={"projectId": NO_ID},
         json={"budget": None})
    call("GET", "/v1/projects", 400, key=root)  # organisation keys only
    call("GET", "/v1/projects/{projectId}/capi", 404, key=k, path_args=pid)
    call("PUT", "/v1/projects/{projectId}/capi", 200, key=k, path_args=pid,
         json={"enabled": True, "pixel_id": "777000111", "access_token": "EAABtoken",
               "test_event_code": "TEST42"})
    call("GET", "/v1/projects/{projectId}/capi", 200, key=k, path_args=pid)
    call("HEAD", "/v1/projects/{projectId}/capi", 200, key=k, path_args=pid)
    call("GET", "/v1/projects/{projectId}/capi/deliveries", 200, key=k, path_args=pid)
    call("HEAD", "/v1/projects/{projectId}/capi/deliveries", 200, key=k, path_args=pid,
         params={"limit": 1})
    call("GET", "/v1/projects/{projectId}/capi/deliveries", 400, key=k, path_args=pid,
         params={"unknown": "1"})
    key = call("POST", "/v1/api-keys", 201, key=k,
               json={"name": "ci", "env": "test", "project_id": proj["id"]}).json()
    kid = {"keyId": key["id"]}
    call("POST", "/v1/api-keys", 403, key=k, json={"name": "x", "scopes": ["webhooks:write"]})
    call("GET", "/v1/api-keys", 200, key=k, params={"project_id": proj["id"], "limit": 5})
    call("HEAD", "/v1/api-keys", 200, key=k)
    call("GET", "/v1/api-keys/{keyId}", 200, key=k, path_args=kid)
    call("HEAD", "/v1/api-keys/{keyId}", 200, key=k, path_args=kid)
    call("GET", "/v1/api-keys/{keyId}", 404, key=k, path_args={"keyId": NO_ID})
    call("POST", "/v1/api-keys/{keyId}/kill", 200, key=k, path_args=kid,
         json={"reason": "leaked"})
    call("DELETE", "/v1/api-keys/{keyId}/kill", 200, key=k, path_args=kid)
    rotated = call("POST", "/v1/api-keys/{keyId}/rotate", 200, key=k, path_args=kid,
                   json={"grace_seconds": 0}).json()

    # The data plane's verify: 200, then the organisation's limit (3 at once) is spent
    # (the HEAD check sends a HEAD and a GET).
    call("GET", "/v1/verify", 200, key=rotated["key"])
    call("HEAD", "/v1/verify", 200, key=rotated["key"])
    r = call("GET", "/v1/verify", 429, key=rotated["key"])
    assert r.json()["code"] == "RATE_LIMITED"
    call("GET", "/v1/verify", 401, key="pcl_live_" + NO_ID + "." + "A" * 49)
    call("GET", "/v1/verify", 403, key=root)
    # 431: over [server] max_header_bytes, under Node's own limit.
    call("GET", "/v1/verify", 431, key=rotated["key"], headers={"X-Pad": "p" * 5000})

    call("DELETE", "/v1/api-keys/{keyId}", 200, key=k, path_args=kid)
    call("POST", "/v1/api-keys/{keyId}/rotate", 409, key=k, path_args=kid, json={})
    call("GET", "/v1/api-keys/{keyId}", 401, key=rotated["key"], path_args=kid)  # REVOKED
    # The key inventory: the organisation key's own, an operator key names the organisation.
    call("GET", "/v1/api-keys/inventory", 200, key=k, params={"limit": 1000})
    call("HEAD", "/v1/api-keys/inventory", 200, key=k)
    call("GET", "/v1/api-keys/inventory", 200, key=root, params={"org_id": org["id"], "limit": 1})
    call("GET", "/v1/api-keys/inventory", 400, key=root)
    call("GET", "/v1/api-keys/inventory", 404, key=root, params={"org_id": NO_ID})

    # Records.
    call("GET", "/v1/audit-events", 200, key=k, params={"since": "2026-01-01T00:00:00Z"})
    call("HEAD", "/v1/audit-events", 200, key=k)
    call("GET", "/v1/audit-events", 400, key=k, params={"unknown": "1"})
    call("GET", "/v1/audit-events/verify", 200, key=k)
    call("GET", "/v1/audit-events/verify", 200, key=root)
    call("HEAD", "/v1/audit-events/verify", 200, key=k)
    call("GET", "/v1/audit-events/verify", 400, key=k, params={"unknown": "1"})
    call("GET", "/v1/requests", 200, key=k, params={"status": 200, "limit": 100})
    call("HEAD", "/v1/requests", 200, key=k)
    call("HEAD", "/v1/events", 200, key=k)
    call("GET", "/v1/events", 400, key=k, params={"unknown": "1"})
    call("GET", "/v1/usage", 200, key=k, params={"group_by": "status", "granularity": "minute"})
    call("GET", "/v1/usage", 200, key=k, params={"group_by": "key", "granularity": "day"})
    call("HEAD", "/v1/usage", 200, key=k)
    report = {"key_id": key["id"]}
    call("GET", "/v1/incidents/report", 200, key=k, params=report)
    call("HEAD", "/v1/incidents/report", 200, key=k, params=report)
    call("GET", "/v1/incidents/report", 404, key=k, params={"key_id": NO_ID})
    call("GET", "/v1/incidents/report", 400, key=k,
         params={"key_id": key["id"], "since": "2026-02-01T00:00:00Z",
                 "until": "2026-01-01T00:00:00Z"})

    # Webhooks: endpoints (an organisation key with webhooks:write), publishing (root) and
    # the message records.
    wk = call("POST", "/v1/orgs/{orgId}/api-keys", 201, key=root, path_args=oid,
              json={"name": "hooks", "scopes": ["webhooks:write", "logs:read"]}).json()["key"]
    url = "https://hooks.example.com/portcullis"
    ep = call("POST", "/v1/webhook-endpoints", 201, key=wk,
              json={"url": url, "event_types": ["invoice.paid"]}).json()
    eid = {"endpointId": ep["id"]}
    call("POST", "/v1/webhook-endpoints", 400, key=wk, json={"url": "http://hooks.example.com/"})
    call("POST", "/v1/orgs/{orgId}/webhook-endpoints", 201, key=root, path_args=oid,
         json={"url": url})
    call("GET", "/v1/webhook-endpoints", 200, key=wk, params={"limit": 10})
    call("HEAD", "/v1/webhook-endpoints", 200, key=wk)
    call("GET", "/v1/webhook-endpoints/{endpointId}", 200, key=wk, path_args=eid)
    call("HEAD", "/v1/webhook-endpoints/{endpointId}", 200, key=wk, path_args=eid)
    call("GET", "/v1/webhook-endpoints/{endpointId}", 404, key=wk,
         path_args={"endpointId": "ep_" + NO_ID})
    call("PATCH", "/v1/webhook-endpoints/{endpointId}", 200, key=wk, path_args=eid,
         json={"description": "billing", "rate_limit_per_second": 5})
    call("POST", "/v1/webhook-endpoints/{endpointId}/rotate-secret", 200, key=wk,
         path_args=eid, json={"grace_seconds": 60})
    test_msg = call("POST", "/v1/webhook-endpoints/{endpointId}/test", 201, key=wk,
                    path_args=eid, json={}).json()
    call("POST", "/v1/webhook-endpoints/{endpointId}/recover", 202, key=wk, path_args=eid,
         json={"since": "2026-01-01T00:00:00Z"})
    body = {"type": "invoice.paid", "payload": {"invoice": "in_1"}}
    msg = call("POST", "/v1/orgs/{orgId}/webhook-messages", 201, key=root, path_args=oid,
               json=body, headers={"Idempotency-Key": "k1"}).json()
    call("POST", "/v1/orgs/{orgId}/webhook-messages", 422, key=root, path_args=oid,
         json={"type": "invoice.paid", "payload": {}}, headers={"Idempotency-Key": "k1"})
    mid = {"messageId": msg["id"]}
    call("GET", "/v1/webhook-messages", 200, key=wk, params={"type": "invoice.paid"})
    call("HEAD", "/v1/webhook-messages", 200, key=wk)
    call("GET", "/v1/webhook-messages/{messageId}", 200, key=wk, path_args=mid)
    call("HEAD", "/v1/webhook-messages/{messageId}", 200, key=wk, path_args=mid)
    call("GET", "/v1/webhook-messages/{messageId}/attempts", 200, key=wk,
         path_args={"messageId": test_msg["id"]})
    call("HEAD", "/v1/webhook-messages/{messageId}/attempts", 200, key=wk, path_args=mid)
    call("POST", "/v1/webhook-messages/{messageId}/resend", 202, key=wk, path_args=mid,
         json={"endpoint_id": ep["id"]})
    call("DELETE", "/v1/webhook-endpoints/{endpointId}", 204, key=wk, path_args=eid)

    # GitHub's secret scanning endpoint: no signature is 401 (the signed paths are
    # test_secret_scanning.py's, with a local key server).
    call("POST", "/v1/secret-scanning/github", 401,
         json=[{"token": "pcl_live_x", "type": "pcl_api_key", "url": "", "source": "content"}])
    # The ingest listener (its own Prism): an ingest key of the project, Bearer, Basic and
    # the body's writeKey; then GET /v1/events on the main listener lists what it stored.
    ing = Driver(gw, gw.ingest_prism, spec)
    ik = call("POST", "/v1/api-keys", 201, key=k,
              json={"name": "app", "project_id": proj["id"], "scopes": ["events:ingest"]}
              ).json()["key"]
    basic = {"Authorization": "Basic " + base64.b64encode((ik + ":").encode()).decode()}
    one = {"userId": "u1", "messageId": "m-{}", "context": {"traits": {"email": "a@b.example"}}}
    for n, ep in enumerate(["track", "identify", "page", "screen", "group", "alias"]):
        ev = {**one, "messageId": f"m-{n}", **({"event": "Bought"} if ep == "track" else {})}
        ing("POST", f"/v1/{ep}", 200, key=ik, json=ev)
    r = ing("POST", "/v1/batch", 200, headers=basic,
            json={"batch": [{**one, "type": "track", "event": "e", "messageId": "b-1"},
                            {"type": "track", "event": "e", "messageId": "b-2"}]})
    assert r.json()["rejected"][0]["code"] == "MISSING_ID"
    ing("POST", "/v1/import", 200,
        json={"writeKey": ik, "batch": [{**one, "type": "page", "messageId": "i-1"}]})
    ing("POST", "/v1/batch", 401, key=k, json={"batch": []})
    ing("POST", "/v1/batch", 400, key=ik, json={"batch": [], "sentAt": "yesterday"})
    call("GET", "/v1/events", 200, key=k, params={"type": "track", "limit": 10})
    call.driven |= ing.driven
    call.driven |= drive_console(gw, spec, call, oid)

    documented = {(m, p) for p, item in spec["paths"].items() for m in item if m in METHODS}
    assert documented - call.driven == set(), "operations not driven through Prism"


def test_413_on_every_body_taking_operation_validates_through_prism(make_instance):
    # Prism re-serialises the JSON it forwards, so padding cannot make a body large; a limit
    # of 8 bytes makes every schema-valid body too large instead. The limit applies before
    # the handler, so ids that do not exist are enough.
    gw = make_instance(config="[server]\nmax_body_bytes = 8\n").start()
    prism = Prism(gw.base)
    try:
        call = Driver(gw, prism, spec_json())
        ids = {"orgId": NO_ID, "keyId": NO_ID, "projectId": NO_ID, "endpointId": "ep_" + NO_ID,
               "messageId": "msg_" + NO_ID}
        bodies = {"/v1/orgs": {"name": "Acme"}, "/v1/orgs/{orgId}": {"name": "Acme"},
                  "/v1/orgs/{orgId}/api-keys": {"name": "admin"},
                  "/v1/orgs/{orgId}/kill": {"reason": "drill"},
                  "/v1/kill-switch": {"reason": "drill"}, "/v1/projects": {"name": "Mobile"},
                  "/v1/projects/{projectId}": {"budget": None},
                  "/v1/api-keys": {"name": "ci"}, "/v1/api-keys/{keyId}/kill": {"reason": "x1"},
                  "/v1/api-keys/{keyId}/rotate": {"grace_seconds": 60},
                  "/v1/webhook-endpoints": {"url": "https://h.example/"},
                  "/v1/webhook-endpoints/{endpointId}": {"description": "d"},
                  "/v1/webhook-endpoints/{endpointId}/rotate-secret": {"grace_seconds": 60},
                  "/v1/webhook-endpoints/{endpointId}/test": None,  # takes only {}
                  "/v1/webhook-endpoints/{endpointId}/recover": {"since": "2026-01-01T00:00:00Z"},
                  "/v1/orgs/{orgId}/webhook-endpoints": {"url": "https://h.example/"},
                  "/v1/orgs/{orgId}/webhook-messages": {"type": "a", "payload": {}},
                  "/v1/webhook-messages/{messageId}/resend": {"endpoint_id": None},
                  "/v1/secret-scanning/github": [{"token": "pcl_live_x"}],
                  "/v1/orgs/{orgId}/invitations": {"email": "a@b.example", "role": "viewer"},
                  # On the console listener (its body limit is its own, 1 MiB).
                  **{f"/console/auth/{p}": None for p in ("magic-link", "invitation",
                                                          "logout")},
                  # On the ingest listener: test_ingest.py::test_whole_request_limits.
                  **{f"/v1/{ep}": None for ep in ("batch", "import", "track", "identify",
                                                  "page", "screen", "group", "alias")}}
        for template, item in call.spec["paths"].items():
            for method in ("post", "patch"):
                if method in item:
                    assert "413" in item[method]["responses"], (method, template)
                    if bodies[template] is None:
                        continue
                    r = call(method.upper(), template, 413, key=gw.root_key, path_args=ids,
                             json=bodies[template])
                    assert r.json()["code"] == "PAYLOAD_TOO_LARGE"
    finally:
        prism.close()
