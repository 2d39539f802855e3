"""The SDK event ingest (INGEST.md, issue 11), black-box on SQLite and PostgreSQL:
the ingest listener ([ingest] listen: its own socket, routes, body and
connection limits) and ingest keys (events:ingest only, bound to a project,
accepted on the ingest listener only, refused everywhere else with the body
of any bad key).
"""
import base64
import socket
import time

import pytest
import requests

from conftest import assert_problem, free_port
from test_keys import ADMIN_SCOPES, admin, create_key, new_org, org_key

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
    bad = ing.key["key"][:-1] + ("A" if ing.key["key"][-1] != "A" else "B")
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
