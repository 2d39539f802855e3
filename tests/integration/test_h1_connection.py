"""HTTP/1.1 connections on the own connection layer (src/http/h1conn.c),
with python3-h11 as the client oracle: keep-alive, pipelining (answers in
order, also when one request waits for a pool job), HEAD, Expect:
100-continue, HTTP/1.0, the 408 of a head that never completes, and a
refused request's body that is dropped, not read as a request.
"""
import json
import socket
import time

import h11
import pytest

from test_http import RID_RE
from test_smuggling import h11_responses, read_all


def connect(inst, timeout=5):
    s = socket.create_connection(("127.0.0.1", inst.port), timeout=timeout)
    s.settimeout(timeout)
    return s


def h11_exchange(sock, conn, method, target, headers=(), body=b""):
    """One request through h11 on sock; returns (response, body)."""
    hdrs = [("Host", "t"), *headers]
    if body:
        hdrs.append(("Content-Length", str(len(body))))
    sock.sendall(conn.send(h11.Request(method=method, target=target, headers=hdrs)))
    if body:
        sock.sendall(conn.send(h11.Data(data=body)))
    sock.sendall(conn.send(h11.EndOfMessage()))
    return read_h11_response(sock, conn)


def read_h11_response(sock, conn):
    resp, data = None, b""
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
            continue
        if isinstance(ev, h11.Response):
            resp = ev
        elif isinstance(ev, h11.Data):
            data += ev.data
        elif isinstance(ev, h11.EndOfMessage):
            return resp, data
        elif isinstance(ev, h11.ConnectionClosed):
            raise AssertionError("closed before the response ended")


def header(resp, name):
    for k, v in resp.headers:
        if k.decode().lower() == name:
            return v.decode()
    return None


def test_keep_alive_serves_many_requests_on_one_connection(make_instance):
    inst = make_instance().start()
    with connect(inst) as s:
        conn = h11.Connection(h11.CLIENT)
        ids = set()
        for i in range(20):
            resp, body = h11_exchange(s, conn, "GET", "/healthz" if i % 2 else "/nowhere")
            assert resp.status_code == (200 if i % 2 else 404)
            assert header(resp, "connection") is None  # kept alive
            ids.add(header(resp, "x-request-id"))
            assert conn.our_state is h11.DONE and conn.their_state is h11.DONE
            conn.start_next_cycle()
        assert len(ids) == 20 and all(RID_RE.fullmatch(i) for i in ids)


def test_pipelined_requests_are_answered_in_order(make_instance):
    """Ten requests in one write, one of them waiting for a control-pool job
    (GET /v1/orgs with the root key) and one HEAD: every answer comes back,
    in the order asked, framed so h11 reads each."""
    inst = make_instance().start()
    assert inst.root("GET", "/v1/orgs").status_code == 200  # the root key is verified now
    reqs = [("GET", "/healthz"), ("GET", "/v1/orgs"), ("HEAD", "/healthz"),
            ("GET", "/nowhere"), ("GET", "/v1/orgs"), ("DELETE", "/healthz"),
            ("GET", "/healthz"), ("HEAD", "/nowhere"), ("GET", "/metrics"), ("GET", "/healthz")]
    raw = b""
    for i, (method, path) in enumerate(reqs):
        extra = f"Authorization: Bearer {inst.root_key}\r\n" if path == "/v1/orgs" else ""
        close = "Connection: close\r\n" if i == len(reqs) - 1 else ""
        raw += f"{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}{close}\r\n".encode()
    with connect(inst) as s:
        s.sendall(raw)
        data = read_all(s)
    got = h11_responses(data, [m for m, _ in reqs])
    assert [g[0] for g in got] == [200, 200, 200, 404, 200, 405, 200, 404, 200, 200]
    assert "data" in json.loads(got[1][2])
    # HEAD: the GET's Content-Length, no body.
    assert got[2][2] == b"" and int(got[2][1]["content-length"]) == len(got[0][2])
    assert got[7][2] == b"" and int(got[7][1]["content-length"]) > 0
    assert len({g[1]["x-request-id"] for g in got}) == len(reqs)


def test_a_refused_requests_body_is_dropped_not_read_as_a_request(make_instance):
    """A 404 answered at its head still has its body read off the wire, so
    the bytes of that body (which look like a request) never run, and the
    next real request on the connection is answered."""
    inst = make_instance().start()
    inner = b"DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    raw = (b"POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(inner) +
           inner + b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    with connect(inst) as s:
        s.sendall(raw)
        data = read_all(s)
    got = h11_responses(data, ["POST", "GET"])
    assert [g[0] for g in got] == [404, 200]


def test_expect_100_continue(make_instance):
    inst = make_instance().start()
    body = json.dumps({"name": "Continue Inc"}).encode()
    with connect(inst) as s:
        s.sendall(b"POST /v1/orgs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                  inst.root_key.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body))
        # The interim answer comes before any byte of the body is sent.
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="POST", target="/v1/orgs",
                              headers=[("Host", "t"), ("Content-Length", str(len(body))),
                                       ("Expect", "100-continue")]))
        conn.receive_data(s.recv(65536))
        ev = conn.next_event()
        assert isinstance(ev, h11.InformationalResponse) and ev.status_code == 100, ev
        s.sendall(body)
        resp, data = read_h11_response(s, conn)
    assert resp.status_code == 201, data
    assert json.loads(data)["name"] == "Continue Inc"


def test_expect_100_continue_refused_at_the_head_gets_no_100_and_closes(make_instance):
    inst = make_instance(config="[server]\nmax_body_bytes = 1024").start()
    with connect(inst) as s:
        s.sendall(b"POST /v1/orgs HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        data = read_all(s)
    assert data.startswith(b"HTTP/1.1 413 "), data[:80]
    assert b"Connection: close\r\n" in data


def test_http_1_0_closes_unless_kept_alive(make_instance):
    inst = make_instance().start()
    with connect(inst) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        data = read_all(s)
    assert data.startswith(b"HTTP/1.1 200 ") and b"Connection: close\r\n" in data
    with connect(inst) as s:
        for _ in range(3):
            s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"Connection: keep-alive\r\n" in head


def test_a_head_that_never_completes_gets_408_then_close(make_instance):
    inst = make_instance(config="[server]\nheader_timeout_s = 1").start()
    with connect(inst) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # no empty line
        t0 = time.monotonic()
        data = read_all(s)
        took = time.monotonic() - t0
    assert 0.7 <= took <= 3.0, took
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), data[:100]
    assert b"Connection: close" in head
    problem = json.loads(body)
    assert problem["code"] == "REQUEST_TIMEOUT" and problem["status"] == 408


@pytest.mark.parametrize("n", [1, 4096])
def test_a_head_arriving_in_pieces_is_read_whole(make_instance, n):
    """The head split at every n bytes (one byte at a time, then larger than
    the first read buffer) parses the same."""
    inst = make_instance().start()
    raw = (b"GET /healthz?x=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\nX-Pad: " +
           b"p" * 3000 + b"\r\nConnection: close\r\n\r\n")
    with connect(inst) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(raw), n):
            s.sendall(raw[i:i + n])
        data = read_all(s)
    assert data.startswith(b"HTTP/1.1 200 "), data[:100]
