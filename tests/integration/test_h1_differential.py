"""The server's HTTP/1.1 request parser against python3-h11 (issue 14).

Each message of a corpus (hand-written cases for every framing ambiguity
RFC 9112 names, valid requests, and a few thousand seeded mutations of
valid requests) goes whole, followed by end of file, to h11 as a server
and to tests/h1diff/h1diff (http/h1parse.c's h1_parse_request and the
strict body decoder). Then:

- every message h11 refuses is refused by ours;
- every message h11 accepts is parsed the same by ours (method, target,
  version, the header fields, the decoded body), or refused by one of the
  rules where ours is deliberately stricter than h11 (STRICTER below: each
  with the property of the message that makes it apply, checked, so a
  refusal that no rule explains fails the test).
"""
import os
import random
import re
import subprocess

import h11
import pytest

from conftest import BIN

H1DIFF = os.path.join(os.path.dirname(os.path.abspath(BIN)), "tests", "h1diff", "h1diff")


def head_of(msg):
    m = re.search(rb"\n\r?\n", msg)
    return msg[:m.end()] if m else msg


def body_of(msg):
    return msg[len(head_of(msg)):]


def field_lines(msg, name):
    return re.findall(rb"(?im)^" + name + rb"[ \t]*:(.*?)\r?$", head_of(msg))


def request_line(msg):
    return head_of(msg).split(b"\n", 1)[0].rstrip(b"\r")


def chunk_meta_lines(msg):
    """The lines of a body that are chunk-size lines or trailer lines."""
    return [line for line in re.split(rb"\r?\n", body_of(msg))
            if re.match(rb"[0-9A-Fa-f]", line) or b":" in line]


CTL = rb"[\x00-\x08\x0a-\x1f\x7f]"

# Where ours refuses what h11 accepts: our message, and the property of the
# request that the rule is about (RFC 9112 / RFC 9110 allow a server either).
# A bare CR, whitespace before a colon, a missing Host on HTTP/1.1 and
# Transfer-Encoding other than chunked h11 refuses too: they are in CASES,
# not here.
STRICTER = [
    ("does not end in CRLF", lambda m: re.search(rb"(?<!\r)\n", head_of(m))),
    ("folded (obs-fold)", lambda m: re.search(rb"\n[ \t]", head_of(m))),
    ("a control character", lambda m: re.search(CTL, head_of(m).replace(b"\r\n", b""))),
    ("Content-Length header is not a number",
     lambda m: any(b"," in v or len(v.strip()) > 19 for v in field_lines(m, b"content-length"))),
    ("more than one Content-Length", lambda m: len(field_lines(m, b"content-length")) > 1),
    ("both Content-Length and Transfer-Encoding",
     lambda m: field_lines(m, b"content-length") and field_lines(m, b"transfer-encoding")),
    ("HTTP/1.0 request cannot have a Transfer-Encoding",
     lambda m: request_line(m).endswith(b"HTTP/1.0") and field_lines(m, b"transfer-encoding")),
    ("speaks HTTP/1.0 and HTTP/1.1", lambda m: not request_line(m).endswith(
        tuple(b"HTTP/1.%d" % i for i in range(10)))),
    ("CONNECT takes host:port", lambda m: request_line(m).startswith(b"CONNECT ")),
    ("target is not a path", lambda m: not request_line(m).split(b" ")[1].startswith(b"/")),
    ("is for OPTIONS only", lambda m: request_line(m).split(b" ")[1] == b"*"),
    ("method is longer than 32", lambda m: len(request_line(m).split(b" ")[0]) > 32),
    ("Host header is not a host name",
     lambda m: any(re.search(rb"[^-A-Za-z0-9._~!$&'()*+,;=:%\[\]]", v.strip())
                   for v in field_lines(m, b"host"))),
    ("too many header fields", lambda m: head_of(m).count(b"\n") > 129),
    ("malformed body", lambda m: any(
        re.match(rb"[0-9A-Fa-f]{16,}", line) or re.match(rb"[0-9A-Fa-f]+[ \t]+;", line)
        or re.search(CTL, line) or re.match(rb"[ \t]", line)
        for line in chunk_meta_lines(m)) or re.search(rb"(?<!\r)\n|\r(?!\n)", body_of(m))),
]


