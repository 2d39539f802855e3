"""The SDK event ingest (INGEST.md, issue 11), black-box on SQLite and PostgreSQL:
the ingest listener ([ingest] listen: its own socket, routes, body and
connection limits) and ingest keys (events:ingest only, bound to a project,
accepted on the ingest listener only, refused everywhere else with the body
of any bad key).
"""
import base64
import calendar
import hashlib
import json
import os
import socket
import subprocess
import time

import pytest
import requests

from conftest import assert_problem, flip_last, free_port
from test_keys import admin, create_key, org_key, secret_of, with_secret
from test_tls import cert  # noqa: F401 (the fixture)

INGEST = "events:ingest"


class Ingest:
    """An instance with an ingest listener, an admin key, a project and an ingest key."""

    def __init__(self, inst, ingest_port):
        self.inst = inst
        self.base = f"http://127.0.0.1:{ingest_port}"
        self.org, self.admin = admin(inst)
        r = inst.request("POST", "/v1/projects", key=self.admin["key"], json={"name": "app"})
        assert r.status_code == 201, r.text
        self.project = r.json()["id"]
        self.key = create_key(inst, self.admin["key"], scopes=[INGEST],
                              project_id=self.project, name="ingest")

    def post(self, path, body=None, key=None, auth="bearer", **kw):
        headers = kw.pop("headers", {})
        if key and auth == "bearer":
            headers["Authorization"] = "Bearer " + key
        elif key and auth == "basic":
            headers["Authorization"] = "Basic " + base64.b64encode(
                (key + ":").encode()).decode()
        kw.setdefault("timeout", 30)
        return requests.post(self.base + path, json=body, headers=headers, **kw)


def ingest_config(port, extra=""):
    return f"[ingest]\nlisten = 127.0.0.1:{port}\n{extra}"


@pytest.fixture
def ing(make_instance):
    port = free_port()
    # An upstream (never reached here): the data plane authenticates first.
    inst = make_instance(config=ingest_config(port) + "\n[upstream]\nurl = http://127.0.0.1:9\n")
    return Ingest(inst.start(), port)


# ---- the listener ----

def test_ingest_listener_routes_nothing_of_the_main_listener(ing):
    """The main listener's service, management and data-plane paths are 404
    problem+json on the ingest listener, for any key (the root key too)."""
    for method, path in [("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/v1/verify"),
                         ("GET", "/v1/api-keys"), ("POST", "/v1/orgs"),
                         ("GET", "/v1/requests"), ("GET", "/anything/upstream")]:
        r = requests.request(method, ing.base + path, timeout=10,
                             headers={"Authorization": "Bearer " + ing.inst.root_key})
        assert_problem(r, 404, "NOT_FOUND")
    # The main listener is unchanged.
    assert ing.inst.request("GET", "/healthz").status_code == 200


def test_ingest_listener_is_logged_at_start(ing):
    ev = [e for e in ing.inst.log_events() if e.get("msg") == "listening_ingest"
          or e.get("event") == "listening_ingest"]
    assert ev, ing.inst.read_log()


def test_no_ingest_listener_without_the_setting(gw):
    """Without [ingest] listen there is no second socket: nothing new listens."""
    text = gw.read_log()
    assert "listening_ingest" not in text


def test_ingest_listener_port_in_use_fails_start(make_instance):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        inst = make_instance(config=ingest_config(port))
        inst.start(wait=False)
        assert inst.proc.wait(timeout=20) != 0
        assert "ingest" in inst.read_log()


def test_ingest_listener_has_its_own_connection_limit(make_instance):
    """[ingest] max_connections bounds the ingest listener alone: past it a
    connection gets no answer, while the main listener still serves."""
    port = free_port()
    inst = make_instance(config=ingest_config(port, "max_connections = 2\n")
                         + "\n[server]\nworkers = 1\n").start()
    held = []
    try:
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            held.append(c)
        time.sleep(0.2)
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(c)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        c.settimeout(2)
        try:
            got = c.recv(100)
        except (socket.timeout, ConnectionResetError):
            got = b""
        assert got == b"", got
        assert inst.request("GET", "/healthz").status_code == 200
    finally:
        for c in held:
            c.close()


# ---- ingest keys: creation ----

def test_ingest_key_needs_a_project(ing):
    r = ing.inst.request("POST", "/v1/api-keys", key=ing.admin["key"],
                         json={"name": "no project", "scopes": [INGEST]})
    body = assert_problem(r, 400, "BAD_REQUEST")
    assert body["details"]["field"] == "project_id"


