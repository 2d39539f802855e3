"""GitHub secret scanning partner endpoint, black-box (INCIDENT.md "Leaked-key
reports from secret scanners", docs/secret-scanning.md): POST
/v1/secret-scanning/github signed with a test P-256 key that a local HTTPS key
server publishes (the worker fetches it through the egress guard, allowed on
127.0.0.0/8 by [webhooks] allow_ranges) kills the reported key (the data plane
then answers 503) and answers GitHub's feedback array; a bad or missing
signature is 401 and changes nothing; a repeat is idempotent (one audit
event); an unknown key id is refetched; a token of another format is a
false positive; action = notify leaves the key live but sends the event by
webhook and email. The reported token is in no log line and no database file.
On SQLite and on PostgreSQL.
"""
import base64
import glob
import hashlib
import json
import os
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import KEY_RE, assert_problem
from test_audit import all_events
from test_keys import create_key, verify, wait_for
from test_mail import smtp  # noqa: F401
from test_webhooks import Hooks, ca, receiver  # noqa: F401
from webhook_peers import Answer, webhooks_config

PATH = "/v1/secret-scanning/github"


class SigningKey:
    """A P-256 key pair made for the test, published under key_id."""

    def __init__(self, key_id):
        self.key_id = key_id
        self.priv = ec.generate_private_key(ec.SECP256R1())
        self.pem = self.priv.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, body):
        return base64.b64encode(self.priv.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    def entry(self, current=True):
        return {"key_identifier": self.key_id, "key": self.pem, "is_current": current}


def publish(receiver, *keys):
    body = json.dumps({"public_keys": [k.entry() for k in keys]})
    receiver.script("/keys", Answer(200, {"Content-Type": "application/json"}, body))


def fetches(receiver):
    return len(receiver.requests_for("/keys"))


def scan_instance(make_instance, receiver, ca, smtp=None, action="kill",  # noqa: F811
                  refresh_min_s=1):
    cfg = webhooks_config(ca, smtp=smtp) + (
        "[secret_scanning]\n"
        f"github_keys_url = https://127.0.0.1:{receiver.port}/keys\n"
        f"action = {action}\nrefresh_min_s = {refresh_min_s}\n")
    inst = make_instance(config=cfg)
    inst.start()
    # The worker fetches the set at start.
    assert wait_for(lambda: any(e.get("event") == "secret_scanning_keys_fetched"
                                for e in inst.log_events()), timeout=15), inst.read_log()
    return inst


def started(make_instance, receiver, ca, gh, **kw):  # noqa: F811
    """gh published, an instance started with it, an organisation with a key: (inst,
    Hooks, a key object of that organisation)."""
    publish(receiver, gh)
    inst = scan_instance(make_instance, receiver, ca, **kw)
    hooks = Hooks(inst, receiver)
    return inst, hooks, create_key(inst, hooks.key)


def report(inst, key, matches, sign_with=None, raw=None, headers=None):
    body = raw if raw is not None else json.dumps(matches).encode()
    h = {"Content-Type": "application/json"}
    if key is not None:
        h["Github-Public-Key-Identifier"] = key.key_id
        h["Github-Public-Key-Signature"] = (sign_with or key).sign(body)
    h.update(headers or {})
    return inst.request("POST", PATH, data=body, headers=h)


def match(token, url="https://github.com/octo/app/blob/abc/config.env"):
    return {"token": token, "type": "portcullis_api_key", "url": url, "source": "content"}


def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


def leak_events(inst, key_id):
    return [e for e in all_events(inst) if e["action"] == "api_key.leak_reported"
            and e["target"]["id"] == key_id]


def assert_token_nowhere(inst, token):
    """The token is in no log line and no file of the instance (the SQLite database,
    its WAL, the log); on PostgreSQL, in no table the report could have written."""
    secret = token.split(".", 1)[1]
    for path in glob.glob(os.path.join(inst.dir, "**"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
            assert secret.encode() not in data, path
    if inst.store == "postgres":
        import psycopg2
        conn = psycopg2.connect(inst.env["PORTCULLIS_STORE_URL"])
        with conn.cursor() as cur:
            for table in ("secret_scanning_reports", "audit_events", "webhook_messages"):
                cur.execute(f"SELECT * FROM {table}")  # noqa: S608 (fixed names)
                assert secret not in repr(cur.fetchall()), table
        conn.close()


@pytest.fixture
def gh():
    return SigningKey("a" * 64)


def test_a_signed_report_kills_the_key_and_answers_the_feedback(make_instance, receiver, ca,
                                                                gh, smtp):  # noqa: F811
    publish(receiver, gh)
    inst = scan_instance(make_instance, receiver, ca, smtp=smtp)
    hooks = Hooks(inst, receiver)
    ep = hooks.endpoint("/events", event_types=["api_key.leak_reported", "api_key.killed"])
    k = create_key(inst, hooks.key, name="ci deploy")
    assert verify(inst, k["key"]).status_code == 200
    other = "ghp_" + "x" * 36
    r = report(inst, gh, [match(k["key"]), match(other)])
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"token_hash": sha(k["key"]), "token_type": "portcullis_api_key",
         "label": "true_positive"},
        {"token_hash": sha(other), "token_type": "portcullis_api_key",
         "label": "false_positive"}]
    assert wait_for(lambda: verify(inst, k["key"]).status_code == 503, timeout=5)
    assert_problem(verify(inst, k["key"]), 503, "KILL_SWITCH")
    (ev,) = leak_events(inst, k["id"])
    assert ev["actor"]["type"] == "system"
    details = ev["details"] if isinstance(ev["details"], dict) else json.loads(ev["details"])
    assert details["url"] == "https://github.com/octo/app/blob/abc/config.env"
    assert details["action_taken"] == "kill"
    kills = [e for e in all_events(inst) if e["action"] == "api_key.killed"
             and e["target"]["id"] == k["id"]]
    assert len(kills) == 1
    # The organisation hears of it by webhook and by email.
    got = receiver.wait_requests(2, "/events")
    bodies = [json.loads(q.body) for q in got]
    leak = [b for b in bodies if b["type"] == "api_key.leak_reported"]
    assert leak and leak[0]["data"]["key_id"] == k["id"], bodies
    assert leak[0]["data"]["url"] == "https://github.com/octo/app/blob/abc/config.env"
    assert leak[0]["data"]["action_taken"] == "kill"
    mails = smtp.wait_mails(2, timeout=20, to="ops@example.com")
    texts = [m.text() for m in mails]
    leak_mail = [t for t in texts if "found in public" in t or "secret scanner" in t]
    assert leak_mail, texts
    assert k["id"] in leak_mail[0]
    assert "https://github.com/octo/app/blob/abc/config.env" in leak_mail[0]
    assert "kill" in leak_mail[0]
    for m in mails:
        assert k["key"].split(".", 1)[1] not in m.data.decode("utf-8", "replace")
    del ep
    inst.stop()
    assert_token_nowhere(inst, k["key"])


def test_a_bad_or_missing_signature_is_401_and_changes_nothing(make_instance, receiver, ca,
                                                               gh):  # noqa: F811
    inst, hooks, k = started(make_instance, receiver, ca, gh)
    body = json.dumps([match(k["key"])]).encode()
    stranger = SigningKey(gh.key_id)
    cases = [
        report(inst, gh, None, raw=body, sign_with=stranger),  # another key's signature
        report(inst, None, None, raw=body),  # no headers
        report(inst, gh, None, raw=body, headers={
            "Github-Public-Key-Signature": gh.sign(body + b" ")}),  # over another body
        report(inst, gh, None, raw=body, headers={"Github-Public-Key-Signature": "bm9wZQ=="}),
        report(inst, gh, None, raw=body, headers={"Github-Public-Key-Signature": "%%%"}),
    ]
    for r in cases:
        assert_problem(r, 401, "INVALID_SIGNATURE")
    assert verify(inst, k["key"]).status_code == 200
    assert leak_events(inst, k["id"]) == []
    assert not [e for e in all_events(inst) if e["action"] == "api_key.killed"]


def test_a_repeat_is_idempotent(make_instance, receiver, ca, gh):  # noqa: F811
    inst, hooks, k = started(make_instance, receiver, ca, gh)
    first = report(inst, gh, [match(k["key"])])
    assert first.status_code == 200, first.text
    again = report(inst, gh, [match(k["key"]), match(k["key"])])
    assert again.status_code == 200, again.text
    assert again.json() == first.json() * 2
    assert len(leak_events(inst, k["id"])) == 1
    assert len([e for e in all_events(inst) if e["action"] == "api_key.killed"]) == 1


def test_an_unknown_key_id_is_refetched_at_most_once_per_gap(make_instance, receiver, ca,
                                                             gh):  # noqa: F811
    inst, hooks, k = started(make_instance, receiver, ca, gh)
    # GitHub rotates: the new key is published after the worker fetched the old set.
    new = SigningKey("b" * 64)
    publish(receiver, gh, new)
    time.sleep(1.2)  # past refresh_min_s since the fetch at start
    before = fetches(receiver)
    r = report(inst, new, [match(k["key"])])
    assert r.status_code == 200, r.text
    assert r.json()[0]["label"] == "true_positive"
    assert fetches(receiver) == before + 1
    assert wait_for(lambda: verify(inst, k["key"]).status_code == 503, timeout=5)


def test_an_unknown_key_id_waits_for_one_refresh_then_401(make_instance, receiver, ca,
                                                          gh):  # noqa: F811
    inst, hooks, k = started(make_instance, receiver, ca, gh, refresh_min_s=8)
    time.sleep(8.2)  # a fetch may happen again
    unknown = SigningKey("c" * 64)
    t = time.time()
    assert_problem(report(inst, unknown, [match(k["key"])]), 401, "INVALID_SIGNATURE")
    assert 4.5 <= time.time() - t < 10  # waited for the refreshed set, bounded
    assert fetches(receiver) == 2  # the refresh it asked for
    # Inside the gap no fetch can happen: 401 at once, and no more fetches.
    t = time.time()
    assert_problem(report(inst, unknown, [match(k["key"])]), 401, "INVALID_SIGNATURE")
    assert time.time() - t < 2
    assert fetches(receiver) == 2
    assert verify(inst, k["key"]).status_code == 200


def test_an_unknown_key_id_inside_the_gap_is_401_at_once(make_instance, receiver, ca,
                                                         gh):  # noqa: F811
    inst, hooks, k = started(make_instance, receiver, ca, gh, refresh_min_s=60)
    unknown = SigningKey("c" * 64)
    for _ in range(3):
        t = time.time()
        assert_problem(report(inst, unknown, [match(k["key"])]), 401, "INVALID_SIGNATURE")
        assert time.time() - t < 2
    time.sleep(1)
    # The set was fetched at start, less than a minute ago: no fetch for any report.
    assert fetches(receiver) == 1
    assert verify(inst, k["key"]).status_code == 200


def test_tokens_that_are_not_live_keys_are_false_positives(make_instance, receiver, ca,
                                                           gh):  # noqa: F811
    inst, hooks, k = started(make_instance, receiver, ca, gh)
    wrong_secret = k["key"][:-8] + ("A" if k["key"][-8] != "A" else "B") + k["key"][-7:]
    revoked = create_key(inst, hooks.key)
    assert inst.request("DELETE", f"/v1/api-keys/{revoked['id']}",
                        key=hooks.key).status_code == 200
    tokens = ["AKIAIOSFODNN7EXAMPLE", wrong_secret, revoked["key"],
              k["key"].replace("_live_", "_test_")]
    r = report(inst, gh, [match(t) for t in tokens])
    assert r.status_code == 200, r.text
    assert [x["label"] for x in r.json()] == ["false_positive"] * 4
    assert [x["token_hash"] for x in r.json()] == [sha(t) for t in tokens]
    assert verify(inst, k["key"]).status_code == 200
    assert leak_events(inst, k["id"]) == []


def test_malformed_bodies_are_400(make_instance, receiver, ca, gh):  # noqa: F811
    publish(receiver, gh)
    inst = scan_instance(make_instance, receiver, ca)
    for raw in [b"{}", b"not json", b"[1]", b'[{"type":"x"}]', b'[{"token":""}]',
                json.dumps([match("t")] * 1001).encode()]:
        r = report(inst, gh, None, raw=raw)
        assert_problem(r, 400, "BAD_REQUEST")


def test_notify_leaves_the_key_live_and_sends_the_event(make_instance, receiver, ca,
                                                        gh):  # noqa: F811
    publish(receiver, gh)
    inst = scan_instance(make_instance, receiver, ca, action="notify")
    hooks = Hooks(inst, receiver)
    hooks.endpoint("/events", event_types=["api_key.leak_reported", "api_key.killed"])
    k = create_key(inst, hooks.key)
    r = report(inst, gh, [match(k["key"])])
    assert r.status_code == 200, r.text
    assert r.json()[0]["label"] == "true_positive"
    (req,) = receiver.wait_requests(1, "/events")
    body = json.loads(req.body)
    assert body["type"] == "api_key.leak_reported"
    assert body["data"]["action_taken"] == "notify"
    assert verify(inst, k["key"]).status_code == 200
    assert not [e for e in all_events(inst) if e["action"] == "api_key.killed"]
    assert len(leak_events(inst, k["id"])) == 1


def test_the_published_regex_matches_issued_keys(make_instance, receiver, ca, gh):  # noqa: F811
    """docs/secret-scanning.md's regular expression (what partners register) matches every
    key the binary issues, live, test and root, and nothing around them."""
    import re
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                            "secret-scanning.md")).read()
    (pattern,) = re.findall(r"^    (\S*_\(live\|test\|root\)_\S*)$", doc, re.M)
    rx = re.compile(pattern)
    publish(receiver, gh)
    inst = scan_instance(make_instance, receiver, ca)
    hooks = Hooks(inst, receiver)
    keys = [create_key(inst, hooks.key)["key"],
            create_key(inst, hooks.key, env="test")["key"], inst.root_key]
    for key in keys:
        m = rx.search(f'API_KEY="{key}"\n')
        assert m and m.group(0) == key, (pattern, key)
        assert KEY_RE.fullmatch(key)
    assert not rx.search("pcl_live_01ARZ3NDEKTSV4RRFFQ69G5FAV.short")


