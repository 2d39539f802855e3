"""People and roles through the management API, black-box, on SQLite and on
PostgreSQL (docs/console.md "Roles and rights"): an operator's session
invites one person per role (POST /v1/orgs/{orgId}/invitations, mailed
through a real SMTP server); each accepts through the invitation page (a
GET changes nothing, the form's POST signs in and makes the membership);
then each role's rights over each endpoint, with a session as the
credential of /v1 on the console listener and on the main one; every
change audited with the user as actor; owners invite, nobody else.
"""
import os
import re

import pytest

from conftest import assert_problem
from console_helpers import (Browser, console_instance, mailed_link, set_cookies, sign_in,
                             user_create)
from test_keys import new_org, org_key
from test_webhooks import ca  # noqa: F401
from test_mail import smtp  # noqa: F401

OPERATOR = "op@example.com"
ROLES = ["owner", "admin", "developer", "viewer"]


def accept_invitation(inst, smtp, email):
    link = mailed_link(smtp, email)
    assert "/console/auth/invitation?token=" in link
    path = link[len(inst.console):]
    b = Browser(inst.console)
    # The page: a form; opening it changes nothing (a mail scanner's GET).
    r = b.get(path)
    assert r.status_code == 200 and r.headers["Referrer-Policy"] == "no-referrer"
    assert 'method="post" action="/console/auth/invitation"' in r.text
    assert not set_cookies(r)
    token = path.split("token=")[1]
    # Another site cannot post it for the invitee.
    r = b.post("/console/auth/invitation", data=f"token={token}",
               headers={"Content-Type": "application/x-www-form-urlencoded",
                        "Origin": "https://evil.example"})
    assert_problem(r, 403, "FORBIDDEN")
    r = b.post("/console/auth/invitation", data=f"token={token}",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/", r.text
    assert b.me().status_code == 200
    # Once only.
    again = Browser(inst.console).post("/console/auth/invitation", data=f"token={token}",
                                       headers={"Content-Type":
                                                "application/x-www-form-urlencoded"})
    assert again.status_code == 400
    return b


@pytest.fixture
def team(make_instance, ca, smtp):  # noqa: F811
    inst = console_instance(make_instance, ca, smtp)
    user_create(inst, OPERATOR, "--operator")
    op = sign_in(inst, smtp, OPERATOR)
    r = op.post("/v1/orgs", json={"name": "acme"})
    assert r.status_code == 201, r.text
    org = r.json()["id"]
    people = {"operator": op}
    for role in ROLES:
        r = op.post(f"/v1/orgs/{org}/invitations", json={"email": f"{role}@example.com",
                                                       "role": role})
        assert r.status_code == 201, r.text
        assert r.json()["role"] == role and r.json()["email"] == f"{role}@example.com"
        people[role] = accept_invitation(inst, smtp, f"{role}@example.com")
    inst.org = org
    inst.people = people
    return inst


def test_invitation_made_the_membership_and_is_audited(team):
    for role in ROLES:
        me = team.people[role].me().json()
        assert [(m["org_id"], m["role"]) for m in me["memberships"]] == [(team.org, role)]
    events = team.root("GET", f"/v1/audit-events?limit=100").json()["data"]
    op_id = team.people["operator"].me().json()["user"]["id"]
    created = [e for e in events if e["action"] == "invitation.created"]
    assert len(created) == 4 and all(e["actor"] == {"type": "user", "id": op_id}
                                     for e in created)
    accepted = [e for e in events if e["action"] == "invitation.accepted"]
    assert len(accepted) == 4 and all(e["actor"]["type"] == "user" for e in accepted)


def test_bad_invitations(team):
    op = team.people["operator"]
    body = assert_problem(op.post(f"/v1/orgs/{team.org}/invitations",
                                  json={"email": "x@example.com", "role": "god"}), 400,
                          "BAD_REQUEST")
    assert body["details"]["field"] == "role"
    body = assert_problem(op.post(f"/v1/orgs/{team.org}/invitations",
                                  json={"email": "nope", "role": "viewer"}), 400, "BAD_REQUEST")
    assert body["details"]["field"] == "email"
    assert_problem(op.post("/v1/orgs/01ARZ3NDEKTSV4RRFFQ69G5FAV/invitations",
                           json={"email": "x@example.com", "role": "viewer"}), 404, "NOT_FOUND")
    # API keys: an operator key may invite, an organisation key may not (no scope gives it).
    r = team.root("POST", f"/v1/orgs/{team.org}/invitations",
                  json={"email": "k@example.com", "role": "viewer"})
    assert r.status_code == 201, r.text
    key = org_key(team, team.org, scopes=["keys:read", "keys:write", "logs:read",
                                          "webhooks:write"])["key"]
    r = team.request("POST", f"/v1/orgs/{team.org}/invitations", key=key,
                     json={"email": "k2@example.com", "role": "viewer"})
    assert_problem(r, 403, "FORBIDDEN")


# (method, path, body, the roles allowed). {org}, {project} and the ids of an
# organisation-wide key ({key}), a project's key ({pkey}), an organisation-wide
# webhook endpoint ({ep}) and a project's ({pep}) are filled in, in paths and bodies.
# A developer manages only keys and endpoints bound to a project (docs/console.md).
MATRIX = [
    ("GET", "/v1/api-keys", None, {"owner", "admin", "developer", "viewer"}),
    ("GET", "/v1/api-keys/{key}", None, {"owner", "admin", "developer", "viewer"}),
    ("POST", "/v1/api-keys", {"name": "k"}, {"owner", "admin"}),
    ("POST", "/v1/api-keys", {"name": "k", "project_id": "{project}"},
     {"owner", "admin", "developer"}),
    ("POST", "/v1/api-keys/{key}/kill", {"reason": "r"}, {"owner", "admin"}),
    ("POST", "/v1/api-keys/{pkey}/kill", {"reason": "r"}, {"owner", "admin", "developer"}),
    ("DELETE", "/v1/api-keys/{key}/kill", None, {"owner", "admin"}),
    ("DELETE", "/v1/api-keys/{pkey}/kill", None, {"owner", "admin", "developer"}),
    ("POST", "/v1/api-keys/{key}/rotate", {}, {"owner", "admin"}),
    ("POST", "/v1/api-keys/{pkey}/rotate", {}, {"owner", "admin", "developer"}),
    ("GET", "/v1/projects", None, {"owner", "admin", "developer", "viewer"}),
    ("POST", "/v1/projects", {"name": "p"}, {"owner", "admin"}),
    ("PATCH", "/v1/projects/{project}", {"budget": None}, {"owner", "admin"}),
    ("GET", "/v1/requests", None, {"owner", "admin", "developer", "viewer"}),
    ("GET", "/v1/audit-events", None, {"owner", "admin", "developer", "viewer"}),
    ("GET", "/v1/usage", None, {"owner", "admin", "developer", "viewer"}),
    ("GET", "/v1/webhook-endpoints", None, {"owner", "admin", "developer", "viewer"}),
    ("GET", "/v1/webhook-endpoints/{ep}", None, {"owner", "admin", "developer", "viewer"}),
    ("POST", "/v1/webhook-endpoints", {"url": "http://x"}, {"owner", "admin", "developer"}),
    ("POST", "/v1/webhook-endpoints", {"url": "https://hooks.example.com/org"},
     {"owner", "admin"}),
    ("POST", "/v1/webhook-endpoints", {"url": "https://hooks.example.com/p",
                                       "project_id": "{project}"},
     {"owner", "admin", "developer"}),
    ("PATCH", "/v1/webhook-endpoints/{ep}", {"description": "d"}, {"owner", "admin"}),
    ("PATCH", "/v1/webhook-endpoints/{pep}", {"description": "d"},
     {"owner", "admin", "developer"}),
    ("POST", "/v1/webhook-endpoints/{ep}/rotate-secret", {}, {"owner", "admin"}),
    ("POST", "/v1/webhook-endpoints/{pep}/rotate-secret", {}, {"owner", "admin", "developer"}),
    ("POST", "/v1/webhook-endpoints/{ep}/test", {}, {"owner", "admin"}),
    ("POST", "/v1/webhook-endpoints/{pep}/test", {}, {"owner", "admin", "developer"}),
    ("POST", "/v1/webhook-endpoints/{ep}/recover", {"since": "2020-01-01T00:00:00Z"},
     {"owner", "admin"}),
    ("POST", "/v1/webhook-endpoints/{pep}/recover", {"since": "2020-01-01T00:00:00Z"},
     {"owner", "admin", "developer"}),
    ("POST", "/v1/orgs/{org}/invitations", {"email": "n@example.com", "role": "viewer"},
     {"owner"}),
    ("GET", "/v1/orgs", None, set()),
    ("POST", "/v1/orgs/{org}/kill", {"reason": "r"}, set()),
    ("POST", "/v1/kill-switch", {"reason": "r"}, set()),
]


def fill(v, ids):
    if isinstance(v, str):
        return v.format(**ids)
    if isinstance(v, dict):
        return {k: fill(x, ids) for k, x in v.items()}
    return v


def endpoint(team, project=None):
    body = {"url": "https://hooks.example.com/" + (project or "org")}
    if project:
        body["project_id"] = project
    r = team.people["owner"].post("/v1/webhook-endpoints", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.mark.parametrize("listener", ["console", "main"])
def test_each_roles_rights_over_each_endpoint(team, listener):
    project = team.people["owner"].post("/v1/projects", json={"name": "base"}).json()["id"]
    ids = {"org": team.org, "project": project,
           "key": org_key(team, team.org, scopes=["keys:read"])["id"],
           "pkey": org_key(team, team.org, scopes=["keys:read"], project_id=project)["id"],
           "ep": endpoint(team), "pep": endpoint(team, project)}
    for role in ROLES:
        b = team.people[role]
        base = team.console if listener == "console" else team.base
        for method, path, body, allowed in MATRIX:
            p = fill(path, ids)
            r = b.request(method, p, json=fill(body, ids), base=base)
            if role in allowed:
                # Allowed: whatever the handler says of the body, it is not a refusal
                # of the credential.
                assert r.status_code not in (401, 403), (role, method, p, r.text)
            else:
                body_ = assert_problem(r, 403, "FORBIDDEN")
                assert body_["details"].get("role", role) == role, body_
                if role == "developer" and "required_right" not in body_["details"]:
                    # A right held (keys:write, webhooks:write), but not over this one.
                    assert body_["details"]["reason"] == "org_wide", (method, p, body_)
                elif role == "developer":
                    assert body_["details"]["required_right"] not in ("keys:write",
                                                                      "webhooks:write")
        if role in ("owner", "admin", "developer"):
            r = b.post("/v1/api-keys/" + ids["pkey"] + "/kill", json={"reason": "again"},
                       base=base)
            assert r.status_code == 200, r.text
    # The operator's session does what an operator key does, in any organisation.
    op = team.people["operator"]
    r = op.request("GET", "/v1/orgs", base=team.console if listener == "console" else team.base)
    assert r.status_code == 200 and any(o["id"] == team.org for o in r.json()["data"])


def test_changes_by_a_session_are_audited_as_the_user(team):
    dev = team.people["developer"]
    uid = dev.me().json()["user"]["id"]
    project = team.people["owner"].post("/v1/projects", json={"name": "app"}).json()["id"]
    r = dev.post("/v1/api-keys", json={"name": "from the console", "project_id": project})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    assert r.json()["org_id"] == team.org
    assert re.fullmatch(r"pcl_live_\w{26}\.\w{49}", r.json()["key"])
    r = dev.post(f"/v1/api-keys/{kid}/kill", json={"reason": "test"})
    assert r.status_code == 200 and r.json()["kill_switch"]["set_by"] == "org", r.text
    events = team.root("GET", f"/v1/audit-events?limit=100").json()["data"]
    mine = [e["action"] for e in events if e["actor"] == {"type": "user", "id": uid}]
    assert "api_key.created" in mine and "api_key.killed" in mine, mine
    # A developer cannot grant a scope its role does not give.
    r = dev.post("/v1/api-keys", json={"name": "x", "scopes": ["events:ingest"]})
    assert r.status_code == 400  # an ingest key needs a project: the scope itself is allowed


def test_a_developer_manages_only_what_is_bound_to_a_project(team):
    """docs/console.md: a developer's keys:write and webhooks:write cover the keys and
    webhook endpoints of the organisation's projects, not the organisation-wide ones."""
    dev, owner = team.people["developer"], team.people["owner"]
    project = owner.post("/v1/projects", json={"name": "app"}).json()["id"]
    org_wide = org_key(team, team.org)
    mine = org_key(team, team.org, project_id=project)
    # Revoking (deleting): the project's key, not the organisation's.
    body = assert_problem(dev.request("DELETE", f"/v1/api-keys/{org_wide['id']}"), 403,
                          "FORBIDDEN")
    assert body["details"] == {"reason": "org_wide", "role": "developer"}, body
    assert "bound to a project" in body["detail"]
    r = dev.request("DELETE", f"/v1/api-keys/{mine['id']}")
    assert r.status_code == 200 and r.json()["revoked_at"], r.text
    r = team.request("GET", "/v1/verify", key=org_wide["key"])
    assert r.status_code == 200, r.text  # the refused revocation changed nothing
    # An endpoint of the project may not be made organisation-wide, nor an org one deleted.
    ep, pep = endpoint(team), endpoint(team, project)
    body = assert_problem(dev.request("PATCH", f"/v1/webhook-endpoints/{pep}",
                                      json={"project_id": None}), 403, "FORBIDDEN")
    assert body["details"]["reason"] == "org_wide"
    assert owner.get(f"/v1/webhook-endpoints/{pep}").json()["project_id"] == project
    assert_problem(dev.request("DELETE", f"/v1/webhook-endpoints/{ep}"), 403, "FORBIDDEN")
    assert dev.request("DELETE", f"/v1/webhook-endpoints/{pep}").status_code == 204
    assert owner.get(f"/v1/webhook-endpoints/{ep}").status_code == 200
    # Resending a message: to an endpoint of a project, named; not to every endpoint.
    pep = endpoint(team, project)
    msg = owner.post(f"/v1/webhook-endpoints/{pep}/test").json()["id"]
    body = assert_problem(dev.post(f"/v1/webhook-messages/{msg}/resend", json={}), 403,
                          "FORBIDDEN")
    assert body["details"]["reason"] == "org_wide"
    assert_problem(dev.post(f"/v1/webhook-messages/{msg}/resend", json={"endpoint_id": ep}),
                   403, "FORBIDDEN")
    r = dev.post(f"/v1/webhook-messages/{msg}/resend", json={"endpoint_id": pep})
    assert r.status_code == 202, r.text
    # Nothing of this holds for an admin.
    admin = team.people["admin"]
    assert admin.post(f"/v1/webhook-messages/{msg}/resend", json={}).status_code == 202
    assert admin.request("DELETE", f"/v1/api-keys/{org_wide['id']}").status_code == 200


def test_choosing_the_organisation(team, smtp):
    op = team.people["operator"]
    org2 = op.post("/v1/orgs", json={"name": "second"}).json()["id"]
    r = op.post(f"/v1/orgs/{org2}/invitations", json={"email": "viewer@example.com",
                                                     "role": "admin"})
    assert r.status_code == 201
    link = mailed_link(smtp, "viewer@example.com", n=2)
    token = link.split("token=")[1]
    v = team.people["viewer"]
    r = v.post("/console/auth/invitation", data=f"token={token}",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 303, r.text
    v.me()
    # Two memberships: the organisation must be named.
    body = assert_problem(v.get("/v1/api-keys"), 403, "FORBIDDEN")
    assert body["details"]["reason"] == "org_required"
    assert v.get("/v1/api-keys", headers={"X-Portcullis-Org-Id": team.org}).status_code == 200
    # Viewer in the first, admin in the second.
    assert_problem(v.post("/v1/projects", json={"name": "p"},
                          headers={"X-Portcullis-Org-Id": team.org}), 403, "FORBIDDEN")
    r = v.post("/v1/projects", json={"name": "p"}, headers={"X-Portcullis-Org-Id": org2})
    assert r.status_code == 201 and r.json()["org_id"] == org2, r.text
    other = new_org(team, "third")
    body = assert_problem(v.get("/v1/api-keys", headers={"X-Portcullis-Org-Id": other}), 403,
                          "FORBIDDEN")
    assert body["details"]["reason"] == "not_a_member"


def test_the_docs_rights_table_is_the_servers(team):
    """docs/console.md's table of rights says what GET /console/api/me answers per role."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "console.md")
    doc = open(path).read()
    cell = r"(yes(?: \(bound to a project\))?|no)"
    rows = re.findall(r"^\| `([a-z]+:[a-z]+)` \| [^|]* \| " + r" \| ".join([cell] * 4) + r" \|$",
                      doc, re.M)
    assert len(rows) == 7, rows
    for i, role in enumerate(ROLES):
        (m,) = team.people[role].me().json()["memberships"]
        documented = {r[0] for r in rows if r[1 + i].startswith("yes")}
        assert set(m["rights"]) == documented, (role, m["rights"], documented)
    # The narrowed cells are the developer's keys:write and webhooks:write, which
    # test_a_developer_manages_only_what_is_bound_to_a_project tries.
    narrowed = {(r[0], ROLES[i]) for r in rows for i in range(4) if "(" in r[1 + i]}
    assert narrowed == {("keys:write", "developer"), ("webhooks:write", "developer")}, narrowed


def test_an_api_key_decides_over_a_session_cookie(team):
    owner = team.people["owner"]
    key = org_key(team, team.org, scopes=["keys:read"])["key"]
    # The owner's session would allow it; the key sent with it does not: 403 for the key's scope.
    r = owner.post("/v1/projects", json={"name": "p"}, headers={"Authorization": "Bearer " + key})
    body = assert_problem(r, 403, "FORBIDDEN")
    assert body["details"] == {"required_scope": "keys:write"}
