"""The HTTP/1.1 upstream client, black-box (src/http/upstream_h1.c): framings
(Content-Length, chunked with extensions and trailers, read-until-close,
interim 1xx responses, bodiless statuses and HEAD), connection reuse and
what happens when the upstream closes a kept-alive connection, malformed
responses answered 502, and upstream names resolved off the request path.

ScriptedUpstream is a raw-socket server: each accepted connection reads
requests (head plus Content-Length body) and answers each with the next
item of a script, so a test says byte for byte what the gateway receives.
"""
import signal
import socket
import threading
import time

import pytest

from conftest import assert_problem
from test_forward import gateway_key


def ok(body=b"hello", extra=b""):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
            str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


class ScriptedUpstream:
    """Answers request n (over all connections) with script[n] (the last item repeats).

    An item is bytes (sent at once), a list of bytes (sent piece by piece with
    a short pause), "drop" (close without answering), or a callable
    (conn, request_bytes, index_on_this_connection) that does what it likes.  After an item whose
    answer says Connection: close, or `close_after` is set, the connection
    is closed.
    """

    def __init__(self, script, close_after=False):
        self.script = list(script)
        self.close_after = close_after
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopping = False
        self.threads = []
        t = threading.Thread(target=self.accept_loop, daemon=True)
        t.start()
        self.threads.append(t)

    def accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self.serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def read_request(conn, buf):
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def serve(self, conn):
        buf = b""
        on_this = 0
        conn.settimeout(10)
        try:
            while True:
                req, buf = self.read_request(conn, buf)
                if req is None:
                    return
                with self.lock:
                    self.requests.append(req)
                    item = self.script[min(len(self.requests), len(self.script)) - 1]
                if item == "drop":
                    return
                on_this += 1
                if callable(item):
                    if item(conn, req, on_this - 1) == "close":
                        return
                    continue
                pieces = item if isinstance(item, list) else [item]
                for p in pieces:
                    conn.sendall(p)
                    if len(pieces) > 1:
                        time.sleep(0.002)
                joined = b"".join(pieces).lower()
                if self.close_after or b"connection: close" in joined:
                    return
        except OSError:
            return
        finally:
            conn.close()

    def count(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture
def scripted():
    made = []

    def make(script, **kw):
        up = ScriptedUpstream(script, **kw)
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()


def metric(gw, name):
    """The value of an unlabelled counter in /metrics."""
    for line in gw.request("GET", "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def gateway_for(make_instance, up_url, timeout_ms=3000):
    """A gateway with one worker loop (so connection counts are exact) and a key."""
    gw = make_instance(config=f"[server]\nworkers = 1\n[upstream]\nurl = {up_url}\n"
                       f"timeout_ms = {timeout_ms}\n").start()
    org, k = gateway_key(gw)
    return gw, k["key"]


# ---- framings ----

CHUNKED = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
           b"X-Up: 1\r\n\r\n"
           b"5;name=value\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n")


def test_chunked_response_is_decoded_and_its_trailers_dropped(make_instance, scripted):
    up = scripted([CHUNKED])
    gw, key = gateway_for(make_instance, up.url)
    r = gw.request("GET", "/c", key=key)
    assert r.status_code == 200
    assert r.content == b"hello" + b"z" * 26
    assert r.headers["X-Up"] == "1"
    assert r.headers["Content-Length"] == "31"  # re-framed for the client
    assert "X-Trailer" not in r.headers


def test_chunked_response_arriving_byte_by_byte(make_instance, scripted):
    pieces = [CHUNKED[i:i + 1] for i in range(len(CHUNKED))]
    up = scripted([pieces])
    gw, key = gateway_for(make_instance, up.url)
    r = gw.request("GET", "/c", key=key)
    assert r.status_code == 200
    assert r.content == b"hello" + b"z" * 26


def test_body_delimited_by_close_is_read_to_the_end(make_instance, scripted):
    body = b"x" * 100000
    up = scripted([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body], close_after=True)
    gw, key = gateway_for(make_instance, up.url)
    for _ in range(2):  # the connection is not reused: the second needs a new one
        r = gw.request("GET", "/c", key=key)
        assert r.status_code == 200
        assert r.content == body
    assert up.connections == 2


def test_interim_responses_are_skipped(make_instance, scripted):
    up = scripted([b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
                   b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final", b"X-Final: yes\r\n")])
    gw, key = gateway_for(make_instance, up.url)
    r = gw.request("GET", "/c", key=key)
    assert r.status_code == 200
    assert r.content == b"final"
    assert r.headers["X-Final"] == "yes"
    assert "Link" not in r.headers


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_end_without_a_body(make_instance, scripted, status):
    # A Content-Length on them describes nothing; the connection stays usable.
    up = scripted([f"HTTP/1.1 {status} X\r\nETag: \"e\"\r\nContent-Length: 7\r\n\r\n".encode(),
                   ok(b"next")])
    gw, key = gateway_for(make_instance, up.url)
    r = gw.request("GET", "/c", key=key)
    assert r.status_code == status
    assert r.content == b""
    assert r.headers["ETag"] == '"e"'
    r = gw.request("GET", "/c", key=key)
    assert r.status_code == 200 and r.content == b"next"
    assert up.connections == 1


def test_head_response_has_no_body_even_with_content_length(make_instance, scripted):
    up = scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-H: 1\r\n\r\n", ok(b"after")])
    gw, key = gateway_for(make_instance, up.url)
    r = gw.request("HEAD", "/c", key=key)
    assert r.status_code == 200
    assert r.headers["X-H"] == "1"
    assert up.requests[0].startswith(b"HEAD /c HTTP/1.1\r\n")
    r = gw.request("GET", "/c", key=key)
    assert r.content == b"after"
    assert up.connections == 1


# ---- connection reuse ----

def test_sequential_requests_reuse_one_upstream_connection(make_instance, scripted):
    up = scripted([ok(b"same")])
    gw, key = gateway_for(make_instance, up.url)
    for _ in range(20):
        r = gw.request("GET", "/c", key=key)
        assert r.status_code == 200 and r.content == b"same"
    assert up.count() == 20
    assert up.connections == 1
    assert metric(gw, "portcullis_upstream_connections_opened_total") == 1
    assert metric(gw, "portcullis_upstream_connections_reused_total") == 19


def test_connection_close_from_the_upstream_is_honoured(make_instance, scripted):
    up = scripted([ok(b"bye", b"Connection: close\r\n")])
    gw, key = gateway_for(make_instance, up.url)
    for _ in range(3):
        assert gw.request("GET", "/c", key=key).content == b"bye"
    assert up.connections == 3


def test_idle_connection_closed_by_the_upstream_is_dropped(make_instance, scripted):
    # The upstream closes every connection right after answering, without saying so.
    up = scripted([ok(b"one")], close_after=True)
    gw, key = gateway_for(make_instance, up.url)
    for _ in range(3):
        r = gw.request("GET", "/c", key=key)
        assert r.status_code == 200 and r.content == b"one"
        time.sleep(0.05)
    assert up.count() == 3
    # Each closed connection was noticed when its FIN came, not by failing a request on it.
    assert metric(gw, "portcullis_upstream_retries_total") == 0
    assert metric(gw, "portcullis_upstream_connections_reused_total") == 0
    assert metric(gw, "portcullis_upstream_connections_opened_total") == 3


def drop_second_on_same_connection():
    """Answer the first request of a connection; close on the second without answering,
    as an upstream whose keep-alive timer fired at that moment does."""
    def item(conn, req, n):
        if n == 0:
            conn.sendall(ok(b"first"))
            return None
        return "close"

    return item


def test_get_on_a_connection_the_upstream_just_closed_is_retried_once(make_instance, scripted):
    up = scripted([drop_second_on_same_connection()])
    gw, key = gateway_for(make_instance, up.url)
    # Every request after the first meets a connection the upstream closes on it.
    results = [gw.request("GET", "/c", key=key) for _ in range(4)]
    assert all(r.status_code == 200 for r in results), [r.status_code for r in results]
    assert all(r.content == b"first" for r in results)
    # Requests 2 to 4 were each dropped once and retried on a new connection.
    assert up.count() == 7
    assert up.connections == 4
    assert metric(gw, "portcullis_upstream_retries_total") == 3


def test_post_on_a_connection_the_upstream_just_closed_is_not_retried(make_instance, scripted):
    up = scripted([drop_second_on_same_connection()])
    gw, key = gateway_for(make_instance, up.url)
    statuses = []
    for _ in range(4):
        r = gw.request("POST", "/c", key=key, data=b"{}", headers={"Content-Type": "application/json"})
        statuses.append(r.status_code)
        if r.status_code == 502:
            assert_problem(r, 502, "UPSTREAM_UNAVAILABLE")
    # Each POST reached the upstream exactly once: a 502 where its connection was dropped.
    assert up.count() == 4
    assert statuses == [200, 502, 200, 502], statuses
    assert metric(gw, "portcullis_upstream_retries_total") == 0
    assert metric(gw, "portcullis_upstream_unavailable_total") == 2


# ---- bad responses ----

@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    b"SSH-2.0-OpenSSH\r\n\r\n",
], ids=["status", "two-lengths", "negative-length", "space-in-name", "obs-fold",
        "bad-chunk", "101", "not-http"])
def test_malformed_response_is_502_upstream_unavailable(make_instance, scripted, answer):
    up = scripted([answer], close_after=True)
    gw, key = gateway_for(make_instance, up.url)
    r = gw.request("GET", "/c", key=key)
    assert_problem(r, 502, "UPSTREAM_UNAVAILABLE")
    errs = [e for e in gw.log_events() if e.get("event") == "upstream_error"]
    assert len(errs) == 1 and errs[0]["outcome"] == "unavailable"


def test_response_head_over_64_kib_is_502(make_instance, scripted):
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(
        b"X-Filler-%d: %s\r\n" % (i, b"f" * 1000) for i in range(70))
    up = scripted([head + b"Content-Length: 0\r\n\r\n"], close_after=True)
    gw, key = gateway_for(make_instance, up.url)
    assert_problem(gw.request("GET", "/c", key=key), 502, "UPSTREAM_UNAVAILABLE")


def test_body_cut_short_is_502(make_instance, scripted):
    up = scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"], close_after=True)
    gw, key = gateway_for(make_instance, up.url)
    assert_problem(gw.request("GET", "/c", key=key), 502, "UPSTREAM_UNAVAILABLE")


def test_upstream_silent_after_the_head_times_out_with_504(make_instance, scripted):
    def stall(conn, req, n):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        time.sleep(1.5)
        return "close"

    up = scripted([stall])
    gw, key = gateway_for(make_instance, up.url, timeout_ms=300)
    t = time.monotonic()
    assert_problem(gw.request("GET", "/c", key=key), 504, "UPSTREAM_TIMEOUT")
    assert time.monotonic() - t < 1.2
    assert metric(gw, "portcullis_upstream_timeouts_total") == 1
    assert metric(gw, "portcullis_upstream_unavailable_total") == 0


# ---- addressing ----

def test_upstream_host_name_and_base_path(make_instance, scripted):
    up = scripted([ok(b"named")])
    gw, key = gateway_for(make_instance, f"http://localhost:{up.port}/base/")
    r = gw.request("GET", "/v2/items?q=1", key=key)
    assert r.status_code == 200 and r.content == b"named"
    line, _, rest = up.requests[0].partition(b"\r\n")
    assert line == b"GET /base/v2/items?q=1 HTTP/1.1"
    assert f"\r\nHost: localhost:{up.port}\r\n".encode() in b"\r\n" + rest


def test_upstream_name_that_does_not_resolve_is_502_and_logged_at_start(make_instance):
    gw = make_instance(config="[upstream]\nurl = http://no-such-host.invalid:8080\n").start()
    org, k = gateway_key(gw)
    assert_problem(gw.request("GET", "/c", key=k["key"]), 502, "UPSTREAM_UNAVAILABLE")
    assert "no-such-host.invalid" in gw.read_log()


def test_head_through_the_gateway_reports_the_upstreams_content_length(make_instance, scripted):
    # RFC 9110 8.6: a HEAD answer may carry Content-Length only as GET's would be.
    up = scripted([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n"])
    gw, key = gateway_for(make_instance, up.url)
    r = gw.request("HEAD", "/c", key=key)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == "1234"
    assert r.content == b""
    # The connection to the client stays usable (no body bytes were expected or sent).
    r = gw.request("HEAD", "/c", key=key)
    assert r.headers["Content-Length"] == "1234"


def test_head_without_an_upstream_length_gets_none_invented(make_instance, scripted):
    up = scripted([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"])
    gw, key = gateway_for(make_instance, up.url)
    r = gw.request("HEAD", "/c", key=key)
    assert r.status_code == 200
    assert r.content == b""
    assert "Content-Length" not in r.headers, r.headers


class EarlyAnswerUpstream(ScriptedUpstream):
    """Answers a connection's first request after its head only (413, as a server refusing a
    body does), never reading the body, and keeps that connection open a while; later
    connections get the script."""

    def serve(self, conn):
        with self.lock:
            first = self.connections == 1
        if not first:
            return super().serve(conn)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(65536)
            with self.lock:
                self.requests.append(buf)
            conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!")
            time.sleep(1.0)
        finally:
            conn.close()


def test_early_answer_before_the_body_was_sent_does_not_poison_the_connection(make_instance):
    # Without care, the connection would go back to the pool with megabytes of the first
    # request's body still unsent, and the next request would be written after them.
    up = EarlyAnswerUpstream([ok(b"fine")])
    try:
        gw, key = gateway_for(make_instance, up.url)
        body = b"x" * (8 * 1024 * 1024)
        r = gw.request("POST", "/c", key=key, data=body, headers={"Content-Type": "text/plain"})
        assert r.status_code in (413, 502), r.status_code
        # Not idempotent, so never retried: it must go out on a new connection.
        r = gw.request("POST", "/c", key=key, data=b"{}", headers={"Content-Type": "text/plain"})
        assert r.status_code == 200 and r.content == b"fine"
        assert up.connections == 2
    finally:
        up.close()


def test_sigterm_lets_an_upstream_exchange_in_flight_finish(make_instance, scripted):
    def slow(conn, req, n):
        time.sleep(0.8)
        conn.sendall(ok(b"late but whole"))

    up = scripted([slow])
    gw, key = gateway_for(make_instance, up.url)
    result = {}

    def call():
        result["r"] = gw.request("GET", "/c", key=key, timeout=10)

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.3)  # the request is at the upstream now
    gw.proc.send_signal(signal.SIGTERM)
    t.join(10)
    assert result["r"].status_code == 200
    assert result["r"].content == b"late but whole"
    assert gw.proc.wait(timeout=10) == 0
