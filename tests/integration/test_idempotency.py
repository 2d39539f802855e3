"""Idempotency-Key, black-box (docs/contract.md "Idempotency", check 8): first
use runs and records; a finished duplicate replays with
Idempotent-Replayed: true; a running duplicate is 409
IDEMPOTENCY_IN_FLIGHT; another request under the same key is 422
IDEMPOTENCY_KEY_REUSED; records expire after [idempotency] ttl_seconds;
responses over max_response_bytes are not recorded; upstream failures are
recorded and replayed; a malformed key is 400; only POST and PATCH use it;
the scope is organisation + key.
"""
import threading
import time

from conftest import assert_problem
from test_forward import Upstream, gateway_key, upstream, upstream_conf  # noqa: F401
from test_keys import org_key


def idem_conf(up, ttl=86400, max_bytes=65536, timeout_ms=3000):
    return upstream_conf(up, timeout_ms=timeout_ms) + (
        f"[idempotency]\nttl_seconds = {ttl}\nmax_response_bytes = {max_bytes}\n")


def post(gw, key, path, idem, body=b'{"amount": 100}', method="POST"):
    h = {"Content-Type": "application/json"}
    if idem is not None:
        h["Idempotency-Key"] = idem
    return gw.request(method, path, key=key, headers=h, data=body)