@pytest.mark.parametrize("url, reason", [
    ("http://api.github.com/meta/public_keys/secret_scanning", "https_required"),
    ("https://127.0.0.1/keys", "private_address"),
])
def test_a_keys_url_the_egress_guard_refuses_stops_config_check(tmp_path, url, reason):
    from conftest import run_cli
    path = tmp_path / "p.conf"
    path.write_text(f"[secret_scanning]\ngithub_keys_url = {url}\n")
    p = run_cli("config", "check", "-c", str(path))
    assert p.returncode != 0
    assert "[secret_scanning] github_keys_url" in p.stderr and reason in p.stderr, p.stderr


def test_the_key_fetch_goes_through_the_egress_guard(make_instance, receiver, ca,
                                                     gh):  # noqa: F811
    """Without [webhooks] allow_ranges, a keys URL whose host resolves to loopback is
    refused at connect time: no connection reaches the key server, the failure is logged,
    and reports stay 401."""
    publish(receiver, gh)
    cfg = webhooks_config(ca, allow_ranges="") + (
        "[secret_scanning]\n"
        f"github_keys_url = https://localhost:{receiver.port}/keys\nrefresh_min_s = 1\n")
    inst = make_instance(config=cfg)
    inst.start()
    assert wait_for(lambda: [e for e in inst.log_events()
                             if e.get("event") == "secret_scanning_keys_failed"
                             and "egress" in e.get("error", "")], timeout=15), inst.read_log()
    assert_problem(report(inst, gh, [match("x")]), 401, "INVALID_SIGNATURE")
    assert receiver.accept_count() == 0
