"""The key inventory (INCIDENT.md "Key inventory", docs/api.md "Key inventory"), black-box on
SQLite and PostgreSQL: every status (active, killed by the key's, the organisation's or the
global switch, revoked, expired), every flag (unused_90d, no_project, never_used), request
counts over 24 hours and 30 days equal to what was sent (from the rollups: refused attempts
and older hours left out), the last region; GET /v1/api-keys/inventory pages with limit and
cursor, is scoped like GET /v1/api-keys (an organisation key sees its own organisation, an
operator key names one) and checks its arguments; `portcullis keys inventory` prints the same
keys as JSON and as CSV that python's csv module reads back, formula-looking names guarded.
"""
import csv
import io
import json
import os
import sqlite3
import subprocess
import time

from conftest import BIN, assert_problem, run_cli
from test_keys import admin, create_key, new_org, org_key, rfc3339_in
from test_usage import GEO, wrong_secret

US, NL = "8.8.8.8", "193.0.6.139"  # in the suite's geo-IP database: US and NL
DAY_MS = 86400 * 1000
HOUR_MS = 3600 * 1000
NO_ID = "01M82YZC82RGBDPS238NXRY03Q"  # well-formed, never created
CONF = f"[geoip]\ndatabase = {GEO}\n[server]\ntrusted_proxies = 127.0.0.1, ::1\n"


def db_exec(inst, sql, *args):
    """Run one statement (? placeholders) on the instance's store, as a test's back door."""
    if inst.store == "sqlite":
        con = sqlite3.connect(inst.db_path, timeout=10)
        try:
            con.execute(sql, args)
            con.commit()
        finally:
            con.close()
        return
    import psycopg2
    con = psycopg2.connect(inst.env["PORTCULLIS_STORE_URL"])
    try:
        with con.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), args)
        con.commit()
    finally:
        con.close()


def verify_from(inst, key, addr):
    return inst.request("GET", "/v1/verify", key=key, headers={"X-Forwarded-For": addr})


