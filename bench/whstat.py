#!/usr/bin/env python3
"""whstat.py: the store's side of bench/webhooks.sh (read-only queries).

  whstat.py settle STORE TYPE TIMEOUT   wait until every message of TYPE is
      fanned out and none of its deliveries is pending (or TIMEOUT seconds);
      prints "settled SECONDS" or "unsettled PENDING"
  whstat.py stats STORE TYPE            one line: "messages M deliveries D
      succeeded S failed F per_s R p50_ms A p99_ms B first_ms T0 last_ms T1"
      where R = S / (last 2xx recorded - first message created), and the
      latencies are, per succeeded delivery, from its message's created_at to
      the end of its succeeding attempt (at + duration_ms)
  whstat.py lost STORE TYPE ENDPOINTS NGINX_LOG   compare the receiver's log
      ("$uri $http_webhook_id" per request) with the messages of TYPE:
      "messages M expected E received R lost L duplicates D" where expected is
      M x ENDPOINTS, lost the (endpoint, message) pairs never received and
      duplicates the requests beyond the first per pair

STORE is a SQLite file or a postgres:// URL.
"""
import collections
import sys
import time


def connect(store):
    if store.startswith("postgres"):
        import psycopg2
        conn = psycopg2.connect(store)
        conn.autocommit = True
        return conn, "%s"
    import sqlite3
    return sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30), "?"


def rows(store, sql, args=()):
    conn, ph = connect(store)
    try:
        cur = conn.cursor()
        cur.execute(sql.replace("?", ph), args)
        return cur.fetchall()
    finally:
        conn.close()


def settle(store, type_, timeout):
    t0 = time.time()
    pending = None
    while time.time() - t0 < float(timeout):
        (unfanned,), = rows(store, "SELECT COUNT(*) FROM webhook_messages "
                                   "WHERE type = ? AND fanned_out = 0", (type_,))
        (pending,), = rows(store, "SELECT COUNT(*) FROM webhook_deliveries d "
                                  "JOIN webhook_messages m ON m.id = d.message_id "
                                  "WHERE m.type = ? AND d.status = 'pending'", (type_,))
        if unfanned == 0 and pending == 0:
            print(f"settled {time.time() - t0:.1f}")
            return 0
        time.sleep(0.5)
    print(f"unsettled {pending}")
    return 1


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[i]


def stats(store, type_):
    (m, first), = rows(store, "SELECT COUNT(*), MIN(created_at) FROM webhook_messages "
                              "WHERE type = ?", (type_,))
    by = dict(rows(store, "SELECT d.status, COUNT(*) FROM webhook_deliveries d "
                          "JOIN webhook_messages m ON m.id = d.message_id WHERE m.type = ? "
                          "GROUP BY d.status", (type_,)))
    lat = rows(store, "SELECT a.at + a.duration_ms - m.created_at, a.at + a.duration_ms "
                      "FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id "
                      "WHERE m.type = ? AND a.outcome = 'succeeded'", (type_,))
    vals = sorted(v for v, _ in lat)
    last = max((t for _, t in lat), default=first or 0)
    s = by.get("succeeded", 0)
    span = max(1, (last - (first or last))) / 1000.0
    print(f"messages {m} deliveries {sum(by.values())} succeeded {s} "
          f"failed {by.get('failed', 0)} per_s {s / span:.0f} p50_ms {pct(vals, 50):.0f} "
          f"p99_ms {pct(vals, 99):.0f} first_ms {first} last_ms {last}")
    return 0


def lost(store, type_, endpoints, log):
    ids = {i for (i,) in rows(store, "SELECT id FROM webhook_messages WHERE type = ?",
                              (type_,))}
    seen = collections.Counter()
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[1] in ids:
                seen[(parts[0], parts[1])] += 1
    expected = len(ids) * int(endpoints)
    print(f"messages {len(ids)} expected {expected} received {len(seen)} "
          f"lost {expected - len(seen)} duplicates {sum(c - 1 for c in seen.values())}")
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    return {"settle": settle, "stats": stats, "lost": lost}[cmd](*args)


if __name__ == "__main__":
    sys.exit(main())
