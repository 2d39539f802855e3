"""The order of checks on every authenticated request (docs/contract.md), one
status and code per test: 401 UNAUTHENTICATED, 429 TOO_MANY_FAILED_ATTEMPTS,
401 REVOKED, 401 EXPIRED, 403 FORBIDDEN, 404 for another organisation's
resources, 503 OVERLOADED. The kill switch (503 KILL_SWITCH) is in
test_killswitch.py.
"""
import concurrent.futures
import time

import requests

from conftest import assert_problem, flip_last
from test_keys import (admin, create_key, new_org, org_key, rfc3339_in, secret_of, verify,
                       with_secret)

FAILURES_MAX = 3


def problem_sans_request_id(resp):
    body = resp.json()
    assert body.pop("requestId") == resp.headers["X-Request-Id"]
    return body


def test_every_credential_failure_gives_one_identical_401(gw):
    org, adm = admin(gw)
    other = create_key(gw, adm["key"], name="other")
    k = create_key(gw, adm["key"])
    assert verify(gw, k["key"]).status_code == 200
    sec = secret_of(k["key"])
    bad_sum = flip_last(sec)
    unknown_id = k["key"].replace(k["id"], "01" + "Z" * 24)
    cases = {
        "no header": {},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "malformed": {"Authorization": "Bearer pcl_live_nonsense"},
        "bad checksum": {"Authorization": "Bearer " + with_secret(k["key"], bad_sum)},
        "unknown key id": {"Authorization": "Bearer " + unknown_id},
        "wrong secret": {"Authorization": "Bearer " + with_secret(k["key"],
                                                                  secret_of(other["key"]))},
    }
    seen = {}
    for name, headers in cases.items():
        r = gw.request("GET", "/v1/verify", headers=headers)
        assert_problem(r, 401, "UNAUTHENTICATED")
        assert r.headers.get("WWW-Authenticate") == "Bearer", name
        seen[name] = (problem_sans_request_id(r), r.headers["Content-Type"])
    first = seen["no header"]
    for name, got in seen.items():
        assert got == first, name
    # The management API answers the same body.
    r = gw.request("GET", "/v1/api-keys", headers=cases["unknown key id"])
    assert (problem_sans_request_id(r), r.headers["Content-Type"]) == first