def page(inst, key, **params):
    r = inst.request("GET", "/v1/api-keys/inventory", key=key, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def inventory(inst, key, **params):
    """Every key of the inventory (all pages), by id."""
    out, cursor = {}, None
    while True:
        body = page(inst, key, **params, **({"cursor": cursor} if cursor else {}))
        out.update({k["id"]: k for k in body["data"]})
        cursor = body["next_cursor"]
        if not cursor:
            return out


def wait_inventory(inst, key, done, timeout=15, **params):
    """The inventory once done(inventory) holds (the writer and last-used are asynchronous)."""
    deadline = time.time() + timeout
    while True:
        inv = inventory(inst, key, **params)
        if done(inv) or time.time() > deadline:
            return inv
        time.sleep(0.1)


def cli_bytes(inst, *args):
    """`portcullis ARGS -c CONF` with its stdout as bytes (run_cli's text mode would turn
    CRLF into LF)."""
    p = subprocess.run([BIN, *args, "-c", inst.conf], capture_output=True, timeout=60,
                       env={**os.environ, **inst.env})
    assert p.returncode == 0, p.stderr
    return p.stdout


def now_ms():
    return int(time.time() * 1000)


def test_statuses_flags_counts_and_last_region(make_instance):
    gw = make_instance(config=CONF).start()
    org, adm = admin(gw)
    a = adm["key"]
    r = gw.request("POST", "/v1/projects", key=a, json={"name": "billing"})
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    used = create_key(gw, a, name="used", project_id=project)
    never = create_key(gw, a, name="never", project_id=project)
    old = create_key(gw, a, name="old", project_id=project)
    old_never = create_key(gw, a, name="old-never", project_id=project)
    orgwide = create_key(gw, a, name="org-wide")  # gateway, no project
    reader = create_key(gw, a, name="reader", scopes=["keys:read"])  # no traffic scope
    killed = create_key(gw, a, name="killed", project_id=project)
    revoked = create_key(gw, a, name="revoked", project_id=project)
    expired = create_key(gw, a, name="expired", project_id=project, expires_at=rfc3339_in(3600))

    # Traffic: 3 from the US then 2 from the Netherlands; refused attempts do not count.
    for addr in (US, US, US, NL, NL):
        assert verify_from(gw, used["key"], addr).status_code == 200
    for _ in range(2):
        assert verify_from(gw, wrong_secret(used["key"]), US).status_code == 401
    assert gw.request("POST", f"/v1/api-keys/{killed['id']}/kill", key=a,
                      json={"reason": "leak"}).status_code == 200
    assert gw.request("DELETE", f"/v1/api-keys/{revoked['id']}", key=a).status_code == 200

    # Time moved back in the store: created 100 days ago, used 95 days ago; expired an hour
    # ago; and rollup hours 3 and 40 days old for the used key (the 30 days count one).
    t = now_ms()
    for k in (old, old_never):
        db_exec(gw, "UPDATE api_keys SET created_at = ? WHERE id = ?", t - 100 * DAY_MS, k["id"])
    db_exec(gw, "UPDATE api_keys SET last_used_at = ? WHERE id = ?", t - 95 * DAY_MS, old["id"])
    db_exec(gw, "UPDATE api_keys SET expires_at = ? WHERE id = ?", t - HOUR_MS, expired["id"])
    hour = t - t % HOUR_MS
    for days, n in ((3, 7), (40, 100)):
        db_exec(gw, "INSERT INTO usage_hour (org_id, bucket, project_id, key_id, route, status, "
                "region, refusal, requests, errors_4xx, errors_5xx, bytes_in, bytes_out, "
                "duration_ms_sum) VALUES (?, ?, ?, ?, 'verify', 200, 'US', '', ?, 0, 0, 0, 0, 0)",
                org, hour - days * DAY_MS, project, used["id"], n)

    inv = wait_inventory(gw, gw.root_key, lambda i: i[used["id"]]["requests_24h"] == 5 and
                         i[used["id"]]["last_used_at"] is not None, org_id=org)
    u = inv[used["id"]]
    assert (u["requests_24h"], u["requests_30d"]) == (5, 12)
    # From the rollups, not the raw rows: the counts outlive the request log.
    db_exec(gw, "DELETE FROM request_log")
    assert inventory(gw, gw.root_key, org_id=org)[used["id"]]["requests_30d"] == 12
    assert u["last_region"] == "NL"
    assert u["status"] == "active" and u["killed_by"] is None and u["flags"] == []
    assert u["project_id"] == project and u["env"] == "live" and u["scopes"] == ["gateway"]
    assert u["created_at"] == used["created_at"]

    assert inv[never["id"]]["flags"] == ["never_used"]
    assert inv[never["id"]]["last_used_at"] is None and inv[never["id"]]["last_region"] is None
    assert (inv[never["id"]]["requests_24h"], inv[never["id"]]["requests_30d"]) == (0, 0)
    assert inv[old["id"]]["flags"] == ["unused_90d"]
    assert inv[old_never["id"]]["flags"] == ["unused_90d", "never_used"]
    assert inv[orgwide["id"]]["flags"] == ["no_project", "never_used"]
    assert inv[reader["id"]]["flags"] == ["never_used"]  # management only: no project needed
    assert "no_project" in inv[adm["id"]]["flags"]  # the admin key holds gateway too

    assert inv[killed["id"]]["status"] == "killed" and inv[killed["id"]]["killed_by"] == "key"
    assert inv[killed["id"]]["kill_switch"]["engaged"] is True
    assert inv[revoked["id"]]["status"] == "revoked"
    assert inv[revoked["id"]]["revoked_at"] is not None
    assert inv[expired["id"]]["status"] == "expired"
    assert {k["status"] for k in inv.values()} == {"active", "killed", "revoked", "expired"}
    for k in inv.values():
        assert "key" not in k and "secret_hash" not in k
        assert set(k) >= {"id", "name", "project_id", "env", "scopes", "created_at",
                          "last_used_at", "last_region", "requests_24h", "requests_30d",
                          "status", "killed_by", "flags"}

    # The organisation's kill, then the global one, kill every active key; the key's own
    # switch is named first.
    assert gw.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "abuse"}).status_code == 200
    inv = inventory(gw, gw.root_key, org_id=org)
    assert inv[used["id"]]["status"] == "killed"
    assert inv[used["id"]]["killed_by"] == "organization"
    assert inv[used["id"]]["kill_switch"]["engaged"] is False
    assert inv[killed["id"]]["killed_by"] == "key"
    assert inv[revoked["id"]]["status"] == "revoked"  # revocation outranks a kill
    assert gw.root("DELETE", f"/v1/orgs/{org}/kill").status_code == 200
    assert gw.root("POST", "/v1/kill-switch", json={"reason": "drill"}).status_code == 200
    inv = inventory(gw, gw.root_key, org_id=org)
    assert inv[used["id"]]["status"] == "killed" and inv[used["id"]]["killed_by"] == "global"
    assert gw.root("DELETE", "/v1/kill-switch").status_code == 200
    inv = inventory(gw, gw.root_key, org_id=org)
    assert inv[used["id"]]["status"] == "active" and inv[used["id"]]["killed_by"] is None

    # The CLI prints the same keys (nothing is used meanwhile: the root key is no org's).
    p = run_cli("keys", "inventory", "--org", org, "-c", gw.conf, env=gw.env, check=True)
    doc = json.loads(p.stdout)
    assert doc["org_id"] == org and doc["generated_at"].endswith("Z")
    assert [k["id"] for k in doc["data"]] == sorted(inv)
    cli = {k["id"]: k for k in doc["data"]}
    for kid in inv:  # the admin key's own calls may still be on their way to the rollups
        if kid != adm["id"]:
            assert cli[kid] == inv[kid], kid


