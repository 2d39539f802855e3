"""Webhook delivery, black-box, against real peers (webhook_peers.py): the
real binary (`serve` with its worker child) delivering to a local HTTPS
receiver with a test CA (`[webhooks] allow_ranges = 127.0.0.0/8`,
`ca_file`), signatures checked by the npm standardwebhooks library, on
SQLite and on PostgreSQL. WEBHOOKS.md is the contract: headers and body,
retries and what each answer means, the egress guard, rotation, filters,
kill notices, at-least-once across kill -9 and a PostgreSQL restart,
sealed secrets, records (attempts, resend, recover).

The helpers at the top are shared with test_mail.py.
"""
import datetime
import json
import os
import re
import signal
import sqlite3
import time

import pytest

from conftest import assert_problem, fresh_pg_database
from test_keys import TIME_RE, create_key, new_org, org_key
from test_worker import wait_gone, worker_child
from webhook_peers import (Answer, Receiver, TestCA, verify_request,
                           verify_signatures, webhooks_config)

HOOK_SCOPES = ["webhooks:write", "logs:read", "keys:read", "keys:write", "gateway"]
SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")  # base64 of 32 bytes
MSG_RE = re.compile(r"^msg_[0-9A-HJKMNP-TV-Z]{26}$")
EP_RE = re.compile(r"^ep_[0-9A-HJKMNP-TV-Z]{26}$")
# What the tests publish. Endpoints subscribe to these unless a test says otherwise, so that
# Portcullis's own events (api_key.created for the test's own key, project.created) never mix
# with what a test counts.
PUBLISHED_TYPES = ["invoice.paid", "invoice.voided", "customer.created", "order.created",
                   "burst.item", "x.y", "webhook.test"]


# ---- helpers shared by the webhook test modules ----

@pytest.fixture(scope="module")
def ca():
    return TestCA()


@pytest.fixture
def receiver(ca):
    r = Receiver(ca)
    yield r
    r.close()


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def rfc3339(t):
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