def h11_reads(msg):
    """(method, target, version, [(name, value)], body) or None when h11 refuses."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    conn.receive_data(msg)
    conn.receive_data(b"")
    req, body = None, bytearray()
    try:
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.Request):
                req = ev
            elif isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                return (req.method, req.target, req.http_version,
                        [(n, v) for n, v in req.headers], bytes(body))
            else:  # NEED_DATA, PAUSED or ConnectionClosed before the end
                return None
    except h11.RemoteProtocolError:
        return None


def ours_reads(msgs):
    data = b"".join(b"%d\n%s" % (len(m), m) for m in msgs)
    out = subprocess.run([H1DIFF], input=data, capture_output=True, check=True, timeout=120)
    import json
    return [json.loads(line) for line in out.stdout.splitlines()]


def as_h11_sees(r):
    """Our accepted request in h11's terms (names lower-cased, its value rules)."""
    version = b"1.%d" % r["minor"]
    headers = []
    for n, v in r["headers"]:
        name, value = bytes.fromhex(n).lower(), bytes.fromhex(v)
        if name == b"transfer-encoding":
            value = value.lower()
        headers.append((name, value))
    return (bytes.fromhex(r["method"]), bytes.fromhex(r["target"]), version, headers,
            bytes.fromhex(r["body"]))


def normal_version(theirs):
    method, target, version, headers, body = theirs
    return (method, target, b"1.0" if version == b"1.0" else b"1.1", headers, body)


def req(*lines, body=b""):
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body


