"""Regression tests for defects found in review (one scenario each)."""
import http.server
import threading
import time

from conftest import assert_problem
from test_keys import admin, create_key, org_key, verify


def test_rotate_cannot_mint_scopes_the_caller_lacks(gw):
    # A keys:write key must not obtain a fresh secret for a key with logs:read.
    org, adm = admin(gw)
    writer = org_key(gw, org, ["keys:write"], name="writer")["key"]
    reader = org_key(gw, org, ["logs:read"], name="reader")
    r = gw.request("POST", f"/v1/api-keys/{reader['id']}/rotate", key=writer, json={})
    assert_problem(r, 403, "FORBIDDEN")
    # The holder of every scope can rotate it.
    r = gw.request("POST", f"/v1/api-keys/{reader['id']}/rotate", key=adm["key"], json={})
    assert r.status_code == 200, r.text


def test_refused_requests_are_logged_with_their_key(gw):
    # A killed key's 503s belong to its organisation's request log.
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert verify(gw, k["key"]).status_code == 200
    assert gw.request("POST", f"/v1/api-keys/{k['id']}/kill", key=adm["key"], json={}).ok
    r = verify(gw, k["key"])
    assert_problem(r, 503, "KILL_SWITCH")
    rid = r.headers["X-Request-Id"]
    deadline = time.time() + 5
    rows = []
    while time.time() < deadline:
        rows = gw.request("GET", f"/v1/requests?key_id={k['id']}&status=503",
                          key=adm["key"]).json()["data"]
        if any(row["request_id"] == rid for row in rows):
            break
        time.sleep(0.1)
    row = next(row for row in rows if row["request_id"] == rid)
    assert row["org_id"] == org and row["key_id"] == k["id"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    paths = []

    def do_GET(self):
        _Recorder.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


def test_dot_segments_cannot_escape_a_route(make_instance):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        up = f"http://127.0.0.1:{srv.server_address[1]}"
        inst = make_instance(config=f"[route billing]\nprefix = /billing/\nupstream = {up}/BILLING\n"
                             f"[upstream]\nurl = {up}/DEFAULT\n").start()
        org, adm = admin(inst)
        key = adm["key"]
        import socket
        for raw in ["/billing/../../admin", "/billing/%2e%2e/%2e%2e/admin", "/billing/./x"]:
            # requests would normalise the path: send it raw.
            with socket.create_connection(("127.0.0.1", inst.port)) as s:
                s.sendall(f"GET {raw} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                          "Connection: close\r\n\r\n".encode())
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            assert data.startswith(b"HTTP/1.1 400"), (raw, data[:200])
        assert not any("admin" in p for p in _Recorder.paths)
        r = inst.request("GET", "/billing/invoices", key=key)
        assert r.status_code == 200 and _Recorder.paths[-1] == "/BILLING/billing/invoices"
    finally:
        srv.shutdown()


class _MethodRecorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def _any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        _MethodRecorder.seen.append((self.command, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any

    def log_message(self, *a):
        pass


def test_recycled_upstream_handles_forget_the_previous_method(make_instance):
    # Handles are reused without a reset: each transfer must set its own method and body.
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MethodRecorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        inst = make_instance(config=f"[upstream]\nurl = http://127.0.0.1:{srv.server_address[1]}\n"
                             "[server]\nworkers = 1\n").start()
        org, adm = admin(inst)
        plan = [("POST", b"first"), ("HEAD", b""), ("GET", b""), ("DELETE", b""),
                ("PUT", b"x" * 10), ("GET", b""), ("PATCH", b"p"), ("HEAD", b""), ("GET", b"")]
        _MethodRecorder.seen.clear()
        for method, body in plan:
            r = inst.request(method, "/m", key=adm["key"], data=body or None)
            assert r.status_code == 200, (method, r.text)
        assert _MethodRecorder.seen == plan
    finally:
        srv.shutdown()