def test_csv_is_rfc4180_and_guards_formulas(make_instance):
    gw = make_instance()
    gw.start()
    org = new_org(gw)
    names = ['=HYPERLINK("http://x.example","y")', "+1", "-2", "@SUM(A1)", 'say "hi", twice',
             "two\nlines", "plain"]
    made = {org_key(gw, org, name=n)["id"]: n for n in names}
    made[org_key(gw, org, name="ops", scopes=["keys:read", "logs:read"])["id"]] = "ops"
    raw = cli_bytes(gw, "keys", "inventory", "--org", org, "--format", "csv").decode()
    assert raw.endswith("\r\n") and raw.count("\n") == raw.count("\r\n") + 1  # and one in a cell
    assert raw.startswith("id,name,org_id,project_id,env,scopes,") and "\r\n" in raw
    assert raw.split("\r\n", 1)[0].endswith("unused_90d,no_project,never_used")
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert len(rows) == len(made)
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == set(made)
    for kid, name in made.items():
        want = "'" + name if name[0] in "=+-@" else name
        assert by_id[kid]["name"] == want, (by_id[kid]["name"], want)
    plain = next(r for r in rows if r["name"] == "plain")
    assert plain["org_id"] == org and plain["project_id"] == "" and plain["scopes"] == "gateway"
    assert plain["status"] == "active" and plain["killed_by"] == ""
    assert (plain["requests_24h"], plain["requests_30d"], plain["last_region"]) == ("0", "0", "")
    assert (plain["unused_90d"], plain["no_project"], plain["never_used"]) == \
        ("false", "true", "true")
    ops = next(r for r in rows if r["name"] == "ops")
    assert ops["scopes"] == "keys:read logs:read" and ops["no_project"] == "false"
    # The CSV and the JSON say the same.
    p = run_cli("keys", "inventory", "--org", org, "--format", "json", "-c", gw.conf,
                env=gw.env, check=True)
    for k in json.loads(p.stdout)["data"]:
        row = by_id[k["id"]]
        assert row["created_at"] == k["created_at"] and row["status"] == k["status"]
        assert row["never_used"] == str("never_used" in k["flags"]).lower()
    # An organisation without keys: the header only.
    empty = new_org(gw, "empty")
    raw = cli_bytes(gw, "keys", "inventory", "--org", empty, "--format", "csv").decode()
    assert raw.count("\r\n") == 1 and raw.startswith("id,name,")