def test_ingest_key_has_no_other_scope(ing):
    for other in ["gateway", "logs:read", "keys:read"]:
        r = ing.inst.request("POST", "/v1/api-keys", key=ing.admin["key"],
                             json={"name": "mixed", "scopes": [INGEST, other],
                                   "project_id": ing.project})
        body = assert_problem(r, 400, "BAD_REQUEST")
        assert body["details"]["field"] == "scopes"


def test_ingest_key_is_created_by_a_keys_write_key_and_by_the_operator(ing):
    """An organisation key with keys:write may create ingest keys although it
    does not hold events:ingest (which no admin key can: it would be mixed)."""
    assert ing.key["scopes"] == [INGEST]
    assert ing.key["project_id"] == ing.project
    k = org_key(ing.inst, ing.org, [INGEST], project_id=ing.project, name="by root")
    assert k["scopes"] == [INGEST]
    # And rotates them.
    r = ing.inst.request("POST", f"/v1/api-keys/{ing.key['id']}/rotate",
                         key=ing.admin["key"], json={})
    assert r.status_code == 200, r.text


# ---- ingest keys: refused everywhere but the ingest listener ----

def same_as_bad_key(inst, r, reference):
    """r is the 401 any bad key gets: same status, headers and body but requestId."""
    body = assert_problem(r, 401, "UNAUTHENTICATED")
    ref = reference.json()
    assert {k: v for k, v in body.items() if k != "requestId"} == \
        {k: v for k, v in ref.items() if k != "requestId"}
    assert r.headers.get("WWW-Authenticate") == reference.headers.get("WWW-Authenticate")


def test_ingest_key_is_refused_on_the_main_listener(ing):
    bad = flip_last(ing.key["key"])
    ref = ing.inst.request("GET", "/v1/verify", key=bad)
    for method, path in [("GET", "/v1/verify"), ("GET", "/v1/api-keys"),
                         ("GET", "/v1/requests"),
                         ("GET", "/some/upstream/path"), ("POST", "/v1/projects")]:
        r = ing.inst.request(method, path, key=ing.key["key"], json={})
        same_as_bad_key(ing.inst, r, ref)


def test_ingest_key_is_refused_on_the_main_listener_even_when_killed(ing):
    """The refusal comes before the kill switch: the main listener does not
    tell that it holds a valid ingest key."""
    assert ing.inst.request("POST", f"/v1/api-keys/{ing.key['id']}/kill",
                            key=ing.admin["key"]).status_code == 200
    r = ing.inst.request("GET", "/v1/verify", key=ing.key["key"])
    assert_problem(r, 401, "UNAUTHENTICATED")


# ---- the endpoints ----

def track(i=0, **extra):
    ev = {"type": "track", "event": "Signed Up", "userId": f"user-{i}",
          "messageId": f"msg-{i}", "timestamp": "2026-01-02T03:04:05.000Z",
          "properties": {"plan": "pro"}}
    ev.update(extra)
    return ev


def events(ing, **query):
    r = ing.inst.request("GET", "/v1/events", key=ing.admin["key"], params=query)
    assert r.status_code == 200, r.text
    return r.json()


def test_track_with_bearer_basic_and_write_key(ing):
    k = ing.key["key"]
    r = ing.post("/v1/track", track(1), key=k, auth="bearer")
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "rejected": []}
    assert ing.post("/v1/track", track(2), key=k, auth="basic").json()["accepted"] == 1
    assert ing.post("/v1/track", {**track(3), "writeKey": k}).json()["accepted"] == 1
    got = events(ing)["data"]
    assert [e["message_id"] for e in got] == ["msg-3", "msg-2", "msg-1"]
    e = got[0]
    assert e["type"] == "track" and e["event"] == "Signed Up" and e["user_id"] == "user-3"
    assert e["project_id"] == ing.project and e["org_id"] == ing.org
    assert e["key_id"] == ing.key["id"]
    assert "writeKey" not in e["payload"]
    assert k not in str(got)


