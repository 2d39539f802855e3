"""Project budgets (INCIDENT.md "Usage and budgets", docs/api.md "Budgets"),
black-box on SQLite and PostgreSQL: PATCH /v1/projects/{id} {budget} sets,
shows and removes a budget, refuses bad input with problem+json 400 and is
audited; traffic of the project's key through the data plane crosses the
thresholds, and each goes out exactly once per month as
usage.budget_threshold, by webhook (signed, verified with the Standard
Webhooks library) and by email to the organisation's contact, however much
traffic follows. Refused attempts naming the key do not count.
"""
import json
import re
import time

import pytest

from conftest import assert_problem, flip_last
from test_keys import create_key
from test_mail import CONTACT, mailed, smtp  # noqa: F401
from test_webhooks import Hooks, ca, hooks_instance, receiver  # noqa: F401
from webhook_peers import verify_request

MONTH_RE = re.compile(r"^\d{4}-\d{2}$")


def new_project(hooks, name="billing"):
    r = hooks.req("POST", "/v1/projects", json={"name": name})
    assert r.status_code == 201, r.text
    assert r.json()["budget"] is None
    return r.json()


def patch_budget(hooks, pid, budget, expect=200):
    r = hooks.req("PATCH", f"/v1/projects/{pid}", json={"budget": budget})
    assert r.status_code == expect, r.text
    return r


def send(inst, key, n):
    for _ in range(n):
        r = inst.request("GET", "/v1/verify", key=key)
        assert r.status_code == 200, r.text


def month_count(hooks, pid, want, timeout=15):
    """The project's requests_this_month once it reaches want (the writer batches)."""
    deadline = time.time() + timeout
    while True:
        got = hooks.req("GET", f"/v1/projects/{pid}").json()["budget"]["requests_this_month"]
        if got >= want or time.time() > deadline:
            return got
        time.sleep(0.1)