def test_cli_arguments_are_checked(make_instance):
    gw = make_instance()
    org = new_org(gw.start())
    p = run_cli("keys", "inventory", "--org", NO_ID, "-c", gw.conf, env=gw.env)
    assert p.returncode == 2 and "no such organization" in p.stderr
    p = run_cli("keys", "inventory", "--org", "nope", "-c", gw.conf, env=gw.env)
    assert p.returncode == 2 and "--org" in p.stderr
    p = run_cli("keys", "inventory", "--org", org, "--format", "xml", "-c", gw.conf, env=gw.env)
    assert p.returncode == 2 and "--format" in p.stderr
    p = run_cli("keys", "inventory", "-c", gw.conf, env=gw.env)
    assert p.returncode == 2


def test_pages_follow_the_cursor(gw):
    org, adm = admin(gw)
    ids = {adm["id"]} | {create_key(gw, adm["key"], name=f"k{i}")["id"] for i in range(6)}
    seen, cursor, pages = [], None, 0
    while True:
        body = page(gw, adm["key"], limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(body["data"]) <= 2
        seen += [k["id"] for k in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
        assert cursor == body["data"][-1]["id"]
    assert seen == sorted(ids) and pages == 4
    assert [k["id"] for k in page(gw, adm["key"])["data"]] == sorted(ids)  # default 100
    assert len(page(gw, adm["key"], limit=1000)["data"]) == 7
    assert page(gw, adm["key"], cursor=sorted(ids)[-1]) == {"data": [], "next_cursor": None}


def test_scoped_like_the_key_listing_and_arguments_checked(gw):
    org, adm = admin(gw, "acme")
    other, other_adm = admin(gw, "globex")
    theirs = create_key(gw, other_adm["key"], name="theirs")
    mine = inventory(gw, adm["key"])
    assert set(mine) == {adm["id"]}
    assert set(inventory(gw, adm["key"], org_id=org)) == {adm["id"]}
    assert set(inventory(gw, gw.root_key, org_id=other)) == {other_adm["id"], theirs["id"]}
    # Another organisation's inventory is not found, as another organisation's key is.
    r = gw.request("GET", "/v1/api-keys/inventory", key=adm["key"], params={"org_id": other})
    assert_problem(r, 404, "NOT_FOUND")
    r = gw.request("GET", "/v1/api-keys/inventory", key=gw.root_key, params={"org_id": NO_ID})
    assert_problem(r, 404, "NOT_FOUND")
    # keys:read is needed.
    weak = create_key(gw, adm["key"], name="weak", scopes=["gateway"])
    r = gw.request("GET", "/v1/api-keys/inventory", key=weak["key"])
    assert_problem(r, 403, "FORBIDDEN")
    # Bad arguments are 400 naming the field.
    for key, params, field in (
            (gw.root_key, {}, "org_id"),
            (gw.root_key, {"org_id": "nope"}, "org_id"),
            (adm["key"], {"limit": "0"}, "limit"),
            (adm["key"], {"limit": "1001"}, "limit"),
            (adm["key"], {"limit": "ten"}, "limit"),
            (adm["key"], {"cursor": "not-a-key-id"}, "cursor"),
            (adm["key"], {"cursor": "x" * 65}, "cursor"),
            (adm["key"], {"project_id": NO_ID}, "project_id")):
        r = gw.request("GET", "/v1/api-keys/inventory", key=key, params=params)
        assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == field, params
