"""Log lines stay valid whatever a client sends (docs/operations.md "Logs").

Nasty paths (%FF, %0A, %00, raw bytes above 0x7f) and header values go
through a running instance; every line of its log file must then be valid
UTF-8 and parse with json.loads, and the access line must show the whole
path as sent (a decoded path was cut at %00). In text mode a client's line
break cannot start a line of its own.
"""
import json
import re
import socket

from test_forward import gateway_key

NASTY_PATHS = [
    b"/x%FF%FE/y",
    b"/x%0A{\"level\":\"error\",\"forged\":1}",
    b"/x%0D%0Ats=0 level=error forged",
    b"/x%00/../admin",
    b"/x%C0%AF%ED%A0%80",
    b"/x\xff\xfe\"\\",
    b"/v1/api-keys%00x",
]


def raw(inst, target, headers=b""):
    with socket.create_connection(("127.0.0.1", inst.port), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + headers +
                  b"Connection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def send_nasty(inst, key):
    auth = b"Authorization: Bearer " + key.encode() + b"\r\n"
    for target in NASTY_PATHS:
        raw(inst, target)
        raw(inst, target, auth)
    raw(inst, b"/ua", auth + b"User-Agent: \xff\xfe\xc0\xaf\x01\x7f\r\nX-Thing: \"}\\\r\n")
    raw(inst, b"/bad-key", b"Authorization: Bearer \xff\x00\"\\\r\n")


def log_lines(inst):
    inst.stop()
    with open(inst.log_path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")  # strict: any invalid byte fails here
    return [l for l in text.split("\n") if l]


def test_every_json_log_line_parses_after_nasty_requests(make_instance):
    # A refused upstream adds upstream_error lines (with curl/h1 error text).
    gw = make_instance(config="[upstream]\nurl = http://127.0.0.1:9\n").start()
    org, k = gateway_key(gw)
    send_nasty(gw, k["key"])
    lines = log_lines(gw)
    events = [json.loads(l) for l in lines]  # every line, no exceptions
    assert all(isinstance(e, dict) and "event" in e for e in events)
    assert not [e for e in events if "forged" in e]
    paths = [e["path"] for e in events if e["event"] == "access"]
    # The path as sent, not cut at %00 and not decoded into a line break.
    assert "/x%00/../admin" in paths and "/v1/api-keys%00x" in paths
    assert "/x%0A{\"level\":\"error\",\"forged\":1}" in paths
    # Bytes that are not UTF-8 are replaced, one U+FFFD each.
    assert "/x\ufffd\ufffd\"\\" in paths
    # Plain ASCII on disk: non-ASCII is escaped as \uXXXX.
    assert all(l.isascii() for l in lines)


def test_text_log_lines_cannot_be_forged(make_instance):
    gw = make_instance(config="[log]\nformat = text\n[upstream]\nurl = http://127.0.0.1:9\n")
    gw.start()
    org, k = gateway_key(gw)
    send_nasty(gw, k["key"])
    lines = log_lines(gw)
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) ")
    assert lines and all(stamp.match(l) for l in lines), [l for l in lines if not stamp.match(l)]
    assert not [l for l in lines if l.startswith("ts=0") or l.startswith("{")]
    assert any('path="/x%0D%0Ats=0 level=error forged"' in l for l in lines)
    assert any("path=/x%00/../admin " in l for l in lines)
