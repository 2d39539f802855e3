"""The management API's contract, black-box (docs/api.md, "Errors" and "Requests"):
every error is RFC 9457 problem+json with `detail` (and `message`, its old name) and the
status phrase as `title`; unknown members of nested objects and unknown query arguments are
400 with details.field, while a forwarded request's query belongs to the upstream.
"""
import pytest

from conftest import assert_problem
from test_forward import gateway_key, upstream, upstream_conf  # noqa: F401
from test_keys import admin, new_org


def test_every_error_has_detail_and_the_status_phrase_as_title(gw):
    org, adm = admin(gw)
    cases = [
        (gw.request("GET", "/v1/orgs"), 401, "UNAUTHENTICATED"),
        (gw.request("GET", "/v1/orgs", key=adm["key"]), 403, "FORBIDDEN"),
        (gw.root("GET", "/v1/orgs/01M82YZC82RGBDPS238NXRY03Q"), 404, "NOT_FOUND"),
        (gw.root("PUT", "/v1/orgs"), 405, "METHOD_NOT_ALLOWED"),
        (gw.root("POST", "/v1/orgs", data=b"{", headers={"Content-Type": "application/json"}),
         400, "BAD_REQUEST"),
        (gw.root("POST", "/v1/orgs", data=b"x", headers={"Content-Type": "text/plain"}),
         415, "UNSUPPORTED_MEDIA_TYPE"),
    ]
    for r, status, code in cases:
        body = assert_problem(r, status, code)  # title, detail == message
        assert set(body) <= {"type", "title", "status", "code", "detail", "message", "details",
                             "requestId"}, body
    killed = gw.root("POST", f"/v1/orgs/{org}/kill", json={})
    assert killed.status_code == 200, killed.text
    body = assert_problem(gw.request("GET", "/v1/api-keys", key=adm["key"]), 503, "KILL_SWITCH")
    assert body["title"] == "Service Unavailable"
    assert body["details"] == {"scope": "organization"}


@pytest.mark.parametrize("method,path", [("PATCH", "/v1/orgs/{org}"), ("POST", "/v1/orgs")])
@pytest.mark.parametrize("rate_limit,field", [
    ({"requests": 5, "x": 1}, "rate_limit.x"),
    ({"requests": 5, "per_seconds": 1, "burst": 0, "Burst": 1}, "rate_limit.Burst"),
])
def test_unknown_member_of_rate_limit_is_400_naming_it(gw, method, path, rate_limit, field):
    org = new_org(gw)
    body = {"rate_limit": rate_limit}
    if method == "POST":
        body["name"] = "other"
    r = gw.root(method, path.format(org=org), json=body)
    problem = assert_problem(r, 400, "BAD_REQUEST")
    assert problem["details"] == {"field": field}
    # Nothing changed: the organisation still has no override.
    assert gw.root("GET", f"/v1/orgs/{org}").json()["rate_limit"] is None
    assert len(gw.root("GET", "/v1/orgs").json()["data"]) == 1


def test_duplicate_member_is_400_with_its_position_not_a_field(gw):
    # docs/api.md: duplicates are a parse error, reported like malformed JSON.
    body = b'{"name": "a", "name": "b"}'
    r = gw.root("POST", "/v1/orgs", data=body, headers={"Content-Type": "application/json"})
    problem = assert_problem(r, 400, "BAD_REQUEST")
    assert set(problem["details"]) == {"position"}
    assert 0 < problem["details"]["position"] <= len(body)


def test_known_rate_limit_members_still_apply(gw):
    org = new_org(gw)
    r = gw.root("PATCH", f"/v1/orgs/{org}",
                json={"rate_limit": {"requests": 5, "per_seconds": 2, "burst": 3}})
    assert r.status_code == 200, r.text
    assert r.json()["rate_limit"] == {"requests": 5, "per_seconds": 2, "burst": 3}


def test_unknown_query_argument_is_400_on_every_management_operation(gw):
    org, adm = admin(gw)
    key_id = adm["id"]
    root_paths = ["/v1/orgs", f"/v1/orgs/{org}"]
    org_paths = ["/v1/api-keys", f"/v1/api-keys/{key_id}", "/v1/projects", "/v1/requests",
                 "/v1/audit-events"]
    for path in root_paths:
        r = gw.root("GET", path, params={"colour": "red"})
        assert assert_problem(r, 400, "BAD_REQUEST")["details"] == {"field": "colour"}, path
    for path in org_paths:
        # A misspelt filter must not silently list everything.
        r = gw.request("GET", path, key=adm["key"], params={"projectid": org})
        assert assert_problem(r, 400, "BAD_REQUEST")["details"] == {"field": "projectid"}, path
    # Known arguments of the operation pass, the first unknown one is named.
    r = gw.root("GET", "/v1/orgs", params={"limit": "1", "colour": "red"})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"] == {"field": "colour"}
    # An operation that takes none refuses even a documented argument of another one.
    r = gw.root("GET", f"/v1/orgs/{org}", params={"limit": "1"})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"] == {"field": "limit"}
    r = gw.root("POST", f"/v1/orgs/{org}/kill?dry_run=1", json={})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"] == {"field": "dry_run"}
    assert gw.root("GET", f"/v1/orgs/{org}").json()["kill_switch"]["engaged"] is False
    # A name that is not visible ASCII is shown with ? (the body stays valid JSON).
    r = gw.request("GET", "/v1/api-keys?%FF%0A=1", key=adm["key"])
    assert assert_problem(r, 400, "BAD_REQUEST")["details"] == {"field": "??"}


def test_documented_query_arguments_are_accepted(gw):
    org, adm = admin(gw)
    ok = [
        ("/v1/api-keys", {"project_id": "01M82YZC82RGBDPS238NXRY03Q", "limit": "5",
                          "cursor": adm["id"]}),
        ("/v1/projects", {"limit": "5"}),
        ("/v1/requests", {"limit": "5", "since": "2026-01-01T00:00:00Z",
                          "until": "2099-01-01T00:00:00Z", "status": "200",
                          "key_id": adm["id"], "project_id": "01M82YZC82RGBDPS238NXRY03Q"}),
        ("/v1/audit-events", {"limit": "5", "since": "2026-01-01T00:00:00Z",
                              "until": "2099-01-01T00:00:00Z", "key_id": adm["id"]}),
    ]
    for path, params in ok:
        r = gw.request("GET", path, key=adm["key"], params=params)
        assert r.status_code == 200, (path, r.text)
    assert gw.root("GET", "/v1/orgs", params={"limit": "5", "cursor": org}).status_code == 200


def test_unknown_query_argument_without_a_key_is_still_401(gw):
    assert_problem(gw.request("GET", "/v1/orgs?colour=red"), 401, "UNAUTHENTICATED")


def test_forwarded_requests_keep_any_query_for_the_upstream(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    r = gw.request("GET", "/search?colour=red&limit=1000", key=k["key"])
    assert r.status_code == 200, r.text
    assert upstream.last()["target"] == "/search?colour=red&limit=1000"
