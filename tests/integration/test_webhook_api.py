"""Webhook management API, black-box (WEBHOOKS.md "Endpoints", "Two sources",
"Records"; docs/api.md "Webhooks"): endpoints and their signing secret, the
URL rules, filters, organisation isolation, publishing with Idempotency-Key,
Portcullis's own events and the message records. No delivery here: the
background tier is off ([worker] enabled = false), so every delivery stays
pending; delivery to a real receiver is test_webhooks*.py's.
"""
import json
import os
import re

import pytest

from conftest import assert_problem
from test_keys import admin, create_key, new_org, org_key

NO_WORKER = "[worker]\nenabled = false\n"
SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")
EP_RE = re.compile(r"^ep_[0-9A-HJKMNP-TV-Z]{26}$")
MSG_RE = re.compile(r"^msg_[0-9A-HJKMNP-TV-Z]{26}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EP_FIELDS = {"id", "org_id", "project_id", "url", "description", "event_types",
             "rate_limit_per_second", "disabled", "disabled_at", "disabled_reason",
             "failing_since", "previous_secret_expires_at", "created_at", "updated_at"}
WH_SCOPES = ["gateway", "webhooks:write", "logs:read", "keys:write", "keys:read"]
URL = "https://hooks.example.com/portcullis"


@pytest.fixture
def inst(make_instance, store_kind):
    return make_instance(store=store_kind, config=NO_WORKER).start()


def wh_admin(inst, name="acme"):
    """(org id, key object) with the webhook scopes."""
    org = new_org(inst, name)
    return org, org_key(inst, org, WH_SCOPES, name="hooks")