class Hooks:
    """One started instance set up for webhooks: an organisation (with a
    contact email) and a key for it holding HOOK_SCOPES, plus calls on the
    webhook API as WEBHOOKS.md names them."""

    def __init__(self, inst, receiver, contact_email="ops@example.com"):
        self.inst = inst
        self.rx = receiver
        self.contact = contact_email
        self.org = new_org(inst, "acme", contact_email=contact_email)
        self.key = org_key(inst, self.org, HOOK_SCOPES, name="hooks")["key"]

    def req(self, method, path, **kw):
        return self.inst.request(method, path, key=self.key, **kw)

    def endpoint(self, path="/hook", url=None, **fields):
        """Create an endpoint on the receiver's path; the 201 object (with secret)."""
        fields.setdefault("event_types", PUBLISHED_TYPES)
        body = {"url": url or self.rx.url(path), **fields}
        r = self.req("POST", "/v1/webhook-endpoints", json=body)
        assert r.status_code == 201, r.text
        ep = r.json()
        assert EP_RE.match(ep["id"]), ep
        assert SECRET_RE.match(ep["secret"]), ep
        return ep

    def get_endpoint(self, ep_id):
        r = self.req("GET", f"/v1/webhook-endpoints/{ep_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def publish(self, type_="invoice.paid", payload=None, project_id=None, idem=None,
                expect=201):
        body = {"type": type_, "payload": payload if payload is not None else {"n": 1}}
        if project_id:
            body["project_id"] = project_id
        headers = {"Idempotency-Key": idem} if idem else {}
        r = self.inst.root("POST", f"/v1/orgs/{self.org}/webhook-messages", json=body,
                           headers=headers)
        if expect is None:
            return r
        assert r.status_code == expect, r.text
        msg = r.json()
        assert MSG_RE.match(msg["id"]), msg
        return msg

    def message(self, msg_id):
        r = self.req("GET", f"/v1/webhook-messages/{msg_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def attempts(self, msg_id, ep_id=None):
        r = self.req("GET", f"/v1/webhook-messages/{msg_id}/attempts")
        assert r.status_code == 200, r.text
        out = r.json()["data"]
        return [a for a in out if ep_id is None or a["endpoint_id"] == ep_id]

    def wait_attempts(self, msg_id, n, ep_id=None, timeout=20):
        deadline = time.time() + timeout
        while True:
            got = self.attempts(msg_id, ep_id)
            if len(got) >= n or time.time() > deadline:
                return sorted(got, key=lambda a: (a["at"], a["id"]))
            time.sleep(0.1)

    def status(self, msg_id, ep_id):
        """The message's delivery status for endpoint ep_id (pending|succeeded|failed), as
        the message listing shows it."""
        r = self.req("GET", f"/v1/webhook-messages?endpoint_id={ep_id}&limit=100")
        assert r.status_code == 200, r.text
        for m in r.json()["data"]:
            if m["id"] == msg_id:
                for d in m["deliveries"]:
                    if d.get("endpoint_id") == ep_id:
                        return d["status"]
        return None

    def wait_status(self, msg_id, ep_id, want, timeout=20):
        deadline = time.time() + timeout
        while True:
            s = self.status(msg_id, ep_id)
            if s == want or time.time() > deadline:
                return s
            time.sleep(0.1)


def hooks_instance(make_instance, receiver, ca, start=True, **cfg):
    smtp = cfg.pop("smtp", None)
    extra = cfg.pop("extra", "")
    inst = make_instance(config=webhooks_config(ca, smtp=smtp, extra=extra, **cfg))
    if start:
        inst.start()
    return inst


@pytest.fixture
def hooks(make_instance, receiver, ca):
    return Hooks(hooks_instance(make_instance, receiver, ca), receiver)


def wait_worker(inst, timeout=15, not_pid=None):
    """serve's worker child (test_worker.py finds it through /proc)."""
    return worker_child(inst, timeout=timeout, not_pid=not_pid)


def split_signatures(req):
    return req.headers["webhook-signature"].split(" ")


def verify_one_signature(req, sig, secret):
    """Does this single v1 signature of req verify with secret (the library's answer)?"""
    headers = {"webhook-id": req.headers["webhook-id"],
               "webhook-timestamp": req.headers["webhook-timestamp"], "webhook-signature": sig}
    return verify_signatures([{"body": req.body, "headers": headers, "secret": secret}])[0]["ok"]


def kill_via_api(inst, key, key_id, reason):
    r = inst.request("POST", f"/v1/api-keys/{key_id}/kill", key=key, json={"reason": reason})
    assert r.status_code == 200, r.text
    return r.headers["X-Request-Id"]


# ---- endpoints ----

def test_endpoint_urls_that_are_not_https_to_a_public_host_are_400_url(hooks):
    cases = {"http://example.com/h": "https_required",
             "https://user:pw@example.com/h": "userinfo",
             "https://example.com/" + "a" * 2100: "too_long",
             "https://10.0.0.1/h": "private_address",
             "https://169.254.169.254/latest": "private_address",
             "https://[::1]/h": "private_address",
             "https://0xa.1/h": "private_address",  # curl's forms of 10.0.0.1
             "https://167772161/h": "private_address"}
    for url, reason in cases.items():
        r = hooks.req("POST", "/v1/webhook-endpoints", json={"url": url})
        body = assert_problem(r, 400, "BAD_REQUEST")
        assert body["details"]["field"] == "url", (url, body)
        if url.startswith("http://"):
            assert body["details"]["reason"] == reason, body


def test_the_secret_is_shown_once_and_never_stored_or_listed_in_clear(hooks):
    ep = hooks.endpoint()
    got = hooks.get_endpoint(ep["id"])
    assert "secret" not in got
    listing = hooks.req("GET", "/v1/webhook-endpoints").json()["data"]
    assert [e["id"] for e in listing] == [ep["id"]]
    assert all("secret" not in e for e in listing)
    if hooks.inst.store == "sqlite":
        with open(hooks.inst.db_path, "rb") as f:
            raw = f.read()
        wal = hooks.inst.db_path + "-wal"
        if os.path.exists(wal):
            with open(wal, "rb") as f:
                raw += f.read()
        assert ep["secret"].encode() not in raw
        assert ep["secret"][6:].encode() not in raw
        with sqlite3.connect(f"file:{hooks.inst.db_path}?mode=ro", uri=True) as db:
            (stored,) = db.execute("SELECT secret FROM webhook_endpoints WHERE id = ?",
                                   (ep["id"],)).fetchone()
        assert stored.startswith("pcs1:"), stored


# ---- delivery ----

def test_delivery_has_standard_webhooks_headers_that_the_reference_library_verifies(hooks):
    ep = hooks.endpoint("/hook")
    payload = {"invoice": "in_1", "amount": 1250, "text": "caf\u00e9 \u2603"}
    msg = hooks.publish("invoice.paid", payload)
    (req,) = hooks.rx.wait_requests(1, "/hook", msg_id=msg["id"])
    assert req.method == "POST"
    assert req.headers["webhook-id"] == msg["id"]
    assert abs(int(req.headers["webhook-timestamp"]) - req.at) < 5
    assert req.headers["content-type"] == "application/json"
    assert re.match(r"^Portcullis-Webhooks/\S+$", req.headers["user-agent"]), req.headers
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", req.headers["webhook-signature"])
    res = verify_request(req, ep["secret"])
    assert res["ok"], res
    body = json.loads(req.body)
    assert list(body) == ["type", "timestamp", "data"]
    assert body["type"] == "invoice.paid" and body["data"] == payload
    assert TIME_RE.match(body["timestamp"])
    assert abs(parse_time(body["timestamp"]) - req.at) < 10
    assert hooks.wait_status(msg["id"], ep["id"], "succeeded") == "succeeded"
    (att,) = hooks.wait_attempts(msg["id"], 1, ep["id"])
    assert att["status"] == "succeeded" and att["http_status"] == 200 and att["error"] is None
    assert att["response"] == "ok"
    # Another secret does not verify it.
    other = hooks.endpoint("/other")
    assert not verify_request(req, other["secret"])["ok"]


def test_500_then_200_is_retried_with_the_same_id_and_byte_identical_body(hooks):
    big = "x" * 3000
    hooks.rx.script("/flaky", [Answer(500, body=big), Answer(502, body="bad gateway"),
                               Answer(200, body="done")])
    ep = hooks.endpoint("/flaky")
    msg = hooks.publish("order.created", {"order": 7})
    reqs = hooks.rx.wait_requests(3, "/flaky", timeout=20)
    assert len(reqs) == 3, reqs
    assert {r.headers["webhook-id"] for r in reqs} == {msg["id"]}
    assert len({r.body for r in reqs}) == 1
    for r in reqs:
        assert verify_request(r, ep["secret"])["ok"]
    # Each attempt is signed with its own timestamp.
    assert [int(r.headers["webhook-timestamp"]) for r in reqs] == sorted(
        int(r.headers["webhook-timestamp"]) for r in reqs)
    assert hooks.wait_status(msg["id"], ep["id"], "succeeded") == "succeeded"
    atts = hooks.wait_attempts(msg["id"], 3, ep["id"])
    assert [a["status"] for a in atts] == ["failed", "failed", "succeeded"]
    assert [a["http_status"] for a in atts] == [500, 502, 200]
    assert [a["error"] for a in atts] == ["status", "status", None]
    assert atts[0]["response"] == big[:1024]
    assert atts[1]["response"] == "bad gateway"
    for a in atts:
        assert isinstance(a["duration_ms"], int) and 0 <= a["duration_ms"] < 10000
        assert TIME_RE.match(a["at"])
        assert a["id"].startswith("att_")
    assert atts[0]["next_attempt_at"] is not None
    # The schedule "0s,1s,2s" with +/-20 % jitter: about 1 s, then about 2 s.
    gap1, gap2 = reqs[1].at - reqs[0].at, reqs[2].at - reqs[1].at
    assert 0.7 <= gap1 <= 3.0, gap1
    assert 1.5 <= gap2 <= 4.0, gap2


def test_all_attempts_failing_ends_failed_after_the_schedule(hooks):
    hooks.rx.script("/down", Answer(500))
    ep = hooks.endpoint("/down")
    msg = hooks.publish()
    assert hooks.wait_status(msg["id"], ep["id"], "failed", timeout=25) == "failed"
    atts = hooks.attempts(msg["id"], ep["id"])
    assert len(atts) == 3  # "0s,1s,2s": three attempts
    assert all(a["status"] == "failed" for a in atts)
    time.sleep(3)
    assert len(hooks.rx.requests_for("/down")) == 3


def test_a_redirect_is_a_failure_and_its_location_is_never_fetched(hooks):
    target = hooks.rx.url("/target")
    hooks.rx.script("/moved", [Answer(301, headers={"Location": target}),
                               Answer(307, headers={"Location": target}), Answer(200)])
    ep = hooks.endpoint("/moved")
    msg = hooks.publish()
    assert hooks.wait_status(msg["id"], ep["id"], "succeeded") == "succeeded"
    atts = hooks.attempts(msg["id"], ep["id"])
    atts.sort(key=lambda a: a["at"])
    assert [(a["status"], a["http_status"], a["error"]) for a in atts] == [
        ("failed", 301, "status"), ("failed", 307, "status"), ("succeeded", 200, None)]
    assert hooks.rx.requests_for("/target") == []


def test_410_disables_the_endpoint_at_once(hooks):
    hooks.rx.script("/gone", Answer(410))
    ep = hooks.endpoint("/gone")
    keep = hooks.endpoint("/kept")
    msg = hooks.publish()
    assert hooks.wait_status(msg["id"], ep["id"], "failed") == "failed"
    assert len(hooks.rx.requests_for("/gone")) == 1
    # The engine records the batch of attempts, then disables the endpoint in
    # the next statement (engine.c flush -> post_actions): a reader can see the
    # failed delivery a moment before the disabled endpoint.
    deadline = time.monotonic() + 10
    got = hooks.get_endpoint(ep["id"])
    while not got["disabled"] and time.monotonic() < deadline:
        time.sleep(0.05)
        got = hooks.get_endpoint(ep["id"])
    assert got["disabled"] is True, got
    # No more deliveries to it; the other endpoint still gets everything.
    msg2 = hooks.publish()
    assert hooks.rx.wait_requests(1, "/kept", msg_id=msg2["id"])
    time.sleep(1.5)
    assert len(hooks.rx.requests_for("/gone")) == 1
    assert hooks.wait_status(msg2["id"], keep["id"], "succeeded") == "succeeded"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(hooks, status):
    # Schedule "0s,1s,2s": the next step is 1 s (0.8 to 1.2 with jitter); Retry-After: 2 asks
    # for 2 s, within [1 s, 2 s] (the clamp of WEBHOOKS.md), so the retry waits 2 s.
    hooks.rx.script("/busy", [Answer(status, headers={"Retry-After": "2"}), Answer(200)])
    ep = hooks.endpoint("/busy")
    msg = hooks.publish()
    reqs = hooks.rx.wait_requests(2, "/busy", timeout=15)
    assert len(reqs) == 2
    assert reqs[1].at - reqs[0].at >= 1.9, reqs[1].at - reqs[0].at
    assert reqs[1].at - reqs[0].at < 5
    atts = hooks.wait_attempts(msg["id"], 2, ep["id"])
    assert atts[0]["http_status"] == status and atts[0]["status"] == "failed"
    assert parse_time(atts[0]["next_attempt_at"]) - parse_time(atts[0]["at"]) >= 1.9


def test_retry_after_is_clamped_to_twice_the_next_step(hooks):
    hooks.rx.script("/busy", [Answer(503, headers={"Retry-After": "3600"}), Answer(200)])
    hooks.endpoint("/busy")
    hooks.publish()
    reqs = hooks.rx.wait_requests(2, "/busy", timeout=15)
    assert len(reqs) == 2
    # Clamped to twice the next step (1 s, jittered by at most 20 %): well under an hour.
    assert 0.7 <= reqs[1].at - reqs[0].at <= 4, reqs[1].at - reqs[0].at


def test_a_receiver_that_never_answers_is_a_timeout(make_instance, receiver, ca):
    hooks = Hooks(hooks_instance(make_instance, receiver, ca, timeout_s=2), receiver)
    receiver.script("/hang", Answer(hang=True))
    ep = hooks.endpoint("/hang")
    msg = hooks.publish()
    (att,) = hooks.wait_attempts(msg["id"], 1, ep["id"], timeout=15)[:1]
    assert att["status"] == "failed" and att["error"] == "timeout", att
    assert att["http_status"] is None
    assert 1800 <= att["duration_ms"] <= 6000, att


def test_a_slow_receiver_does_not_delay_another_endpoint(make_instance, receiver, ca):
    hooks = Hooks(hooks_instance(make_instance, receiver, ca, timeout_s=10,
                                 lease_s=12), receiver)
    receiver.script("/slow", Answer(200, delay=6))
    hooks.endpoint("/slow")
    hooks.endpoint("/fast")
    t0 = time.time()
    msgs = [hooks.publish() for _ in range(5)]
    for m in msgs:
        (r,) = receiver.wait_requests(1, "/fast", msg_id=m["id"], timeout=10)
        assert r.at - t0 < 4, r.at - t0


def test_localhost_without_allow_ranges_is_refused_and_never_connected(make_instance, receiver,
                                                                         ca):
    hooks = Hooks(hooks_instance(make_instance, receiver, ca, allow_ranges=None), receiver)
    # A host name (not a literal): accepted at create, refused at delivery, after resolving.
    ep = hooks.endpoint("/hook", url=receiver.url("/hook", host="localhost"))
    msg = hooks.publish()
    atts = hooks.wait_attempts(msg["id"], 1, ep["id"], timeout=15)
    assert atts and atts[0]["status"] == "failed" and atts[0]["error"] == "egress_refused", atts
    assert atts[0]["http_status"] is None
    hooks.wait_status(msg["id"], ep["id"], "failed", timeout=20)
    assert receiver.accept_count() == 0
    assert receiver.requests == []
    # A 127.0.0.1 literal is refused when the endpoint is created.
    r = hooks.req("POST", "/v1/webhook-endpoints",
                  json={"url": receiver.url("/hook", host="127.0.0.1")})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "url"


def test_rotation_sends_two_signatures_during_the_grace_each_verifying(hooks):
    ep = hooks.endpoint("/rot")
    old = ep["secret"]
    r = hooks.req("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret",
                  json={"grace_seconds": 3600})
    assert r.status_code in (200, 201), r.text
    new = r.json()["secret"]
    assert SECRET_RE.match(new) and new != old
    msg = hooks.publish()
    (req,) = hooks.rx.wait_requests(1, "/rot", msg_id=msg["id"])
    sigs = split_signatures(req)
    assert len(sigs) == 2, sigs
    assert verify_request(req, old)["ok"] and verify_request(req, new)["ok"]
    # Each signature is one secret's: one verifies with the new, the other with the old.
    by_new = [verify_one_signature(req, s, new) for s in sigs]
    by_old = [verify_one_signature(req, s, old) for s in sigs]
    assert sorted(by_new) == [False, True] and sorted(by_old) == [False, True]
    assert by_new != by_old


def test_rotation_with_no_grace_signs_with_the_new_secret_only(hooks):
    ep = hooks.endpoint("/rot")
    r = hooks.req("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret",
                  json={"grace_seconds": 0})
    assert r.status_code in (200, 201), r.text
    new = r.json()["secret"]
    msg = hooks.publish()
    (req,) = hooks.rx.wait_requests(1, "/rot", msg_id=msg["id"])
    assert len(split_signatures(req)) == 1
    assert verify_request(req, new)["ok"]
    assert not verify_request(req, ep["secret"])["ok"]


def test_event_type_and_project_filters(hooks):
    p1 = hooks.req("POST", "/v1/projects", json={"name": "one"}).json()["id"]
    p2 = hooks.req("POST", "/v1/projects", json={"name": "two"}).json()["id"]
    hooks.endpoint("/typed", event_types=["invoice.paid", "invoice.voided"])
    hooks.endpoint("/p1", project_id=p1, event_types=None)
    hooks.endpoint("/all", event_types=None)
    m_paid = hooks.publish("invoice.paid")
    m_other = hooks.publish("customer.created")
    m_p1 = hooks.publish("invoice.paid", project_id=p1)
    m_p2 = hooks.publish("invoice.voided", project_id=p2)
    everything = {m["id"] for m in (m_paid, m_other, m_p1, m_p2)}

    def got(path):
        return {r.headers["webhook-id"] for r in hooks.rx.requests_for(path)}
    deadline = time.time() + 15
    while not got("/all") >= everything and time.time() < deadline:
        time.sleep(0.1)
    assert got("/all") >= everything
    time.sleep(1.5)  # nothing else arrives late
    # project.created events (an organisation-wide type) reach /all and /p1 too: not counted.
    assert got("/typed") == {m_paid["id"], m_p1["id"], m_p2["id"]}
    assert got("/p1") & everything == {m_paid["id"], m_other["id"], m_p1["id"]}


def test_portcullis_events_are_delivered_too(hooks):
    """A change's own event (WEBHOOKS.md source 1): a key created is api_key.created."""
    hooks.endpoint("/ev", event_types=["api_key.created"])
    k = create_key(hooks.inst, hooks.key, name="ci")
    deadline = time.time() + 15
    while True:
        mine = [r for r in hooks.rx.requests_for("/ev")
                if json.loads(r.body)["data"].get("key_id") == k["id"]]
        if mine or time.time() > deadline:
            break
        time.sleep(0.1)
    assert len(mine) == 1, hooks.rx.requests_for("/ev")
    req = mine[0]
    body = json.loads(req.body)
    assert body["type"] == "api_key.created"
    assert body["data"]["key_id"] == k["id"] and body["data"]["start"] == k["start"]
    text = req.body.decode()
    assert k["key"] not in text and k["key"].split(".", 1)[1] not in text


def test_a_key_kill_is_delivered_as_api_key_killed_without_secrets(hooks):
    ep = hooks.endpoint("/kills", event_types=["api_key.killed"])
    k = create_key(hooks.inst, hooks.key, name="leaky")
    rid = kill_via_api(hooks.inst, hooks.key, k["id"], "leaked in a CI log")
    (req,) = hooks.rx.wait_requests(1, "/kills")
    assert verify_request(req, ep["secret"])["ok"]
    body = json.loads(req.body)
    assert body["type"] == "api_key.killed"
    d = body["data"]
    assert d["key_id"] == k["id"] and d["start"] == k["start"] and d["org_id"] == hooks.org
    assert d["scope"] == "key" and d["reason"] == "leaked in a CI log"
    assert d["request_id"] == rid and TIME_RE.match(d["at"])
    text = req.body.decode()
    assert "pcl_" not in text.replace(k["start"], "") and "whsec_" not in text
    assert k["key"].split(".", 1)[1] not in text


def test_publish_idempotency_replays_and_refuses_a_different_body(hooks):
    hooks.endpoint("/idem")
    a = hooks.publish("x.y", {"n": 1}, idem="pay-1")
    b = hooks.publish("x.y", {"n": 1}, idem="pay-1")
    assert a["id"] == b["id"]
    r = hooks.publish("x.y", {"n": 2}, idem="pay-1", expect=None)
    assert_problem(r, 422, "IDEMPOTENCY_KEY_REUSED")  # as the data plane (docs/api.md)
    hooks.rx.wait_requests(1, "/idem", msg_id=a["id"])
    time.sleep(1)
    assert len(hooks.rx.requests_for("/idem")) == 1


# ---- records ----

def test_resend_delivers_the_same_message_again(hooks):
    ep = hooks.endpoint("/r")
    msg = hooks.publish()
    (first,) = hooks.rx.wait_requests(1, "/r", msg_id=msg["id"])
    assert hooks.wait_status(msg["id"], ep["id"], "succeeded") == "succeeded"
    r = hooks.req("POST", f"/v1/webhook-messages/{msg['id']}/resend",
                  json={"endpoint_id": ep["id"]})
    assert r.status_code in (200, 202), r.text
    reqs = hooks.rx.wait_requests(2, "/r", msg_id=msg["id"])
    assert len(reqs) == 2
    assert reqs[1].headers["webhook-id"] == msg["id"] and reqs[1].body == first.body
    assert verify_request(reqs[1], ep["secret"])["ok"]
    assert len(hooks.wait_attempts(msg["id"], 2, ep["id"])) == 2


def test_recover_requeues_failed_messages_since_a_time(hooks):
    hooks.rx.script("/rec", Answer(500))
    ep = hooks.endpoint("/rec")
    since = rfc3339(time.time() - 1)
    msgs = [hooks.publish() for _ in range(3)]
    for m in msgs:
        assert hooks.wait_status(m["id"], ep["id"], "failed", timeout=25) == "failed"
    hooks.rx.script("/rec", Answer(200))
    r = hooks.req("POST", f"/v1/webhook-endpoints/{ep['id']}/recover", json={"since": since})
    assert r.status_code in (200, 202), r.text
    for m in msgs:
        assert hooks.wait_status(m["id"], ep["id"], "succeeded") == "succeeded"


def test_the_test_route_sends_webhook_test(hooks):
    ep = hooks.endpoint("/t")
    r = hooks.req("POST", f"/v1/webhook-endpoints/{ep['id']}/test")
    assert r.status_code in (200, 201, 202), r.text
    (req,) = hooks.rx.wait_requests(1, "/t")
    assert json.loads(req.body)["type"] == "webhook.test"
    assert verify_request(req, ep["secret"])["ok"]


def test_message_listing_filters_by_endpoint_and_status(hooks):
    hooks.rx.script("/bad", Answer(500))
    good = hooks.endpoint("/good")
    bad = hooks.endpoint("/bad")
    msg = hooks.publish()
    assert hooks.wait_status(msg["id"], bad["id"], "failed", timeout=25) == "failed"
    assert hooks.wait_status(msg["id"], good["id"], "succeeded") == "succeeded"

    def ids(q):
        r = hooks.req("GET", "/v1/webhook-messages" + q)
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["data"]]
    assert msg["id"] in ids(f"?endpoint_id={bad['id']}&status=failed")
    assert msg["id"] in ids(f"?endpoint_id={good['id']}&status=succeeded")
    assert msg["id"] not in ids(f"?endpoint_id={good['id']}&status=failed")
    assert msg["id"] in ids("?type=invoice.paid")
    assert msg["id"] not in ids("?type=nothing.here")


