"""https:// upstreams go through libcurl (src/http/upstream_curl.c), with the
same header rules as the HTTP/1.1 client: a private CA named by
[upstream] ca_file is trusted, and an upstream certificate nobody vouches
for is a 502, never a silently unverified connection.
"""
import http.server
import json
import ssl
import threading

import pytest

from conftest import assert_problem
from test_forward import gateway_key
from test_tls import cert  # noqa: F401 (a fixture: a self-signed certificate for localhost)


@pytest.fixture
def https_upstream(cert):
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(dict(self.headers.items()))
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Over-Tls", "yes")
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.url = f"https://localhost:{srv.server_address[1]}"
    srv.seen = seen
    yield srv
    srv.shutdown()
    srv.server_close()


def test_https_upstream_with_a_private_ca(make_instance, https_upstream, cert):
    gw = make_instance(config=f"[upstream]\nurl = {https_upstream.url}/api\n"
                       f"ca_file = {cert[0]}\n").start()
    org, k = gateway_key(gw)
    r = gw.request("GET", "/items?x=1", key=k["key"])
    assert r.status_code == 200, r.text
    assert r.json() == {"path": "/api/items?x=1"}
    assert r.headers["X-Over-Tls"] == "yes"
    got = {name.lower(): v for name, v in https_upstream.seen[-1].items()}
    assert "authorization" not in got
    assert got["x-portcullis-org-id"] == org
    assert got["x-request-id"] == r.headers["X-Request-Id"]


def test_https_upstream_with_an_untrusted_certificate_is_502(make_instance, https_upstream):
    gw = make_instance(config=f"[upstream]\nurl = {https_upstream.url}\n").start()
    org, k = gateway_key(gw)
    assert_problem(gw.request("GET", "/items", key=k["key"]), 502, "UPSTREAM_UNAVAILABLE")
    assert https_upstream.seen == []