def test_only_the_key_as_issued_authenticates_not_its_secret_under_another_env(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"], env="live")
    assert verify(gw, k["key"]).status_code == 200  # cached as verified, too
    want = problem_sans_request_id(verify(gw, "no key"))
    for env in ("test", "root"):
        r = verify(gw, k["key"].replace("_live_", f"_{env}_", 1))
        assert_problem(r, 401, "UNAUTHENTICATED")
        assert problem_sans_request_id(r) == want
    as_live = gw.root_key.replace("_root_", "_live_", 1)
    assert_problem(gw.request("GET", "/v1/orgs", key=as_live), 401, "UNAUTHENTICATED")
    assert verify(gw, k["key"]).status_code == 200


def test_unknown_key_id_takes_as_long_as_a_wrong_secret(make_instance):
    """Unknown ids are checked against a dummy bcrypt hash (cost 10 here:
    tens of milliseconds), so a quick answer would tell that an id does not
    exist."""
    gw = make_instance(bcrypt_cost=10,
                       config="[auth]\nfailed_attempts_max = 1000000\n").start()
    org = new_org(gw)
    k = org_key(gw, org)
    other = org_key(gw, org)
    wrong = with_secret(k["key"], secret_of(other["key"]))
    unknown = k["key"].replace(k["id"], "01" + "Z" * 24)

    def median_time(key):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            assert_problem(verify(gw, key), 401, "UNAUTHENTICATED")
            times.append(time.perf_counter() - t)
        return sorted(times)[2]

    t_wrong, t_unknown = median_time(wrong), median_time(unknown)
    assert t_wrong > 0.01, t_wrong  # bcrypt really runs
    assert t_unknown > t_wrong / 2, (t_unknown, t_wrong)


def test_failed_attempts_guard_answers_429_before_bcrypt(make_instance):
    gw = make_instance(config=f"[auth]\nfailed_attempts_max = {FAILURES_MAX}\n").start()
    org = new_org(gw)
    good = org_key(gw, org)  # never used: its secret would need bcrypt
    other = org_key(gw, org)
    wrong = with_secret(good["key"], secret_of(other["key"]))
    for _ in range(FAILURES_MAX):
        assert_problem(verify(gw, wrong), 401, "UNAUTHENTICATED")
    r = verify(gw, wrong)
    assert_problem(r, 429, "TOO_MANY_FAILED_ATTEMPTS")
    assert int(r.headers["Retry-After"]) >= 1
    # Before bcrypt: even the right secret is not checked from this address now.
    r = verify(gw, good["key"])
    assert_problem(r, 429, "TOO_MANY_FAILED_ATTEMPTS")
    assert int(r.headers["Retry-After"]) >= 1


def test_failed_attempts_do_not_slow_a_key_already_verified(make_instance):
    # The guard stands before bcrypt work only: a key this node has verified
    # (a constant-time MAC compare, no bcrypt) keeps working from the same
    # address while others' failures lock it out of new verifications.
    gw = make_instance(config=f"[auth]\nfailed_attempts_max = {FAILURES_MAX}\n").start()
    org = new_org(gw)
    cached = org_key(gw, org)
    other = org_key(gw, org)
    assert verify(gw, cached["key"]).status_code == 200
    wrong = with_secret(other["key"], secret_of(cached["key"]))
    for _ in range(FAILURES_MAX):
        assert_problem(verify(gw, wrong), 401, "UNAUTHENTICATED")
    assert_problem(verify(gw, wrong), 429, "TOO_MANY_FAILED_ATTEMPTS")
    assert verify(gw, cached["key"]).status_code == 200


def test_revoked_key_answers_401_revoked_only_to_the_right_secret(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"], expires_at=rfc3339_in(1))
    other = create_key(gw, adm["key"])
    assert gw.request("DELETE", f"/v1/api-keys/{k['id']}", key=adm["key"]).status_code == 200
    r = verify(gw, k["key"])
    assert_problem(r, 401, "REVOKED")
    assert r.headers.get("WWW-Authenticate") == "Bearer"  # RFC 9110: on every 401
    # A wrong secret learns nothing about the key's state.
    assert_problem(verify(gw, with_secret(k["key"], secret_of(other["key"]))), 401,
                   "UNAUTHENTICATED")
    # Revoked outranks expired.
    time.sleep(1.1)
    assert_problem(verify(gw, k["key"]), 401, "REVOKED")


def test_expired_key_answers_401_expired(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"], expires_at=rfc3339_in(1.2))
    assert k["expires_at"] is not None
    assert verify(gw, k["key"]).status_code == 200
    time.sleep(1.4)
    r = verify(gw, k["key"])
    assert_problem(r, 401, "EXPIRED")
    assert r.headers.get("WWW-Authenticate") == "Bearer"  # RFC 9110: on every 401
    past = gw.request("POST", "/v1/api-keys", key=adm["key"],
                      json={"name": "late", "expires_at": rfc3339_in(-5)})
    body = assert_problem(past, 400, "BAD_REQUEST")
    assert body["details"]["field"] == "expires_at"


def test_missing_scope_answers_403_forbidden(gw):
    org, adm = admin(gw)
    reader = create_key(gw, adm["key"], scopes=["keys:read"])
    assert gw.request("GET", "/v1/api-keys", key=reader["key"]).status_code == 200
    body = assert_problem(gw.request("POST", "/v1/api-keys", key=reader["key"],
                                     json={"name": "x"}), 403, "FORBIDDEN")
    assert body["details"]["required_scope"] == "keys:write"
    assert_problem(verify(gw, reader["key"]), 403, "FORBIDDEN")
    assert_problem(gw.request("GET", "/v1/audit-events", key=reader["key"]), 403, "FORBIDDEN")
    # An ingest key (events:ingest) is 401 there, as any bad key: test_ingest.py.


def test_another_organisations_key_or_project_is_404_never_403(gw):
    org_a, adm_a = admin(gw, "a")
    org_b, adm_b = admin(gw, "b")
    kb = create_key(gw, adm_b["key"])
    pb = gw.request("POST", "/v1/projects", key=adm_b["key"], json={"name": "b-web"}).json()
    a = adm_a["key"]
    for method, path in [("GET", f"/v1/api-keys/{kb['id']}"),
                         ("DELETE", f"/v1/api-keys/{kb['id']}"),
                         ("POST", f"/v1/api-keys/{kb['id']}/kill"),
                         ("DELETE", f"/v1/api-keys/{kb['id']}/kill"),
                         ("POST", f"/v1/api-keys/{kb['id']}/rotate"),
                         ("GET", f"/v1/projects/{pb['id']}")]:
        assert_problem(gw.request(method, path, key=a), 404, "NOT_FOUND")
    # The same answer as for an id that does not exist at all.
    nobody = "01" + "Z" * 24
    missing = gw.request("GET", f"/v1/api-keys/{nobody}", key=a)
    theirs = gw.request("GET", f"/v1/api-keys/{kb['id']}", key=a)
    assert missing.json()["message"] == theirs.json()["message"]
    # Listing with their project filter shows nothing of theirs.
    listed = gw.request("GET", f"/v1/api-keys?project_id={pb['id']}", key=a)
    assert listed.status_code == 200 and listed.json()["data"] == []
    # A key in their project cannot be created: same answer as no such project.
    r1 = gw.request("POST", "/v1/api-keys", key=a, json={"name": "x", "project_id": pb["id"]})
    r2 = gw.request("POST", "/v1/api-keys", key=a, json={"name": "x", "project_id": nobody})
    assert r1.status_code == r2.status_code and r1.status_code in (400, 404)
    assert problem_sans_request_id(r1) == problem_sans_request_id(r2)
    # Nothing of theirs changed.
    assert verify(gw, kb["key"]).status_code == 200


def test_full_verifier_queue_answers_503_overloaded(make_instance):
    gw = make_instance(bcrypt_cost=10, config="[auth]\nverifier_threads = 1\n"
                       "verifier_queue = 1\nfailed_attempts_max = 1000000\n").start()
    org = new_org(gw)
    k = org_key(gw, org)
    other = org_key(gw, org)
    wrong = with_secret(k["key"], secret_of(other["key"]))
    assert_problem(verify(gw, wrong), 401, "UNAUTHENTICATED")  # the row is cached now

    def attempt(_):
        return requests.get(gw.url("/v1/verify"), headers={"Authorization": "Bearer " + wrong},
                            timeout=30)

    with concurrent.futures.ThreadPoolExecutor(24) as ex:
        results = list(ex.map(attempt, range(24)))
    codes = sorted(r.status_code for r in results)
    overloaded = [r for r in results if r.status_code == 503]
    assert overloaded and 401 in codes, codes
    assert set(codes) <= {401, 503}, codes
    for r in overloaded:
        assert_problem(r, 503, "OVERLOADED")
        assert int(r.headers["Retry-After"]) >= 1
    # The queue drains: the right secret works again.
    assert verify(gw, k["key"]).status_code == 200