def create_ep(inst, key, **body):
    body.setdefault("url", URL)
    r = inst.request("POST", "/v1/webhook-endpoints", key=key, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def messages(inst, key, **query):
    r = inst.request("GET", "/v1/webhook-messages", key=key, params=query)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def db_bytes(inst):
    """Every byte of the SQLite database, its WAL included."""
    out = b""
    for suffix in ("", "-wal"):
        p = inst.db_path + suffix
        if os.path.exists(p):
            with open(p, "rb") as f:
                out += f.read()
    return out


# ---- endpoints ----

def test_create_shows_the_secret_once_and_never_stores_or_returns_it(inst):
    org, k = wh_admin(inst)
    r = inst.request("POST", "/v1/webhook-endpoints", key=k["key"],
                     json={"url": URL, "description": "billing", "event_types": ["api_key.killed"],
                           "rate_limit_per_second": 10})
    assert r.status_code == 201, r.text
    ep = r.json()
    secret = ep.pop("secret")
    assert SECRET_RE.match(secret), secret
    assert set(ep) == EP_FIELDS, set(ep) ^ EP_FIELDS
    assert EP_RE.match(ep["id"])
    assert ep["org_id"] == org and ep["url"] == URL and ep["description"] == "billing"
    assert ep["event_types"] == ["api_key.killed"] and ep["rate_limit_per_second"] == 10
    assert ep["disabled"] is False and ep["project_id"] is None
    assert TIME_RE.match(ep["created_at"])
    got = inst.request("GET", f"/v1/webhook-endpoints/{ep['id']}", key=k["key"])
    assert got.status_code == 200 and got.json() == ep
    listed_r = inst.request("GET", "/v1/webhook-endpoints", key=k["key"])
    listed = listed_r.json()
    assert listed["data"] == [ep] and listed["next_cursor"] is None
    for resp in (got, listed_r):
        assert "whsec_" not in resp.text and "secret\"" not in resp.text
    if inst.store == "sqlite":
        raw = db_bytes(inst)
        assert b"whsec_" not in raw and secret.encode() not in raw
        assert b"pcs1:" in raw  # sealed, not absent
    assert "whsec_" not in inst.read_log()


@pytest.mark.parametrize("url,reason", [
    ("http://hooks.example.com/", "https_required"),
    ("https://user:pw@hooks.example.com/", "userinfo"),
    ("https://hooks.example.com/" + "a" * 2030, "too_long"),
    ("https://127.0.0.1/", "private_address"),
    ("https://10.1.2.3/", "private_address"),
    ("https://169.254.169.254/latest", "private_address"),
    ("https://0x7f.1/", "private_address"),
    ("https://2130706433/", "private_address"),
    ("https://[::1]/", "private_address"),
    ("https://[::ffff:127.0.0.1]/", "private_address"),
    ("not a url", None),
    ("", None),
])
def test_url_rules_answer_400_naming_the_url(inst, url, reason):
    _, k = wh_admin(inst)
    r = inst.request("POST", "/v1/webhook-endpoints", key=k["key"], json={"url": url})
    body = assert_problem(r, 400, "BAD_REQUEST")
    assert body["details"]["field"] == "url", body
    if reason:
        assert body["details"]["reason"] == reason, body
    # The same rules hold when a URL is changed.
    ep = create_ep(inst, k["key"])
    r = inst.request("PATCH", f"/v1/webhook-endpoints/{ep['id']}", key=k["key"], json={"url": url})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "url"


def test_a_url_of_2048_bytes_is_accepted_and_a_url_is_required(inst):
    _, k = wh_admin(inst)
    long = "https://hooks.example.com/" + "a" * (2048 - len("https://hooks.example.com/"))
    assert create_ep(inst, k["key"], url=long)["url"] == long
    r = inst.request("POST", "/v1/webhook-endpoints", key=k["key"], json={})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "url"


def test_event_types_project_rate_limit_and_unknown_fields_are_validated(inst):
    org, k = wh_admin(inst)
    other, ok = wh_admin(inst, "other")
    mine = inst.request("POST", "/v1/projects", key=k["key"], json={"name": "p"}).json()["id"]
    theirs = inst.request("POST", "/v1/projects", key=ok["key"], json={"name": "q"}).json()["id"]
    bad = [
        ({"event_types": []}, "event_types"),
        ({"event_types": "api_key.killed"}, "event_types"),
        ({"event_types": ["api_key..killed"]}, "event_types"),
        ({"event_types": ["a b"]}, "event_types"),
        ({"event_types": [".x"]}, "event_types"),
        ({"event_types": [1]}, "event_types"),
        ({"event_types": ["t%d" % i for i in range(65)]}, "event_types"),
        ({"event_types": ["x" * 129]}, "event_types"),
        ({"project_id": theirs}, "project_id"),
        ({"project_id": "nope"}, "project_id"),
        ({"rate_limit_per_second": 0}, "rate_limit_per_second"),
        ({"rate_limit_per_second": 10001}, "rate_limit_per_second"),
        ({"rate_limit_per_second": "5"}, "rate_limit_per_second"),
        ({"description": "d" * 501}, "description"),
        ({"secret": "whsec_mine"}, "secret"),
        ({"disabled": True}, "disabled"),  # not on create
    ]
    for extra, field in bad:
        r = inst.request("POST", "/v1/webhook-endpoints", key=k["key"], json={"url": URL, **extra})
        body = assert_problem(r, 400, "BAD_REQUEST")
        assert body["details"]["field"] == field, (extra, body)
    ep = create_ep(inst, k["key"], project_id=mine, event_types=["a.b", "a.b", "c"])
    assert ep["project_id"] == mine and ep["event_types"] == ["a.b", "c"]
    assert create_ep(inst, k["key"], event_types=None)["event_types"] is None


def test_patch_changes_fields_and_disables_and_delete_removes(inst):
    _, k = wh_admin(inst)
    ep = create_ep(inst, k["key"], description="d", event_types=["x"], rate_limit_per_second=5)
    path = f"/v1/webhook-endpoints/{ep['id']}"
    r = inst.request("PATCH", path, key=k["key"],
                     json={"url": "https://other.example.com/h", "description": None,
                           "event_types": None, "rate_limit_per_second": None, "disabled": True})
    assert r.status_code == 200, r.text
    p = r.json()
    assert "secret" not in p
    assert p["url"] == "https://other.example.com/h" and p["description"] is None
    assert p["event_types"] is None and p["rate_limit_per_second"] is None
    assert p["disabled"] is True and p["disabled_reason"] == "user" and TIME_RE.match(p["disabled_at"])
    assert inst.request("GET", path, key=k["key"]).json() == p
    r = inst.request("PATCH", path, key=k["key"], json={"disabled": False})
    assert r.json()["disabled"] is False and r.json()["disabled_at"] is None
    r = inst.request("PATCH", path, key=k["key"], json={"disabled": "no"})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "disabled"
    r = inst.request("DELETE", path, key=k["key"])
    assert r.status_code == 204 and r.content == b""
    assert_problem(inst.request("GET", path, key=k["key"]), 404, "NOT_FOUND")
    assert_problem(inst.request("DELETE", path, key=k["key"]), 404, "NOT_FOUND")
    assert inst.request("GET", "/v1/webhook-endpoints", key=k["key"]).json()["data"] == []
    actions = [e["action"] for e in inst.request("GET", "/v1/audit-events", key=k["key"]).json()["data"]]
    for a in ("webhook_endpoint.created", "webhook_endpoint.updated", "webhook_endpoint.deleted"):
        assert a in actions, actions


def test_rotate_returns_a_new_secret_with_a_bounded_grace(inst):
    _, k = wh_admin(inst)
    ep = create_ep(inst, k["key"])
    path = f"/v1/webhook-endpoints/{ep['id']}/rotate-secret"
    r = inst.request("POST", path, key=k["key"], json={})
    assert r.status_code == 200, r.text
    rot = r.json()
    assert SECRET_RE.match(rot["secret"]) and rot["secret"] != ep["secret"]
    assert TIME_RE.match(rot["previous_secret_expires_at"])  # default grace: a day
    for g in (-1, 604801, "60", 1.5):
        r = inst.request("POST", path, key=k["key"], json={"grace_seconds": g})
        assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "grace_seconds"
    r = inst.request("POST", path, key=k["key"], json={"grace_seconds": 0})
    assert r.status_code == 200 and r.json()["previous_secret_expires_at"] is None
    got = inst.request("GET", f"/v1/webhook-endpoints/{ep['id']}", key=k["key"])
    assert "whsec_" not in got.text
    if inst.store == "sqlite":
        assert b"whsec_" not in db_bytes(inst)


def test_another_organisations_endpoint_is_404_and_scopes_are_needed(inst):
    org, k = wh_admin(inst)
    _, other = wh_admin(inst, "other")
    ep = create_ep(inst, k["key"])
    base = f"/v1/webhook-endpoints/{ep['id']}"
    for method, path, body in [("GET", base, None), ("PATCH", base, {"description": "x"}),
                               ("DELETE", base, None), ("POST", base + "/rotate-secret", {}),
                               ("POST", base + "/test", {}),
                               ("POST", base + "/recover", {"since": "2026-01-01T00:00:00Z"})]:
        r = inst.request(method, path, key=other["key"], json=body)
        assert_problem(r, 404, "NOT_FOUND")
    assert inst.request("GET", "/v1/webhook-endpoints", key=other["key"]).json()["data"] == []
    assert_problem(inst.request("GET", "/v1/webhook-endpoints/ep_x", key=k["key"]), 404, "NOT_FOUND")
    # A key without webhooks:write may not touch endpoints.
    plain = org_key(inst, org, ["logs:read"], name="reader")
    r = inst.request("GET", "/v1/webhook-endpoints", key=plain["key"])
    assert assert_problem(r, 403, "FORBIDDEN")["details"]["required_scope"] == "webhooks:write"
    # The operator reaches every organisation's, and creates for one by its id.
    assert inst.root("GET", base).status_code == 200
    assert len(inst.root("GET", "/v1/webhook-endpoints").json()["data"]) == 1
    assert_problem(inst.root("POST", "/v1/webhook-endpoints", json={"url": URL}), 400, "BAD_REQUEST")
    r = inst.root("POST", f"/v1/orgs/{org}/webhook-endpoints", json={"url": URL})
    assert r.status_code == 201 and r.json()["org_id"] == org and "secret" in r.json()
    assert_problem(inst.root("POST", "/v1/orgs/01JD3ZZZZZZZZZZZZZZZZZZZZZ/webhook-endpoints",
                             json={"url": URL}), 404, "NOT_FOUND")


def test_endpoint_list_pages(inst):
    _, k = wh_admin(inst)
    ids = [create_ep(inst, k["key"])["id"] for _ in range(3)]
    r = inst.request("GET", "/v1/webhook-endpoints", key=k["key"], params={"limit": 2}).json()
    assert len(r["data"]) == 2 and r["next_cursor"]
    r2 = inst.request("GET", "/v1/webhook-endpoints", key=k["key"],
                      params={"limit": 2, "cursor": r["next_cursor"]}).json()
    assert sorted(e["id"] for e in r["data"] + r2["data"]) == sorted(ids)
    r = inst.request("GET", "/v1/webhook-endpoints", key=k["key"], params={"url": "x"})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "url"


def test_test_and_recover(inst):
    _, k = wh_admin(inst)
    ep = create_ep(inst, k["key"])
    r = inst.request("POST", f"/v1/webhook-endpoints/{ep['id']}/test", key=k["key"], json={})
    assert r.status_code == 201, r.text
    m = r.json()
    assert MSG_RE.match(m["id"]) and m["type"] == "webhook.test"
    got = inst.request("GET", f"/v1/webhook-messages/{m['id']}", key=k["key"]).json()
    assert got["payload"] == {"endpoint_id": ep["id"]}
    listed = messages(inst, k["key"], endpoint_id=ep["id"])
    assert [x["id"] for x in listed] == [m["id"]]
    assert listed[0]["deliveries"][0]["endpoint_id"] == ep["id"]
    assert listed[0]["deliveries"][0]["status"] == "pending"
    path = f"/v1/webhook-endpoints/{ep['id']}/recover"
    for body in ({}, {"since": "yesterday"}, {"since": "2999-01-01T00:00:00Z"}):
        r = inst.request("POST", path, key=k["key"], json=body)
        assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "since"
    r = inst.request("POST", path, key=k["key"], json={"since": "2026-01-01T00:00:00Z"})
    assert r.status_code == 202 and r.json() == {"requeued": 0}  # nothing has failed
    inst.request("PATCH", f"/v1/webhook-endpoints/{ep['id']}", key=k["key"], json={"disabled": True})
    r = inst.request("POST", f"/v1/webhook-endpoints/{ep['id']}/test", key=k["key"], json={})
    assert_problem(r, 409, "CONFLICT")


# ---- publishing ----

def publish(inst, org, body, key=None, **headers):
    return inst.request("POST", f"/v1/orgs/{org}/webhook-messages", key=key or inst.root_key,
                        json=body, headers=headers)


def test_publish_validates_type_payload_and_project(inst):
    org, k = wh_admin(inst)
    r = publish(inst, org, {"type": "invoice.paid", "payload": {"amount": 3}})
    assert r.status_code == 201, r.text
    m = r.json()
    assert MSG_RE.match(m["id"]) and m["type"] == "invoice.paid" and m["org_id"] == org
    assert TIME_RE.match(m["created_at"]) and m["project_id"] is None
    for body, field in [({"payload": {}}, "type"), ({"type": "a..b", "payload": {}}, "type"),
                        ({"type": "a.b.", "payload": {}}, "type"),
                        ({"type": "a-b", "payload": {}}, "type"),
                        ({"type": "x" * 129, "payload": {}}, "type"),
                        ({"type": "a"}, "payload"), ({"type": "a", "payload": [1]}, "payload"),
                        ({"type": "a", "payload": "s"}, "payload"),
                        ({"type": "a", "payload": {}, "project_id": "01JD3ZZZZZZZZZZZZZZZZZZZZZ"},
                         "project_id"),
                        ({"type": "a", "payload": {}, "extra": 1}, "extra")]:
        body_ = assert_problem(publish(inst, org, body), 400, "BAD_REQUEST")
        assert body_["details"]["field"] == field, (body, body_)
    # An organisation key may not publish: operator keys only.
    assert_problem(publish(inst, org, {"type": "a", "payload": {}}, key=k["key"]), 403, "FORBIDDEN")
    assert_problem(publish(inst, "01JD3ZZZZZZZZZZZZZZZZZZZZZ", {"type": "a", "payload": {}}),
                   404, "NOT_FOUND")
    p = inst.request("POST", "/v1/projects", key=k["key"], json={"name": "p"}).json()["id"]
    r = publish(inst, org, {"type": "a", "payload": {}, "project_id": p})
    assert r.status_code == 201 and r.json()["project_id"] == p


def test_publish_payload_is_bounded_at_256_kib(inst):
    org, _ = wh_admin(inst)
    pad = 256 * 1024 - len('{"p":""}')
    r = publish(inst, org, {"type": "big", "payload": {"p": "x" * pad}})
    assert r.status_code == 201, r.text
    r = publish(inst, org, {"type": "big", "payload": {"p": "x" * (pad + 1)}})
    body = assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert body["details"] == {"field": "payload", "limit": 262144}


def test_publish_idempotency_replays_and_refuses_another_request(inst):
    org, k = wh_admin(inst)
    body = {"type": "invoice.paid", "payload": {"n": 1}}
    first = publish(inst, org, body, **{"Idempotency-Key": "abc-1"})
    assert first.status_code == 201, first.text
    again = publish(inst, org, body, **{"Idempotency-Key": "abc-1"})
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    other = publish(inst, org, {"type": "invoice.paid", "payload": {"n": 2}},
                    **{"Idempotency-Key": "abc-1"})
    assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
    # Without a key, or with another, it is a new message each time.
    assert publish(inst, org, body).json()["id"] != first.json()["id"]
    assert publish(inst, org, body, **{"Idempotency-Key": "abc-2"}).json()["id"] != first.json()["id"]
    assert_problem(publish(inst, org, body, **{"Idempotency-Key": "x" * 256}), 400, "BAD_REQUEST")
    ids = [m["id"] for m in messages(inst, k["key"], type="invoice.paid")]
    assert len(ids) == 3 and ids.count(first.json()["id"]) == 1


def test_idempotency_survives_a_restart(inst):
    org, _ = wh_admin(inst)
    body = {"type": "invoice.paid", "payload": {"n": 1}}
    first = publish(inst, org, body, **{"Idempotency-Key": "durable"})
    inst.stop()
    inst.start()
    again = publish(inst, org, body, **{"Idempotency-Key": "durable"})
    assert again.status_code == 201 and again.content == first.content


# ---- Portcullis's own events and the records ----

def test_a_kill_creates_its_message_and_a_failed_kill_none(inst):
    org, k = wh_admin(inst)
    victim = create_key(inst, k["key"], name="victim")
    r = inst.request("POST", f"/v1/api-keys/{victim['id']}/kill", key=k["key"],
                     json={"reason": "leaked"})
    assert r.status_code == 200, r.text
    killed = messages(inst, k["key"], type="api_key.killed")
    assert len(killed) == 1, killed
    m = inst.request("GET", f"/v1/webhook-messages/{killed[0]['id']}", key=k["key"]).json()
    data = m["payload"]
    assert data["key_id"] == victim["id"] and data["start"] == victim["start"]
    assert data["org_id"] == org and data["scope"] == "key" and data["reason"] == "leaked"
    assert data["request_id"] == r.headers["X-Request-Id"] and TIME_RE.match(data["at"])
    text = json.dumps(m)
    assert victim["key"] not in text and victim["key"].split(".")[1] not in text
    assert "$2b$" not in text and "127.0.0.1" not in text
    # An operator kill cannot be taken over by the organisation: 403, and no message.
    inst.root("POST", f"/v1/api-keys/{victim['id']}/kill", json={"reason": "op"})
    r = inst.request("POST", f"/v1/api-keys/{victim['id']}/kill", key=k["key"], json={})
    assert_problem(r, 403, "FORBIDDEN")
    r = inst.request("POST", "/v1/api-keys/01JD3ZZZZZZZZZZZZZZZZZZZZZ/kill", key=k["key"], json={})
    assert_problem(r, 404, "NOT_FOUND")
    assert len(messages(inst, k["key"], type="api_key.killed")) == 2  # the operator's only
    inst.root("DELETE", f"/v1/api-keys/{victim['id']}/kill")
    lifted = messages(inst, k["key"], type="api_key.kill_lifted")
    assert len(lifted) == 1


def test_key_project_org_and_global_events(inst):
    org, k = wh_admin(inst)
    other, ok = wh_admin(inst, "other")
    p = inst.request("POST", "/v1/projects", key=k["key"], json={"name": "shop"}).json()
    key = create_key(inst, k["key"], name="ci", project_id=p["id"])
    inst.request("POST", f"/v1/api-keys/{key['id']}/rotate", key=k["key"], json={})
    inst.request("DELETE", f"/v1/api-keys/{key['id']}", key=k["key"])
    inst.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "abuse"})
    inst.root("DELETE", f"/v1/orgs/{org}/kill")
    inst.root("POST", "/v1/kill-switch", json={"reason": "incident"})
    inst.root("DELETE", "/v1/kill-switch")
    got = {}
    for m in messages(inst, k["key"], limit=100):
        got.setdefault(m["type"], []).append(m)
    for t in ("project.created", "api_key.created", "api_key.rotated", "api_key.revoked",
              "org.killed", "org.kill_lifted", "global.killed", "global.kill_lifted"):
        assert t in got, (t, sorted(got))
    one = lambda t: inst.request("GET", f"/v1/webhook-messages/{got[t][0]['id']}",  # noqa: E731
                                 key=k["key"]).json()
    assert one("project.created")["payload"] == {"project_id": p["id"], "org_id": org,
                                                 "name": "shop"}
    assert got["project.created"][0]["project_id"] == p["id"]
    created = [m for m in got["api_key.created"] if m["project_id"] == p["id"]]
    assert len(created) == 1
    rot = one("api_key.rotated")["payload"]
    assert rot["key_id"] == key["id"] and rot["project_id"] == p["id"] and rot["name"] == "ci"
    assert one("org.killed")["payload"]["scope"] == "organization"
    assert one("org.killed")["payload"]["reason"] == "abuse"
    g = one("global.killed")
    assert g["org_id"] is None and g["payload"]["scope"] == "global"
    # The other organisation sees the global events, not this one's.
    theirs = {m["type"] for m in messages(inst, ok["key"], limit=100)}
    assert {"global.killed", "global.kill_lifted"} <= theirs
    assert "org.killed" not in theirs and "project.created" not in theirs
    # A message of this organisation is 404 to the other.
    assert_problem(inst.request("GET", f"/v1/webhook-messages/{got['org.killed'][0]['id']}",
                                key=ok["key"]), 404, "NOT_FOUND")