def test_numbers_and_text_are_stored_and_listed_as_sent(ing):
    ev = track(1, properties={"price": 129.95, "tax": 0.1, "qty": 3, "whole": 5.0,
                              "tiny": 2.5e-8, "name": "caf\u00e9 \u4e2d\U0001F600"})
    r = ing.post("/v1/track", ev, key=ing.key["key"])
    assert r.status_code == 200, r.text
    r = ing.inst.request("GET", "/v1/events", key=ing.admin["key"])
    assert r.status_code == 200, r.text
    # jansson's %.17g would say 129.94999999999999 and 0.10000000000000001.
    assert '"price":129.95,' in r.text and '"tax":0.1,' in r.text, r.text
    assert '"whole":5.0' in r.text and '"qty":3' in r.text
    props = r.json()["data"][0]["payload"]["properties"]
    assert props == ev["properties"]


@pytest.mark.parametrize("path,ev", [
    ("/v1/identify", {"type": "identify", "userId": "u", "traits": {"plan": "x"}}),
    ("/v1/page", {"type": "page", "anonymousId": "a", "name": "Home"}),
    ("/v1/screen", {"type": "screen", "anonymousId": "a", "name": "Main"}),
    ("/v1/group", {"type": "group", "userId": "u", "groupId": "g"}),
    ("/v1/alias", {"type": "alias", "userId": "u", "previousId": "old"}),
])
def test_each_single_event_endpoint(ing, path, ev):
    r = ing.post(path, ev, key=ing.key["key"])
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "rejected": []}
    assert events(ing, type=ev["type"])["data"][0]["type"] == ev["type"]


