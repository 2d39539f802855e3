"""The webhook tests' peers checked on their own (webhook_peers.py), with
curl as the client: the HTTPS receiver's certificate chain and scripted
answers, its connection count, the Standard Webhooks verifier against the
published vector (and refusing a changed body, another secret, an old
timestamp), and the SMTP server's STARTTLS and recording. If these fail,
a failing delivery test says nothing about Portcullis.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest

from webhook_peers import (Answer, Receiver, SmtpServer, TestCA, verify_signatures)

# The published vector (Standard Webhooks 1.0's reference tests); tests/vectors has it too once
# the signing code's unit tests land, and then every vector there is checked as well.
VECTOR = {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
          "msg_id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "timestamp": 1614265330,
          "payload": "{\"test\": 2432232314}",
          "signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
VECTORS = os.path.join(os.path.dirname(__file__), "..", "vectors", "standard-webhooks.json")


@pytest.fixture(scope="module")
def ca():
    return TestCA()


@pytest.fixture
def receiver(ca):
    r = Receiver(ca)
    yield r
    r.close()


def curl(*args, timeout=20, input=None):
    return subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=timeout,
                          input=input)


def post(receiver, ca, path, body=b'{"a":1}', extra=(), host="localhost"):
    """curl POST to the receiver through the test CA; (status, headers text, body)."""
    p = curl("--cacert", ca.ca_file, "-D", "-", "-o", "/dev/stderr", "-w", "%{http_code}",
             "--data-binary", "@-", "-H", "Content-Type: application/json", *extra,
             receiver.url(path, host=host), timeout=20, input=body)
    return p


def status_of(p):
    return int(p.stdout.decode()[-3:])


def test_receiver_answers_200_over_tls_with_the_test_ca_and_records_the_request(receiver, ca):
    for host in ("localhost", "127.0.0.1"):
        p = post(receiver, ca, "/hook", host=host, extra=("-H", "webhook-id: msg_1"))
        assert p.returncode == 0, p.stderr
        assert status_of(p) == 200
    reqs = receiver.requests_for("/hook")
    assert len(reqs) == 2
    assert reqs[0].method == "POST" and reqs[0].body == b'{"a":1}'
    assert reqs[0].headers["webhook-id"] == "msg_1"
    assert reqs[0].headers["content-type"] == "application/json"
    assert abs(reqs[0].at - time.time()) < 10
    # Without the test CA the chain is refused: the certificate really is the test CA's.
    p = curl("-o", "/dev/null", "-w", "%{http_code}", "-d", "x", receiver.url("/hook"))
    assert p.returncode != 0


def test_receiver_follows_its_script_and_repeats_the_last_answer(receiver, ca):
    receiver.script("/flaky", [Answer(500, body="boom"), Answer(200)])
    receiver.script("/gone", Answer(410))
    receiver.script("/busy", Answer(429, headers={"Retry-After": "7"}))
    receiver.script("/moved", Answer(302, headers={"Location": receiver.url("/elsewhere")}))
    assert [status_of(post(receiver, ca, "/flaky")) for _ in range(3)] == [500, 200, 200]
    assert status_of(post(receiver, ca, "/gone")) == 410
    p = post(receiver, ca, "/busy")
    assert status_of(p) == 429 and b"Retry-After: 7" in p.stdout
    p = post(receiver, ca, "/moved")  # curl does not follow without -L
    assert status_of(p) == 302 and b"Location: https://localhost:" in p.stdout
    assert receiver.requests_for("/elsewhere") == []


def test_receiver_slow_and_never_answering_paths(receiver, ca):
    receiver.script("/slow", Answer(200, delay=1.0))
    receiver.script("/hang", Answer(hang=True))
    t0 = time.monotonic()
    assert status_of(post(receiver, ca, "/slow")) == 200
    assert time.monotonic() - t0 >= 1.0
    t0 = time.monotonic()
    p = post(receiver, ca, "/hang", extra=("-m", "2"))
    assert p.returncode == 28  # curl: operation timed out
    assert 1.9 <= time.monotonic() - t0 < 10
    assert len(receiver.requests_for("/hang")) == 1


def test_receiver_counts_accepted_connections_and_keep_alive_reuses_one(receiver, ca):
    assert receiver.accept_count() == 0
    # Two requests on one curl command line: one connection, kept alive.
    p = curl("--cacert", ca.ca_file, "-o", "/dev/null", "-o", "/dev/null", "-d", "x",
             receiver.url("/a"), receiver.url("/b"))
    assert p.returncode == 0, p.stderr
    assert receiver.accept_count() == 1
    assert {r.conn for r in receiver.requests} == {1}
    # A bare TCP connect is counted even though it never speaks TLS.
    import socket
    with socket.create_connection(("127.0.0.1", receiver.port)):
        pass
    deadline = time.time() + 5
    while receiver.accept_count() < 2 and time.time() < deadline:
        time.sleep(0.02)
    assert receiver.accept_count() == 2


def vectors():
    out = [VECTOR]
    if os.path.exists(VECTORS):
        with open(VECTORS) as f:
            out += json.load(f)["vectors"]
    return out


@pytest.mark.parametrize("vec", vectors(), ids=lambda v: v["msg_id"])
def test_verifier_accepts_the_published_vector_and_refuses_changes(vec):
    headers = {"webhook-id": vec["msg_id"], "webhook-timestamp": str(vec["timestamp"]),
               "webhook-signature": vec["signature"]}
    body = vec["payload"].encode()
    other = "whsec_" + base64.b64encode(b"\x01" * 32).decode()
    res = verify_signatures([
        {"body": body, "headers": headers, "secret": vec["secret"], "now": vec["timestamp"]},
        {"body": body + b" ", "headers": headers, "secret": vec["secret"],
         "now": vec["timestamp"]},
        {"body": body, "headers": headers, "secret": other, "now": vec["timestamp"]},
        # The real clock: five years old.
        {"body": body, "headers": headers, "secret": vec["secret"]},
        # A rotation header: the matching signature may be second.
        {"body": body, "headers": {**headers, "webhook-signature":
                                   "v1,AAAA" + vec["signature"][7:] + " " + vec["signature"]},
         "secret": vec["secret"], "now": vec["timestamp"]},
    ])
    assert res[0]["ok"] and res[0]["payload"] == json.loads(vec["payload"]), res[0]
    assert not res[1]["ok"] and "signature" in res[1]["error"].lower()
    assert not res[2]["ok"]
    assert not res[3]["ok"] and "old" in res[3]["error"]
    assert res[4]["ok"]


def test_verifier_agrees_with_an_independent_hmac_on_fresh_input():
    key = os.urandom(32)
    secret = "whsec_" + base64.b64encode(key).decode()
    ts = int(time.time())
    body = '{"type":"x","data":{"é":"ü"}}'.encode()
    sig = base64.b64encode(hmac.new(key, b"msg_X." + str(ts).encode() + b"." + body,
                                    hashlib.sha256).digest()).decode()
    res = verify_signatures([{"body": body, "headers": {
        "webhook-id": "msg_X", "webhook-timestamp": str(ts), "webhook-signature": "v1," + sig},
        "secret": secret}])
    assert res[0]["ok"], res


def test_smtp_server_takes_mail_over_starttls_only_and_records_it(ca):
    smtp = SmtpServer(ca)
    try:
        msg = (b"From: a@localhost\r\nTo: ops@example.com\r\nSubject: hello\r\n\r\n"
               b"key killed\r\n")
        args = ["--mail-from", "a@localhost", "--mail-rcpt", "ops@example.com",
                "--upload-file", "-", smtp.url]
        # Without STARTTLS the server refuses the mail.
        p = subprocess.run(["curl", "-sS", *args], input=msg, capture_output=True, timeout=20)
        assert p.returncode != 0
        assert smtp.mails == []
        p = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", ca.ca_file, *args],
                           input=msg, capture_output=True, timeout=20)
        assert p.returncode == 0, p.stderr
        mails = smtp.wait_mails(1, timeout=5)
        assert len(mails) == 1
        m = mails[0]
        assert m.tls and m.rcpt_tos == ["ops@example.com"] and m.mail_from == "a@localhost"
        assert m.message["Subject"] == "hello"
        assert "key killed" in m.text()
    finally:
        smtp.close()


def test_smtp_server_with_auth_refuses_a_wrong_password(ca):
    smtp = SmtpServer(ca, auth=("pcl", "s3cret"))
    try:
        msg = b"From: a@localhost\r\nTo: b@example.com\r\nSubject: s\r\n\r\nx\r\n"
        base = ["curl", "-sS", "--ssl-reqd", "--cacert", ca.ca_file, "--mail-from",
                "a@localhost", "--mail-rcpt", "b@example.com", "--upload-file", "-", smtp.url]
        p = subprocess.run(base + ["--user", "pcl:wrong"], input=msg, capture_output=True,
                           timeout=20)
        assert p.returncode != 0
        p = subprocess.run(base + ["--user", "pcl:s3cret"], input=msg, capture_output=True,
                           timeout=20)
        assert p.returncode == 0, p.stderr
        m = smtp.wait_mails(1, timeout=5)
        assert len(m) == 1 and m[0].auth == "pcl"
    finally:
        smtp.close()
