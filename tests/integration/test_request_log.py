"""The request log, black-box (docs/contract.md "Records"): one row per request
served, written in the background; never a body, a credential, a query
string or an IP address; GET /v1/requests with its filters and cursor
pagination; `portcullis retention run`; and SIGTERM flushing the queue.
"""
import concurrent.futures
import glob
import os
import signal
import sqlite3
import time

from conftest import assert_problem, run_cli, flip_last
from test_forward import Upstream, gateway_key, upstream, upstream_conf  # noqa: F401
from test_keys import admin, org_key, secret_of

DAY_MS = 86400 * 1000


def db_rows(gw, where="1=1", args=()):
    con = sqlite3.connect(gw.db_path, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM request_log WHERE {where}", args)]
    finally:
        con.close()


def settled_rows(gw, where, args, expect, timeout=10):
    """Poll until `expect` rows match, then check that no more arrive."""
    deadline = time.time() + timeout
    rows = db_rows(gw, where, args)
    while len(rows) < expect and time.time() < deadline:
        time.sleep(0.05)
        rows = db_rows(gw, where, args)
    time.sleep(0.3)
    return db_rows(gw, where, args)


def test_every_request_served_leaves_exactly_one_row(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    paths = ["/burst/x", "/burst/status/404", "/burst/status/201"] * 20

    def call(path):
        r = gw.request("POST", path, key=k["key"], data=b"0123456789")
        return r.headers["X-Request-Id"], r.status_code, len(r.content)

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        served = list(pool.map(call, paths))
    rows = settled_rows(gw, "key_id = ?", (k["id"],), len(served))
    assert len(rows) == len(served)
    by_id = {r["request_id"]: r for r in rows}
    assert set(by_id) == {rid for rid, _, _ in served}
    for rid, status, n_out in served:
        row = by_id[rid]
        assert row["status"] == status
        assert row["org_id"] == org and row["project_id"] in (None, "")
        assert row["method"] == "POST" and row["path"].startswith("/burst/")
        assert row["bytes_in"] == 10 and row["bytes_out"] == n_out
        assert row["duration_ms"] >= 0
        assert row["region"] in (None, "")
    # Refused requests are served too: a 401 leaves a row naming the key the
    # credential named (malformed here, so no organisation was looked up).
    r = gw.request("GET", "/burst/x", key=flip_last(k["key"]))
    assert r.status_code == 401
    rows = settled_rows(gw, "request_id = ?", (r.headers["X-Request-Id"],), 1)
    assert len(rows) == 1 and rows[0]["status"] == 401 and rows[0]["key_id"] == k["id"]
    assert rows[0]["refusal"] == "bad_format" and not rows[0]["org_id"]


def test_rows_hold_no_ip_body_secret_or_query(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    ua = "agent/" + "u" * 300
    for method in ("POST", "PUT"):
        r = gw.request(method, "/private/orders?token=QUERYMARKER7731&card=4242424242424242",
                       key=k["key"], data=b'{"note": "BODYMARKER5519"}',
                       headers={"User-Agent": ua, "X-Forwarded-For": "203.0.113.9",
                                "Cookie": "session=COOKIEMARKER"})
        assert r.status_code == 200
    rows = settled_rows(gw, "key_id = ?", (k["id"],), 2)
    assert len(rows) == 2
    for row in rows:
        assert row["path"] == "/private/orders"
        assert row["user_agent"] == ua[:256]
    blob = b""
    for f in glob.glob(gw.db_path + "*"):
        with open(f, "rb") as fh:
            blob += fh.read()
    assert b"private/orders" in blob  # the rows are in the bytes searched
    for marker in (b"127.0.0.1", b"203.0.113.9", b"BODYMARKER5519", b"QUERYMARKER7731",
                   b"4242424242424242", b"COOKIEMARKER", secret_of(k["key"]).encode()):
        assert marker not in blob, marker
    log = gw.read_log()
    for marker in ("BODYMARKER5519", "QUERYMARKER7731", "COOKIEMARKER", secret_of(k["key"])):
        assert marker not in log, marker


def served(gw, key, path, n):
    ids = []
    for _ in range(n):
        r = gw.request("GET", path, key=key)
        ids.append(r.headers["X-Request-Id"])
    return ids


def list_requests(gw, key, query=""):
    r = gw.request("GET", "/v1/requests" + query, key=key)
    assert r.status_code == 200, r.text
    return r.json()


def test_get_requests_filters_and_paginates(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, adm = admin(gw)
    k1 = org_key(gw, org, ["gateway"], name="one")
    pid = gw.request("POST", "/v1/projects", key=adm["key"], json={"name": "web"}).json()["id"]
    k2 = org_key(gw, org, ["gateway"], name="two", project_id=pid)
    other_org, other_adm = admin(gw, "other")
    ok1 = served(gw, k1["key"], "/f/x", 3)
    nf1 = served(gw, k1["key"], "/f/status/404", 2)
    time.sleep(0.05)
    ok2 = served(gw, k2["key"], "/f/x", 2)
    served(gw, other_adm["key"], "/f/x", 1)
    settled_rows(gw, "path LIKE '/f/%'", (), 8)

    body = list_requests(gw, adm["key"], f"?key_id={k1['id']}")
    assert set(body) == {"data", "next_cursor"} and body["next_cursor"] is None
    assert {r["request_id"] for r in body["data"]} == set(ok1 + nf1)
    row = body["data"][0]
    assert set(row) == {"request_id", "received_at", "org_id", "project_id", "key_id", "method",
                        "path", "status", "duration_ms", "region", "bytes_in", "bytes_out",
                        "user_agent", "route", "refusal"}
    assert row["org_id"] == org and row["key_id"] == k1["id"] and row["method"] == "GET"

    body = list_requests(gw, adm["key"], "?status=404")
    assert {r["request_id"] for r in body["data"]} == set(nf1)
    body = list_requests(gw, adm["key"], f"?key_id={k2['id']}&status=200")
    assert {r["request_id"] for r in body["data"]} == set(ok2)
    body = list_requests(gw, adm["key"], f"?project_id={pid}")
    assert {r["request_id"] for r in body["data"]} == set(ok2)
    assert all(r["project_id"] == pid for r in body["data"])

    # since is inclusive, until exclusive: split at the first row of key two.
    k2_rows = list_requests(gw, adm["key"], f"?key_id={k2['id']}")["data"]
    split = min(r["received_at"] for r in k2_rows)
    after = list_requests(gw, adm["key"], f"?since={split}")["data"]
    before = list_requests(gw, adm["key"], f"?until={split}")["data"]
    f_after = {r["request_id"] for r in after if r["path"].startswith("/f/")}
    f_before = {r["request_id"] for r in before if r["path"].startswith("/f/")}
    assert f_after == set(ok2) and f_before == set(ok1 + nf1)
    window = list_requests(gw, adm["key"], f"?since={split}&until={split}")["data"]
    assert window == []

    # Cursor pagination: newest first, every row once.
    pages, cursor = [], None
    for _ in range(5):
        q = f"?key_id={k1['id']}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = list_requests(gw, adm["key"], q)
        pages.append([r["request_id"] for r in body["data"]])
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    flat = [i for p in pages for i in p]
    assert flat == sorted(ok1 + nf1, reverse=True)

    # An organisation sees its own rows only; the operator sees all.
    mine = list_requests(gw, other_adm["key"], "?limit=100")["data"]
    assert mine and all(r["org_id"] == other_org for r in mine)
    assert list_requests(gw, other_adm["key"], f"?key_id={k1['id']}")["data"] == []
    everyone = list_requests(gw, gw.root_key, "?limit=100")["data"]
    assert {r["org_id"] for r in everyone} >= {org, other_org}

    for q, field in (("?status=abc", "status"), ("?status=99", "status"),
                     ("?key_id=nope", "key_id"), ("?project_id=nope", "project_id"),
                     ("?since=yesterday", "since"), ("?until=2026-13-01T00:00:00Z", "until"),
                     ("?cursor=req_nope", "cursor"), ("?limit=0", "limit")):
        r = gw.request("GET", "/v1/requests" + q, key=adm["key"])
        assert assert_problem(r, 400, "BAD_REQUEST")["details"]["field"] == field, q
    assert_problem(gw.request("GET", "/v1/requests", key=k1["key"]), 403, "FORBIDDEN")


def test_retention_run_purges_old_rows_and_keeps_new_ones(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream) +
                       "[retention]\nrequest_log_days = 7\n").start()
    org, k = gateway_key(gw)
    ids = served(gw, k["key"], "/r/x", 4)
    assert len(settled_rows(gw, "key_id = ?", (k["id"],), 4)) == 4
    now = int(time.time() * 1000)
    con = sqlite3.connect(gw.db_path, timeout=10)
    with con:
        # Aged as they would have been written then: a request id carries its received_at.
        for i, age in ((0, 8), (1, 8), (2, 6)):
            at = now - age * DAY_MS - i
            old, ids[i] = ids[i], _ulid_id("req", at)
            con.execute("UPDATE request_log SET received_at = ?, request_id = ? "
                        "WHERE request_id = ?", (at, ids[i], old))
    con.close()
    p = run_cli("retention", "run", "-c", gw.conf, env={"ASAN_OPTIONS": "detect_leaks=0"})
    assert p.returncode == 0, p.stderr
    assert "purged 2 " in p.stdout, p.stdout
    left = {r["request_id"] for r in db_rows(gw, "key_id = ?", (k["id"],))}
    assert left == {ids[2], ids[3]}


def _ulid_id(prefix, ms):
    """prefix_ + a ULID of time ms (Crockford base32, 48-bit time, 80 bits of randomness)."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    v = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return prefix + "_" + "".join(alphabet[(v >> (5 * i)) & 31] for i in range(25, -1, -1))


def test_retention_run_purges_webhook_records_past_webhook_days(make_instance, upstream):
    # No worker: its own start-up purge must not be what removes the rows.
    gw = make_instance(config=upstream_conf(upstream) + "[retention]\nwebhook_days = 7\n"
                       "[worker]\nenabled = false\n").start()
    now = int(time.time() * 1000)
    con = sqlite3.connect(gw.db_path, timeout=10)
    rows = {}
    with con:
        for name, age in (("old", 8), ("new", 6)):
            at = now - age * DAY_MS
            msg, dlv, att = (_ulid_id(p, at) for p in ("msg", "dlv", "att"))
            rows[name] = msg
            con.execute("INSERT INTO webhook_messages (id, org_id, type, body, fanned_out, "
                        "created_at) VALUES (?, 'org_x', 'invoice.paid', '{}', 1, ?)", (msg, at))
            # Pending (an endpoint that stays disabled): still past the retention.
            con.execute("INSERT INTO webhook_deliveries (id, message_id, org_id, target, "
                        "channel, endpoint_id, status, created_at, updated_at) VALUES "
                        "(?, ?, 'org_x', 'ep_x', 'webhook', 'ep_x', 'pending', ?, ?)",
                        (dlv, msg, at, at))
            con.execute("INSERT INTO webhook_attempts (id, delivery_id, message_id, endpoint_id, "
                        "org_id, channel, at, outcome, duration_ms) VALUES "
                        "(?, ?, ?, 'ep_x', 'org_x', 'webhook', ?, 'failed', 1)",
                        (att, dlv, msg, at))
    con.close()
    p = run_cli("retention", "run", "-c", gw.conf, env={"ASAN_OPTIONS": "detect_leaks=0"})
    assert p.returncode == 0, p.stderr
    assert "purged 3 webhook row(s) older than 7 day(s)" in p.stdout, p.stdout
    con = sqlite3.connect(gw.db_path, timeout=10)
    for table in ("webhook_messages", "webhook_deliveries", "webhook_attempts"):
        col = "id" if table == "webhook_messages" else "message_id"
        left = {r[0] for r in con.execute(f"SELECT {col} FROM {table}")}
        assert left == {rows["new"]}, (table, left)
    con.close()


def test_sigterm_flushes_the_queue_before_exit(make_instance, upstream):
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, k = gateway_key(gw)
    assert gw.request("GET", "/t/x", key=k["key"]).status_code == 200
    assert len(settled_rows(gw, "key_id = ?", (k["id"],), 1)) == 1
    # Hold SQLite's write lock, so the rows of the burst are still queued
    # when the signal lands; release it once the server is shutting down.
    lock = sqlite3.connect(gw.db_path, timeout=10, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    n = 100

    def call(_):
        return gw.request("GET", "/t/x", key=k["key"]).status_code

    try:
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(call, range(n)))
        assert codes == [200] * n
        assert len(db_rows(gw, "key_id = ?", (k["id"],))) == 1
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert gw.proc.poll() is None  # still flushing
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert gw.proc.wait(timeout=20) == 0
    assert len(db_rows(gw, "key_id = ?", (k["id"],))) == n + 1


def test_requests_refused_after_the_key_is_known_carry_its_ids(make_instance, upstream):
    # docs/api.md: a request refused at check 4, 5 or 6 (KILL_SWITCH, REVOKED, EXPIRED,
    # FORBIDDEN) is recorded with the key's org_id, key_id and project_id, so its organisation
    # sees the row and an operator can filter by key (the page once said they were null).
    gw = make_instance(config=upstream_conf(upstream)).start()
    org, adm = admin(gw)
    proj = gw.request("POST", "/v1/projects", key=adm["key"], json={"name": "p"}).json()["id"]
    k = org_key(gw, org, ["gateway"], project_id=proj)
    refused = []
    r = gw.request("GET", "/v1/api-keys", key=k["key"])  # no keys:read
    refused.append(assert_problem(r, 403, "FORBIDDEN")["requestId"])
    assert gw.root("POST", f"/v1/api-keys/{k['id']}/kill", json={}).status_code == 200
    r = gw.request("GET", "/x", key=k["key"])
    refused.append(assert_problem(r, 503, "KILL_SWITCH")["requestId"])
    assert gw.root("DELETE", f"/v1/api-keys/{k['id']}/kill").status_code == 200
    assert gw.root("DELETE", f"/v1/api-keys/{k['id']}").status_code == 200
    r = gw.request("GET", "/x", key=k["key"])
    refused.append(assert_problem(r, 401, "REVOKED")["requestId"])
    rows = settled_rows(gw, "key_id = ?", (k["id"],), len(refused))
    by_id = {row["request_id"]: row for row in rows}
    for rid in refused:
        assert by_id[rid]["org_id"] == org and by_id[rid]["project_id"] == proj, by_id.get(rid)
    # The organisation sees them through the API, filtered by the key.
    listed = gw.request("GET", "/v1/requests", key=adm["key"], params={"key_id": k["id"]})
    assert {row["request_id"] for row in listed.json()["data"]} >= set(refused)
