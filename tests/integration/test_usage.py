"""Usage rollups and what the request log keeps of refused attempts
(INCIDENT.md, docs/api.md "Usage"), black-box on SQLite and PostgreSQL:
a refused attempt keeps the key id it named, its region, route and user
agent and never the address; GET /v1/usage sums equal the raw request log
for a mixed load at every granularity and grouping.
"""
import calendar
import collections
import random
import sqlite3
import string
import time
import zlib

from conftest import assert_problem, flip_last, run_cli
from test_forward import Upstream, upstream, upstream_conf  # noqa: F401
from test_keys import admin, org_key

GEO = ("third_party/geoip/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/"
       "geo-whois-asn-country.mmdb")
# 8.8.8.8 is in the United States, 193.0.6.139 (RIPE NCC) in the Netherlands.
ADDRS = {"8.8.8.8": "US", "193.0.6.139": "NL"}
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def conf(up):
    return upstream_conf(up) + f"\n[geoip]\ndatabase = {GEO}\n" \
        "[server]\ntrusted_proxies = 127.0.0.1, ::1\n"


def wrong_secret(key):
    """key with another well-formed secret (43 base62 characters and their CRC-32)."""
    rnd = "".join(random.choice(B62) for _ in range(43))
    crc, digits = zlib.crc32(rnd.encode()), ""
    for _ in range(6):
        digits = B62[crc % 62] + digits
        crc //= 62
    return key.split(".", 1)[0] + "." + rnd + digits