def test_finished_duplicate_is_replayed_and_the_upstream_runs_once(make_instance, upstream):
    gw = make_instance(config=idem_conf(upstream)).start()
    org, k = gateway_key(gw)
    first = post(gw, k["key"], "/charges/status/201", "order-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert "Idempotency-Recorded" not in first.headers
    for _ in range(2):
        again = post(gw, k["key"], "/charges/status/201", "order-1")
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["Content-Type"] == "application/vnd.test+json"
        assert again.content == first.content
        assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert upstream.count() == 1
    # PATCH takes part too.
    a = post(gw, k["key"], "/charges/1", "patch-1", method="PATCH")
    b = post(gw, k["key"], "/charges/1", "patch-1", method="PATCH")
    assert a.status_code == b.status_code == 200
    assert b.headers["Idempotent-Replayed"] == "true" and b.content == a.content
    assert upstream.count() == 2


def test_same_key_with_another_request_is_422_key_reused(make_instance, upstream):
    gw = make_instance(config=idem_conf(upstream)).start()
    org, k = gateway_key(gw)
    assert post(gw, k["key"], "/charges", "order-2").status_code == 200
    for r in (post(gw, k["key"], "/charges", "order-2", body=b'{"amount": 101}'),
              post(gw, k["key"], "/refunds", "order-2"),
              post(gw, k["key"], "/charges?x=1", "order-2"),
              post(gw, k["key"], "/charges", "order-2", method="PATCH")):
        assert_problem(r, 422, "IDEMPOTENCY_KEY_REUSED")
    assert upstream.count() == 1
    # The original still replays.
    assert post(gw, k["key"], "/charges", "order-2").headers["Idempotent-Replayed"] == "true"


def test_duplicate_while_the_first_is_running_is_409_in_flight(make_instance, upstream):
    gw = make_instance(config=idem_conf(upstream)).start()
    org, k = gateway_key(gw)
    out = {}
    a = threading.Thread(target=lambda: out.update(
        a=post(gw, k["key"], "/charges/slow?ms=1200", "order-3")))
    a.start()
    deadline = time.time() + 5
    while upstream.count() == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert upstream.count() == 1
    r = post(gw, k["key"], "/charges/slow?ms=1200", "order-3")
    assert_problem(r, 409, "IDEMPOTENCY_IN_FLIGHT")
    assert int(r.headers["Retry-After"]) >= 1
    # Another body under the same key is still a reuse, running or not.
    assert_problem(post(gw, k["key"], "/charges/slow?ms=1200", "order-3", body=b"{}"), 422,
                   "IDEMPOTENCY_KEY_REUSED")
    a.join(10)
    assert out["a"].status_code == 200
    r = post(gw, k["key"], "/charges/slow?ms=1200", "order-3")
    assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
    assert r.content == out["a"].content
    assert upstream.count() == 1


def test_record_expires_after_ttl_seconds(make_instance, upstream):
    gw = make_instance(config=idem_conf(upstream, ttl=2)).start()
    org, k = gateway_key(gw)
    assert post(gw, k["key"], "/charges", "order-4").status_code == 200
    r = post(gw, k["key"], "/charges", "order-4")
    assert r.headers.get("Idempotent-Replayed") == "true"
    time.sleep(2.3)
    r = post(gw, k["key"], "/charges", "order-4")
    assert r.status_code == 200
    assert "Idempotent-Replayed" not in r.headers
    assert upstream.count() == 2


def test_response_over_max_response_bytes_is_not_recorded(make_instance, upstream):
    gw = make_instance(config=idem_conf(upstream, max_bytes=1000)).start()
    org, k = gateway_key(gw)
    for _ in range(2):
        r = post(gw, k["key"], "/files/big?n=5000", "big-1")
        assert r.status_code == 200 and len(r.content) == 5000
        assert r.headers["Idempotency-Recorded"] == "false"
        assert "Idempotent-Replayed" not in r.headers
    assert upstream.count() == 2
    # At the limit, recorded.
    a = post(gw, k["key"], "/files/big?n=1000", "big-2")
    assert "Idempotency-Recorded" not in a.headers
    b = post(gw, k["key"], "/files/big?n=1000", "big-2")
    assert b.headers["Idempotent-Replayed"] == "true" and b.content == a.content
    assert upstream.count() == 3


def test_upstream_failure_is_recorded_and_replayed(make_instance, upstream):
    gw = make_instance(config=idem_conf(upstream, timeout_ms=300)).start()
    org, k = gateway_key(gw)
    first = post(gw, k["key"], "/x/drop", "fail-1")
    assert_problem(first, 502, "UPSTREAM_UNAVAILABLE")
    again = post(gw, k["key"], "/x/drop", "fail-1")
    assert again.status_code == 502
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Content-Type"].startswith("application/problem+json")
    assert again.json()["code"] == "UPSTREAM_UNAVAILABLE"
    assert upstream.count("/x/drop") == 1
    # A timeout too: the upstream may have acted, so a retry must not run again.
    assert_problem(post(gw, k["key"], "/x/slow?ms=800", "fail-2"), 504, "UPSTREAM_TIMEOUT")
    again = post(gw, k["key"], "/x/slow?ms=800", "fail-2")
    assert again.status_code == 504 and again.headers["Idempotent-Replayed"] == "true"
    assert upstream.count("/x/slow") == 1


def test_malformed_idempotency_key_is_400(make_instance, upstream):
    gw = make_instance(config=idem_conf(upstream)).start()
    org, k = gateway_key(gw)
    for bad in ("k" * 256, "k" * 300, "has space", "tab\there", "caf\u00e9".encode(), ""):
        r = post(gw, k["key"], "/charges", bad)
        body = assert_problem(r, 400, "BAD_REQUEST")
        assert body["details"]["field"] == "Idempotency-Key"
    assert upstream.count() == 0
    assert post(gw, k["key"], "/charges", "k" * 255).status_code == 200
    assert post(gw, k["key"], "/charges", "~!#$%").status_code == 200


def test_get_put_and_delete_ignore_the_header(make_instance, upstream):
    gw = make_instance(config=idem_conf(upstream)).start()
    org, k = gateway_key(gw)
    for method in ("GET", "PUT", "DELETE"):
        for _ in range(2):
            r = gw.request(method, "/charges/1", key=k["key"],
                           headers={"Idempotency-Key": "same"})
            assert r.status_code == 200
            assert "Idempotent-Replayed" not in r.headers
    assert upstream.count() == 6
    # A GET with a key that would be malformed is not checked either.
    r = gw.request("GET", "/charges/1", key=k["key"], headers={"Idempotency-Key": "x" * 300})
    assert r.status_code == 200


def test_scope_is_organisation_and_key(make_instance, upstream):
    gw = make_instance(config=idem_conf(upstream)).start()
    org, k1 = gateway_key(gw)
    k2 = org_key(gw, org, ["gateway"])
    other_org, k3 = gateway_key(gw, "other")
    keys = (k1, k2, k3)
    # The same Idempotency-Key with other bodies: neither a replay nor a reuse.
    for i, k in enumerate(keys):
        r = post(gw, k["key"], "/charges", "shared", body=b'{"n": %d}' % i)
        assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    assert upstream.count() == 3
    for i, k in enumerate(keys):
        r = post(gw, k["key"], "/charges", "shared", body=b'{"n": %d}' % i)
        assert r.headers["Idempotent-Replayed"] == "true"
    assert upstream.count() == 3


def test_a_response_at_the_largest_allowed_limit_is_recorded(make_instance, upstream):
    # 16 MiB: the top of the [idempotency] max_response_bytes range and the kv tier's cap.
    n = 16 * 1024 * 1024
    gw = make_instance(config=idem_conf(upstream, max_bytes=n, timeout_ms=20000)).start()
    org, k = gateway_key(gw)
    a = post(gw, k["key"], f"/files/big?n={n}", "huge-1")
    assert a.status_code == 200 and len(a.content) == n
    assert "Idempotency-Recorded" not in a.headers
    b = post(gw, k["key"], f"/files/big?n={n}", "huge-1")
    assert b.headers["Idempotent-Replayed"] == "true" and b.content == a.content
    assert upstream.count() == 1
