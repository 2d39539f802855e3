"""The Meta Conversions API forward (INGEST.md "Forwarding to ad platforms",
issue 11 item 7), black-box on SQLite and PostgreSQL: PUT/GET
/v1/projects/{id}/capi (validation, the token never shown), and the
background tier forwarding ingested events to a local HTTPS stand-in for the
Graph API (webhook_peers.Receiver with the suite's test CA, let through the
egress guard by [webhooks] allow_ranges): the request shape field by field,
the 7-day cut, a disabled project never forwarded, 500 then 200 retried, the
schedule ending failed, the held advertising ids deleted after the forward
and never anywhere in plaintext, the token never in the logs or the database.
"""
import glob
import json
import secrets
import sqlite3
import time

import pytest
import requests

from conftest import assert_problem, free_port
from test_ingest import INGEST, ingest_config
from test_keys import admin, create_key
from webhook_peers import Answer, Receiver, TestCA, webhooks_config

API_VERSION = "v21.0"


@pytest.fixture(scope="module")
def ca():
    return TestCA()


@pytest.fixture
def graph(ca):
    r = Receiver(ca)
    yield r
    r.close()


class Capi:
    """An instance with the ingest listener, an admin key, and project helpers."""

    def __init__(self, inst, ingest_port):
        import requests
        self.requests = requests
        self.inst = inst
        self.ingest = f"http://127.0.0.1:{ingest_port}"
        self.org, self.admin = admin(inst)

    def req(self, method, path, **kw):
        return self.inst.request(method, path, key=self.admin["key"], **kw)

    def project(self, name="app"):
        r = self.req("POST", "/v1/projects", json={"name": name})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        key = create_key(self.inst, self.admin["key"], scopes=[INGEST], project_id=pid,
                         name="ingest-" + name)["key"]
        return pid, key

    def put(self, pid, **body):
        return self.req("PUT", f"/v1/projects/{pid}/capi", json=body)

    def send(self, key, batch):
        r = self.requests.post(self.ingest + "/v1/batch", json={"batch": batch},
                               headers={"Authorization": "Bearer " + key}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == len(batch), r.text
        return r.json()

    def deliveries(self, pid):
        r = self.req("GET", f"/v1/projects/{pid}/capi/deliveries")
        assert r.status_code == 200, r.text
        return r.json()["data"]

    def wait_batches(self, pid, pred, timeout=20):
        deadline = time.time() + timeout
        while True:
            got = self.deliveries(pid)
            if pred(got) or time.time() > deadline:
                return got
            time.sleep(0.2)


def capi_instance(make_instance, ca, graph, retry_schedule="0s,1s"):
    port = free_port()
    cfg = (ingest_config(port) + "\n" + webhooks_config(ca) +
           f"[capi]\nbase_url = https://localhost:{graph.port}\napi_version = {API_VERSION}\n"
           f"retry_schedule = {retry_schedule}\ntimeout_s = 5\n")
    inst = make_instance(config=cfg).start()
    return Capi(inst, port)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def sha(s):
    import hashlib
    return hashlib.sha256(s.encode()).hexdigest()


def adid_rows(inst):
    if inst.store == "sqlite":
        con = sqlite3.connect(inst.db_path)
        try:
            return con.execute("SELECT event_id, adid_sealed FROM event_adids").fetchall()
        finally:
            con.close()
    import psycopg2
    con = psycopg2.connect(inst.env["PORTCULLIS_STORE_URL"])
    try:
        cur = con.cursor()
        cur.execute("SELECT event_id, adid_sealed FROM event_adids")
        return cur.fetchall()
    finally:
        con.close()


def db_bytes(inst):
    """Every byte of the SQLite database files (the WAL included)."""
    out = b""
    for p in glob.glob(inst.db_path + "*"):
        with open(p, "rb") as f:
            out += f.read()
    return out


# ---- the settings ----

def test_capi_settings_validated_sealed_and_never_shown(make_instance, ca, graph):
    c = capi_instance(make_instance, ca, graph)
    pid, _ = c.project()
    r = c.req("GET", f"/v1/projects/{pid}/capi")
    assert_problem(r, 404, "NOT_FOUND")
    token = "EAAB" + secrets.token_hex(20)
    bad = [
        ({"pixel_id": "123", "access_token": token}, "enabled"),
        ({"enabled": "yes", "pixel_id": "123", "access_token": token}, "enabled"),
        ({"enabled": True, "access_token": token}, "pixel_id"),
        ({"enabled": True, "pixel_id": "12a", "access_token": token}, "pixel_id"),
        ({"enabled": True, "pixel_id": "1" * 33, "access_token": token}, "pixel_id"),
        ({"enabled": True, "pixel_id": "123"}, "access_token"),
        ({"enabled": True, "pixel_id": "123", "access_token": "a b"}, "access_token"),
        ({"enabled": True, "pixel_id": "123", "access_token": token,
          "test_event_code": "x y"}, "test_event_code"),
        ({"enabled": True, "pixel_id": "123", "access_token": token, "extra": 1}, "extra"),
    ]
    for body, field in bad:
        r = c.put(pid, **body)
        assert_problem(r, 400, "BAD_REQUEST")
        assert r.json()["details"]["field"] == field, (body, r.text)
    r = c.put(pid, enabled=True, pixel_id="123456", access_token=token,
              test_event_code="TEST123")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["enabled"] is True and got["pixel_id"] == "123456"
    assert got["test_event_code"] == "TEST123" and got["access_token_set"] is True
    assert token not in r.text and "access_token\"" not in r.text.replace("access_token_set", "")
    # The token may be left out once one is stored; switching off keeps it.
    r = c.put(pid, enabled=False, pixel_id="123456")
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False and r.json()["test_event_code"] is None
    r = c.req("GET", f"/v1/projects/{pid}/capi")
    assert r.status_code == 200 and token not in r.text
    # Another organisation's key sees no such project.
    _, other = admin(c.inst, name="other")
    r = c.inst.request("GET", f"/v1/projects/{pid}/capi", key=other["key"])
    assert_problem(r, 404, "NOT_FOUND")
    r = c.inst.request("PUT", f"/v1/projects/{pid}/capi", key=other["key"],
                       json={"enabled": True, "pixel_id": "1", "access_token": token})
    assert_problem(r, 404, "NOT_FOUND")
    r = c.inst.request("GET", f"/v1/projects/{pid}/capi/deliveries", key=other["key"])
    assert_problem(r, 404, "NOT_FOUND")
    r = c.req("GET", f"/v1/projects/{pid}/capi/deliveries", params={"cursor": "ev_x"})
    assert_problem(r, 400, "BAD_REQUEST")
    assert r.json()["details"]["field"] == "cursor"
    r = c.inst.root("GET", f"/v1/projects/{pid}/capi")
    assert_problem(r, 400, "BAD_REQUEST")
    # Audited; the token only sealed at rest.
    r = c.req("GET", "/v1/audit-events")
    assert r.status_code == 200 and "project.capi_updated" in r.text and token not in r.text
    if c.inst.store == "sqlite":
        assert token.encode() not in db_bytes(c.inst)
        con = sqlite3.connect(c.inst.db_path)
        (sealed,) = con.execute("SELECT access_token FROM capi_configs").fetchone()
        con.close()
        assert sealed.startswith("pcs1:")
    assert token not in c.inst.read_log()


# ---- forwarding ----

def test_capi_forward_request_shape_and_held_ids_deleted(make_instance, ca, graph):
    graph.script(f"/{API_VERSION}/777000111/events",
                 Answer(200, body=b'{"events_received":2,"fbtrace_id":"abc"}'))
    c = capi_instance(make_instance, ca, graph)
    pid, key = c.project()
    token = "EAAB" + secrets.token_hex(20)
    r = c.put(pid, enabled=True, pixel_id="777000111", access_token=token,
              test_event_code="TEST42")
    assert r.status_code == 200, r.text
    now = time.time()
    adid = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
    c.send(key, [
        {"type": "track", "event": "Purchase", "userId": "user-1", "messageId": "m-1",
         "timestamp": iso(now - 60),
         "properties": {"value": 9.99, "currency": "USD"},
         "context": {"traits": {"email": " Ada@Example.com ", "phone": "+44 20 7946 0958"},
                     "device": {"advertisingId": adid}}},
        {"type": "identify", "anonymousId": "anon-2", "messageId": "m-2",
         "timestamp": iso(now - 30), "traits": {"plan": "pro"}},
        # Older than Meta's 7 days: never sent.
        {"type": "track", "event": "Old", "userId": "user-3", "messageId": "m-3",
         "timestamp": iso(now - 8 * 86400)},
    ])
    reqs = graph.wait_requests(1, path=f"/{API_VERSION}/777000111/events")
    assert len(reqs) == 1, c.inst.read_log()
    q = reqs[0]
    assert q.method == "POST"
    assert q.headers["content-type"] == "application/json"
    body = json.loads(q.body)
    assert body["access_token"] == token
    assert body["test_event_code"] == "TEST42"
    assert set(body) == {"data", "access_token", "test_event_code"}
    data = {e["event_id"]: e for e in body["data"]}
    assert set(data) == {"m-1", "m-2"}, body["data"]
    e1 = data["m-1"]
    assert e1["event_name"] == "Purchase"
    assert e1["event_time"] == int(now - 60)
    assert e1["action_source"] == "app"
    assert e1["user_data"] == {"em": [sha("ada@example.com")], "ph": [sha("442079460958")],
                               "external_id": ["user-1"], "madid": adid}
    assert e1["custom_data"] == {"value": 9.99, "currency": "USD"}
    e2 = data["m-2"]
    assert e2["event_name"] == "identify"
    assert e2["event_time"] == int(now - 30)
    assert e2["action_source"] == "app"
    assert e2["user_data"] == {}
    assert "custom_data" not in e2
    got = c.wait_batches(pid, lambda b: b and b[0]["status"] == "succeeded")
    assert len(got) == 1, got
    b = got[0]
    assert b["status"] == "succeeded" and b["http_status"] == 200 and b["attempts"] == 1
    assert b["events"] == 2 and b["events_sent"] == 2 and b["events_received"] == 2
    assert b["pixel_id"] == "777000111" and b["error"] is None
    assert "fbtrace_id" in b["response"]
    # The held advertising id is gone, and was never anywhere in plaintext.
    assert adid_rows(c.inst) == []
    assert adid not in c.inst.read_log() and token not in c.inst.read_log()
    if c.inst.store == "sqlite":
        raw = db_bytes(c.inst)
        assert adid.encode() not in raw and adid.lower().encode() not in raw
        assert token.encode() not in raw
    # Nothing more is sent for these events.
    time.sleep(2)
    assert len(graph.requests_for(f"/{API_VERSION}/777000111/events")) == 1


def test_capi_adid_held_sealed_until_the_forward(make_instance, ca, graph):
    """While the Graph API fails, the advertising id is held sealed (pcs1:, not
    the plaintext); when the schedule ends failed, it is deleted."""
    path = f"/{API_VERSION}/555/events"
    graph.script(path, Answer(500, body=b'{"error":{"message":"boom"}}'))
    c = capi_instance(make_instance, ca, graph, retry_schedule="0s,2s")
    pid, key = c.project()
    token = "EAAB" + secrets.token_hex(20)
    assert c.put(pid, enabled=True, pixel_id="555", access_token=token).status_code == 200
    adid = "38400000-8cf0-11bd-b23e-10b96e40000d"
    c.send(key, [{"type": "track", "event": "Open", "userId": "u", "messageId": "h-1",
                  "context": {"device": {"advertisingId": adid}}}])
    graph.wait_requests(1, path=path)
    rows = adid_rows(c.inst)
    assert len(rows) == 1 and rows[0][1].startswith("pcs1:") and adid not in rows[0][1]
    got = c.wait_batches(pid, lambda b: b and b[0]["status"] == "failed")
    assert got[0]["status"] == "failed" and got[0]["attempts"] == 2, got
    assert got[0]["http_status"] == 500 and got[0]["error"] == "status"
    assert "boom" in got[0]["response"] and got[0]["next_attempt_at"] is None
    assert len(graph.requests_for(path)) == 2
    assert adid_rows(c.inst) == []
    if c.inst.store == "sqlite":
        assert adid.encode() not in db_bytes(c.inst)


def test_capi_500_then_200_is_retried(make_instance, ca, graph):
    path = f"/{API_VERSION}/4242/events"
    graph.script(path, [Answer(500, body=b"no"), Answer(200, body=b'{"events_received":1}')])
    c = capi_instance(make_instance, ca, graph)
    pid, key = c.project()
    assert c.put(pid, enabled=True, pixel_id="4242",
                 access_token="EAAB" + secrets.token_hex(8)).status_code == 200
    c.send(key, [{"type": "track", "event": "Buy", "userId": "u", "messageId": "r-1"}])
    got = c.wait_batches(pid, lambda b: b and b[0]["status"] == "succeeded")
    assert got[0]["status"] == "succeeded" and got[0]["attempts"] == 2, got
    reqs = graph.requests_for(path)
    assert len(reqs) == 2
    assert json.loads(reqs[0].body) == json.loads(reqs[1].body)
    # serve's /metrics shows what its worker child counted.
    m = requests.get(c.inst.url("/metrics"), timeout=5).text
    assert 'portcullis_capi_batches_total{outcome="retried"} 1\n' in m, m
    assert 'portcullis_capi_batches_total{outcome="succeeded"} 1\n' in m
    assert 'portcullis_capi_batches_total{outcome="failed"} 0\n' in m
    assert "portcullis_capi_events_forwarded_total 1\n" in m


def test_capi_disabled_project_never_forwarded(make_instance, ca, graph):
    c = capi_instance(make_instance, ca, graph)
    off, off_key = c.project("off")
    on, on_key = c.project("on")
    token = "EAAB" + secrets.token_hex(8)
    assert c.put(off, enabled=False, pixel_id="1001", access_token=token).status_code == 200
    assert c.put(on, enabled=True, pixel_id="2002", access_token=token).status_code == 200
    adid = "AAAAAAAA-1111-2222-3333-444444444444"
    c.send(off_key, [{"type": "track", "event": "X", "userId": "u", "messageId": "d-1",
                      "context": {"device": {"advertisingId": adid}}}])
    c.send(on_key, [{"type": "track", "event": "Y", "userId": "u", "messageId": "e-1"}])
    assert graph.wait_requests(1, path=f"/{API_VERSION}/2002/events")
    time.sleep(2)
    assert graph.requests_for(f"/{API_VERSION}/1001/events") == []
    assert c.deliveries(off) == []
    assert adid_rows(c.inst) == []  # never held for a project with the forward off
    # Switched on later: events from before are not forwarded.
    assert c.put(off, enabled=True, pixel_id="1001").status_code == 200
    time.sleep(2.5)
    assert graph.requests_for(f"/{API_VERSION}/1001/events") == []