def all_rows(inst, key, **query):
    """Every request-log row the API shows key's caller (all pages)."""
    rows, cursor = [], None
    while True:
        q = dict(query, limit=100, **({"cursor": cursor} if cursor else {}))
        r = inst.request("GET", "/v1/requests", key=key, params=q)
        assert r.status_code == 200, r.text
        rows += r.json()["data"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return rows


def wait_rows(inst, key, n, timeout=10, **query):
    deadline = time.time() + timeout
    rows = all_rows(inst, key, **query)
    while len(rows) < n and time.time() < deadline:
        time.sleep(0.1)
        rows = all_rows(inst, key, **query)
    return rows


def test_a_refused_attempt_keeps_the_key_it_named_region_route_and_agent_never_the_ip(
        make_instance, upstream):
    gw = make_instance(config=conf(upstream)).start()
    org, adm = admin(gw)
    k = org_key(gw, org, ["gateway"])
    revoked = org_key(gw, org, ["gateway"], name="old")
    assert gw.request("DELETE", f"/v1/api-keys/{revoked['id']}", key=adm["key"]).status_code \
        in (200, 204)
    attempts = [  # (credential, address, expected refusal, status)
        (wrong_secret(k["key"]), "8.8.8.8", "wrong_secret", 401),
        (flip_last(k["key"]), "193.0.6.139", "bad_format", 401),
        (revoked["key"], "8.8.8.8", "revoked", 401),
    ]
    sent = {}
    for cred, addr, why, status in attempts:
        r = gw.request("GET", "/anything/x", key=cred,
                       headers={"X-Forwarded-For": addr, "User-Agent": f"probe/{why}"})
        assert r.status_code == status
        sent[r.headers["X-Request-Id"]] = (addr, why)
    deadline, rows = time.time() + 10, []
    while len(rows) < len(sent) and time.time() < deadline:
        rows = [r for r in all_rows(gw, gw.root_key) if r["request_id"] in sent]
    assert len(rows) == len(sent)
    for row in rows:
        addr, why = sent[row["request_id"]]
        assert row["refusal"] == why
        assert row["key_id"] == (revoked["id"] if why == "revoked" else k["id"])
        # The key exists: the attempt is its organisation's to see. A malformed
        # credential is refused before any store read, so its key's organisation
        # is not looked up.
        assert row["org_id"] == (None if why == "bad_format" else org)
        assert row["region"] == ADDRS[addr]
        assert row["route"] == "proxy:default"
        assert row["user_agent"] == f"probe/{why}"
        assert addr not in repr(row)
    # Nowhere in the store either (the SQLite file holds every table).
    if gw.store == "sqlite":
        gw.stop()
        blob = open(gw.db_path, "rb").read()
        for suffix in ("-wal", "-shm"):
            try:
                blob += open(gw.db_path + suffix, "rb").read()
            except FileNotFoundError:
                pass
        for addr in ADDRS:
            assert addr.encode() not in blob


def test_a_key_id_the_store_does_not_know_is_kept_without_an_organisation(make_instance,
                                                                            upstream):
    gw = make_instance(config=conf(upstream)).start()
    org, adm = admin(gw)
    k = org_key(gw, org, ["gateway"])
    ghost = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    cred = k["key"].split("_")[0] + "_live_" + ghost + "." + wrong_secret(k["key"]).split(".")[1]
    r = gw.request("GET", "/x", key=cred)
    assert r.status_code == 401
    rid = r.headers["X-Request-Id"]
    deadline = time.time() + 10
    row = None
    while row is None and time.time() < deadline:
        row = next((x for x in all_rows(gw, gw.root_key) if x["request_id"] == rid), None)
        time.sleep(0.1)
    assert row
    assert row["key_id"] == ghost and row["org_id"] is None
    assert row["refusal"] == "wrong_secret"
    # Not the organisation's row: its own listing does not show it.
    assert rid not in {x["request_id"] for x in all_rows(gw, adm["key"])}


def usage(inst, key, **q):
    r = inst.request("GET", "/v1/usage", key=key, params=q)
    assert r.status_code == 200, r.text
    return r.json()


def test_usage_sums_equal_the_raw_request_log_for_a_mixed_load(make_instance, upstream):
    gw = make_instance(config=conf(upstream)).start()
    org, adm = admin(gw)
    r = gw.request("POST", "/v1/projects", key=adm["key"], json={"name": "shop"})
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    a = org_key(gw, org, ["gateway"], project_id=project)
    b = org_key(gw, org, ["gateway"], name="b")
    plan = []
    for i in range(80):
        key = random.choice([a["key"], b["key"], wrong_secret(a["key"])])
        path = random.choice(["/x", "/status/404", "/status/503", "/status/201"])
        plan.append((key, path, random.choice(list(ADDRS)), f"ua/{i % 3}"))
    for key, path, addr, ua in plan:
        gw.request("POST", path, key=key, data=b"x" * len(path),
                   headers={"X-Forwarded-For": addr, "User-Agent": ua})
    # The load is over; the admin's own calls (logged too) are told apart by key.
    raw = {}
    for k in (a, b):
        want = sum(1 for p in plan if p[0] == k["key"] or (k is a and p[0] not in
                                                               (a["key"], b["key"])))
        # Every row is written (the operator sees all, a guard's 429 too: it
        # names the key but is refused before the key's organisation is read).
        assert len(wait_rows(gw, gw.root_key, want, key_id=k["id"])) == want
        raw[k["id"]] = all_rows(gw, adm["key"], key_id=k["id"])
        assert raw[k["id"]]
    fields = {"project": "project_id", "route": "route", "status": "status",
              "region": "region"}
    for gran in ("minute", "hour", "day"):
        for kid, rows in raw.items():
            for by, field in fields.items():
                body = usage(gw, adm["key"], granularity=gran, group_by=by, key_id=kid)
                assert body["group_by"] == by and body["granularity"] == gran
                got, got_in, got_out, got_5xx = (collections.Counter() for _ in range(4))
                for p in body["data"]:
                    got[p[field]] += p["requests"]
                    got_in[p[field]] += p["bytes_in"]
                    got_out[p[field]] += p["bytes_out"]
                    got_5xx[p[field]] += p["errors_5xx"]
                want, want_in, want_out, want_5xx = (collections.Counter() for _ in range(4))
                for x in rows:
                    want[x[field]] += 1
                    want_in[x[field]] += x["bytes_in"]
                    want_out[x[field]] += x["bytes_out"]
                    want_5xx[x[field]] += 500 <= x["status"] < 600
                assert got == want, (gran, by)
                assert (got_in, got_out) == (want_in, want_out), (gran, by)
                assert +got_5xx == +want_5xx, (gran, by)
            total = usage(gw, adm["key"], granularity=gran, key_id=kid)["data"]
            assert sum(p["requests"] for p in total) == len(rows)
            assert sum(p["errors_4xx"] for p in total) == \
                sum(1 for x in rows if 400 <= x["status"] < 500)
            assert sum(p["duration_ms_sum"] for p in total) == \
                sum(x["duration_ms"] for x in rows)
        by_key = usage(gw, adm["key"], granularity=gran, group_by="key")["data"]
        for kid, rows in raw.items():
            assert sum(p["requests"] for p in by_key if p["key_id"] == kid) == len(rows)
    # A project filter: only the project's key (and refused attempts naming it).
    proj = usage(gw, adm["key"], project_id=project, group_by="key")["data"]
    assert {p["key_id"] for p in proj} == {a["id"]}
    assert sum(p["requests"] for p in proj) == len(raw[a["id"]])
    # Another organisation sees none of it.
    _, other = admin(gw, "other")
    assert all(p["key_id"] not in raw
               for p in usage(gw, other["key"], group_by="key")["data"])


def test_usage_arguments_are_checked(gw):
    _, adm = admin(gw)
    for q, field in [({"granularity": "week"}, "granularity"), ({"group_by": "ip"}, "group_by"),
                     ({"key_id": "nope"}, "key_id"), ({"since": "yesterday"}, "since"),
                     ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                      "since"), ({"bogus": "1"}, "bogus"),
                     ({"granularity": "minute", "since": "2000-01-01T00:00:00Z"}, None)]:
        r = gw.request("GET", "/v1/usage", key=adm["key"], params=q)
        if field is None:
            assert r.status_code == 200  # an empty window of many minutes is few points
            continue
        assert_problem(r, 400, "BAD_REQUEST")
        assert r.json()["details"]["field"] == field


