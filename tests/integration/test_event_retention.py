"""Retention of SDK events (INGEST.md "Storage and reading", [retention] events_days):
`portcullis retention run` and the background tier's hourly purge (run at its start) delete
events received before the cutoff with any advertising id still held for them, keep newer
ones, and forget messageId dedupe claims past the 24 h window. SQLite (rows written and read
straight in the file); tests/unit/test_store_events.c covers both backends.
"""
import os
import sqlite3
import time

from conftest import run_cli

DAY_MS = 86400 * 1000


def _ulid_id(prefix, ms):
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    v = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return prefix + "_" + "".join(alphabet[(v >> (5 * i)) & 31] for i in range(25, -1, -1))


def _seed(db_path):
    """An event 8 days old (holding an advertising id), one 6 days old; claims 2 days and 1 h old."""
    now = int(time.time() * 1000)
    ids = {}
    con = sqlite3.connect(db_path, timeout=10)
    with con:
        for name, age in (("old", 8 * DAY_MS), ("new", 6 * DAY_MS)):
            at = now - age
            ids[name] = _ulid_id("ev", at)
            con.execute("INSERT INTO events (id, org_id, project_id, message_id, type, timestamp, "
                        "received_at, body) VALUES (?, 'org_x', 'prj_x', ?, 'track', ?, ?, '{}')",
                        (ids[name], "m-" + name, at, at))
        con.execute("INSERT INTO event_adids (event_id, project_id, adid_sealed, received_at) "
                    "VALUES (?, 'prj_x', 'pcs1:00:x', ?)", (ids["old"], now - 8 * DAY_MS))
        for mid, age in (("stale", 2 * DAY_MS), ("fresh", 3600 * 1000)):
            con.execute("INSERT INTO event_dedupe (project_id, message_id, received_at) "
                        "VALUES ('prj_x', ?, ?)", (mid, now - age))
    con.close()
    return ids


def _rows(db_path, sql):
    con = sqlite3.connect(db_path, timeout=10)
    try:
        return [r[0] for r in con.execute(sql)]
    finally:
        con.close()


def _assert_purged(db_path, ids):
    assert _rows(db_path, "SELECT id FROM events") == [ids["new"]]
    assert _rows(db_path, "SELECT event_id FROM event_adids") == []
    assert _rows(db_path, "SELECT message_id FROM event_dedupe") == ["fresh"]


def test_retention_run_purges_events_past_events_days(make_instance):
    # No worker: its own start-up purge must not be what removes the rows.
    gw = make_instance(config="[retention]\nevents_days = 7\n[worker]\nenabled = false\n").start()
    ids = _seed(gw.db_path)
    p = run_cli("retention", "run", "-c", gw.conf, env={"ASAN_OPTIONS": "detect_leaks=0"})
    assert p.returncode == 0, p.stderr
    assert "purged 1 event(s) older than 7 day(s)" in p.stdout, p.stdout
    _assert_purged(gw.db_path, ids)


def test_background_tier_purges_events_at_start(make_instance):
    gw = make_instance(config="[retention]\nevents_days = 7\n").start()
    gw.stop()
    ids = _seed(gw.db_path)
    gw.start()
    deadline = time.time() + 15
    while time.time() < deadline and len(_rows(gw.db_path, "SELECT id FROM events")) > 1:
        time.sleep(0.1)
    _assert_purged(gw.db_path, ids)
    assert "events: purged 1 event(s) older than 7 day(s)" in gw.read_log()
