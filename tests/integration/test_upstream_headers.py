"""What a real application behind Portcullis sees of the request headers,
through both upstream clients (http:// on the HTTP/1.1 client, https:// on
libcurl): a stock WSGI server (python3 wsgiref.simple_server) that answers
with the CGI environment it built.

- Identity headers cannot be spoofed with underscores: WSGI turns '-' and
  '_' both into '_', so "X_Portcullis_Org_Id" would merge with the real
  X-Portcullis-Org-Id ("victim,attacker"), as in Puma before CVE-2024-45614.
- X-Forwarded-For is rebuilt like nginx's $proxy_add_x_forwarded_for,
  honouring [server] trusted_proxies.
- A value with a line break never starts a header of its own.
- [upstream] max_response_bytes bounds the body either client holds.
- Portcullis's own cookies (the console's __Host-pcl_session and
  __Host-pcl_login, which a browser sends to every port of the console's
  host) never reach the application; its own cookies do.
"""
import json
import socket
import ssl
import threading
import wsgiref.simple_server

import pytest

from conftest import assert_problem
from test_forward import gateway_key
from test_tls import cert  # noqa: F401 (fixture)


class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


def environ_app(environ, start_response):
    seen = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture(params=["http", "https"])
def wsgi(request, cert):
    srv = wsgiref.simple_server.make_server("127.0.0.1", 0, environ_app,
                                            handler_class=QuietHandler)
    scheme = request.param
    if scheme == "https":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    host = "localhost" if scheme == "https" else "127.0.0.1"
    srv.conf = f"[upstream]\nurl = {scheme}://{host}:{srv.server_address[1]}\n"
    if scheme == "https":
        srv.conf += f"ca_file = {cert[0]}\n"
    yield srv
    srv.shutdown()
    srv.server_close()


def test_the_consoles_cookies_do_not_reach_the_application(make_instance, wsgi):
    gw = make_instance(config=wsgi.conf).start()
    org, k = gateway_key(gw)
    cases = [
        ("a=1; __Host-pcl_session=SECRET; b=2", "a=1; b=2"),
        ("__Host-pcl_login=SECRET;__Host-pcl_session=SECRET", None),
        ("__Host-pcl_sessionx=SECRET; app=1", "app=1"),
        ("app=1", "app=1"),
        ("app=__Host-pcl_x", "app=__Host-pcl_x"),  # a value, not a name
    ]
    for sent, seen in cases:
        r = gw.request("GET", "/whoami", key=k["key"], headers={"Cookie": sent})
        assert r.status_code == 200, r.text
        env = r.json()
        assert env.get("HTTP_COOKIE") == seen, (sent, env.get("HTTP_COOKIE"))
        assert "SECRET" not in json.dumps(env)


def test_underscore_spelled_identity_headers_do_not_reach_the_application(make_instance, wsgi):
    gw = make_instance(config=wsgi.conf).start()
    org, k = gateway_key(gw)
    r = gw.request("GET", "/whoami", key=k["key"], headers={
        "X_Portcullis_Org_Id": "org_victim",
        "X-Portcullis_Key-Id": "key_victim",
        "x_portcullis_key_env": "live",
        "X_Portcullis_Project_Id": "prj_victim",
        "X_Request_Id": "req_victim",
        "X_Forwarded_For": "10.6.6.6",
        "Content_Length": "99",
        "Transfer_Encoding": "chunked",
        "X_Custom_Thing": "kept"})
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["HTTP_X_PORTCULLIS_ORG_ID"] == org
    assert env["HTTP_X_PORTCULLIS_KEY_ID"] == k["id"]
    assert env["HTTP_X_PORTCULLIS_KEY_ENV"] in ("live", "test")
    assert "HTTP_X_PORTCULLIS_PROJECT_ID" not in env
    assert env["HTTP_X_REQUEST_ID"] == r.headers["X-Request-Id"]
    assert env["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    assert "HTTP_CONTENT_LENGTH" not in env and "HTTP_TRANSFER_ENCODING" not in env
    assert "victim" not in json.dumps(env) and "10.6.6.6" not in json.dumps(env)
    # Other underscore names are the application's business.
    assert env["HTTP_X_CUSTOM_THING"] == "kept"


def test_forwarded_for_from_an_untrusted_peer_is_replaced_by_the_peer(make_instance, wsgi):
    gw = make_instance(config=wsgi.conf).start()
    org, k = gateway_key(gw)
    r = gw.request("GET", "/x", key=k["key"], headers={"X-Forwarded-For": "203.0.113.66"})
    assert r.status_code == 200, r.text
    assert r.json()["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    r = gw.request("GET", "/x", key=k["key"])
    assert r.json()["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    # Sent upstream, never logged.
    assert "203.0.113" not in gw.read_log()


def raw_get(inst, head_lines):
    with socket.create_connection(("127.0.0.1", inst.port), timeout=10) as s:
        s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n" + b"".join(l + b"\r\n" for l in head_lines)
                  + b"Connection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.http1_only  # raw repeated fields
def test_forwarded_for_from_a_trusted_proxy_gets_the_peer_appended(make_instance, wsgi):
    gw = make_instance(config=wsgi.conf + "[server]\ntrusted_proxies = 127.0.0.1\n").start()
    org, k = gateway_key(gw)
    auth = b"Authorization: Bearer " + k["key"].encode()
    status, body = raw_get(gw, [auth, b"X-Forwarded-For: 198.51.100.1, 203.0.113.7",
                                b"X-Forwarded-For: 192.0.2.5"])
    assert status == 200, body
    assert json.loads(body)["HTTP_X_FORWARDED_FOR"] == \
        "198.51.100.1, 203.0.113.7, 192.0.2.5, 127.0.0.1"
    status, body = raw_get(gw, [auth])
    assert json.loads(body)["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    assert "203.0.113" not in gw.read_log() and "198.51.100" not in gw.read_log()


@pytest.mark.http1_only  # HTTP/1.1 framing (test_http2_attacks.py: field values over HTTP/2)
@pytest.mark.parametrize("line", [b"X-Note: a\rX-Portcullis-Org-Id: org_victim",
                                  b"X-Note\rX-Portcullis-Org-Id: org_victim"])
def test_a_bare_cr_never_starts_a_header_upstream(make_instance, wsgi, line):
    gw = make_instance(config=wsgi.conf).start()
    org, k = gateway_key(gw)
    auth = b"Authorization: Bearer " + k["key"].encode()
    status, body = raw_get(gw, [auth, line])
    # Refused by the server, or dropped on the way: never a header of its own.
    assert status in (200, 400), body
    if status == 200:
        env = json.loads(body)
        assert "victim" not in json.dumps(env), env
        assert env["HTTP_X_PORTCULLIS_ORG_ID"] == org


def test_a_response_over_max_response_bytes_is_502(make_instance, wsgi):
    gw = make_instance(config=wsgi.conf + "max_response_bytes = 4096\n").start()
    org, k = gateway_key(gw)
    small = gw.request("GET", "/x", key=k["key"])
    assert small.status_code == 200 and len(small.content) < 4096
    # The environment it echoes holds the header: a body over 4096 bytes.
    big = gw.request("GET", "/x", key=k["key"], headers={"X-Pad": "p" * 5000})
    assert_problem(big, 502, "UPSTREAM_UNAVAILABLE")
    assert any(e.get("event") == "upstream_error" and "large" in e.get("error", "")
               for e in gw.log_events()), gw.read_log()