def test_retention_run_purges_rollups_past_usage_days(make_instance, upstream):
    gw = make_instance(config=conf(upstream) + "[retention]\nusage_days = 1\n").start()
    org, adm = admin(gw)
    k = org_key(gw, org, ["gateway"])
    assert gw.request("GET", "/x", key=k["key"]).status_code == 200
    wait_rows(gw, adm["key"], 1, key_id=k["id"])
    time.sleep(0.5)
    assert usage(gw, adm["key"], key_id=k["id"])["data"]
    gw.stop()
    out = run_cli("retention", "run", "-c", gw.conf,
                  env={**gw.env, "ASAN_OPTIONS": "detect_leaks=0"})
    assert out.returncode == 0, out.stderr
    assert "purged 0 usage rollup row(s) older than 1 day(s)" in out.stdout


def sql(inst, stmt, *args):
    """One statement on the instance's store (SQLite file or PostgreSQL); its rows."""
    if inst.store == "sqlite":
        con = sqlite3.connect(inst.db_path, timeout=10)
        try:
            rows = con.execute(stmt, args).fetchall()
            con.commit()
            return rows
        finally:
            con.close()
    import psycopg2
    con = psycopg2.connect(inst.env["PORTCULLIS_STORE_URL"])
    try:
        cur = con.cursor()
        cur.execute(stmt.replace("?", "%s"), args)
        rows = cur.fetchall() if cur.description else []
        con.commit()
        return rows
    finally:
        con.close()


def test_serve_compacts_closed_hours_into_the_series_and_answers_the_same(make_instance,
                                                                          upstream):
    """The cells of hours that have ended are compacted into the usage series by serve's
    retention thread at start (then every minute); GET /v1/usage then reads the series
    for those hours and answers what the cells said."""
    gw = make_instance(config=conf(upstream)).start()
    org, adm = admin(gw)
    r = gw.request("POST", "/v1/projects", key=adm["key"], json={"name": "shop"})
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    k = org_key(gw, org, ["gateway"], project_id=project)
    for path in ("/a", "/b", "/status/404"):
        gw.request("GET", path, key=k["key"])
    assert gw.request("GET", "/a", key=flip_last(k["key"])).status_code == 401
    wait_rows(gw, adm["key"], 4, key_id=k["id"])
    since = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() - 2 * 86400))
    groups = (None, "project", "key", "route", "status", "region")

    def series(granularity, **scope):
        """The project's points by each group (the admin key's own calls are not in it)."""
        return [usage(gw, adm["key"], since=since, granularity=granularity,
                      **({"group_by": b} if b else {}), **scope)["data"] for b in groups]

    # What the cells say, read while the hour is open (never from the series).
    want = series("hour", project_id=project)
    gw.stop()
    # Three hours back (closed hours), and never compacted (as after an upgrade).
    shift = 3 * 3600 * 1000
    for t in ("usage_hour", "usage_minute"):
        sql(gw, f"UPDATE {t} SET bucket = bucket - ?", shift)
    sql(gw, "UPDATE usage_compacted SET through = 0 WHERE id = 1")
    gw.start()
    deadline = time.time() + 20
    while not sql(gw, "SELECT through FROM usage_compacted WHERE id = 1")[0][0] and \
            time.time() < deadline:
        time.sleep(0.2)
    through = sql(gw, "SELECT through FROM usage_compacted WHERE id = 1")[0][0]
    assert through > (time.time() - 3 * 3600) * 1000, "serve did not compact at start"
    assert sql(gw, "SELECT COUNT(*) FROM usage_series WHERE org_id = ?", org)[0][0] > 0
    # The cells of those hours are no longer read: the series answer what they said.
    sql(gw, "DELETE FROM usage_hour WHERE bucket < ?", through)
    got = series("hour", project_id=project)

    def back(points):
        out = []
        for p in points:
            t = time.strptime(p["bucket"][:19], "%Y-%m-%dT%H:%M:%S")
            out.append(dict(p, bucket=time.strftime(
                "%Y-%m-%dT%H:%M:%S", time.gmtime(calendar.timegm(t) - shift // 1000))))
        return out

    assert [[dict(p, bucket=p["bucket"][:19]) for p in g] for g in got] == \
        [back(g) for g in want]
    assert sum(p["requests"] for p in got[0]) == 3  # the refusal has no project
    for day in series("day", project_id=project):
        assert sum(p["requests"] for p in day) == 3
    # The whole organisation's series (its admin's calls too): the key's three are in them.
    by_key = usage(gw, adm["key"], since=since, granularity="day", group_by="key")["data"]
    assert sum(p["requests"] for p in by_key if p["key_id"] == k["id"]) == 3
    by_project = usage(gw, gw.root_key, since=since, granularity="hour",
                       group_by="project")["data"]
    assert sum(p["requests"] for p in by_project if p["project_id"] == project) == 3
