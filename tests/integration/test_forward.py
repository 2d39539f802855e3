"""Forwarding, black-box (docs/contract.md "Forwarding"): what the upstream
receives (method, path, query, end-to-end headers, body, identity headers,
X-Request-Id; never Authorization, hop-by-hop or forged X-Portcullis-*
headers), what comes back (status, headers, body), [route] selection and
timeouts, and the 413 / 502 / 504 answers.

The Upstream helper at the top (a Python HTTP server on a loopback port,
recording what it receives) is shared with test_ratelimit.py,
test_idempotency.py and test_request_log.py.
"""
import hashlib
import http.server
import json
import os
import socket
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import assert_problem, free_port, flip_last
from test_keys import admin, create_key, new_org, org_key, secret_of


# ---- the upstream ----

def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Upstream:
    """A loopback HTTP/1.1 server that records every request it receives.

    Paths (any method):
      /slow?ms=N       answer after N ms
      /big?n=N         answer N pseudo-random bytes (X-Body-Sha256 names them)
      /echo            answer the request body with its Content-Type
      /drop            close the connection without answering
      /status/NNN      answer NNN with custom headers and a JSON body
      /hop             answer with hop-by-hop headers mixed in
      anything else    200 JSON describing the request, X-Upstream-Custom
    """

    def __init__(self, name="up"):
        self.name = name
        self.received = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                u = urllib.parse.urlsplit(self.path)
                rec = {"method": self.command, "target": self.path, "path": u.path,
                       "query": u.query, "headers": list(self.headers.items()), "body": body}
                with owner.lock:
                    owner.received.append(rec)
                    owner.active += 1
                    owner.max_active = max(owner.max_active, owner.active)
                try:
                    self.answer(u, rec)
                finally:
                    with owner.lock:
                        owner.active -= 1

            def send(self, status, body, ctype="application/json", headers=()):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def answer(self, u, rec):
                q = dict(urllib.parse.parse_qsl(u.query))
                if u.path.endswith("/slow"):
                    time.sleep(int(q.get("ms", "1000")) / 1000)
                if u.path.endswith("/drop"):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if u.path.endswith("/big"):
                    data = big_body(int(q["n"]))
                    self.send(200, data, "application/octet-stream",
                              [("X-Body-Sha256", sha256(data))])
                    return
                if u.path.endswith("/echo"):
                    self.send(200, rec["body"],
                              self.headers.get("Content-Type", "application/octet-stream"),
                              [("X-Body-Sha256", sha256(rec["body"]))])
                    return
                if "/status/" in u.path:
                    status = int(u.path.rsplit("/", 1)[1])
                    self.send(status, json.dumps({"upstream": owner.name, "status": status})
                              .encode(), "application/vnd.test+json",
                              [("X-Upstream-Custom", "hello, world"),
                               ("Cache-Control", "no-store"), ("ETag", '"v1"'),
                               ("Set-Cookie", "a=1; Path=/")])
                    return
                if u.path.endswith("/hop"):
                    self.send(200, b"{}", headers=[
                        ("Connection", "keep-alive, X-Upstream-Hop"),
                        ("Keep-Alive", "timeout=5"), ("X-Upstream-Hop", "private"),
                        ("Proxy-Authenticate", "Basic"), ("X-Upstream-Custom", "kept")])
                    return
                out = {"upstream": owner.name, "method": self.command, "target": self.path,
                       "body_sha256": sha256(rec["body"])}
                self.send(200, json.dumps(out).encode(),
                          headers=[("X-Upstream-Custom", owner.name)])

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a peer closing a kept-alive connection is not news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, path=None):
        with self.lock:
            return sum(1 for r in self.received if path is None or r["path"] == path)

    def last(self):
        with self.lock:
            return self.received[-1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def big_body(n, seed=b"portcullis"):
    out = bytearray()
    block = hashlib.sha256(seed).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def header_values(rec, name):
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]


def upstream_conf(up, timeout_ms=3000, extra=""):
    return f"[upstream]\nurl = {up.url}\ntimeout_ms = {timeout_ms}\n{extra}"


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.close()


def gateway_key(inst, org_name="acme", **fields):
    """A new organisation and a gateway-scoped key for it: (org_id, key object)."""
    org = new_org(inst, org_name)
    return org, org_key(inst, org, ["gateway"], **fields)