# ---- at least once ----

def burst(hooks, n, paths):
    """Publish n messages (each to every endpoint on paths); returns their ids."""
    return [hooks.publish("burst.item", {"i": i})["id"] for i in range(n)]


def delivered_counts(rx, path):
    counts = {}
    for r in rx.requests_for(path):
        counts[r.headers.get("webhook-id")] = counts.get(r.headers.get("webhook-id"), 0) + 1
    return counts


def wait_all_delivered(rx, paths, ids, timeout=60):
    deadline = time.time() + timeout
    while True:
        missing = {p: [i for i in ids if i not in delivered_counts(rx, p)] for p in paths}
        if not any(missing.values()) or time.time() > deadline:
            return missing
        time.sleep(0.2)


def test_kill_9_of_the_worker_mid_burst_loses_nothing(hooks, capsys):
    paths = ["/k1", "/k2"]
    for p in paths:
        hooks.endpoint(p)
    worker = wait_worker(hooks.inst)
    ids = burst(hooks, 100, paths)
    hooks.rx.wait_requests(20, timeout=20)
    os.kill(worker, signal.SIGKILL)
    ids += burst(hooks, 100, paths)
    new_worker = wait_worker(hooks.inst, not_pid=worker)
    assert new_worker != worker
    missing = wait_all_delivered(hooks.rx, paths, ids)
    assert not any(missing.values()), {p: len(m) for p, m in missing.items()}
    dups = sum(c - 1 for p in paths for c in delivered_counts(hooks.rx, p).values() if c > 1)
    with capsys.disabled():
        print(f"\nkill -9 of the worker: {len(ids)} messages x {len(paths)} endpoints, "
              f"0 lost, {dups} duplicates")
    # Duplicates are bounded by what was in flight: never more than one batch's worth.
    assert dups <= 2 * 512


