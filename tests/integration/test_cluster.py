"""Several nodes on one PostgreSQL and one Redis, black-box (docs/operations.md
"Running several nodes" and "Failure behaviour"): a kill, rotation or
revocation made through one node holds on the other from its next request;
one rate limit and one set of idempotency records for the whole cluster;
Redis and PostgreSQL outages degrade as documented and heal without a
restart; and the single-node basics on PostgreSQL.

The outage tests stop servers of their own (a private redis-server, a
private PostgreSQL from scripts/test-servers.sh), never the shared ones.
Needs PORTCULLIS_TEST_PG_URL and PORTCULLIS_TEST_REDIS_URL
(`eval "$(scripts/test-servers.sh start --owner $$)"`).
"""
import concurrent.futures
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import PG_URL, REDIS_URL, assert_problem, free_port, fresh_pg_database, run_cli
from test_forward import gateway_key, upstream, upstream_conf  # noqa: F401
from test_keys import admin, create_key, verify

pytestmark = pytest.mark.skipif(
    not (PG_URL and REDIS_URL),
    reason="needs PORTCULLIS_TEST_PG_URL and PORTCULLIS_TEST_REDIS_URL "
    "(scripts/test-servers.sh start)")

TEST_SERVERS = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "test-servers.sh")


# ---- helpers ----

class PrivateRedis:
    """A redis-server of our own on a free loopback port, no persistence:
    stop() and start() again on the same port without touching other tests."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pcl-redis-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            assert self.proc.poll() is None, "redis-server exited"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def stop(self):
        """Kill it (a crash: SIGTERM takes redis-server about two seconds here)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def pause(self):
        """SIGSTOP: connections are accepted by the kernel, nothing answers (a hung Redis)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.resume()
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateServers:
    """A PostgreSQL and a Redis of our own (scripts/test-servers.sh start
    DIR), so PostgreSQL can be stopped and started again."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pcl-outage-")
        out = self.script("start", "--owner", str(os.getpid()), self.dir)
        env = dict(re.findall(r"^export (\w+)='([^']*)'$", out, re.M))
        self.pg_url = env["PORTCULLIS_TEST_PG_URL"]
        self.redis_url = env["PORTCULLIS_TEST_REDIS_URL"]

    def script(self, *args):
        p = subprocess.run([TEST_SERVERS, *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return p.stdout

    def pg_stop(self):
        self.script("pg-stop", self.dir)

    def pg_start(self):
        self.script("pg-start", self.dir)

    def close(self):
        self.script("stop", self.dir)


@pytest.fixture
def private_redis():
    r = PrivateRedis()
    yield r
    r.close()


@pytest.fixture(scope="module")
def private_servers():
    s = PrivateServers()
    yield s
    s.close()


@pytest.fixture
def pg_outage(private_servers):
    """The private servers, with PostgreSQL started again after the test whatever happened."""
    yield private_servers
    private_servers.pg_start()


def kill_scope(resp):
    return assert_problem(resp, 503, "KILL_SWITCH")["details"]["scope"]


def until(fn, timeout, interval=0.01):
    """Call fn() until it returns true; the seconds that took (AssertionError on timeout)."""
    t0 = time.monotonic()
    while True:
        if fn():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(interval)


def metric(node, name):
    text = node.request("GET", "/metrics").text
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\d+(?:\.\d+)?)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def readyz(node):
    return node.request("GET", "/readyz", timeout=10)


def idem_post(node, key, idem, path="/charges", body=b'{"amount": 100}'):
    h = {"Content-Type": "application/json"}
    if idem is not None:
        h["Idempotency-Key"] = idem
    return node.request("POST", path, key=key, headers=h, data=body)


def kill_key(node, adm, key_id, engage=True):
    r = node.request("POST" if engage else "DELETE", f"/v1/api-keys/{key_id}/kill",
                     key=adm["key"])
    assert r.status_code == 200, r.text


# ---- changes made through one node hold on the other ----

def test_kills_through_node_a_are_refused_by_node_b_on_its_next_request(make_cluster):
    a, b = make_cluster()
    org, adm = admin(a)
    k = create_key(a, adm["key"])
    other_org, other = admin(a, "other")
    for key in (k["key"], other["key"]):
        assert verify(b, key).status_code == 200  # verified and cached on B
    # Key
    kill_key(a, adm, k["id"])
    assert kill_scope(verify(b, k["key"])) == "key"
    assert verify(b, adm["key"]).status_code == 200
    kill_key(a, adm, k["id"], engage=False)
    assert verify(b, k["key"]).status_code == 200
    # Organisation
    assert a.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "test"}).status_code == 200
    assert kill_scope(verify(b, k["key"])) == "organization"
    assert verify(b, other["key"]).status_code == 200
    assert a.root("DELETE", f"/v1/orgs/{org}/kill").status_code == 200
    assert verify(b, k["key"]).status_code == 200
    # Global
    assert a.root("POST", "/v1/kill-switch", json={"reason": "test"}).status_code == 200
    assert kill_scope(verify(b, k["key"])) == "global"
    assert kill_scope(verify(b, other["key"])) == "global"
    assert a.root("DELETE", "/v1/kill-switch").status_code == 200
    assert verify(b, other["key"]).status_code == 200
    # And the other way round.
    kill_key(b, adm, k["id"])
    assert kill_scope(verify(a, k["key"])) == "key"