def test_message_records_filter_page_attempts_and_resend(inst):
    org, k = wh_admin(inst)
    ep = create_ep(inst, k["key"], event_types=["invoice.paid"])
    ids = [publish(inst, org, {"type": "invoice.paid", "payload": {"n": i}}).json()["id"]
           for i in range(3)]
    publish(inst, org, {"type": "invoice.void", "payload": {}})
    assert [m["id"] for m in messages(inst, k["key"], type="invoice.paid")] == ids[::-1]
    page = inst.request("GET", "/v1/webhook-messages", key=k["key"],
                        params={"type": "invoice.paid", "limit": 2}).json()
    assert [m["id"] for m in page["data"]] == ids[:0:-1] and page["next_cursor"] == ids[1]
    rest = messages(inst, k["key"], type="invoice.paid", cursor=page["next_cursor"])
    assert [m["id"] for m in rest] == ids[:1]
    assert messages(inst, k["key"], type="invoice.paid", since="2999-01-01T00:00:00Z") == []
    assert len(messages(inst, k["key"], type="invoice.paid", until="2999-01-01T00:00:00Z")) == 3
    assert messages(inst, k["key"], status="succeeded") == []
    for q, field in [({"status": "done"}, "status"), ({"type": "a b"}, "type"),
                     ({"endpoint_id": "x"}, "endpoint_id"), ({"since": "x"}, "since"),
                     ({"cursor": "x"}, "cursor"), ({"org_id": org}, "org_id")]:
        r = inst.request("GET", "/v1/webhook-messages", key=k["key"], params=q)
        assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == field
    r = inst.request("GET", f"/v1/webhook-messages/{ids[0]}/attempts", key=k["key"])
    assert r.status_code == 200 and r.json() == {"data": [], "next_cursor": None}
    r = inst.request("POST", f"/v1/webhook-messages/{ids[0]}/resend", key=k["key"],
                     json={"endpoint_id": ep["id"]})
    assert r.status_code == 202, r.text
    r = inst.request("POST", f"/v1/webhook-messages/{ids[0]}/resend", key=k["key"],
                     json={"endpoint_id": "nope"})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "endpoint_id"
    assert_problem(inst.request("GET", "/v1/webhook-messages/msg_01JD3ZZZZZZZZZZZZZZZZZZZZZ",
                                key=k["key"]), 404, "NOT_FOUND")
    # Records need logs:read.
    writer = org_key(inst, org, ["webhooks:write"], name="w")
    r = inst.request("GET", "/v1/webhook-messages", key=writer["key"])
    assert assert_problem(r, 403, "FORBIDDEN")["details"]["required_scope"] == "logs:read"