def test_kill_9_of_the_whole_node_loses_nothing(make_instance, receiver, ca, capsys):
    inst = hooks_instance(make_instance, receiver, ca)
    hooks = Hooks(inst, receiver)
    hooks.endpoint("/n")
    worker = wait_worker(inst)
    ids = burst(hooks, 100, ["/n"])
    inst.stop(sig=signal.SIGKILL)
    # The worker child goes with it (PR_SET_PDEATHSIG).
    assert wait_gone(worker), "the worker outlived a kill -9 of serve"
    inst.start()
    missing = wait_all_delivered(receiver, ["/n"], ids)
    assert not missing["/n"], len(missing["/n"])
    dups = sum(c - 1 for c in delivered_counts(receiver, "/n").values() if c > 1)
    with capsys.disabled():
        print(f"\nkill -9 of serve: {len(ids)} messages, 0 lost, {dups} duplicates")


def test_postgres_restart_mid_burst_loses_nothing_acknowledged(make_instance, receiver, ca,
                                                                store_kind, capsys):
    if store_kind != "postgres":
        pytest.skip("a PostgreSQL restart")
    from test_cluster import PrivateServers
    servers = PrivateServers()
    try:
        inst = make_instance(store="postgres",
                             env={"PORTCULLIS_STORE_URL": fresh_pg_database(servers.pg_url)},
                             config=webhooks_config(ca))
        inst.start()
        hooks = Hooks(inst, receiver)
        hooks.endpoint("/pg")
        ids = burst(hooks, 50, ["/pg"])
        servers.pg_stop()
        refused = 0
        for i in range(20):  # during the outage: acknowledged (201) or refused (503)
            r = hooks.publish("burst.item", {"during": i}, expect=None)
            if r.status_code == 201:
                ids.append(r.json()["id"])
            else:
                assert r.status_code == 503, r.text
                refused += 1
        time.sleep(1)
        servers.pg_start()
        deadline = time.time() + 30
        while time.time() < deadline:
            r = hooks.publish("burst.item", {"after": 1}, expect=None)
            if r.status_code == 201:
                ids.append(r.json()["id"])
                break
            time.sleep(0.2)
        ids += burst(hooks, 50, ["/pg"])
        missing = wait_all_delivered(receiver, ["/pg"], ids, timeout=90)
        assert not missing["/pg"], len(missing["/pg"])
        dups = sum(c - 1 for c in delivered_counts(receiver, "/pg").values() if c > 1)
        with capsys.disabled():
            print(f"\nPostgreSQL restart: {len(ids)} acknowledged messages, 0 lost, "
                  f"{dups} duplicates, {refused} publishes refused during the outage")
    finally:
        servers.pg_start()
        servers.close()