CASES = [
    req(b"GET / HTTP/1.1", b"Host: a"),
    req(b"GET /p?q=1&r=%20 HTTP/1.1", b"Host: a.example:8080", b"Accept: */*"),
    req(b"GET / HTTP/1.0"),
    req(b"GET / HTTP/1.0", b"Connection: keep-alive"),
    req(b"GET / HTTP/1.1"),                                   # no Host
    req(b"GET / HTTP/1.1", b"Host: a", b"Host: b"),           # two Hosts
    req(b"GET / HTTP/1.1", b"Host:"),                         # empty Host
    req(b"OPTIONS * HTTP/1.1", b"Host: a"),
    req(b"GET * HTTP/1.1", b"Host: a"),
    req(b"GET http://a/x HTTP/1.1", b"Host: a"),
    req(b"CONNECT a:443 HTTP/1.1", b"Host: a:443"),
    req(b"GET a:443 HTTP/1.1", b"Host: a"),
    req(b"CONNECT /x HTTP/1.1", b"Host: a"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 5", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 3", body=b"hello"),  # rest
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 9", body=b"hello"),  # short
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 5", b"Content-Length: 5", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 5, 5", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 5, 6", body=b"hello!"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: +5", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: -5", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 0x5", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 5 5", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length:  5 ", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 99999999999999999999", body=b"x"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 00000000000000000005", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length : 5", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length\t: 5", body=b"hello"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: Chunked",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked", b"Content-Length: 5",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 5", b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: gzip, chunked",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked, chunked",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: identity",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: xchunked",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding : chunked",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding:\x0bchunked",
        body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.0", b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5;ext=1\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5 ;ext\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5 \r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5\r\nhelloXX0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"0000000000000005\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"-5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"0x5\r\nhello\r\n0\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\r\n0\r\nX-Trailer : 1\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\r\n0\r\nno colon\r\n\r\n"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\r\n0\r\n"),                             # no final CRLF
    req(b"POST / HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"5\r\nhel"),                                        # cut short
    req(b"GET / HTTP/1.1", b"Host: a", b"X: a", b" folded"),
    req(b"GET / HTTP/1.1", b"Host: a", b"X: a", b"\tfolded"),
    req(b"GET / HTTP/1.1", b" Host: a"),
    req(b"GET / HTTP/1.1", b"Host: a", b"X: a\rb"),
    req(b"GET / HTTP/1.1", b"Host: a", b"X: a\x00b"),
    req(b"GET / HTTP/1.1", b"Host: a", b"X: a\x01b"),
    req(b"GET / HTTP/1.1", b"Host: a", b"X: a\x7fb"),
    req(b"GET / HTTP/1.1", b"Host: a", b"X: caf\xc3\xa9"),
    req(b"GET / HTTP/1.1", b"Host: a", b"X\x80: a"),
    req(b"GET / HTTP/1.1", b"Host: a", b": a"),
    req(b"GET / HTTP/1.1", b"Host: a", b"X a"),
    req(b"GET / HTTP/1.1", b"Host: a", b"X:"),
    req(b"GET / HTTP/1.1", b"Host: a", b"Expect: 100-continue"),
    req(b"GET /  HTTP/1.1", b"Host: a"),
    req(b"GET  / HTTP/1.1", b"Host: a"),
    req(b"GET / HTTP/1.1 ", b"Host: a"),
    req(b"GET\t/ HTTP/1.1", b"Host: a"),
    req(b"GET / http/1.1", b"Host: a"),
    req(b"GET / HTTP/1.2", b"Host: a"),
    req(b"GET / HTTP/2.0", b"Host: a"),
    req(b"GET / HTTP/0.9", b"Host: a"),
    req(b"GET / HTTP/1.10", b"Host: a"),
    req(b"GET /"),
    req(b"GET / HTTP/1.1", b"Host: a", b"Host: a"),
    req(b"G@T / HTTP/1.1", b"Host: a"),
    req(b"X" * 40 + b" / HTTP/1.1", b"Host: a"),
    req(b"GET /\x7f HTTP/1.1", b"Host: a"),
    req(b"GET /\xff HTTP/1.1", b"Host: a"),
    req(b"GET /a#b HTTP/1.1", b"Host: a"),
    req(b"GET / HTTP/1.1", b"Host: a b"),
    req(b"GET / HTTP/1.1", b"Host: a@b"),
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\n\n",
    b"GET / HTTP/1.1\r\nHost: a\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\n",
    b"GET / HTTP/1.1\rHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n",
    b"",
    req(b"GET / HTTP/1.1", *[b"X-%d: %d" % (i, i) for i in range(140)], b"Host: a"),
    req(b"GET / HTTP/1.1", b"Host: a") + req(b"GET /2 HTTP/1.1", b"Host: a"),
    req(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 5", body=b"hello")
    + req(b"GET /smuggled HTTP/1.1", b"Host: a"),
]

SEEDS = [
    req(b"GET /a/b?c=d HTTP/1.1", b"Host: api.example", b"User-Agent: t/1", b"Accept: */*"),
    req(b"POST /v1/x HTTP/1.1", b"Host: a", b"Content-Type: application/json",
        b"Content-Length: 7", body=b'{"a":1}'),
    req(b"POST /up HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
        body=b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n"),
    req(b"PUT /k HTTP/1.0", b"Content-Length: 2", b"Connection: keep-alive", body=b"ok"),
]

ALPHABET = [b" ", b"\t", b"\r", b"\n", b"\r\n", b":", b",", b";", b"0", b"5", b"a", b"A",
            b"\x00", b"\x01", b"\x7f", b"\x80", b"-", b"/", b"*", b"chunked",
            b"\r\nContent-Length: 3", b"\r\nTransfer-Encoding: chunked", b"\r\nHost: b"]


def mutants(n, seed=14):
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        m = bytearray(rnd.choice(SEEDS))
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(m) + 1)
            op = rnd.randrange(3)
            if op == 0:
                m[i:i] = rnd.choice(ALPHABET)
            elif op == 1 and i < len(m):
                del m[i]
            elif i < len(m):
                m[i:i + 1] = rnd.choice(ALPHABET)
        out.append(bytes(m))
    return out


def explain(msg, ours):
    """The STRICTER rule that explains our refusal of msg, or None."""
    for fragment, applies in STRICTER:
        if fragment in ours["message"] and applies(msg):
            return fragment
    return None


@pytest.mark.parametrize("corpus", ["cases", "mutants"])
def test_refuses_what_h11_refuses_and_reads_the_rest_the_same(corpus):
    msgs = CASES if corpus == "cases" else mutants(4000)
    assert os.path.exists(H1DIFF), "build tests/h1diff/h1diff (meson, tests enabled)"
    results = ours_reads(msgs)
    assert len(results) == len(msgs)
    accepted_both = refused_both = stricter = 0
    problems = []
    for msg, ours in zip(msgs, results):
        theirs = h11_reads(msg)
        if theirs is None:
            if ours["ok"]:
                problems.append(("h11 refuses, ours accepts", msg, ours))
            refused_both += 1
        elif ours["ok"]:
            if as_h11_sees(ours) != normal_version(theirs):
                problems.append(("read differently", msg, (as_h11_sees(ours), theirs)))
            accepted_both += 1
        elif explain(msg, ours):
            stricter += 1
        else:
            problems.append(("ours refuses, no rule explains it", msg, ours))
    assert not problems, "\n".join(repr(p) for p in problems[:20])
    # The corpus reaches every class: agreement both ways and the stricter rules.
    assert accepted_both > 5 and refused_both > 5 and stricter > 5, (
        accepted_both, refused_both, stricter)


def test_every_stricter_rule_is_reached():
    """Each STRICTER rule explains at least one refusal of the corpus (none is dead)."""
    msgs = CASES + mutants(4000)
    used = set()
    for msg, ours in zip(msgs, ours_reads(msgs)):
        if not ours["ok"] and h11_reads(msg) is not None:
            used.add(explain(msg, ours))
    unused = [f for f, _ in STRICTER if f not in used]
    assert not unused, unused
