"""Request smuggling, black-box over raw sockets (issue 14): every way two
HTTP/1.1 parsers could frame one byte stream differently is refused by the
gateway's own parser (src/http/h1parse.c) before anything reaches the
upstream, and the connection is closed, so bytes hidden behind an
ambiguous request (a second request "smuggled" inside the first one's
body) are never read as a request of their own.

Each case sends one ambiguous request followed by a smuggled
`GET /smuggled` carrying the same valid key, then checks what the upstream
(test_forward.Upstream, recording every request) received: nothing at all.
Pipelining that is not ambiguous (a chunked POST followed by a GET on one
write) reaches the upstream as two requests with the right bodies, in order:
the refusals are not a refusal of pipelining.
"""
import socket

import h11
import pytest

from test_framing import shared_gateway, gateway  # noqa: F401 (fixtures)
from test_http import check_raw_problem, read_response

AUTH = "Authorization: Bearer {key}\r\n"
SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: t\r\n" + AUTH + "\r\n"

# name: (bytes before the smuggled request, expected status)
CASES = {
    "content_length_and_transfer_encoding": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "transfer_encoding_then_content_length": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    "two_differing_content_lengths": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Content-Length: 0\r\nContent-Length: 60\r\n\r\n", 400),
    "two_equal_content_lengths": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    "content_length_list": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH + "Content-Length: 3, 3\r\n\r\nabc", 400),
    "content_length_with_sign": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH + "Content-Length: +3\r\n\r\nabc", 400),
    "content_length_hex": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH + "Content-Length: 0x3\r\n\r\nabc", 400),
    "obs_fold_transfer_encoding": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400),
    "obs_fold_other_field": (
        "GET /x HTTP/1.1\r\nHost: t\r\n" + AUTH + "X-A: 1\r\n\tX-B: 2\r\n\r\n", 400),
    "bare_lf_line_ends": (
        "GET /x HTTP/1.1\nHost: t\n" + AUTH.replace("\r\n", "\n") + "\n", 400),
    "bare_lf_inside_head": (
        "GET /x HTTP/1.1\r\nHost: t\nTransfer-Encoding: chunked\r\n" + AUTH + "\r\n", 400),
    "bare_cr_inside_head": (
        "GET /x HTTP/1.1\r\nHost: t\rContent-Length: 60\r\n" + AUTH + "\r\n", 400),
    "bare_lf_in_chunk_line": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400),
    "space_before_colon_transfer_encoding": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Content-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    "space_before_colon_content_length": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH + "Content-Length : 60\r\n\r\n", 400),
    "chunk_size_overflow": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nabcde\r\n0\r\n\r\n", 400),
    "chunk_size_not_hex": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Transfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n0\r\n\r\n", 400),
    "chunked_not_last": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501),
    "chunked_twice_in_one_field": (
        "POST /x HTTP/1.1\r\nHost: t\r\n" + AUTH +
        "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    "transfer_encoding_on_http_1_0": (
        "POST /x HTTP/1.0\r\nHost: t\r\n" + AUTH +
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "absolute_form_target": (
        "GET http://evil.example/x HTTP/1.1\r\nHost: t\r\n" + AUTH + "\r\n", 400),
    "authority_form_without_connect": (
        "GET evil.example:80 HTTP/1.1\r\nHost: t\r\n" + AUTH + "\r\n", 400),
    "asterisk_form_without_options": ("GET * HTTP/1.1\r\nHost: t\r\n" + AUTH + "\r\n", 400),
    "two_spaces_in_request_line": ("GET  /x HTTP/1.1\r\nHost: t\r\n" + AUTH + "\r\n", 400),
    "leading_empty_line": ("\r\nGET /x HTTP/1.1\r\nHost: t\r\n" + AUTH + "\r\n", 400),
}


def send_and_read(port, raw, timeout=5.0):
    """Send raw; return (status, headers, body, closed_after_the_answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        status, headers, body = read_response(s, timeout=timeout)
        s.settimeout(timeout)
        try:
            rest = s.recv(65536)
            while rest and b"HTTP/1.1" not in rest:
                rest = s.recv(65536)
            closed = rest == b""
        except socket.timeout:
            closed = False
        except ConnectionResetError:
            closed = True
        return status, headers, body, closed


@pytest.mark.parametrize("case", sorted(CASES))
def test_ambiguous_request_reaches_nothing_and_smuggles_nothing(gateway, case):  # noqa: F811
    gw, up, key = gateway
    first, want = CASES[case]
    raw = (first + SMUGGLED).format(key=key).encode("latin-1")
    status, headers, body, closed = send_and_read(gw.port, raw)
    check_raw_problem(status, headers, body, want,
                      "NOT_IMPLEMENTED" if want == 501 else "BAD_REQUEST")
    assert headers.get("connection") == "close", headers
    assert closed, "the connection stayed open after an ambiguous request"
    assert up.count() == 0, up.received
    # The smuggled request alone, as a request of its own, is fine: the key is valid.
    ok = SMUGGLED.replace("Host: t\r\n", "Host: t\r\nConnection: close\r\n")
    assert send_and_read(gw.port, ok.format(key=key).encode())[0] == 200
    assert [r["path"] for r in up.received] == ["/smuggled"]


def h11_responses(data, methods):
    """The responses in data, read by h11 (one client connection per request
    it answers, as h11 does not pipeline): [(status, headers dict, body)]."""
    out = []
    for method in methods:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
        conn.send(h11.EndOfMessage())
        conn.receive_data(data)
        status, headers, body = None, None, b""
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.Response):
                status = ev.status_code
                headers = {k.decode().lower(): v.decode() for k, v in ev.headers}
            elif isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"incomplete response: {ev!r}")
        out.append((status, headers, body))
        data, _ = conn.trailing_data
    assert data == b"", data
    return out


def read_all(sock, until_closed=True, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        assert not until_closed, "the server did not close"
    return data


def test_unambiguous_pipelined_requests_reach_the_upstream_in_order(gateway):  # noqa: F811
    gw, up, key = gateway
    a = AUTH.format(key=key)
    raw = ("POST /echo HTTP/1.1\r\nHost: t\r\n" + a + "Content-Type: text/plain\r\n"
           "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n"
           "POST /echo HTTP/1.1\r\nHost: t\r\n" + a + "Content-Type: text/plain\r\n"
           "Content-Length: 4\r\n\r\nwxyz"
           "GET /third HTTP/1.1\r\nHost: t\r\n" + a + "Connection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(raw)
        data = read_all(s)
    got = h11_responses(data, ["POST", "POST", "GET"])
    assert [g[0] for g in got] == [200, 200, 200]
    assert got[0][2] == b"abcde" and got[1][2] == b"wxyz"
    assert got[2][1]["connection"] == "close"
    ids = [g[1]["x-request-id"] for g in got]
    assert len(set(ids)) == 3
    assert [(r["path"], r["body"]) for r in up.received] == [
        ("/echo", b"abcde"), ("/echo", b"wxyz"), ("/third", b"")]