def test_rotation_and_revocation_through_node_a_hold_on_node_b(make_cluster):
    a, b = make_cluster()
    org, adm = admin(a)
    k = create_key(a, adm["key"])
    assert verify(b, k["key"]).status_code == 200
    r = a.request("POST", f"/v1/api-keys/{k['id']}/rotate", key=adm["key"], json={})
    assert r.status_code == 200, r.text
    new = r.json()["key"]
    assert_problem(verify(b, k["key"]), 401, "UNAUTHENTICATED")
    assert verify(b, new).status_code == 200
    assert a.request("DELETE", f"/v1/api-keys/{k['id']}", key=adm["key"]).status_code == 200
    assert_problem(verify(b, new), 401, "REVOKED")


def settled_metric(node, name, quiet=2.5, timeout=20):
    """name's value once it has not moved for quiet seconds (two change-poll ticks)."""
    deadline = time.monotonic() + timeout
    last = metric(node, name)
    while True:
        time.sleep(quiet)
        now = metric(node, name)
        if now == last:
            return now
        assert time.monotonic() < deadline, f"{name} keeps moving"
        last = now


@pytest.mark.parametrize("db", ["postgres", "sqlite"])
def test_a_revocation_costs_the_other_node_a_bounded_number_of_key_reads(make_cluster, db,
                                                                         tmp_path):
    """With N keys cached on node B, a revocation through node A makes B re-read
    the one key it names (its notice, then the change log at the next poll),
    not every cached key: before the change log every state-version bump
    re-read all N."""
    n = 40
    url = f"sqlite://{tmp_path}/shared.db" if db == "sqlite" else None
    a, b = make_cluster(store_url=url)
    assert "portcullis_keycache_reloads_total" in b.request("GET", "/metrics").text
    org, adm = admin(a)
    keys = [create_key(a, adm["key"]) for _ in range(n)]
    for k in keys:
        assert verify(b, k["key"]).status_code == 200  # cached on B
    before = settled_metric(b, "portcullis_keycache_reloads_total")
    rechecks = metric(b, "portcullis_change_rechecks_total")
    victim = keys[n // 2]
    r = a.request("DELETE", f"/v1/api-keys/{victim['id']}", key=adm["key"])
    assert r.status_code == 200, r.text
    assert_problem(verify(b, victim["key"]), 401, "REVOKED")
    reloads = settled_metric(b, "portcullis_keycache_reloads_total") - before
    assert 1 <= reloads <= 3, f"{reloads:.0f} key rows re-read for one revocation ({n} cached)"
    assert metric(b, "portcullis_change_rechecks_total") == rechecks
    for k in keys[:3] + keys[-3:]:
        assert verify(b, k["key"]).status_code == 200


def test_rate_limit_admits_exactly_n_across_both_nodes_under_concurrent_load(make_cluster):
    n = 25
    a, b = make_cluster()
    org, k = gateway_key(a)
    # Everything at once, then one more an hour later: the limit is n.
    r = a.root("PATCH", f"/v1/orgs/{org}",
               json={"rate_limit": {"requests": n, "per_seconds": 3600, "burst": n - 1}})
    assert r.status_code == 200, r.text

    def fire(i):
        node = (a, b)[i % 2]
        with requests.Session() as s:
            s.headers["Authorization"] = "Bearer " + k["key"]
            return [s.get(node.url("/v1/verify"), timeout=30).status_code for _ in range(10)]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = [st for batch in pool.map(fire, range(4 * n // 10)) for st in batch]
    assert len(statuses) == 4 * n
    assert statuses.count(200) == n, statuses
    assert statuses.count(429) == 3 * n, statuses


def test_idempotency_key_used_on_node_a_replays_on_node_b(make_cluster, upstream):
    a, b = make_cluster(config=upstream_conf(upstream))
    org, k = gateway_key(a)
    first = idem_post(a, k["key"], "order-1")
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = idem_post(b, k["key"], "order-1")
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert_problem(idem_post(b, k["key"], "order-1", body=b"{}"), 422, "IDEMPOTENCY_KEY_REUSED")
    assert upstream.count() == 1


# ---- outages ----

def test_redis_outage_fails_open_or_503_as_documented_and_heals_without_restart(
        make_cluster, private_redis, upstream):
    a, b = make_cluster(kv_url=private_redis.url, config=upstream_conf(upstream))
    org, adm = admin(a)
    k = create_key(a, adm["key"])
    for node in (a, b):
        assert node.request("GET", "/x", key=k["key"]).status_code == 200
        assert readyz(node).status_code == 200
    assert idem_post(a, k["key"], "before").status_code == 200
    assert idem_post(b, k["key"], "before").headers["Idempotent-Replayed"] == "true"
    unchecked = {node.port: metric(node, "portcullis_rate_limit_unavailable_total")
                 for node in (a, b)}

    private_redis.stop()
    for node in (a, b):
        # Rate limit fails open (counted); idempotent requests cannot be checked.
        r = node.request("GET", "/x", key=k["key"])
        assert r.status_code == 200, r.text
        assert idem_post(node, k["key"], None).status_code == 200
        assert metric(node, "portcullis_rate_limit_unavailable_total") >= \
            unchecked[node.port] + 2
        r = idem_post(node, k["key"], "during")
        assert_problem(r, 503, "IDEMPOTENCY_UNAVAILABLE")
        assert r.headers["Retry-After"] == "1"
        body = assert_problem(readyz(node), 503, "NOT_READY")
        assert body["details"] == {"store": True, "kv": False}
    # No notices: the one-second state-version check carries the kill to B.
    kill_key(a, adm, k["id"])
    took = until(lambda: verify(b, k["key"]).status_code == 503, 3)
    assert took < 1.5, took
    assert kill_scope(verify(b, k["key"])) == "key"
    kill_key(a, adm, k["id"], engage=False)
    until(lambda: verify(b, k["key"]).status_code == 200, 3)

    private_redis.start()
    for node in (a, b):
        until(lambda: readyz(node).status_code == 200, 5, 0.1)
    r = idem_post(a, k["key"], "after")
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    assert idem_post(b, k["key"], "after").headers["Idempotent-Replayed"] == "true"
    assert upstream.count("/charges") == 4  # before, 2 without a key during, after
    # Notices flow again: B re-subscribes (backoff at most 5 s), then a kill is
    # there well inside the one-second poll.
    until(lambda: "notice subscription restored" in b.read_log(), 8, 0.1)
    assert b.request("GET", "/x", key=k["key"]).status_code == 200
    for _ in range(3):
        kill_key(a, adm, k["id"])
        took = until(lambda: verify(b, k["key"]).status_code == 503, 3, 0.005)
        kill_key(a, adm, k["id"], engage=False)
        until(lambda: verify(b, k["key"]).status_code == 200, 3)
        if took < 0.25:
            break
    assert took < 0.25, took
    # The limit is checked again: nothing more let through unchecked.
    unchecked = metric(b, "portcullis_rate_limit_unavailable_total")
    r = b.request("GET", "/x", key=k["key"])
    assert r.status_code == 200 and "RateLimit" in r.headers
    assert metric(b, "portcullis_rate_limit_unavailable_total") == unchecked


def test_hung_redis_costs_requests_no_wait_after_the_first_timeout_and_heals(
        make_cluster, private_redis):
    a, = make_cluster(n=1, kv_url=private_redis.url)
    org, k = gateway_key(a)
    assert "RateLimit" in verify(a, k["key"]).headers
    private_redis.pause()
    try:
        # The first call runs into the one-second timeout; from then on Redis counts
        # as down and calls fail at once, but for one short probe now and then.
        assert verify(a, k["key"]).status_code == 200
        took = []
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            t0 = time.monotonic()
            r = verify(a, k["key"])
            took.append(time.monotonic() - t0)
            assert r.status_code == 200 and "RateLimit" not in r.headers
        assert len(took) >= 20 and sum(t > 0.5 for t in took) <= 1, took
        t0 = time.monotonic()
        assert_problem(readyz(a), 503, "NOT_READY")
        assert time.monotonic() - t0 < 0.5
    finally:
        private_redis.resume()
    until(lambda: "RateLimit" in verify(a, k["key"]).headers, 5, 0.1)
    assert readyz(a).status_code == 200


def outage_cluster(make_cluster, servers, grace):
    return make_cluster(kv_url=servers.redis_url, store_url=fresh_pg_database(servers.pg_url),
                        config=f"[auth]\nstale_grace_seconds = {grace}\n")


def test_postgres_outage_fails_readyz_and_uncached_keys_keeps_decisions_and_heals(
        make_cluster, pg_outage):
    a, b = outage_cluster(make_cluster, pg_outage, grace=30)
    org, adm = admin(a)
    known = create_key(a, adm["key"])
    uncached = create_key(a, adm["key"])
    killed = create_key(a, adm["key"])
    revoked = create_key(a, adm["key"])
    for node in (a, b):
        for key in (known, killed, revoked):
            assert verify(node, key["key"]).status_code == 200
    kill_key(a, adm, killed["id"])
    assert a.request("DELETE", f"/v1/api-keys/{revoked['id']}", key=adm["key"]).status_code \
        == 200
    for node in (a, b):
        assert kill_scope(verify(node, killed["key"])) == "key"
        assert_problem(verify(node, revoked["key"]), 401, "REVOKED")
    # A change just before the outage marks the organisation's row stale (at once
    # on A, which made it): while the store is down, check 7 uses the row from
    # before the change instead of answering 503 to keys verified before.
    r = a.root("PATCH", f"/v1/orgs/{org}",
               json={"rate_limit": {"requests": 1000, "per_seconds": 1, "burst": 999}})
    assert r.status_code == 200, r.text

    pg_outage.pg_stop()
    for node in (a, b):
        body = assert_problem(readyz(node), 503, "NOT_READY")
        assert body["details"] == {"store": False, "kv": True}
        assert_problem(verify(node, uncached["key"]), 503, "STORE_UNAVAILABLE")
        # Verified before the outage: still served; kills and revocations still hold.
        assert verify(node, known["key"]).status_code == 200
        assert kill_scope(verify(node, killed["key"])) == "key"
        assert_problem(verify(node, revoked["key"]), 401, "REVOKED")
        assert node.request("POST", "/v1/api-keys", key=adm["key"],
                            json={"name": "x"}).status_code == 503
    time.sleep(1.2)  # the pollers have seen the outage: nothing is undone
    for node in (a, b):
        assert kill_scope(verify(node, killed["key"])) == "key"
        assert_problem(verify(node, revoked["key"]), 401, "REVOKED")

    pg_outage.pg_start()
    for node in (a, b):
        until(lambda: readyz(node).status_code == 200, 10, 0.1)
        assert verify(node, known["key"]).status_code == 200
        assert verify(node, uncached["key"]).status_code == 200
        assert kill_scope(verify(node, killed["key"])) == "key"
        assert_problem(verify(node, revoked["key"]), 401, "REVOKED")
    create_key(b, adm["key"])  # writes work again too
    until(lambda: "store_recovered" in a.read_log(), 3, 0.1)  # the poller's next tick


def test_postgres_outage_verified_keys_work_for_stale_grace_seconds_then_503(
        make_cluster, pg_outage):
    grace = 3
    a, b = outage_cluster(make_cluster, pg_outage, grace)
    org, adm = admin(a)
    known = create_key(a, adm["key"])
    killed = create_key(a, adm["key"])
    for node in (a, b):
        assert verify(node, known["key"]).status_code == 200
    kill_key(a, adm, killed["id"])

    pg_outage.pg_stop()
    stopped = time.monotonic()
    for node in (a, b):
        assert verify(node, known["key"]).status_code == 200
    # Counted from when each node noticed (its poller: within a second).
    for node in (a, b):
        until(lambda: verify(node, known["key"]).status_code == 503, grace + 3, 0.1)
        took = time.monotonic() - stopped
        assert grace - 0.2 <= took <= grace + 1.5, took
        assert_problem(verify(node, known["key"]), 503, "STORE_UNAVAILABLE")
        assert verify(node, killed["key"]).status_code == 503

    pg_outage.pg_start()
    for node in (a, b):
        until(lambda: readyz(node).status_code == 200, 10, 0.1)
        until(lambda: verify(node, known["key"]).status_code == 200, 3, 0.1)
        assert kill_scope(verify(node, killed["key"])) == "key"


# ---- one node on PostgreSQL ----

def test_single_node_on_postgres_smoke(make_instance):
    gw = make_instance(store="postgres", env={"PORTCULLIS_KV_URL": REDIS_URL}).start()
    org, adm = admin(gw)
    k = create_key(gw, adm["key"])
    assert verify(gw, k["key"]).status_code == 200
    kill_key(gw, adm, k["id"])
    assert kill_scope(verify(gw, k["key"])) == "key"
    kill_key(gw, adm, k["id"], engage=False)
    assert verify(gw, k["key"]).status_code == 200
    assert readyz(gw).json()["checks"] == {"store": True, "kv": True}
    p = run_cli("audit", "verify", "-c", gw.conf, env=gw.env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert gw.env["PORTCULLIS_STORE_URL"].startswith("postgres://")