# ---- what the upstream receives ----

@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_method_path_query_and_end_to_end_headers_reach_the_upstream(make_instance, upstream,
                                                                     method):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    target = "/orders/a%20b/%C3%A9?x=1&y=%2Fz&y=2&empty="
    body = b'{"amount": 42}' if method in ("POST", "PUT", "PATCH") else b""
    headers = {"X-Custom": "value, with comma", "Accept": "application/json",
               "User-Agent": "pcl-test/1.0"}
    if body:
        headers["Content-Type"] = "application/json"
    r = gw.request(method, target, key=k["key"], headers=headers, data=body or None)
    assert r.status_code == 200, r.text
    assert r.json()["method"] == method
    rec = upstream.last()
    assert upstream.count() == 1
    assert rec["method"] == method
    assert rec["target"] == target
    assert rec["body"] == body
    assert header_values(rec, "X-Custom") == ["value, with comma"]
    assert header_values(rec, "Accept") == ["application/json"]
    assert header_values(rec, "User-Agent") == ["pcl-test/1.0"]
    assert header_values(rec, "Host") == [f"127.0.0.1:{upstream.port}"]
    if body:
        assert header_values(rec, "Content-Type") == ["application/json"]
        assert header_values(rec, "Content-Length") == [str(len(body))]
    else:
        # Nothing the client did not send: no invented Content-Type or Expect.
        assert header_values(rec, "Content-Type") == []
    assert header_values(rec, "Expect") == []
    assert r.headers["X-Upstream-Custom"] == "up"