def audit_events(hooks):
    r = hooks.req("GET", "/v1/audit-events", params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def notices(rx, path):
    return [json.loads(r.body) for r in rx.requests_for(path)]


def test_thresholds_notify_once_by_webhook_and_email(make_instance, receiver, ca,
                                                     smtp):  # noqa: F811
    inst = hooks_instance(make_instance, receiver, ca, smtp=smtp)
    hooks = Hooks(inst, receiver, contact_email=CONTACT)
    ep = hooks.endpoint("/budget", event_types=["usage.budget_threshold"])
    p = new_project(hooks)
    r = patch_budget(hooks, p["id"], {"requests_per_month": 10, "notify_at": [50, 100]})
    b = r.json()["budget"]
    assert b["requests_per_month"] == 10 and b["notify_at"] == [50, 100]
    assert MONTH_RE.match(b["month"]) and b["requests_this_month"] == 0
    k = create_key(inst, hooks.key, name="app", project_id=p["id"], scopes=["gateway"])

    # Refused attempts naming the key are not the project's use.
    for _ in range(6):
        assert inst.request("GET", "/v1/verify", key=flip_last(k["key"])).status_code == 401
    send(inst, k["key"], 4)
    assert month_count(hooks, p["id"], 4) == 4
    time.sleep(1)
    assert notices(receiver, "/budget") == []

    send(inst, k["key"], 1)  # the 5th: 50 %
    (req,) = receiver.wait_requests(1, "/budget")
    assert verify_request(req, ep["secret"])["ok"]
    body = json.loads(req.body)
    assert body["type"] == "usage.budget_threshold"
    d = body["data"]
    assert d["project_id"] == p["id"] and d["org_id"] == hooks.org
    assert d["threshold"] == 50 and d["requests_per_month"] == 10 and d["requests"] == 5
    assert d["month"] == b["month"]

    send(inst, k["key"], 5)  # 10: 100 %
    got = receiver.wait_requests(2, "/budget")
    assert len(got) == 2, notices(receiver, "/budget")
    send(inst, k["key"], 15)  # more traffic: nothing more this month
    assert month_count(hooks, p["id"], 25) == 25
    time.sleep(3)
    sent = notices(receiver, "/budget")
    assert sorted(n["data"]["threshold"] for n in sent) == [50, 100], sent
    assert len({r.headers["webhook-id"] for r in receiver.requests_for("/budget")}) == 2

    # Email: once per threshold, to the contact, naming project, threshold and count.
    mails = [m for m in mailed(smtp, 2) if "budget" in str(m.message["Subject"])]
    texts = sorted(m.text() for m in mails)
    assert len(texts) == 2, texts
    assert any("Threshold:    50% of 10 requests" in t for t in texts), texts
    assert any("Threshold:    100% of 10 requests" in t for t in texts), texts
    assert all(p["id"] in t and b["month"] in t for t in texts)
    assert all(k["key"].split(".", 1)[1] not in t for t in texts)
    time.sleep(1)
    assert len([m for m in smtp.mails if "budget" in str(m.message["Subject"])]) == 2

    # Each notice is in the audit log, as the system's.
    evs = [e for e in audit_events(hooks) if e["action"] == "usage.budget_threshold"]
    assert [(e["actor"]["type"], e["target"]["id"], e["details"]["threshold"]) for e in evs] \
        == [("system", p["id"], 50), ("system", p["id"], 100)]


def test_setting_a_budget_below_this_months_usage_notifies_at_once_and_raising_rearms(
        make_instance, receiver, ca):  # noqa: F811
    inst = hooks_instance(make_instance, receiver, ca)
    hooks = Hooks(inst, receiver)
    hooks.endpoint("/budget", event_types=["usage.budget_threshold"])
    p = new_project(hooks)
    k = create_key(inst, hooks.key, name="app", project_id=p["id"], scopes=["gateway"])
    send(inst, k["key"], 6)
    patch_budget(hooks, p["id"], {"requests_per_month": 100})  # counts even without a budget
    assert month_count(hooks, p["id"], 6) == 6
    # 6 of 8 is 75 %: 50 is reached already and goes out now; the default 80/100 are not.
    r = patch_budget(hooks, p["id"], {"requests_per_month": 8, "notify_at": [50, 80, 100]})
    assert r.json()["budget"]["requests_this_month"] == 6
    (req,) = receiver.wait_requests(1, "/budget")
    assert json.loads(req.body)["data"]["threshold"] == 50
    send(inst, k["key"], 1)  # 7 of 8: 87.5 %
    got = receiver.wait_requests(2, "/budget")
    assert [json.loads(g.body)["data"]["threshold"] for g in got] == [50, 80]
    # Raised: 50 % of 20 is 10, above the 7 so far, so it can go out again.
    patch_budget(hooks, p["id"], {"requests_per_month": 20, "notify_at": [50]})
    send(inst, k["key"], 3)
    got = receiver.wait_requests(3, "/budget")
    assert [json.loads(g.body)["data"]["threshold"] for g in got] == [50, 80, 50]
    assert json.loads(got[2].body)["data"]["requests"] == 10

    # Removed: null; GET shows none, more traffic notifies nothing.
    r = patch_budget(hooks, p["id"], None)
    assert r.json()["budget"] is None
    assert hooks.req("GET", f"/v1/projects/{p['id']}").json()["budget"] is None
    send(inst, k["key"], 15)
    time.sleep(2)
    assert len(receiver.requests_for("/budget")) == 3


BAD = [
    ({}, "budget"),
    ({"budget": 10}, "budget"),
    ({"budget": {"notify_at": [50]}}, "budget.requests_per_month"),
    ({"budget": {"requests_per_month": 0}}, "budget.requests_per_month"),
    ({"budget": {"requests_per_month": -5}}, "budget.requests_per_month"),
    ({"budget": {"requests_per_month": 1.5}}, "budget.requests_per_month"),
    ({"budget": {"requests_per_month": "10"}}, "budget.requests_per_month"),
    ({"budget": {"requests_per_month": 10 ** 12 + 1}}, "budget.requests_per_month"),
    ({"budget": {"requests_per_month": 10, "notify_at": []}}, "budget.notify_at"),
    ({"budget": {"requests_per_month": 10, "notify_at": [100, 80]}}, "budget.notify_at"),
    ({"budget": {"requests_per_month": 10, "notify_at": [80, 80]}}, "budget.notify_at"),
    ({"budget": {"requests_per_month": 10, "notify_at": [0]}}, "budget.notify_at"),
    ({"budget": {"requests_per_month": 10, "notify_at": [1001]}}, "budget.notify_at"),
    ({"budget": {"requests_per_month": 10, "notify_at": [50.5]}}, "budget.notify_at"),
    ({"budget": {"requests_per_month": 10, "notify_at": list(range(1, 12))}},
     "budget.notify_at"),
    ({"budget": {"requests_per_month": 10, "notify_at": "80,100"}}, "budget.notify_at"),
    ({"budget": {"requests_per_month": 10, "cap": True}}, "budget.cap"),
    ({"budget": None, "name": "x"}, "name"),
]


def test_bad_budgets_are_400_and_change_nothing(make_instance, receiver, ca):  # noqa: F811
    inst = hooks_instance(make_instance, receiver, ca)
    hooks = Hooks(inst, receiver)
    p = new_project(hooks)
    patch_budget(hooks, p["id"], {"requests_per_month": 1000, "notify_at": [90]})
    for body, field in BAD:
        r = hooks.req("PATCH", f"/v1/projects/{p['id']}", json=body)
        assert_problem(r, 400, "BAD_REQUEST")
        assert r.json()["details"]["field"] == field, (body, r.text)
    b = hooks.req("GET", f"/v1/projects/{p['id']}").json()["budget"]
    assert b["requests_per_month"] == 1000 and b["notify_at"] == [90]
    # The bounds themselves are fine; notify_at defaults to [80, 100].
    r = patch_budget(hooks, p["id"], {"requests_per_month": 10 ** 12,
                                      "notify_at": list(range(991, 1001))})
    assert r.json()["budget"]["notify_at"] == list(range(991, 1001))
    r = patch_budget(hooks, p["id"], {"requests_per_month": 1})
    assert r.json()["budget"]["notify_at"] == [80, 100]
    # Another organisation's project, a project that does not exist, a root key.
    other = Hooks(inst, receiver)
    r = other.req("PATCH", f"/v1/projects/{p['id']}", json={"budget": None})
    assert_problem(r, 404, "NOT_FOUND")
    r = hooks.req("PATCH", "/v1/projects/01ARZ3NDEKTSV4RRFFQ69G5FAV", json={"budget": None})
    assert_problem(r, 404, "NOT_FOUND")
    r = inst.root("PATCH", f"/v1/projects/{p['id']}", json={"budget": None})
    assert_problem(r, 400, "BAD_REQUEST")


def test_a_budget_change_is_audited(make_instance, receiver, ca):  # noqa: F811
    inst = hooks_instance(make_instance, receiver, ca)
    hooks = Hooks(inst, receiver)
    p = new_project(hooks)
    rid = patch_budget(hooks, p["id"], {"requests_per_month": 50, "notify_at": [80]}) \
        .headers["X-Request-Id"]
    rid2 = patch_budget(hooks, p["id"], None).headers["X-Request-Id"]
    evs = {e["request_id"]: e for e in audit_events(hooks) if e["action"] == "project.updated"}
    assert evs[rid]["target"] == {"type": "project", "id": p["id"]}
    assert evs[rid]["actor"]["type"] == "key"
    assert evs[rid]["details"]["budget"] == {"requests_per_month": 50, "notify_at": [80]}
    assert evs[rid2]["details"]["budget"] is None


@pytest.mark.parametrize("scope", ["keys:read"])
def test_patch_needs_keys_write(make_instance, receiver, ca, scope):  # noqa: F811
    inst = hooks_instance(make_instance, receiver, ca)
    hooks = Hooks(inst, receiver)
    p = new_project(hooks)
    k = create_key(inst, hooks.key, name="reader", scopes=[scope])
    r = inst.request("PATCH", f"/v1/projects/{p['id']}", key=k["key"],
                     json={"budget": {"requests_per_month": 5}})
    assert_problem(r, 403, "FORBIDDEN")
