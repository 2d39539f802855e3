"""API keys, black-box: the key lifecycle of docs/contract.md (create, list, get,
kill, lift, rotate, delete), scopes, what is stored and logged about a
secret, last_used_at and GET /v1/verify.

The helpers at the top are shared with test_authn.py, test_killswitch.py
and test_audit.py.
"""
import datetime
import os
import re
import sqlite3
import time

from conftest import KEY_RE, assert_problem, run_cli, flip_last

KEY_FULL_RE = re.compile(r"^[a-z]{2,8}_(live|test|root)_[0-9A-HJKMNP-TV-Z]{26}\.[0-9A-Za-z]{49}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEY_FIELDS = {"id", "name", "org_id", "project_id", "env", "scopes", "start", "created_at",
              "last_used_at", "expires_at", "revoked_at", "kill_switch", "version"}
KILL_FIELDS = {"engaged", "set_by", "reason", "at"}
ADMIN_SCOPES = ["gateway", "keys:read", "keys:write", "logs:read"]


# ---- helpers shared by the key test modules ----

def new_org(inst, name="acme", contact_email=None):
    """Create an organisation with the root key; returns its id."""
    body = {"name": name}
    if contact_email:
        body["contact_email"] = contact_email
    r = inst.root("POST", "/v1/orgs", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def org_key(inst, org_id, scopes=None, **fields):
    """Create a key for org_id with the root key; returns the key object
    (with `key`, the plaintext)."""
    body = {"name": fields.pop("name", "key"), **fields}
    if scopes is not None:
        body["scopes"] = scopes
    r = inst.root("POST", f"/v1/orgs/{org_id}/api-keys", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def admin(inst, name="acme", **org_fields):
    """A new organisation and a key for it holding ADMIN_SCOPES: (org_id, key object)."""
    org = new_org(inst, name, **org_fields)
    return org, org_key(inst, org, ADMIN_SCOPES, name="admin")


def create_key(inst, admin_key, **body):
    """POST /v1/api-keys with an organisation key; returns the 201 key object."""
    body.setdefault("name", "k")
    r = inst.request("POST", "/v1/api-keys", key=admin_key, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def verify(inst, key):
    return inst.request("GET", "/v1/verify", key=key)


def secret_of(key):
    return key.split(".", 1)[1]


def with_secret(key, secret):
    """key with its secret part replaced."""
    return key.split(".", 1)[0] + "." + secret


def rfc3339_in(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def wait_for(fn, timeout=3.0, interval=0.05):
    """Poll fn() until it returns a true value; returns the last value."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(interval)


def assert_key_object(obj):
    assert set(obj) == KEY_FIELDS, set(obj) ^ KEY_FIELDS
    assert set(obj["kill_switch"]) == KILL_FIELDS
    assert TIME_RE.match(obj["created_at"]), obj["created_at"]
    for f in ("last_used_at", "expires_at", "revoked_at"):
        assert obj[f] is None or TIME_RE.match(obj[f]), (f, obj[f])
    assert isinstance(obj["version"], int)
    assert isinstance(obj["scopes"], list)


# ---- the key lifecycle, one test per row ----

def test_create_answers_201_with_key_object_and_plaintext_shown_once(gw):
    org, adm = admin(gw)
    r = gw.request("POST", "/v1/api-keys", key=adm["key"],
                   json={"name": "billing", "env": "test", "scopes": ["gateway", "keys:read"]})
    assert r.status_code == 201, r.text
    obj = r.json()
    key = obj.pop("key")
    assert KEY_FULL_RE.match(key), key
    assert_key_object(obj)
    assert key.startswith(f"pcl_test_{obj['id']}.")
    assert obj["start"] == key[:12]
    assert obj["name"] == "billing"
    assert obj["org_id"] == org
    assert obj["project_id"] is None
    assert obj["env"] == "test"
    assert obj["scopes"] == ["gateway", "keys:read"]
    assert obj["last_used_at"] is None and obj["expires_at"] is None
    assert obj["revoked_at"] is None
    assert obj["kill_switch"] == {"engaged": False, "set_by": None, "reason": None, "at": None}
    # Shown once: reading the key back never shows the plaintext again.
    again = gw.request("GET", f"/v1/api-keys/{obj['id']}", key=adm["key"])
    assert again.status_code == 200
    assert "key" not in again.json()
    assert secret_of(key) not in again.text
    # ... and the key works.
    assert verify(gw, key).status_code == 200


def test_list_never_shows_a_secret_or_hash(gw):
    org, adm = admin(gw)
    made = [create_key(gw, adm["key"], name=f"k{i}") for i in range(3)]
    r = gw.request("GET", "/v1/api-keys", key=adm["key"])
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"data", "next_cursor"}
    assert {k["id"] for k in body["data"]} == {k["id"] for k in made} | {adm["id"]}
    for obj in body["data"]:
        assert_key_object(obj)
        assert obj["org_id"] == org
    assert "$2b$" not in r.text and "$2" not in r.text
    for k in made + [adm]:
        assert secret_of(k["key"]) not in r.text
        assert secret_of(k["key"])[:20] not in r.text


def test_list_filters_by_project_id(gw):
    org, adm = admin(gw)
    p = gw.request("POST", "/v1/projects", key=adm["key"], json={"name": "web"})
    assert p.status_code == 201, p.text
    pid = p.json()["id"]
    in_project = create_key(gw, adm["key"], name="web", project_id=pid)
    create_key(gw, adm["key"], name="other")
    assert in_project["project_id"] == pid
    r = gw.request("GET", f"/v1/api-keys?project_id={pid}", key=adm["key"])
    assert r.status_code == 200
    assert [k["id"] for k in r.json()["data"]] == [in_project["id"]]
    everything = gw.request("GET", "/v1/api-keys", key=adm["key"]).json()["data"]
    assert len(everything) == 3


def test_list_paginates_with_limit_and_cursor(gw):
    org, adm = admin(gw)
    made = {adm["id"]} | {create_key(gw, adm["key"], name=f"k{i}")["id"] for i in range(4)}
    seen, cursor, pages = [], None, 0
    while True:
        q = "/v1/api-keys?limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = gw.request("GET", q, key=adm["key"])
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["data"]) <= 2
        seen += [k["id"] for k in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
        assert pages < 10
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == made


def test_get_returns_the_key_object(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"], name="reader", scopes=["keys:read"])
    r = gw.request("GET", f"/v1/api-keys/{k['id']}", key=adm["key"])
    assert r.status_code == 200
    obj = r.json()
    assert_key_object(obj)
    want = dict(k)
    del want["key"]
    assert obj == want


def test_kill_answers_503_scope_key_on_the_very_next_request(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert verify(gw, k["key"]).status_code == 200  # cached as verified
    r = gw.request("POST", f"/v1/api-keys/{k['id']}/kill", key=adm["key"],
                   json={"reason": "leaked in a gist"})
    assert r.status_code == 200, r.text
    ks = r.json()["kill_switch"]
    assert ks["engaged"] is True and ks["set_by"] == "org"
    assert ks["reason"] == "leaked in a gist" and TIME_RE.match(ks["at"])
    body = assert_problem(verify(gw, k["key"]), 503, "KILL_SWITCH")
    assert body["details"]["scope"] == "key"
    # The key object shows the kill everywhere it is read.
    got = gw.request("GET", f"/v1/api-keys/{k['id']}", key=adm["key"]).json()
    assert got["kill_switch"]["engaged"] is True


def test_lift_kill_lets_the_same_secret_work_again(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert gw.request("POST", f"/v1/api-keys/{k['id']}/kill", key=adm["key"]).status_code == 200
    assert_problem(verify(gw, k["key"]), 503, "KILL_SWITCH")
    r = gw.request("DELETE", f"/v1/api-keys/{k['id']}/kill", key=adm["key"])
    assert r.status_code == 200, r.text
    assert r.json()["kill_switch"] == {"engaged": False, "set_by": None, "reason": None,
                                       "at": None}
    assert verify(gw, k["key"]).status_code == 200


def test_rotate_new_secret_works_and_old_fails_on_the_next_request(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    old = k["key"]
    assert verify(gw, old).status_code == 200  # the old secret is cached as verified
    r = gw.request("POST", f"/v1/api-keys/{k['id']}/rotate", key=adm["key"])
    assert r.status_code == 200, r.text
    obj = r.json()
    new = obj.pop("key")
    assert KEY_FULL_RE.match(new)
    assert_key_object(obj)
    assert obj["id"] == k["id"] and new.startswith(f"pcl_live_{k['id']}.")
    assert secret_of(new) != secret_of(old)
    assert obj["start"] == new[:12]
    assert obj["version"] > k["version"]
    assert_problem(verify(gw, old), 401, "UNAUTHENTICATED")
    assert verify(gw, new).status_code == 200
    assert_problem(verify(gw, old), 401, "UNAUTHENTICATED")


def test_rotate_with_grace_keeps_the_old_secret_working_until_the_grace_ends(gw):
    org, adm = admin(gw)
    used = create_key(gw, adm["key"], name="used before rotation")
    unused = create_key(gw, adm["key"], name="never used before rotation")
    assert verify(gw, used["key"]).status_code == 200
    news = {}
    for k in (used, unused):
        r = gw.request("POST", f"/v1/api-keys/{k['id']}/rotate", key=adm["key"],
                       json={"grace_seconds": 2})
        assert r.status_code == 200, r.text
        news[k["id"]] = r.json()["key"]
    ends = time.time() + 2
    for k in (used, unused):
        assert verify(gw, k["key"]).status_code == 200, "old secret within the grace period"
        assert verify(gw, news[k["id"]]).status_code == 200
        assert verify(gw, k["key"]).status_code == 200
    time.sleep(max(0.0, ends - time.time()) + 0.3)
    for k in (used, unused):
        assert_problem(verify(gw, k["key"]), 401, "UNAUTHENTICATED")
        assert verify(gw, news[k["id"]]).status_code == 200


def test_rotate_and_kill_bodies_are_checked_before_anything_changes(gw):
    """grace_seconds is null/absent or an integer 0..604800, no member but the named ones is
    taken, an unknown key is 404 whatever its body, and an operator key creates keys on the
    organisation's path only (api_grace_seconds, key_body, api_org_key_only)."""
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    rotate = f"/v1/api-keys/{k['id']}/rotate"
    for g in (-1, 604801, "60", 1.5, True):
        r = gw.request("POST", rotate, key=adm["key"], json={"grace_seconds": g})
        assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "grace_seconds"
    r = gw.request("POST", rotate, key=adm["key"], json={"grace_seconds": 60, "scopes": "x"})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "scopes"
    r = gw.request("POST", f"/v1/api-keys/{k['id']}/kill", key=adm["key"], json={"why": "x"})
    assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == "why"
    assert verify(gw, k["key"]).status_code == 200  # refused bodies changed nothing
    nobody = k["id"][:-1] + ("A" if k["id"][-1] != "A" else "B")
    for path in (f"/v1/api-keys/{nobody}/rotate", f"/v1/api-keys/{nobody}/kill"):
        assert_problem(gw.request("POST", path, key=adm["key"], json={"bogus": 1}), 404,
                       "NOT_FOUND")
    r = gw.request("POST", rotate, key=adm["key"], json={"grace_seconds": None})
    assert r.status_code == 200, r.text
    assert_problem(verify(gw, k["key"]), 401, "UNAUTHENTICATED")  # null: no grace
    assert verify(gw, r.json()["key"]).status_code == 200
    r = gw.root("POST", "/v1/api-keys", json={"name": "x"})
    body = assert_problem(r, 400, "BAD_REQUEST")
    assert "/v1/orgs/{orgId}/api-keys" in body["detail"]


def test_delete_revokes_permanently_and_keeps_the_record(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert verify(gw, k["key"]).status_code == 200
    r = gw.request("DELETE", f"/v1/api-keys/{k['id']}", key=adm["key"])
    assert r.status_code == 200, r.text
    assert TIME_RE.match(r.json()["revoked_at"])
    for _ in range(3):
        assert_problem(verify(gw, k["key"]), 401, "REVOKED")
    # Permanent: neither rotation nor lifting anything brings it back.
    rot = gw.request("POST", f"/v1/api-keys/{k['id']}/rotate", key=adm["key"])
    assert rot.status_code == 409, rot.text
    gw.request("DELETE", f"/v1/api-keys/{k['id']}/kill", key=adm["key"])
    assert_problem(verify(gw, k["key"]), 401, "REVOKED")
    listed = gw.request("GET", "/v1/api-keys", key=adm["key"]).json()["data"]
    rec = [x for x in listed if x["id"] == k["id"]]
    assert len(rec) == 1 and TIME_RE.match(rec[0]["revoked_at"])
    got = gw.request("GET", f"/v1/api-keys/{k['id']}", key=adm["key"])
    assert got.status_code == 200 and got.json()["revoked_at"] == rec[0]["revoked_at"]


# ---- scopes ----

def test_new_key_defaults_to_the_gateway_scope(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert k["scopes"] == ["gateway"]
    assert verify(gw, k["key"]).status_code == 200
    assert_problem(gw.request("GET", "/v1/api-keys", key=k["key"]), 403, "FORBIDDEN")


def test_a_key_cannot_grant_a_scope_it_does_not_hold(gw):
    org = new_org(gw)
    writer = org_key(gw, org, ["keys:write", "gateway"], name="writer")
    r = gw.request("POST", "/v1/api-keys", key=writer["key"],
                   json={"name": "escalate", "scopes": ["gateway", "logs:read"]})
    body = assert_problem(r, 403, "FORBIDDEN")
    assert body["details"]["scope"] == "logs:read"
    # Nothing was created; granting what it holds works.
    keys = gw.root("GET", "/v1/api-keys").json()["data"]
    assert [k["name"] for k in keys if k["org_id"] == org] == ["writer"]
    ok = gw.request("POST", "/v1/api-keys", key=writer["key"],
                    json={"name": "fine", "scopes": ["gateway"]})
    assert ok.status_code == 201


def test_the_default_scope_must_pass_the_same_check(gw):
    """A keys:write key without gateway cannot mint a gateway key by leaving
    scopes out or sending null: the default is checked like a named scope."""
    org = new_org(gw)
    writer = org_key(gw, org, ["keys:write"], name="writer")
    for body in ({"name": "omitted"}, {"name": "null", "scopes": None}):
        r = gw.request("POST", "/v1/api-keys", key=writer["key"], json=body)
        problem = assert_problem(r, 403, "FORBIDDEN")
        assert problem["details"] == {"field": "scopes", "scope": "gateway"}
    keys = gw.root("GET", "/v1/api-keys").json()["data"]
    assert [k["name"] for k in keys if k["org_id"] == org] == ["writer"]
    # A key that holds gateway still gets it by default.
    holder = org_key(gw, org, ["keys:write", "gateway"], name="holder")
    assert create_key(gw, holder["key"])["scopes"] == ["gateway"]


def test_org_key_cannot_call_operator_endpoints(gw):
    org, adm = admin(gw)
    k = adm["key"]
    calls = [
        ("POST", "/v1/orgs", {"name": "mine"}),
        ("GET", "/v1/orgs", None),
        ("GET", f"/v1/orgs/{org}", None),
        ("PATCH", f"/v1/orgs/{org}", {"name": "renamed"}),
        ("POST", f"/v1/orgs/{org}/api-keys", {"name": "x", "scopes": ["keys:write"]}),
        ("POST", f"/v1/orgs/{org}/kill", {}),
        ("DELETE", f"/v1/orgs/{org}/kill", None),
        ("POST", "/v1/kill-switch", {}),
        ("DELETE", "/v1/kill-switch", None),
    ]
    for method, path, body in calls:
        r = gw.request(method, path, key=k, json=body)
        assert_problem(r, 403, "FORBIDDEN")
    orgs = gw.root("GET", "/v1/orgs").json()["data"]
    assert [o["name"] for o in orgs] == ["acme"]


# ---- secrets at rest and in logs ----

def _pg_dump_text(url):
    """Every row of every table of a PostgreSQL database, as text."""
    import psycopg2
    conn = psycopg2.connect(url)
    out = []
    with conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT * FROM "{table}"')
            out.extend(repr(row) for row in cur.fetchall())
    conn.close()
    return "\n".join(out).encode()


def test_database_and_log_hold_no_plaintext_secret(make_instance):
    inst = make_instance().start()
    org, adm = admin(inst)
    keys = [inst.root_key, adm["key"]]
    for i in range(3):
        keys.append(create_key(inst, adm["key"], name=f"k{i}")["key"])
    rot = inst.request("POST", f"/v1/api-keys/{adm['id']}/rotate", key=adm["key"],
                       json={"grace_seconds": 60})
    assert rot.status_code == 200
    keys.append(rot.json()["key"])
    for k in keys:  # use each one, wrongly too, so the log has had every chance
        verify(inst, k)
        verify(inst, with_secret(k, flip_last(secret_of(k))))
    blobs = {}

    def snapshot(when):
        for name in ("portcullis.db", "portcullis.db-wal", "server.log"):
            path = os.path.join(inst.dir, name)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    blobs[f"{name} ({when})"] = f.read()

    snapshot("running")  # the WAL is checkpointed away at shutdown
    inst.stop()
    snapshot("stopped")
    if inst.store == "postgres":
        blobs["postgres rows"] = _pg_dump_text(inst.env["PORTCULLIS_STORE_URL"])
        assert b"$2b$" in blobs["postgres rows"]  # the dump did reach the key table
    else:
        assert "portcullis.db-wal (running)" in blobs
    assert "server.log (stopped)" in blobs
    assert KEY_RE.search(blobs["server.log (stopped)"].decode("utf-8", "replace")) is None
    for k in keys:
        s = secret_of(k).encode()
        for name, data in blobs.items():
            assert s not in data, f"a secret is in {name}"
            assert s[:43] not in data, f"a secret's random part is in {name}"


def test_stored_hash_is_bcrypt_2b_cost_12_by_default(make_instance):
    inst = make_instance(bcrypt_cost=12).start()
    org = new_org(inst)
    k = org_key(inst, org)
    inst.stop()
    con = sqlite3.connect(inst.db_path)
    try:
        rows = con.execute("SELECT id, secret_hash FROM api_keys").fetchall()
    finally:
        con.close()
    hashes = dict(rows)
    assert k["id"] in hashes and len(hashes) == 2  # and the root key from init
    for h in hashes.values():
        assert h.startswith("$2b$12$") and len(h) == 60, h


# ---- use: last_used_at and GET /v1/verify ----

def test_last_used_at_is_recorded_after_use(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    before = time.time()
    assert verify(gw, k["key"]).status_code == 200

    def last_used():
        return gw.request("GET", f"/v1/api-keys/{k['id']}", key=adm["key"]).json()["last_used_at"]

    at = wait_for(last_used, timeout=4.0, interval=0.2)
    assert at is not None and TIME_RE.match(at)
    t = datetime.datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert before - 1 <= t <= time.time() + 1


def test_verify_answers_200_with_identity_and_rate_limit_headers(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"], env="test")
    r = verify(gw, k["key"])
    assert r.status_code == 200, r.text
    assert r.headers["X-Portcullis-Org-Id"] == org
    assert r.headers["X-Portcullis-Key-Id"] == k["id"]
    assert r.headers["X-Portcullis-Key-Env"] == "test"
    assert "X-Portcullis-Project-Id" not in r.headers
    assert re.fullmatch(r'"org";q=\d+;w=\d+', r.headers["RateLimit-Policy"])
    assert re.fullmatch(r'"org";r=\d+;t=\d+', r.headers["RateLimit"])


def test_verify_names_the_project_of_a_project_key(gw):
    org, adm = admin(gw)
    pid = gw.request("POST", "/v1/projects", key=adm["key"], json={"name": "app"}).json()["id"]
    k = create_key(gw, adm["key"], project_id=pid)
    r = verify(gw, k["key"])
    assert r.status_code == 200, r.text
    assert r.headers["X-Portcullis-Project-Id"] == pid
    assert r.headers["X-Portcullis-Key-Id"] == k["id"]
    assert r.headers["X-Portcullis-Key-Env"] == "live"
    assert r.headers["X-Portcullis-Org-Id"] == org


# ---- the operator CLI ----

def cli(inst, *args):
    return run_cli(*args, "-c", inst.conf, env=inst.env)


def test_cli_root_key_create_prints_a_working_operator_key(gw):
    p = cli(gw, "root-key", "create", "--name", "backup")
    assert p.returncode == 0, p.stderr
    m = KEY_RE.search(p.stdout)
    assert m and "_root_" in m.group(1)
    new_root = m.group(1)
    r = gw.request("POST", "/v1/orgs", key=new_root, json={"name": "via new root"})
    assert r.status_code == 201, r.text


def test_cli_keys_list_shows_an_organisations_keys_without_secrets(gw):
    org, adm = admin(gw)
    k = create_key(gw, adm["key"], name="listed")
    gw.request("DELETE", f"/v1/api-keys/{k['id']}", key=adm["key"])
    other_org = new_org(gw, "other")
    other = org_key(gw, other_org)
    p = cli(gw, "keys", "list", "--org", org)
    assert p.returncode == 0, p.stderr
    assert k["id"] in p.stdout and adm["id"] in p.stdout
    assert other["id"] not in p.stdout
    line = [ln for ln in p.stdout.splitlines() if k["id"] in ln][0]
    assert "revoked" in line and "listed" in line
    for key in (k["key"], adm["key"]):
        assert key.split(".")[1] not in p.stdout
    assert "$2b$" not in p.stdout
