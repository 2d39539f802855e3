"""The HTTP foundation, black-box: request ids, problem+json errors and the
limits behind them (404, 405, 413, 415, 400, 431), graceful shutdown on
SIGTERM, readiness, metrics, security.txt and the access log.
"""
import datetime
import json
import os
import re
import signal
import socket
import time

import pytest
import requests

from conftest import assert_problem, run_cli

RID_RE = re.compile(r"req_[0-9A-HJKMNP-TV-Z]{26}")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_ms(ulid):
    """The 48-bit millisecond time prefix of a ULID."""
    t = 0
    for c in ulid[:10]:
        t = t * 32 + CROCKFORD.index(c)
    return t


def read_response(sock, timeout=5.0):
    """Read one HTTP/1.1 response with a Content-Length from a raw socket.

    Returns (status, headers with lower-case names, body bytes).
    """
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before the headers: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed inside the body: {body!r}")
        body += chunk
    return status, headers, body[:length]


def check_raw_problem(status, headers, body, want_status, want_code):
    assert status == want_status, (status, body)
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["type"] == "about:blank"
    assert problem["status"] == want_status
    assert problem["code"] == want_code
    assert problem["title"] and problem["message"]
    assert RID_RE.fullmatch(headers["x-request-id"])
    assert problem["requestId"] == headers["x-request-id"]
    return problem


