#!/usr/bin/env bash
# bench/propagation.sh [BIN]: how fast a kill made through one node holds on
# another (the scale-out issue).
#
# Starts a private PostgreSQL and Redis (scripts/test-servers.sh), two nodes
# of one deployment on them (node A and node B: the same portcullis.conf but
# their own port and data directory), an organisation with an admin key and a
# gateway key K. Then CYCLES times (default 200): kill K through node A
# (POST /v1/api-keys/{id}/kill with the admin key), and lift the kill
# (DELETE), while a poller hammers node B with K over one keep-alive
# connection (GET /v1/verify, as fast as it answers). For each cycle:
#   kill: from A's kill response to B's first 503
#   lift: from A's lift response to B's first 200
# and "stale": B's answers that were still 200 (resp. 503) to requests sent
# after A's response (0 means "from the next request on"). Prints p50, p99 and
# max of each and the time A's kill request itself took; target: kill p99 <
# 100 ms. BIN defaults to build/portcullis (`make`); use a release build.
# Everything the script starts is stopped when it ends. Settings: CYCLES,
# BCRYPT_COST (4), BENCH_KEEP=1 keeps the work directory (configs, logs).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=$(realpath "${1:-$REPO_DIR/build/portcullis}")
CYCLES=${CYCLES:-200}
[ -x "$BIN" ] || die "no portcullis binary at $BIN (build one: make, or meson + ninja)"
need curl redis-server

bench_workdir propagation

bench_start_servers
export PORTCULLIS_STORE_URL=$PORTCULLIS_TEST_PG_URL
export PORTCULLIS_KV_URL=$PORTCULLIS_TEST_REDIS_URL

# Node A: a fresh instance; node B: a copy of its configuration on another port.
start_two_nodes "$WORK" bench/propagation.sh

echo "propagation benchmark: $(nproc) cores, $CYCLES kill/lift cycles through node A," \
	"node B polled with the killed key over one keep-alive connection" >&2
$PY - "$A_URL" "$B_URL" "$ROOT_KEY" "$CYCLES" <<'EOF'
import http.client
import json
import sys
import threading
import time
import urllib.parse

A, B, ROOT, CYCLES = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


class Conn:
    """One keep-alive HTTP/1.1 connection to base."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)

    def call(self, method, path, key, body=None):
        h = {"Authorization": "Bearer " + key}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        self.c.request(method, path, body=data, headers=h)
        r = self.c.getresponse()
        return r.status, r.read()


def ok(status, body, want=(200, 201)):
    if status not in want:
        sys.exit(f"bench: unexpected {status}: {body[:300]!r}")
    return json.loads(body)


a = Conn(A)
org = ok(*a.call("POST", "/v1/orgs", ROOT, {"name": "propagation"}))["id"]
adm = ok(*a.call("POST", f"/v1/orgs/{org}/api-keys", ROOT,
                 {"name": "admin", "scopes": ["keys:read", "keys:write"]}))["key"]
key = ok(*a.call("POST", f"/v1/orgs/{org}/api-keys", ROOT,
                 {"name": "target", "scopes": ["gateway"]}))
kid, secret = key["id"], key["key"]

# The poller: (sent, received, status) of every answer from B.
events = []
stop = False


def poll():
    b = Conn(B)
    while not stop:
        t0 = time.monotonic()
        status, _ = b.call("GET", "/v1/verify", secret)
        events.append((t0, time.monotonic(), status))


ok(*Conn(B).call("GET", "/v1/verify", secret))  # verified once on B: cached from now on
th = threading.Thread(target=poll, daemon=True)
th.start()


def change(method, want):
    """Kill or lift through A; then wait for B to answer want to a request sent
    after A's request went out. Returns (delay after A's response, stale answers,
    A's own time)."""
    seen = first = len(events)
    t_send = time.monotonic()
    ok(*a.call(method, f"/v1/api-keys/{kid}/kill", adm, {} if method == "POST" else None))
    t_resp = time.monotonic()
    deadline = t_resp + 5
    while True:
        while seen < len(events):
            sent, received, status = events[seen]
            seen += 1
            if sent >= t_send and status == want:
                stale = sum(1 for s, _, st in events[first:seen] if s >= t_resp and st != want)
                return max(0.0, received - t_resp), stale, t_resp - t_send
        if time.monotonic() > deadline:
            sys.exit(f"bench: node B did not answer {want} within 5 s")
        time.sleep(0.0002)


kills, lifts, own, stale_kill, stale_lift = [], [], [], 0, 0
for _ in range(CYCLES):
    d, s, t = change("POST", 503)
    kills.append(d)
    own.append(t)
    stale_kill += s
    d, s, _ = change("DELETE", 200)
    lifts.append(d)
    stale_lift += s
stop = True
th.join(10)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


def row(name, xs):
    return f"{name:<34} p50 {pct(xs, 50):7.3f} ms  p99 {pct(xs, 99):7.3f} ms  max {pct(xs, 100):7.3f} ms"


print(f"{len(events)} requests to node B in {CYCLES} cycles")
print(row("kill: A's response -> B's 503", kills) + f"  stale 200s {stale_kill}")
print(row("lift: A's response -> B's 200", lifts) + f"  stale 503s {stale_lift}")
print(row("A's kill request (incl. acks)", own))
p99 = pct(kills, 99)
print(f"kill p99 {p99:.3f} ms: {'PASS' if p99 < 100 else 'FAIL'} (target < 100 ms)")
EOF