def test_one_mebibyte_body_goes_both_ways_byte_exact(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    data = os.urandom(1 << 20)
    r = gw.request("POST", "/files/echo", key=k["key"], data=data,
                   headers={"Content-Type": "application/x-binary"})
    assert r.status_code == 200, r.text[:200]
    rec = upstream.last()
    assert len(rec["body"]) == 1 << 20 and sha256(rec["body"]) == sha256(data)
    assert len(r.content) == 1 << 20 and sha256(r.content) == sha256(data)
    assert r.headers["Content-Type"] == "application/x-binary"
    assert r.headers["X-Body-Sha256"] == sha256(data)
    # A 1 MiB answer to a GET too.
    r = gw.request("GET", "/files/big?n=1048576", key=k["key"])
    assert r.status_code == 200
    assert len(r.content) == 1 << 20
    assert sha256(r.content) == r.headers["X-Body-Sha256"] == sha256(big_body(1 << 20))


@pytest.mark.parametrize("status", [201, 404, 418, 500])
def test_upstream_status_headers_and_body_come_back_unchanged(make_instance, upstream, status):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    r = gw.request("POST", f"/x/status/{status}", key=k["key"], json={})
    assert r.status_code == status
    # The upstream's own answer, not a Portcullis problem.
    assert r.headers["Content-Type"] == "application/vnd.test+json"
    assert r.json() == {"upstream": "up", "status": status}
    assert r.headers["X-Upstream-Custom"] == "hello, world"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["ETag"] == '"v1"'
    assert r.headers["Set-Cookie"] == "a=1; Path=/"
    assert r.headers["X-Request-Id"].startswith("req_")


@pytest.mark.http1_only  # HTTP/2 cannot carry them (test_http2_attacks.py: refused there)
def test_hop_by_hop_request_headers_are_not_forwarded(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    r = gw.request("GET", "/hop-test", key=k["key"], headers={
        "Connection": "keep-alive, X-Client-Hop",
        "X-Client-Hop": "must not pass",
        "Keep-Alive": "timeout=30",
        "TE": "trailers",
        "Upgrade": "example/1",
        "Proxy-Authorization": "Basic dXNlcjpwYXNz",
        "Proxy-Connection": "keep-alive",
        "X-End-To-End": "passes"})
    assert r.status_code == 200, r.text
    rec = upstream.last()
    names = {n.lower() for n, _ in rec["headers"]}
    for hop in ("x-client-hop", "keep-alive", "te", "upgrade", "proxy-authorization",
                "proxy-connection"):
        assert hop not in names, (hop, rec["headers"])
    # A Connection header, if any, is the gateway's own, never the client's list.
    assert all("x-client-hop" not in v.lower() for v in header_values(rec, "Connection"))
    assert header_values(rec, "X-End-To-End") == ["passes"]


def test_hop_by_hop_response_headers_are_not_returned(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    r = gw.request("GET", "/x/hop", key=k["key"])
    assert r.status_code == 200
    assert r.headers["X-Upstream-Custom"] == "kept"
    for hop in ("X-Upstream-Hop", "Keep-Alive", "Proxy-Authenticate"):
        assert hop not in r.headers, (hop, dict(r.headers))


def test_credentials_and_forged_identity_never_reach_the_upstream(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, adm = admin(gw)
    pid = gw.request("POST", "/v1/projects", key=adm["key"], json={"name": "web"}).json()["id"]
    k = create_key(gw, adm["key"], project_id=pid, env="test", scopes=["gateway"])
    r = gw.request("POST", "/pay", key=k["key"], json={"a": 1}, headers={
        "X-Portcullis-Org-Id": "org_forged",
        "X-Portcullis-Key-Id": "forged",
        "X-Portcullis-Project-Id": "forged",
        "X-Portcullis-Key-Env": "live",
        "x-portcullis-admin": "true",
        "X-Request-Id": "req_forged"})
    assert r.status_code == 200, r.text
    rec = upstream.last()
    raw = json.dumps(rec["headers"])
    assert header_values(rec, "Authorization") == []
    assert secret_of(k["key"]) not in raw and "Bearer" not in raw
    assert "forged" not in raw
    assert header_values(rec, "X-Portcullis-Admin") == []
    assert header_values(rec, "X-Portcullis-Org-Id") == [org]
    assert header_values(rec, "X-Portcullis-Project-Id") == [pid]
    assert header_values(rec, "X-Portcullis-Key-Id") == [k["id"]]
    assert header_values(rec, "X-Portcullis-Key-Env") == ["test"]
    assert header_values(rec, "X-Request-Id") == [r.headers["X-Request-Id"]]
    # They are for the upstream: the client's response does not echo them.
    assert not [h for h in r.headers if h.lower().startswith("x-portcullis-")], r.headers
    # A key without a project: no Project-Id header at all.
    org2, k2 = gateway_key(gw, "beta")
    r = gw.request("GET", "/pay", key=k2["key"], headers={"X-Portcullis-Project-Id": "forged"})
    assert r.status_code == 200
    rec = upstream.last()
    assert header_values(rec, "X-Portcullis-Project-Id") == []
    assert header_values(rec, "X-Portcullis-Org-Id") == [org2]
    assert header_values(rec, "X-Request-Id") == [r.headers["X-Request-Id"]]


def test_requests_without_a_valid_key_never_reach_the_upstream(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    assert_problem(gw.request("GET", "/x"), 401, "UNAUTHENTICATED")
    assert_problem(gw.request("GET", "/x", key=flip_last(k["key"])), 401, "UNAUTHENTICATED")
    # Operator keys manage Portcullis; they do not call the upstream.
    assert_problem(gw.root("GET", "/x"), 403, "FORBIDDEN")
    # A key without the gateway scope.
    other = org_key(gw, org, ["keys:read"])
    assert_problem(gw.request("GET", "/x", key=other["key"]), 403, "FORBIDDEN")
    assert upstream.count() == 0


def raw_request(inst, target, key):
    """Send a request line as is (requests would normalise it); returns the status."""
    with socket.create_connection(("127.0.0.1", inst.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.mark.http1_only  # raw request lines
def test_request_target_that_is_not_a_path_cannot_pick_another_host(make_instance, upstream):
    other = Upstream("other")
    try:
        gw = make_instance(config=upstream_conf(upstream)).start()
        org, k = gateway_key(gw)
        # Appended to the upstream URL, "@127.0.0.1:PORT/x" would name another host.
        for target in (f"@127.0.0.1:{other.port}/x", f"http://127.0.0.1:{other.port}/x",
                       f":{other.port}/x", "x/y", "*"):
            assert raw_request(gw, target, k["key"]) == 400, target
        assert raw_request(gw, "/x", k["key"]) == 200
        assert other.count() == 0 and upstream.count() == 1
    finally:
        other.close()


# ---- routes ----

def test_longest_route_prefix_wins_and_the_rest_goes_to_the_default(make_instance, upstream):
    a, b = Upstream("a"), Upstream("b")
    try:
        gw = make_instance(config=upstream_conf(upstream) + (
            f"[route api]\nprefix = /api/\nupstream = {a.url}\n"
            f"[route special]\nprefix = /api/special/\nupstream = {b.url}/base\n"
            f"[route short]\nprefix = /a\nupstream = {a.url}\n")).start()
        org, k = gateway_key(gw)

        def who(path):
            r = gw.request("GET", path, key=k["key"])
            assert r.status_code == 200, (path, r.text)
            return r.json()["upstream"], r.json()["target"]

        assert who("/api/orders?q=1") == ("a", "/api/orders?q=1")
        assert who("/api/special/x") == ("b", "/base/api/special/x")
        assert who("/api/specialist") == ("a", "/api/specialist")
        assert who("/other") == ("up", "/other")
        assert (a.count(), b.count(), upstream.count()) == (2, 1, 1)
    finally:
        a.close()
        b.close()


def test_route_timeout_overrides_the_default_timeout(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream, timeout_ms=5000) + (
        f"[route quick]\nprefix = /quick/\nupstream = {upstream.url}\ntimeout_ms = 300\n")).start()
    org, k = gateway_key(gw)
    t = time.monotonic()
    assert_problem(gw.request("GET", "/quick/slow?ms=1500", key=k["key"]), 504,
                   "UPSTREAM_TIMEOUT")
    assert time.monotonic() - t < 1.2
    # The default route waits longer than the quick route's limit.
    assert gw.request("GET", "/other/slow?ms=600", key=k["key"]).status_code == 200


# ---- failures ----

def upstream_errors(gw):
    return [e for e in gw.log_events() if e.get("event") == "upstream_error"]


def test_refused_connection_is_502_upstream_unavailable_and_logged(make_instance):
    dead = f"http://127.0.0.1:{free_port()}"
    gw = make_instance(config=f"[upstream]\nurl = {dead}\n").start()
    org, k = gateway_key(gw)
    r = gw.request("POST", "/pay?card=QUERYMARKER", key=k["key"], data=b"BODYMARKER")
    body = assert_problem(r, 502, "UPSTREAM_UNAVAILABLE")
    assert "127.0.0.1" not in json.dumps(body)  # the upstream's address is not the client's business
    errs = [e for e in upstream_errors(gw) if e.get("request_id") == r.headers["X-Request-Id"]]
    assert len(errs) == 1, gw.read_log()[-2000:]
    assert errs[0]["outcome"] == "unavailable"
    log = gw.read_log()
    for secret in (secret_of(k["key"]), "QUERYMARKER", "BODYMARKER"):
        assert secret not in log


def test_dropped_connection_is_502_upstream_unavailable(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    assert_problem(gw.request("GET", "/x/drop", key=k["key"]), 502, "UPSTREAM_UNAVAILABLE")
    assert upstream.count("/x/drop") == 1
    assert len(upstream_errors(gw)) == 1


def test_slow_upstream_past_timeout_is_504_upstream_timeout(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream, timeout_ms=300)).start()
    org, k = gateway_key(gw)
    t = time.monotonic()
    r = gw.request("GET", "/x/slow?ms=2000", key=k["key"])
    assert time.monotonic() - t < 1.5
    assert_problem(r, 504, "UPSTREAM_TIMEOUT")
    errs = upstream_errors(gw)
    assert [e["outcome"] for e in errs] == ["timeout"]
    assert errs[0]["request_id"] == r.headers["X-Request-Id"]
    # In time: 200.
    assert gw.request("GET", "/x/slow?ms=50", key=k["key"]).status_code == 200


def test_body_over_max_body_bytes_is_413_before_the_upstream_sees_it(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream) +
                       "[server]\nmax_body_bytes = 4096\n").start()
    org, k = gateway_key(gw)
    assert gw.request("POST", "/up", key=k["key"], data=b"a" * 4096).status_code == 200
    assert upstream.count() == 1
    r = gw.request("POST", "/up", key=k["key"], data=b"a" * 4097)
    body = assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert body["details"]["limit"] == 4096

    def chunks():  # no Content-Length: the limit holds for chunked bodies too
        for _ in range(8):
            yield b"b" * 1024

    r = gw.request("POST", "/up", key=k["key"], data=chunks())
    assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert upstream.count() == 1