def wait_for(fn, timeout=3.0, interval=0.05):
    """Poll fn() until it returns a true value; returns that value."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(interval)


# ---------- request ids ----------

def test_every_response_has_a_unique_request_id(make_instance):
    inst = make_instance(config="[server]\nmax_body_bytes = 1024").start()
    before_ms = int(time.time() * 1000)
    seen = []
    s = requests.Session()
    for _ in range(5):
        seen.append(s.get(inst.url("/healthz")))
        seen.append(s.get(inst.url("/no/such/path")))
        seen.append(s.post(inst.url("/healthz")))
        seen.append(s.get(inst.url("/healthz"), data=iter([b"x" * 2000])))  # chunked
        seen.append(s.get(inst.url("/healthz"), headers={"X-Pad": "p" * 20000}))
        seen.append(s.get(inst.url("/metrics")))
    after_ms = int(time.time() * 1000)
    assert sorted({r.status_code for r in seen}) == [200, 404, 405, 413, 431]
    ids = [r.headers["X-Request-Id"] for r in seen]
    for rid in ids:
        assert RID_RE.fullmatch(rid), rid
        # The ULID's time prefix is the time the server received the request.
        assert before_ms - 1000 <= ulid_ms(rid[4:]) <= after_ms + 1000
    assert len(set(ids)) == len(ids)
    # Errors carry the same id in the body.
    for r in seen:
        if r.status_code >= 400:
            assert r.json()["requestId"] == r.headers["X-Request-Id"]


def test_every_response_has_a_date_nosniff_and_no_connection_fields(make_instance):
    """RFC 9110 6.6.1: an origin server with a clock sends Date; the server's
    own answers say X-Content-Type-Options: nosniff (testssl.sh's header
    check, test_tls.py); on both protocols (the HTTP/2 pass of this file
    checks them there too)."""
    inst = make_instance().start()
    for r in (inst.request("GET", "/healthz"), inst.request("GET", "/no/such/path"),
              inst.request("GET", "/metrics")):
        date = datetime.datetime.strptime(r.headers["Date"], "%a, %d %b %Y %H:%M:%S GMT")
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        assert abs((now - date).total_seconds()) < 60, r.headers["Date"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "Keep-Alive" not in r.headers and "Transfer-Encoding" not in r.headers


# ---------- problem+json errors ----------

def test_unknown_path_is_404_problem(make_instance):
    inst = make_instance().start()
    for method in ("GET", "POST", "DELETE"):
        r = inst.request(method, "/v1/nothing-here")
        assert_problem(r, 404, "NOT_FOUND")


def test_wrong_method_is_405_problem_with_allow(make_instance):
    inst = make_instance().start()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = inst.request(method, "/healthz")
        body = assert_problem(r, 405, "METHOD_NOT_ALLOWED")
        assert r.headers["Allow"] == "GET"
        assert body["details"]["allow"] == "GET"
    r = inst.request("DELETE", "/readyz")
    assert_problem(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers["Allow"] == "GET"


def test_content_length_over_limit_is_413_before_the_body(make_instance):
    inst = make_instance(config="[server]\nmax_body_bytes = 1024").start()
    # The limit itself is fine.
    r = inst.request("GET", "/healthz", data=b"x" * 1024)
    assert r.status_code == 200, r.text
    # One byte over, announced in Content-Length: answered without the body being sent.
    with socket.create_connection(("127.0.0.1", inst.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n")
        status, headers, body = read_response(sock, timeout=3)
    problem = check_raw_problem(status, headers, body, 413, "PAYLOAD_TOO_LARGE")
    assert problem["details"]["limit"] == 1024
    # A Content-Length far beyond any integer type too.
    with socket.create_connection(("127.0.0.1", inst.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Length: 99999999999999999999999\r\n\r\n")
        sock.settimeout(3)
        assert sock.recv(100).startswith((b"HTTP/1.1 4", b"HTTP/1.0 4"))
    assert inst.request("GET", "/healthz").status_code == 200


def test_chunked_body_over_limit_is_413(make_instance):
    inst = make_instance(config="[server]\nmax_body_bytes = 1024").start()

    def chunks(total, size=300):
        sent = 0
        while sent < total:
            n = min(size, total - sent)
            sent += n
            yield b"c" * n

    r = inst.request("GET", "/healthz", data=chunks(1024))
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 200, r.text
    r = inst.request("GET", "/healthz", data=chunks(1025))
    body = assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert body["details"]["limit"] == 1024
    r = inst.request("GET", "/healthz", data=chunks(200000, 8192))
    assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert inst.request("GET", "/healthz").status_code == 200


def _post_json_endpoint(inst, **kw):
    """POST /v1/orgs (root key): the simplest endpoint that reads a JSON body."""
    return inst.root("POST", "/v1/orgs", **kw)


def test_non_json_body_is_415(make_instance):
    inst = make_instance().start()
    ok = _post_json_endpoint(inst, json={"name": "Acme"})
    assert ok.status_code == 201, ok.text
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                  "json", None):
        headers = {"Content-Type": ctype} if ctype else {}
        r = _post_json_endpoint(inst, data=b'{"name": "Acme"}', headers=headers)
        assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    # A +json type and parameters are fine.
    r = _post_json_endpoint(inst, data=b'{"name": "Acme 2"}',
                            headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text


def test_malformed_json_is_400(make_instance):
    inst = make_instance().start()
    bad = [
        b'{"name": ',
        b'{"name": "a",}',
        b"[1, 2]",
        b'"just a string"',
        b'{"name": "a", "name": "b"}',
        b'{"name": ' * 40 + b'"x"' + b"}" * 40,  # nested deeper than 32
        b'{"name": "\xff"}',
        b'{"name": "a"} trailing',
    ]
    for body in bad:
        r = _post_json_endpoint(inst, data=body, headers={"Content-Type": "application/json"})
        assert_problem(r, 400, "BAD_REQUEST")
    # A missing or unknown field is named in details.field.
    body = assert_problem(_post_json_endpoint(inst, json={}), 400, "BAD_REQUEST")
    assert body["details"]["field"] == "name"
    body = assert_problem(_post_json_endpoint(inst, json={"name": "x", "nom": "x"}), 400,
                          "BAD_REQUEST")
    assert body["details"]["field"] == "nom"


def test_headers_over_limit_are_431_and_the_connection_keeps_working(make_instance):
    inst = make_instance().start()
    s = requests.Session()
    r = s.get(inst.url("/healthz"), headers={"X-Pad": "p" * 15000})
    assert r.status_code == 200
    r = s.get(inst.url("/healthz"), headers={"X-Pad": "p" * 17000})
    body = assert_problem(r, 431, "HEADERS_TOO_LARGE")
    assert body["details"]["limit"] == 16384
    # Many small headers add up the same way.
    pads = {f"X-Pad-{i}": "q" * 100 for i in range(200)}
    assert_problem(s.get(inst.url("/healthz"), headers=pads), 431, "HEADERS_TOO_LARGE")
    r = s.get(inst.url("/healthz"))
    assert r.status_code == 200


def test_header_far_over_limit_then_next_connection_works(make_instance):
    inst = make_instance().start()
    for _ in range(3):
        try:
            r = requests.get(inst.url("/healthz"), headers={"X-Huge": "h" * 200_000}, timeout=5)
            assert r.status_code == 431
        except requests.ConnectionError:
            pass  # the HTTP library may close the connection instead
        r = requests.get(inst.url("/healthz"), timeout=5)
        assert r.status_code == 200
    assert inst.proc.poll() is None


# ---------- shutdown ----------

@pytest.mark.http1_only  # a raw HTTP/1.1 request cut in two
def test_sigterm_finishes_the_request_in_flight_then_exits_0(make_instance):
    inst = make_instance().start()
    sock = socket.create_connection(("127.0.0.1", inst.port))
    try:
        sock.sendall(b"POST /slow/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n"
                     b"Content-Type: application/octet-stream\r\n\r\n" + b"a" * 50)
        time.sleep(0.2)  # the server has the headers and waits for the rest
        inst.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert inst.proc.poll() is None, "exited with a request in flight"
        # No new connections while draining.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", inst.port), timeout=2).close()
        sock.sendall(b"b" * 50)
        status, headers, body = read_response(sock)
        check_raw_problem(status, headers, body, 404, "NOT_FOUND")
        assert headers.get("connection", "").lower() == "close"
    finally:
        sock.close()
    assert inst.proc.wait(timeout=5) == 0
    events = inst.log_events()
    access = [e for e in events if e.get("event") == "access" and e.get("path") == "/slow/upload"]
    assert access and access[-1]["completed"] == "ok"
    assert events[-1]["event"] == "stopped"


# ---------- readiness ----------

def _db_files(inst):
    return [p for p in (inst.db_path, inst.db_path + "-wal", inst.db_path + "-shm")
            if os.path.exists(p)]


def test_readyz_fails_while_the_database_is_gone_and_recovers(make_instance):
    inst = make_instance().start()
    r = inst.request("GET", "/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"store": True, "kv": True}
    moved = _db_files(inst)
    assert inst.db_path in moved
    for p in moved:
        os.rename(p, p + ".away")
    try:
        r = inst.request("GET", "/readyz")
        body = assert_problem(r, 503, "NOT_READY")
        assert body["details"]["store"] is False
        assert r.headers["Retry-After"] == "1"
        # Liveness is not readiness.
        assert inst.request("GET", "/healthz").status_code == 200
    finally:
        for p in moved:
            os.rename(p + ".away", p)
    r = inst.request("GET", "/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"


# ---------- metrics ----------

METRIC_LINE = re.compile(
    r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? '
    r'(-?[0-9.]+([eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN)')


def parse_metrics(text):
    """{'name{labels}': float} for every sample; checks the text format."""
    samples = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+", line), line
            continue
        assert METRIC_LINE.fullmatch(line), line
        key, _, value = line.rpartition(" ")
        samples[key] = float(value)
    return samples


def test_metrics_count_requests_by_route_and_status_class(make_instance):
    inst = make_instance().start()
    r = inst.request("GET", "/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    before = parse_metrics(r.text)
    for _ in range(3):
        inst.request("GET", "/healthz")
    for _ in range(2):
        inst.request("GET", "/not/a/route")
    inst.request("DELETE", "/healthz")
    ok = 'portcullis_http_requests_total{method="GET",route="/healthz",status="2xx"}'

    def client_errors(m):
        return sum(v for k, v in m.items()
                   if k.startswith("portcullis_http_requests_total{") and 'status="4xx"' in k)

    def counted():
        m = parse_metrics(inst.request("GET", "/metrics").text)
        if m.get(ok, 0) - before.get(ok, 0) == 3 and client_errors(m) - client_errors(before) == 3:
            return m
        return None

    after = wait_for(counted)
    assert after, "request counters did not move as expected"
    assert after['portcullis_http_requests_total{method="GET",route="/metrics",status="2xx"}'] >= 1
    # A 405 has no route; an unknown path has none either (or is the data plane's).
    assert after.get('portcullis_http_requests_total{method="any",route="none",status="4xx"}', 0) >= 1
    for k in after:
        if k.startswith("portcullis_http_requests_total{") and 'status="4xx"' in k:
            assert re.search(r'route="(none|proxy)"', k), k
    assert not any(k.startswith("portcullis_http_requests_total") and 'status="5xx"' in k
                   for k in after)

    text = inst.request("GET", "/metrics").text
    assert "# TYPE portcullis_http_requests_total counter" in text
    assert "# TYPE portcullis_http_request_duration_seconds histogram" in text
    m = parse_metrics(text)
    buckets = [(k, v) for k, v in m.items()
               if k.startswith("portcullis_http_request_duration_seconds_bucket{")]
    assert len(buckets) >= 5
    values = [v for _, v in buckets]
    assert values == sorted(values), "buckets must be cumulative"
    assert buckets[-1][0].endswith('{le="+Inf"}')
    assert buckets[-1][1] == m["portcullis_http_request_duration_seconds_count"] >= 7
    assert m["portcullis_http_request_duration_seconds_sum"] > 0

    version = run_cli("version", check=True).stdout.split()[-1]
    assert m[f'portcullis_build_info{{version="{version}"}}'] == 1
    assert "# TYPE portcullis_build_info gauge" in text


# ---------- security.txt ----------

def test_security_txt_contact_from_config_and_future_expiry(make_instance):
    inst = make_instance(config="[security]\ncontact = mailto:psirt@corp.example").start()
    r = inst.request("GET", "/.well-known/security.txt")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert RID_RE.fullmatch(r.headers["X-Request-Id"])
    fields = {}
    for line in r.text.splitlines():
        name, _, value = line.partition(": ")
        fields.setdefault(name, []).append(value)
    assert fields["Contact"] == ["mailto:psirt@corp.example"]
    assert len(fields["Expires"]) == 1
    expires = datetime.datetime.fromisoformat(fields["Expires"][0].replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert expires.tzinfo is not None
    # RFC 9116 section 2.5.5: in the future, and should be less than a year ahead.
    assert now + datetime.timedelta(days=7) < expires < now + datetime.timedelta(days=366)


# ---------- logs ----------

def _access_line(inst, request_id):
    def find():
        for e in inst.log_events():
            if e.get("event") == "access" and e.get("request_id") == request_id:
                return e
        return None
    e = wait_for(find)
    assert e, f"no access line for {request_id}: {inst.read_log()}"
    return e


def test_access_log_is_json_with_request_fields(make_instance):
    inst = make_instance().start()
    r = inst.request("GET", "/healthz")
    e = _access_line(inst, r.headers["X-Request-Id"])
    assert e["method"] == "GET"
    assert e["path"] == "/healthz"
    assert e["status"] == 200  # a JSON number, not a string
    assert isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0
    assert e["level"] == "info"
    datetime.datetime.fromisoformat(e["ts"].replace("Z", "+00:00"))

    r = inst.request("DELETE", "/no/where")
    e = _access_line(inst, r.headers["X-Request-Id"])
    assert (e["method"], e["path"], int(e["status"])) == ("DELETE", "/no/where", 404)
    # Every line of the log is one JSON object.
    for line in inst.read_log().splitlines():
        assert isinstance(json.loads(line), dict), line


def test_log_never_holds_credentials_from_query_or_headers(make_instance):
    inst = make_instance(config="[log]\nlevel = debug").start()
    secret_q, secret_h, secret_c = "SECRETVALUE", "SECRETAUTHHEADER", "SECRETCOOKIE"
    hdrs = {"Authorization": f"Bearer {secret_h}", "Cookie": f"session={secret_c}"}
    ids = []
    for path in ("/healthz", "/nope", "/v1/api-keys"):
        r = inst.request("GET", f"{path}?api_key={secret_q}&x=1", headers=dict(hdrs))
        ids.append(r.headers["X-Request-Id"])
    r = inst.request("POST", f"/healthz?api_key={secret_q}", headers=dict(hdrs))
    ids.append(r.headers["X-Request-Id"])
    r = inst.request("GET", f"/healthz?api_key={secret_q}",
                     headers={**hdrs, "X-Pad": "p" * 17000})
    assert r.status_code == 431
    ids.append(r.headers["X-Request-Id"])
    for rid in ids:
        e = _access_line(inst, rid)
        assert "?" not in e["path"]
    log = inst.read_log()
    for secret in (secret_q, secret_h, secret_c):
        assert secret not in log


def test_plain_http_sends_no_hsts(make_instance):
    inst = make_instance().start()
    r = inst.request("GET", "/healthz")
    assert "Strict-Transport-Security" not in r.headers


def test_metrics_have_no_duplicate_series(gw):
    # Two methods on one path (POST and DELETE .../kill) must be two series.
    gw.root("POST", "/v1/kill-switch", json={})
    gw.root("DELETE", "/v1/kill-switch")
    text = gw.request("GET", "/metrics").text
    names = [line.rsplit(" ", 1)[0] for line in text.splitlines()
             if line and not line.startswith("#")]
    assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]
    assert 'method="POST",route="/v1/kill-switch"' in text
    assert 'method="DELETE",route="/v1/kill-switch"' in text
