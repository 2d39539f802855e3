"""Organisation rate limits, black-box (docs/contract.md "Rate limits", check 7):
GCRA per organisation, RateLimit-Policy / RateLimit on every gateway
response, 429 RATE_LIMITED with Retry-After, recovery, rejected requests
not counted, no over-admission under concurrency, and the operator's
per-organisation override.

GCRA (src/kv/gcra.h): `requests` per `per_seconds` sustained, so one
request every T = per_seconds/requests, and `burst` extra at once: the
first burst+1 requests pass together. RateLimit-Policy q = burst+1,
w = T*(burst+1) in seconds (rounded up).
"""
import concurrent.futures
import re
import time

from conftest import assert_problem
from test_forward import Upstream, gateway_key, upstream, upstream_conf  # noqa: F401

POLICY_RE = re.compile(r'^"org";q=(\d+);w=(\d+)$')
LIMIT_RE = re.compile(r'^"org";r=(\d+);t=(\d+)$')


def rl_conf(up, requests, per_seconds, burst):
    return upstream_conf(up) + (f"[rate_limit]\nrequests = {requests}\n"
                                f"per_seconds = {per_seconds}\nburst = {burst}\n")


def policy(r):
    m = POLICY_RE.match(r.headers["RateLimit-Policy"])
    assert m, r.headers["RateLimit-Policy"]
    return int(m.group(1)), int(m.group(2))


def remaining(r):
    m = LIMIT_RE.match(r.headers["RateLimit"])
    assert m, r.headers["RateLimit"]
    return int(m.group(1)), int(m.group(2))


def set_org_limit(gw, org, limit):
    r = gw.root("PATCH", f"/v1/orgs/{org}", json={"rate_limit": limit})
    assert r.status_code == 200, r.text
    return r.json()


def test_limit_answers_429_with_headers_and_recovers_after_retry_after(make_instance, upstream):
    # One request a second sustained, three at once.
    gw = make_instance(config=rl_conf(upstream, 1, 1, 2)).start()
    org, k = gateway_key(gw)
    for left in (2, 1, 0):
        r = gw.request("GET", "/x", key=k["key"])
        assert r.status_code == 200, r.text
        assert policy(r) == (3, 3)
        assert remaining(r)[0] == left
    assert 1 <= remaining(r)[1] <= 3
    r = gw.request("GET", "/x", key=k["key"])
    body = assert_problem(r, 429, "RATE_LIMITED")
    assert body["details"]["limit"] == 3
    assert policy(r) == (3, 3)
    assert remaining(r)[0] == 0
    retry = int(r.headers["Retry-After"])
    assert retry == 1
    assert upstream.count() == 3
    time.sleep(retry + 0.05)
    r = gw.request("GET", "/x", key=k["key"])
    assert r.status_code == 200, r.text
    assert remaining(r)[0] <= 1
    assert upstream.count() == 4


def test_rejected_requests_do_not_consume_quota(make_instance, upstream):
    # One request a second, none extra.
    gw = make_instance(config=rl_conf(upstream, 1, 1, 0)).start()
    org, k = gateway_key(gw)
    assert gw.request("GET", "/x", key=k["key"]).status_code == 200
    t0 = time.monotonic()  # the request above counted no later than this
    refused = 0
    while time.monotonic() - t0 < 0.5:
        # Check 7 comes before check 8: a refused request claims no Idempotency-Key.
        r = gw.request("POST", "/x", key=k["key"], data=b"{}",
                       headers={"Idempotency-Key": "after-429"})
        assert_problem(r, 429, "RATE_LIMITED")
        refused += 1
    assert refused >= 3
    # Had the refusals counted, the next slot would be seconds away.
    time.sleep(max(0.0, 1.05 - (time.monotonic() - t0)))
    r = gw.request("POST", "/x", key=k["key"], data=b"{}",
                   headers={"Idempotency-Key": "after-429"})
    assert r.status_code == 200, r.text
    assert "Idempotent-Replayed" not in r.headers
    assert upstream.count() == 2


def test_no_over_admission_under_concurrency(make_instance, upstream):
    # A generous default, so that only the override below can refuse.
    gw = make_instance(config=rl_conf(upstream, 1000, 1, 1000)).start()
    org, k = gateway_key(gw)
    # One every 6 s, ten at once: for the few seconds of this test, exactly 10.
    set_org_limit(gw, org, {"requests": 10, "per_seconds": 60, "burst": 9})
    other_org, other = gateway_key(gw, "other")

    def call(key):
        return gw.request("GET", "/x", key=key).status_code

    # Warm the verified-secret cache so the burst measures the limiter, not bcrypt.
    assert call(other["key"]) == 200
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(call, [k["key"]] * 100))
        others = list(pool.map(call, [other["key"]] * 30))
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 90, codes
    # The other organisation keeps the default.
    assert others == [200] * 30
    assert upstream.count() == 10 + 31


def test_per_org_override_set_by_patch_applies_and_can_be_removed(make_instance, upstream):
    gw = make_instance(config=rl_conf(upstream, 100, 1, 50)).start()
    org, k = gateway_key(gw)
    r = gw.request("GET", "/x", key=k["key"])
    assert r.status_code == 200 and policy(r) == (51, 1)
    got = set_org_limit(gw, org, {"requests": 1, "per_seconds": 60, "burst": 1})
    assert got["rate_limit"] == {"requests": 1, "per_seconds": 60, "burst": 1}
    assert gw.root("GET", f"/v1/orgs/{org}").json()["rate_limit"] == got["rate_limit"]
    statuses = []
    for _ in range(4):
        r = gw.request("GET", "/x", key=k["key"])
        statuses.append(r.status_code)
        assert policy(r) == (2, 120)
    # A changed limit starts a fresh bucket: burst + 1 pass.
    assert statuses == [200, 200, 429, 429], statuses
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Removing the override restores the default at once, not when the
    # tight limit's 60 s interval has passed.
    set_org_limit(gw, org, None)
    for _ in range(5):
        r = gw.request("GET", "/x", key=k["key"])
        assert r.status_code == 200, r.text
        assert policy(r) == (51, 1)
    # Invalid overrides are refused.
    for bad in ({"requests": 0}, {"requests": 1, "per_seconds": 0}, {"per_seconds": 5},
                {"requests": 1, "burst": -1}, "fast"):
        r = gw.root("PATCH", f"/v1/orgs/{org}", json={"rate_limit": bad})
        assert_problem(r, 400, "BAD_REQUEST")


def test_t_is_the_wait_until_one_request_is_allowed_like_retry_after(make_instance, upstream):
    # 2 a minute with a burst of 1 (q=2, w=60): T = 30 s. After both requests, t is the 30 s
    # until one is allowed again (draft-ietf-httpapi-ratelimit-headers-10), the same as
    # Retry-After on the 429; it used to be 60, the time until the bucket is full.
    gw = make_instance(config=rl_conf(upstream, 2, 60, 1)).start()
    org, k = gateway_key(gw)
    for left in (1, 0):
        r = gw.request("GET", "/x", key=k["key"])
        assert r.status_code == 200, r.text
        assert policy(r) == (2, 60)
        assert remaining(r) == (left, 30)
    r = gw.request("GET", "/x", key=k["key"])
    assert_problem(r, 429, "RATE_LIMITED")
    retry = int(r.headers["Retry-After"])
    assert 29 <= retry <= 30
    assert remaining(r) == (0, retry)
    assert upstream.count() == 2