# ---- secrets at rest ----

def test_serve_has_no_descriptor_or_mapping_of_the_private_key_file(hooks):
    ep = hooks.endpoint("/sk")
    msg = hooks.publish()
    (req,) = hooks.rx.wait_requests(1, "/sk", msg_id=msg["id"])
    assert verify_request(req, ep["secret"])["ok"]  # the worker opened the secret
    key_file = os.path.realpath(os.path.join(hooks.inst.dir, "secrets.key"))
    assert os.path.exists(key_file), os.listdir(hooks.inst.dir)
    assert os.stat(key_file).st_mode & 0o077 == 0
    serve = hooks.inst.proc.pid
    fds = []
    for fd in os.listdir(f"/proc/{serve}/fd"):
        try:
            fds.append(os.path.realpath(f"/proc/{serve}/fd/{fd}"))
        except OSError:
            pass
    assert key_file not in fds
    with open(f"/proc/{serve}/maps") as f:
        assert key_file not in f.read()
    # The worker is another process (the one that did open it).
    assert wait_worker(hooks.inst) != serve


def copy_secret(inst, from_id, to_id):
    """Copy endpoint from_id's sealed secret onto to_id's row, in the database itself."""
    if inst.store == "sqlite":
        with sqlite3.connect(inst.db_path) as db:
            db.execute("UPDATE webhook_endpoints SET secret = "
                       "(SELECT secret FROM webhook_endpoints WHERE id = ?) WHERE id = ?",
                       (from_id, to_id))
    else:
        import psycopg2
        conn = psycopg2.connect(inst.env["PORTCULLIS_STORE_URL"])
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE webhook_endpoints SET secret = "
                        "(SELECT secret FROM webhook_endpoints WHERE id = %s) WHERE id = %s",
                        (from_id, to_id))
        conn.close()