def test_batch_rejections_next_to_accepted_events(ing):
    batch = [track(0), {"type": "track", "event": "x", "messageId": "no-id"},
             track(2), {"type": "bogus", "userId": "u", "messageId": "m3"},
             track(4, messageId="x" * 101)]
    r = ing.post("/v1/batch", {"batch": batch}, key=ing.key["key"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2
    assert [(x["index"], x["code"]) for x in body["rejected"]] == [
        (1, "MISSING_ID"), (3, "UNKNOWN_TYPE"), (4, "MESSAGE_ID_TOO_LONG")]
    assert body["rejected"][0]["messageId"] == "no-id"
    assert sorted(e["message_id"] for e in events(ing)["data"]) == ["msg-0", "msg-2"]


def test_a_repeated_message_id_is_acknowledged_and_stored_once(ing):
    for _ in range(2):
        assert ing.post("/v1/track", track(7), key=ing.key["key"]).json()["accepted"] == 1
    assert len(events(ing)["data"]) == 1
    m = requests.get(ing.inst.url("/metrics"), timeout=10).text
    assert "portcullis_ingest_events_deduplicated_total 1" in m
    assert "portcullis_ingest_events_accepted_total 2" in m
    # The group commit's series: two transactions of one event each, nothing waiting.
    assert "portcullis_ingest_commit_groups_total 2" in m
    assert "portcullis_ingest_commit_group_events_total 2" in m
    assert "portcullis_ingest_commit_queue_events 0" in m
    assert 'portcullis_ingest_events_rejected_total{code="MISSING_ID"} 0' in m


def test_whole_request_limits(ing):
    k = ing.key["key"]
    # Over [ingest] max_body_bytes (500 KiB): 413, nothing stored.
    big = {"batch": [track(i, properties={"pad": "x" * 1000}) for i in range(600)]}
    assert_problem(ing.post("/v1/batch", big, key=k), 413, "PAYLOAD_TOO_LARGE")
    # One event over 32 KiB: 413 for the whole request.
    r = ing.post("/v1/batch", {"batch": [track(0), track(1, properties={"pad": "x" * 33000})]},
                 key=k)
    assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
    # More than 2500 events: 400 details.field batch.
    r = ing.post("/v1/batch", {"batch": [{"type": "track"}] * 2501}, key=k)
    assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "batch"
    # Malformed JSON: 400.
    r = requests.post(ing.base + "/v1/batch", data=b'{"batch": [', timeout=10,
                      headers={"Authorization": "Bearer " + k,
                               "Content-Type": "application/json"})
    assert_problem(r, 400, "BAD_REQUEST")
    assert events(ing)["data"] == []


def test_other_keys_are_refused_on_the_ingest_listener(ing):
    bad = flip_last(ing.key["key"])
    ref = ing.post("/v1/track", track(1), key=bad)
    assert_problem(ref, 401, "UNAUTHENTICATED")
    data_plane = create_key(ing.inst, ing.admin["key"], scopes=["gateway"],
                            project_id=ing.project)
    for k in [data_plane["key"], ing.admin["key"], ing.inst.root_key]:
        for auth in ["bearer", "basic"]:
            same_as_bad_key(ing.inst, ing.post("/v1/track", track(1), key=k, auth=auth), ref)
        same_as_bad_key(ing.inst, ing.post("/v1/track", {**track(1), "writeKey": k}), ref)
    # No credential at all; a Basic password; another scheme.
    assert_problem(ing.post("/v1/track", track(1)), 401, "UNAUTHENTICATED")
    pw = base64.b64encode((ing.key["key"] + ":pw").encode()).decode()
    for h in ["Basic " + pw, "Token " + ing.key["key"]]:
        r = ing.post("/v1/track", track(1), headers={"Authorization": h})
        assert_problem(r, 401, "UNAUTHENTICATED")
    assert events(ing)["data"] == []


def test_kill_and_revocation_of_an_ingest_key(ing):
    k = ing.key
    assert ing.inst.request("POST", f"/v1/api-keys/{k['id']}/kill",
                            key=ing.admin["key"]).status_code == 200
    for auth in ["bearer", "basic"]:
        body = assert_problem(ing.post("/v1/track", track(1), key=k["key"], auth=auth),
                              503, "KILL_SWITCH")
        assert body["details"]["scope"] == "key"
    assert_problem(ing.post("/v1/track", {**track(1), "writeKey": k["key"]}), 503, "KILL_SWITCH")
    assert ing.inst.request("DELETE", f"/v1/api-keys/{k['id']}/kill",
                            key=ing.admin["key"]).status_code == 200
    assert ing.post("/v1/track", track(1), key=k["key"]).status_code == 200
    assert ing.inst.request("DELETE", f"/v1/api-keys/{k['id']}",
                            key=ing.admin["key"]).status_code in (200, 204)
    assert_problem(ing.post("/v1/track", track(2), key=k["key"]), 401, "REVOKED")
    assert [e["message_id"] for e in events(ing)["data"]] == ["msg-1"]


def test_per_key_rate_limit(make_instance):
    port = free_port()
    inst = make_instance(config=ingest_config(port, "rate_limit = 2\n")).start()
    ing = Ingest(inst, port)
    got = [ing.post("/v1/track", track(i), key=ing.key["key"]) for i in range(3)]
    assert [r.status_code for r in got[:2]] == [200, 200]
    assert_problem(got[2], 429, "RATE_LIMITED")
    assert "Retry-After" in got[2].headers
    assert got[0].headers["RateLimit-Policy"] == '"org";q=2;w=1'
    assert "RateLimit" in got[0].headers
    assert len(events(ing)["data"]) == 2


def test_a_full_commit_queue_is_503_overloaded_and_stores_nothing(make_instance):
    """[ingest] queue_events at its least (2500, one full batch): concurrent full batches
    overflow it; the refused ones are 503 OVERLOADED with Retry-After and none of their
    events is stored, the others are stored whole."""
    import concurrent.futures
    port = free_port()
    inst = make_instance(config=ingest_config(port, "queue_events = 2500\n")).start()
    ing = Ingest(inst, port)

    def send(c):
        batch = [{"type": "track", "event": "e", "userId": "u", "messageId": f"q-{c}-{i}"}
                 for i in range(2500)]
        return ing.post("/v1/batch", {"batch": batch}, key=ing.key["key"])

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        got = list(ex.map(send, range(12)))
    refused = [r for r in got if r.status_code == 503]
    ok = [r for r in got if r.status_code == 200]
    assert len(refused) + len(ok) == 12, [r.status_code for r in got]
    assert refused, "no request found the queue full"
    for r in refused:
        assert_problem(r, 503, "OVERLOADED")
        assert r.headers["Retry-After"] == "1"
    m = requests.get(inst.url("/metrics"), timeout=10).text
    assert f"portcullis_ingest_commit_overloaded_total {len(refused)}" in m
    assert f"portcullis_ingest_events_committed_total {2500 * len(ok)}" in m


def test_events_listing_filters_and_pages(ing):
    batch = [track(i, userId=f"u{i % 2}") for i in range(5)] + \
        [{"type": "identify", "userId": "u0", "messageId": "idf"}]
    assert ing.post("/v1/batch", {"batch": batch}, key=ing.key["key"]).json()["accepted"] == 6
    assert {e["message_id"] for e in events(ing, user_id="u1")["data"]} == {"msg-1", "msg-3"}
    assert [e["message_id"] for e in events(ing, type="identify")["data"]] == ["idf"]
    assert events(ing, project_id=ing.project, limit=6)["next_cursor"] is None
    seen, cursor = [], None
    while True:
        q = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = events(ing, **q)
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)
    for q, field in [({"type": "nope"}, "type"), ({"project_id": "x"}, "project_id"),
                     ({"since": "yesterday"}, "since"), ({"cursor": "ev_x"}, "cursor"),
                     ({"colour": "red"}, "colour")]:
        r = ing.inst.request("GET", "/v1/events", key=ing.admin["key"], params=q)
        assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == field
    # Another organisation sees none of them.
    _, other = admin(ing.inst, "other")
    r = ing.inst.request("GET", "/v1/events", key=other["key"])
    assert r.json()["data"] == []


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_ms(event_id):
    """The millisecond time of an event id (ev_ + ULID: its first 10 characters)."""
    assert event_id.startswith("ev_"), event_id
    ms = 0
    for ch in event_id[3:13]:
        ms = ms * 32 + CROCKFORD.index(ch)
    return ms


def rfc3339_ms(s):
    """An RFC 3339 time as the API writes it (...T..:..:..mmmZ) in ms."""
    head, frac = s.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(frac)


def test_event_ids_are_their_received_at_and_since_until_bound_them(ing):
    """The id's time is the event's received_at (migration 0015: since/until are id ranges),
    also for events whose timestamp was corrected for a device clock a day off; since is
    inclusive and until exclusive at the event's exact millisecond through every filter."""
    skewed = {"sentAt": "2026-01-03T03:04:05.000Z"}  # a day after the events' timestamp
    for n in range(6):
        batch = [track(10 * n + i, userId=f"u{i % 2}") for i in range(3)]
        if n % 2:
            batch.append({"type": "identify", "userId": "u0", "messageId": f"idf-{n}"})
        r = ing.post("/v1/batch", {"batch": batch, **(skewed if n % 3 == 0 else {})},
                     key=ing.key["key"])
        assert r.json()["accepted"] == len(batch), r.text
        time.sleep(0.003)  # the next batch in another millisecond
    got = events(ing, limit=100)["data"]
    assert len(got) == 21
    for e in got:
        assert ulid_ms(e["id"]) == rfc3339_ms(e["received_at"]), e
    assert any(e["timestamp"] != "2026-01-02T03:04:05.000Z" for e in got)  # corrected
    ats = sorted({e["received_at"] for e in got})
    assert len(ats) >= 3
    for at in ats:
        at_ms = rfc3339_ms(at)
        for q in ({}, {"project_id": ing.project}, {"type": "track"},
                  {"project_id": ing.project, "type": "track"}, {"user_id": "u0"}):
            want = [e for e in got if all(e[k] == v for k, v in q.items())
                    and rfc3339_ms(e["received_at"]) >= at_ms]
            assert [e["id"] for e in events(ing, since=at, limit=100, **q)["data"]] == \
                [e["id"] for e in want]
            want = [e for e in got if all(e[k] == v for k, v in q.items())
                    and rfc3339_ms(e["received_at"]) < at_ms]
            assert [e["id"] for e in events(ing, until=at, limit=100, **q)["data"]] == \
                [e["id"] for e in want]
        one = events(ing, since=at, until=ats[ats.index(at) + 1]
                     if at != ats[-1] else "9999-01-01T00:00:00.000Z", limit=100)["data"]
        assert {e["received_at"] for e in one} == {at}


# ---- a real SDK ----

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SEGMENT_JS = os.path.join(os.path.dirname(__file__), "segment_send.js")
SEGMENT_SDK = os.path.join(ROOT, "third_party", "segment", "node_modules", "@segment",
                           "analytics-node")


def sha256_hex(s):
    return hashlib.sha256(s.encode()).hexdigest()


def test_segment_node_sdk_sends_to_the_ingest_listener(ing):
    """@segment/analytics-node with `host` at the ingest listener: its batches are
    accepted (it sends the key as Basic user name) and stored with the identifiers hashed."""
    assert os.path.exists(SEGMENT_SDK), "run scripts/deps.sh test (installs third_party/segment)"
    evs = [{"method": "track", "params": {
        "userId": f"sdk-user-{i}", "event": "Order Completed",
        "properties": {"total": i, "email": f" Buyer{i}@Example.COM "},
        "context": {"traits": {"phone": "+1 (650) 555-12%02d" % i}, "ip": "203.0.113.7",
                    "device": {"advertisingId": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}}}}
        for i in range(20)]
    evs.append({"method": "identify", "params": {"userId": "sdk-user-0",
                                                 "traits": {"email": "buyer0@example.com"}}})
    evs.append({"method": "page", "params": {"anonymousId": "anon-1", "name": "Home"}})
    p = subprocess.run(["node", SEGMENT_JS], input=json.dumps(
        {"writeKey": ing.key["key"], "host": ing.base, "events": evs}),
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["errors"] == [], out
    assert len(out["messageIds"]) == 22
    got = {e["message_id"]: e for e in events(ing, limit=100)["data"]}
    assert set(got) == set(out["messageIds"])
    text = json.dumps(list(got.values()))
    for i in range(20):
        assert f"buyer{i}@example.com" not in text.lower()
        assert sha256_hex(f"buyer{i}@example.com") in text
        assert sha256_hex("165055512%02d" % i) in text
    assert "203.0.113.7" not in text and "6D92078A" not in text
    ident = [e for e in got.values() if e["type"] == "identify"][0]
    assert ident["email_sha256"] == sha256_hex("buyer0@example.com")


# ---- no plaintext identifier anywhere durable; acknowledged means durable ----

def pii_event(i, with_user=True):
    ev = {"type": "track", "event": "Checkout", "messageId": f"pii-{i}",
          "properties": {"email": f"Secret.Person{i}@Mail.Example"},
          "context": {"ip": f"198.51.100.{i % 250 + 1}",
                      "traits": {"phone": f"+44 20 7946 {i:04d}"},
                      "device": {"advertisingId": f"AD1D{i:04d}-8246-4BA4-AE5B-76104861E7DC"}}}
    if with_user:
        ev["userId"] = f"pii-user-{i}"
    return ev


def plaintexts(i):
    return [f"Secret.Person{i}@Mail.Example", f"secret.person{i}@mail.example",
            f"+44 20 7946 {i:04d}", f"4420 7946 {i:04d}".replace(" ", ""),
            f"198.51.100.{i % 250 + 1}", f"AD1D{i:04d}-8246-4BA4-AE5B-76104861E7DC"]


def test_no_plaintext_identifier_reaches_the_database_or_the_log(ing):
    """A mixed load (accepted events, rejected ones, refused requests, each with an email, a
    phone, an IP and an advertising id), then every byte of the SQLite files (with the WAL)
    and of the log: none of the plaintexts, in either form."""
    k = ing.key["key"]
    n = 40
    batch = [pii_event(i, with_user=i % 4 != 0) for i in range(n)]  # every 4th rejected
    assert ing.post("/v1/batch", {"batch": batch}, key=k).json()["accepted"] == n - n // 4
    for i in range(n, n + 5):
        assert ing.post("/v1/track", pii_event(i), key=k, auth="basic").status_code == 200
    # Refused whole: a bad key, a malformed body, an oversized event.
    assert ing.post("/v1/track", pii_event(n + 5), key=flip_last(k)).status_code == 401
    r = requests.post(ing.base + "/v1/batch", timeout=10,
                      data=json.dumps({"batch": [pii_event(n + 6)]})[:-3].encode(),
                      headers={"Authorization": "Bearer " + k,
                               "Content-Type": "application/json"})
    assert r.status_code == 400
    big = pii_event(n + 7)
    big["properties"]["pad"] = "x" * 40000
    assert ing.post("/v1/batch", {"batch": [big]}, key=k).status_code == 413
    got = events(ing, limit=100)["data"]
    assert len(got) == n - n // 4 + 5
    time.sleep(0.5)  # the request-log writer
    texts = [ing.inst.read_log().encode()]
    if ing.inst.store == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            path = os.path.join(ing.inst.dir, "portcullis.db" + suffix)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    texts.append(f.read())
    else:
        texts.append(json.dumps(got).encode())
    for i in range(n + 8):
        for p in plaintexts(i):
            for blob in texts:
                assert p.encode() not in blob, (i, p)
    # The hashes are there instead.
    assert got[0]["email_sha256"] and got[0]["phone_sha256"]


def test_every_acknowledged_event_survives_kill_9(make_instance):
    """Clients send batches while serve is killed with SIGKILL: after a restart every
    messageId that got a 200 is stored."""
    import threading
    port = free_port()
    inst = make_instance(config=ingest_config(port)).start()
    ing = Ingest(inst, port)
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def client(c):
        s = requests.Session()
        j = 0
        while not stop.is_set():
            ids = [f"k9-{c}-{j}-{m}" for m in range(20)]
            batch = [{"type": "track", "event": "e", "userId": "u", "messageId": x}
                     for x in ids]
            j += 1
            try:
                r = s.post(ing.base + "/v1/batch", json={"batch": batch}, timeout=5,
                           headers={"Authorization": "Bearer " + ing.key["key"]})
            except requests.RequestException:
                continue
            if r.status_code == 200:
                assert r.json()["accepted"] == 20
                with lock:
                    acked.extend(ids)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    deadline = time.time() + 20
    while len(acked) < 400 and time.time() < deadline:
        time.sleep(0.05)
    inst.proc.kill()
    inst.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 400
    inst.log.close()
    inst.start()
    stored, cursor = set(), None
    while True:
        page = events(ing, limit=100, **({"cursor": cursor} if cursor else {}))
        stored |= {e["message_id"] for e in page["data"]}
        cursor = page["next_cursor"]
        if not cursor:
            break
    missing = set(acked) - stored
    assert not missing, (len(missing), sorted(missing)[:5])


# ---- TLS, the guards, the request log ----

def test_ingest_listener_serves_https_with_the_main_listeners_certificate(
        make_instance, cert, monkeypatch):
    """With [server] tls_cert/tls_key the ingest listener is HTTPS too (HSTS, no plain
    HTTP), and Segment's SDK sends to it trusting the test CA."""
    from test_tls import start_tls, tls_config
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert[0])
    port = free_port()
    inst = start_tls(make_instance(config=tls_config(cert) + "\n" + ingest_config(port)), cert)
    ing = Ingest(inst, port)
    ing.base = f"https://127.0.0.1:{port}"
    r = ing.post("/v1/track", track(1), key=ing.key["key"], auth="basic")
    assert r.status_code == 200, r.text
    assert "max-age=" in r.headers["Strict-Transport-Security"]
    with pytest.raises(requests.RequestException):
        requests.post(f"http://127.0.0.1:{port}/v1/track", json=track(2), timeout=3)
    p = subprocess.run(["node", SEGMENT_JS], input=json.dumps(
        {"writeKey": ing.key["key"], "host": ing.base,
         "events": [{"method": "track", "params": {"userId": "tls", "event": "e"}}]}),
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": cert[0]})
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["errors"] == [] and len(out["messageIds"]) == 1, out
    assert {e["message_id"] for e in events(ing)["data"]} == {"msg-1", out["messageIds"][0]}


def test_brute_force_guard_applies_on_the_ingest_listener(make_instance):
    port = free_port()
    inst = make_instance(config=ingest_config(port) +
                         "\n[auth]\nfailed_attempts_max = 3\n").start()
    ing = Ingest(inst, port)
    # The ingest key's id with another key's (well-formed) secret: a verification that fails.
    bad = with_secret(ing.key["key"], secret_of(ing.admin["key"]))
    codes = [ing.post("/v1/track", {**track(1), "writeKey": bad}).status_code
             for _ in range(6)]
    assert codes[:3] == [401] * 3 and codes[-1] == 429, codes
    # The address is held off for the right key too, before any bcrypt.
    r = ing.post("/v1/track", track(1), key=ing.key["key"])
    assert_problem(r, 429, "TOO_MANY_FAILED_ATTEMPTS")
    assert "Retry-After" in r.headers
    assert events(ing)["data"] == []


def test_ingest_request_log_row_has_no_user_agent(ing):
    r = ing.post("/v1/track", track(1), key=ing.key["key"],
                 headers={"User-Agent": "analytics-node-next/1.0 (iPhone; device 1234)"})
    assert r.status_code == 200
    rid = r.headers["X-Request-Id"]
    deadline = time.time() + 5
    while True:
        rows = ing.inst.request("GET", "/v1/requests", key=ing.admin["key"]).json()["data"]
        row = [x for x in rows if x["request_id"] == rid]
        if row or time.time() > deadline:
            break
        time.sleep(0.1)
    assert row, rows
    assert row[0]["path"] == "/v1/track" and row[0]["key_id"] == ing.key["id"]
    assert row[0]["project_id"] == ing.project and row[0]["status"] == 200
    assert row[0]["user_agent"] is None
    assert "iPhone" not in ing.inst.read_log()
