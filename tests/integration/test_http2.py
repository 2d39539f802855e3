"""HTTP/2 on TLS listeners (issue #14 item 3), driven by `curl --http2`
(and h2c with prior knowledge on plain ones when [server] h2c = true):
ALPN h2 when [server] http2_max_concurrent_streams is set (HTTP/1.1 only
when it is 0), the same answers as on HTTP/1.1 (health, problem+json,
X-Request-Id, HSTS), forwarding with the upstream seeing the request as
sent (method, path, body, Host from :authority, cookies joined), HEAD,
a body over the listener's limit, many requests multiplexed on one
connection, and the stream limit announced in SETTINGS.
"""
import json
import signal
import subprocess
import time

import pytest

from test_forward import Upstream, gateway_key, header_values, upstream_conf
from test_tls import cert, start_tls, tls_config  # noqa: F401 (cert is a fixture)

H2 = "[server]\nhttp2_max_concurrent_streams = 16\n"


def curl(inst, cert, path, *args, http="--http2"):
    """curl over HTTPS: (http version, status, headers dict lower-case, body bytes)."""
    p = subprocess.run(
        ["curl", "-sS", http, "--cacert", cert[0], "-D", "-", "-o", "-",
         "-w", "\n%{http_version}", *args, f"https://127.0.0.1:{inst.port}{path}"],
        capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    out, _, version = p.stdout.rpartition(b"\n")
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.decode().partition(":")
        headers.setdefault(k.strip().lower(), v.strip())
    return version.decode(), status, headers, body


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.close()


def h2_instance(make_instance, cert, extra="", upstream=None, timeout_ms=5000):
    """A TLS instance with HTTP/2 on (extra: more [server] lines), forwarding to upstream."""
    conf = tls_config(cert).replace("[server]\n", H2 + extra)
    if upstream:
        conf += "\n" + upstream_conf(upstream, timeout_ms=timeout_ms)
    return start_tls(make_instance(store="sqlite", config=conf), cert)


def test_alpn_h2_answers_as_http_1_1_does(make_instance, cert):
    inst = h2_instance(make_instance, cert)
    version, status, headers, body = curl(inst, cert, "/healthz")
    assert version == "2" and status == 200
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["x-request-id"].startswith("req_")
    v1, s1, _, b1 = curl(inst, cert, "/healthz", http="--http1.1")
    assert v1 == "1.1" and s1 == 200 and b1 == body
    version, status, headers, body = curl(inst, cert, "/nowhere/at/all")
    assert version == "2" and status in (401, 404)
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == status


def test_http2_is_off_by_default(make_instance, cert):
    inst = start_tls(make_instance(store="sqlite", config=tls_config(cert)), cert)
    version, status, _, _ = curl(inst, cert, "/healthz")
    assert version == "1.1" and status == 200


def test_forwarding_over_http2(make_instance, cert, upstream, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert[0])  # the key is made over HTTPS
    inst = h2_instance(make_instance, cert, upstream=upstream)
    _, k = gateway_key(inst)
    body = b'{"amount": 42}'
    version, status, headers, rbody = curl(
        inst, cert, "/orders/a%20b?x=1", "-X", "POST", "--data-binary", body,
        "-H", "Content-Type: application/json", "-H", "Authorization: Bearer " + k["key"],
        "-H", "Cookie: a=1", "-H", "Cookie: b=2")
    assert version == "2" and status == 200, rbody
    rec = upstream.last()
    assert rec["method"] == "POST" and rec["target"] == "/orders/a%20b?x=1"
    assert rec["body"] == body
    assert header_values(rec, "Host") == [f"127.0.0.1:{upstream.port}"]
    assert header_values(rec, "Cookie") == ["a=1; b=2"]
    assert headers["x-upstream-custom"] == "up"
    version, status, headers, rbody = curl(
        inst, cert, "/orders/1", "-I", "-H", "Authorization: Bearer " + k["key"])
    assert version == "2" and status == 200
    assert upstream.last()["method"] == "HEAD"


def test_a_body_over_the_limit_is_413_on_http2(make_instance, cert):
    inst = h2_instance(make_instance, cert, "max_body_bytes = 1000\n")
    version, status, headers, body = curl(
        inst, cert, "/v1/orgs", "-X", "POST", "--data-binary", "x" * 5000,
        "-H", "Content-Type: application/json")
    assert version == "2" and status == 413, body
    assert headers["content-type"] == "application/problem+json"


def test_many_requests_multiplexed_on_one_connection(make_instance, cert):
    inst = h2_instance(make_instance, cert)
    urls = []
    for i in range(40):
        urls += ["-o", "/dev/null", f"https://127.0.0.1:{inst.port}/healthz?i={i}"]
    p = subprocess.run(
        ["curl", "-sS", "--http2", "--parallel", "--parallel-max", "16", "--cacert", cert[0],
         "-w", "%{http_version} %{response_code} %{num_connects}\n", *urls],
        capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().split()
    results = [tuple(lines[i:i + 3]) for i in range(0, len(lines), 3)]
    assert len(results) == 40
    assert all(v == "2" and s == "200" for v, s, _ in results), results
    assert sum(int(n) for _, _, n in results) < 40  # connections were shared
    assert inst.proc.poll() is None


def test_settings_announce_the_limits(make_instance, cert):
    """nghttp (nghttp2-client) prints the SETTINGS frame the server sends."""
    inst = h2_instance(make_instance, cert, "http2_window_bytes = 131072\n")
    p = subprocess.run(["nghttp", "-nv", f"https://127.0.0.1:{inst.port}/healthz"],
                       capture_output=True, timeout=30)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):16" in out, out
    assert "SETTINGS_INITIAL_WINDOW_SIZE(0x04):131072" in out, out
    assert "SETTINGS_ENABLE_PUSH(0x02):0" in out, out
    assert ":status: 200" in out, out


def test_pool_deferred_management_requests_over_http2(make_instance, cert):
    """The management API runs on the control pool (suspend, resume): over
    h2 the answer comes back on its stream."""
    inst = h2_instance(make_instance, cert)
    auth = ["-H", "Authorization: Bearer " + inst.root_key]
    version, status, _, body = curl(
        inst, cert, "/v1/orgs", "-X", "POST", "-H", "Content-Type: application/json",
        "--data-binary", '{"name": "h2-org"}', *auth)
    assert version == "2" and status == 201, body
    version, status, _, body = curl(inst, cert, "/v1/orgs", *auth)
    assert version == "2" and status == 200
    assert "h2-org" in body.decode()


def test_a_client_gone_while_the_upstream_works_leaves_the_server_sound(
        make_instance, cert, upstream, monkeypatch):
    """curl gives up (closing the connection) while its stream's request
    waits on the upstream: the request ends when the upstream answers, as
    aborted, and the server goes on serving (ASan would abort on a use of
    the freed connection)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert[0])
    inst = h2_instance(make_instance, cert, upstream=upstream)
    _, k = gateway_key(inst)
    p = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", cert[0], "--max-time", "0.5",
         "-H", "Authorization: Bearer " + k["key"],
         f"https://127.0.0.1:{inst.port}/work/slow?ms=1500"], capture_output=True, timeout=30)
    assert p.returncode == 28, p.stderr  # curl's timeout
    time.sleep(1.5)
    version, status, _, _ = curl(inst, cert, "/healthz")
    assert version == "2" and status == 200
    assert inst.stop() == 0
    log = inst.read_log()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-3000:]
    access = [e for e in inst.log_events()
              if e.get("event") == "access" and e.get("path") == "/work/slow"]
    assert access and access[-1]["completed"] == "aborted", access


def test_shutdown_lets_a_stream_in_flight_finish(make_instance, cert, upstream, monkeypatch):
    """SIGTERM while a stream waits on the upstream: the server sends GOAWAY,
    the stream is answered 200, and the process exits 0."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert[0])
    inst = h2_instance(make_instance, cert, "shutdown_grace_s = 5\n", upstream=upstream)
    _, k = gateway_key(inst)
    client = subprocess.Popen(
        ["curl", "-sS", "--http2", "--cacert", cert[0], "-o", "/dev/null", "-w",
         "%{http_version} %{response_code}", "-H", "Authorization: Bearer " + k["key"],
         f"https://127.0.0.1:{inst.port}/work/slow?ms=1200"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 5
    while upstream.count("/work/slow") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    inst.proc.send_signal(signal.SIGTERM)
    out, err = client.communicate(timeout=15)
    assert out.decode() == "2 200", (out, err)
    assert inst.proc.wait(timeout=10) == 0
    assert inst.log_events()[-1]["event"] == "stopped"


def plain_curl(inst, path, *args):
    p = subprocess.run(["curl", "-sS", *args, "-o", "/dev/null", "-w", "%{http_version} %{response_code}",
                        f"http://127.0.0.1:{inst.port}{path}"], capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode()


def test_h2c_with_prior_knowledge_on_a_plain_listener(make_instance):
    inst = make_instance(store="sqlite", config=H2 + "h2c = true\n").start()
    assert plain_curl(inst, "/healthz", "--http2-prior-knowledge") == (0, "2 200")
    assert plain_curl(inst, "/healthz", "--http1.1") == (0, "1.1 200")  # the same port
    rc, out = plain_curl(inst, "/nowhere", "--http2-prior-knowledge")
    assert rc == 0 and out.startswith("2 4"), out


def test_h2c_is_off_unless_asked_for(make_instance):
    """Without h2c = true the preface is an HTTP/1.1 request line it refuses."""
    inst = make_instance(store="sqlite", config=H2).start()
    rc, out = plain_curl(inst, "/healthz", "--http2-prior-knowledge")
    assert out != "2 200", out
    assert plain_curl(inst, "/healthz", "--http1.1") == (0, "1.1 200")


def test_headers_over_the_limit_are_431_on_http2(make_instance, cert):
    """Fields past max_header_bytes (+ the target's 8 KiB) are not kept; the
    head is answered 431 problem+json, as on HTTP/1.1."""
    inst = h2_instance(make_instance, cert, "max_header_bytes = 4096\n")
    big = ["-H", "X-Big-1: " + "a" * 7000, "-H", "X-Big-2: " + "b" * 7000]
    version, status, headers, body = curl(inst, cert, "/healthz", *big)
    assert version == "2" and status == 431, body
    assert headers["content-type"] == "application/problem+json"
    version, status, _, _ = curl(inst, cert, "/healthz")
    assert version == "2" and status == 200


def test_expect_100_continue_is_answered_on_h2c_as_on_http_1_1(make_instance, upstream):
    """A request with Expect: 100-continue and a body to come: once its head
    passes, the server sends the 100 (an informational HEADERS) before the
    client sends the body, as h1conn.c writes "100 Continue"; the upstream
    sees the body and no Expect. curl waits a second for a 100 it never gets."""
    from h2raw import DataFrame, HeadersFrame, RawH2, SettingsFrame, response_status
    inst = make_instance(store="sqlite", config=H2 + "h2c = true\n" +
                         upstream_conf(upstream)).start()
    _, k = gateway_key(inst)
    c = RawH2(inst.port)
    c.frames(timeout=2, until=lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags)
    sid = c.request("/echo", "POST", end=False, extra=[
        ("authorization", "Bearer " + k["key"]), ("expect", "100-continue"),
        ("content-type", "text/plain"), ("content-length", "5")])
    frames = c.frames(timeout=3, until=lambda f: isinstance(f, HeadersFrame))
    assert response_status(frames, sid) == 100, frames
    c.send(DataFrame(sid, b"hello", flags=["END_STREAM"]))
    frames = c.frames(timeout=5, until=lambda f: isinstance(f, DataFrame) and
                      "END_STREAM" in f.flags)
    assert response_status(frames, sid) == 200
    assert b"".join(f.data for f in frames if isinstance(f, DataFrame)) == b"hello"
    assert upstream.last()["body"] == b"hello"
    assert header_values(upstream.last(), "Expect") == []
    c.close()
    t = time.monotonic()
    assert plain_curl(inst, "/echo", "--http2-prior-knowledge", "-H", "Expect: 100-continue",
                      "-H", "Authorization: Bearer " + k["key"], "--data-binary", "x" * 5000) \
        == (0, "2 200")
    assert time.monotonic() - t < 0.9