def test_a_sealed_secret_copied_to_another_row_does_not_open(make_instance, receiver, ca):
    inst = hooks_instance(make_instance, receiver, ca)
    hooks = Hooks(inst, receiver)
    a = hooks.endpoint("/a")
    b = hooks.endpoint("/b")
    copy_secret(inst, a["id"], b["id"])
    msg = hooks.publish()
    (ra,) = hooks.rx.wait_requests(1, "/a", msg_id=msg["id"])
    assert verify_request(ra, a["secret"])["ok"]
    assert hooks.wait_status(msg["id"], a["id"], "succeeded") == "succeeded"
    # b's secret does not open (another row's context): the worker says so, and sends nothing,
    # not even after its lease (lease_s = 3) ran out and it tried again.
    deadline = time.time() + 15
    while time.time() < deadline and not any(
            ev.get("event") == "webhook_secret_unavailable" and ev.get("endpoint_id") == b["id"]
            for ev in inst.log_events()):
        time.sleep(0.1)
    assert any(ev.get("event") == "webhook_secret_unavailable"
               and ev.get("endpoint_id") == b["id"] for ev in inst.log_events())
    time.sleep(4)
    assert hooks.rx.requests_for("/b") == []
    assert hooks.status(msg["id"], b["id"]) != "succeeded"
    log = inst.read_log()
    assert a["secret"] not in log and b["secret"] not in log


def test_a_secret_that_does_not_open_is_a_recorded_failed_attempt(make_instance, receiver, ca):
    """WEBHOOKS.md "Records": the delivery fails visibly (an attempt with an error), rather
    than staying pending with nothing in the records."""
    inst = hooks_instance(make_instance, receiver, ca)
    hooks = Hooks(inst, receiver)
    a = hooks.endpoint("/a")
    b = hooks.endpoint("/b")
    copy_secret(inst, a["id"], b["id"])
    msg = hooks.publish()
    atts = hooks.wait_attempts(msg["id"], 1, b["id"], timeout=15)
    # Not one of the contract's connection error classes (nothing was sent): error is null
    # and the recorded response says why.
    assert atts and atts[0]["status"] == "failed" and atts[0]["http_status"] is None, atts
    assert atts[0]["response"], atts
    assert hooks.rx.requests_for("/b") == []
