#!/usr/bin/env bash
# bench/keys-1m.sh [BIN]: a million keys in the store (issue 15, item 3).
#
# For each store in STORES (default "sqlite postgres"): two nodes of one
# deployment (A and B: the same portcullis.conf, their own port and data
# directory) on that store and one Redis, an organisation with an admin key
# and one gateway key made through the API; then KEYS (1,000,000) more
# gateway keys inserted straight into api_keys with SQL in one transaction
# (copies of the first key's row with ids 7BENCH<20 digits>, so one secret
# opens them all: each id is still verified, and cached, on its own).
# Measured:
#   rss idle        node A's VmRSS with the million keys in the store
#   verify distinct DISTINCT (100,000) different keys verified once each on A
#                   (each a store read and a bcrypt), the time it took, A's
#                   VmRSS and VmHWM after (target: at most 256 MB)
#   hot vs one      wrk at GET /v1/verify on A cycling through HOT (10,000)
#                   cached keys, then with one key: requests/s of both and
#                   their ratio (target: within 10 %)
#   kill cost       B verifies the HOT keys (cached there), then one of them is
#                   killed through A: the key rows B re-read for it
#                   (portcullis_keycache_reloads_total; before the change log,
#                   every cached key) and its full re-checks (should be 0)
# BIN defaults to build/portcullis (`make`); use a release build. Needs wrk,
# psql, sqlite3 and redis-server. Settings: STORES, KEYS, DISTINCT, HOT,
# WRK_SECS (10), WRK_CONNS (50), BCRYPT_COST (4), BENCH_KEEP=1 keeps the work
# directory. Not part of make test: it takes several minutes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=$(realpath "${1:-$REPO_DIR/build/portcullis}")
STORES=${STORES:-"sqlite postgres"}
KEYS=${KEYS:-1000000}
DISTINCT=${DISTINCT:-100000}
HOT=${HOT:-10000}
[ -x "$BIN" ] || die "no portcullis binary at $BIN (build one: make, or meson + ninja)"
[ "$HOT" -le "$DISTINCT" ] && [ "$DISTINCT" -le "$KEYS" ] || die "need HOT <= DISTINCT <= KEYS"
need curl wrk psql sqlite3 redis-server

bench_workdir keys

bench_start_servers
export PORTCULLIS_KV_URL=$PORTCULLIS_TEST_REDIS_URL

rss_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# start_nodes STORE: two nodes on STORE (sqlite or postgres) in $WORK/STORE (start_two_nodes).
start_nodes() {
	if [ "$1" = postgres ]; then
		export PORTCULLIS_STORE_URL=$PORTCULLIS_TEST_PG_URL
	else
		unset PORTCULLIS_STORE_URL
	fi
	start_two_nodes "$WORK/$1" bench/keys-1m.sh
}

# sql STORE: run stdin against STORE's database.
sql() {
	if [ "$1" = postgres ]; then
		psql -q -At -v ON_ERROR_STOP=1 "$PORTCULLIS_TEST_PG_URL"
	else
		sqlite3 -bail "$WORK/sqlite/a/portcullis.db"
	fi
}

# insert_keys STORE TEMPLATE_ID: KEYS copies of the template key's row, one transaction.
insert_keys() {
	local series id
	if [ "$1" = postgres ]; then
		series="generate_series(1, $KEYS) AS n(i)"
		id="'7BENCH' || lpad(n.i::text, 20, '0')"
	else
		series="(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $KEYS) SELECT i FROM s) AS n"
		id="'7BENCH' || printf('%020d', n.i)"
	fi
	sql "$1" <<SQL
BEGIN;
INSERT INTO api_keys (id, org_id, project_id, name, env, scopes, secret_hash, start, created_at,
                      version)
SELECT $id, t.org_id, t.project_id, t.name, t.env, t.scopes, t.secret_hash, t.start, t.created_at, 1
FROM $series, (SELECT * FROM api_keys WHERE id = '$2') AS t;
COMMIT;
SQL
}

run_store() {
	local store=$1 t0 t1
	echo "== $store: $KEYS keys" >&2
	start_nodes "$store"
	# The organisation, its admin key and the template key (through the API).
	read -r ADMIN KEY < <($PY - "$A_URL" "$ROOT_KEY" <<'EOF'
import json, sys, urllib.request
base, root = sys.argv[1], sys.argv[2]
def call(path, body):
    r = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                               headers={"Authorization": "Bearer " + root,
                                        "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(r))
org = call("/v1/orgs", {"name": "keys-1m"})["id"]
adm = call(f"/v1/orgs/{org}/api-keys", {"name": "admin", "scopes": ["keys:read", "keys:write"]})
key = call(f"/v1/orgs/{org}/api-keys", {"name": "bench", "scopes": ["gateway"]})
print(adm["key"], key["key"])
EOF
	)
	local tid=${KEY#*_*_}
	tid=${tid%%.*}
	t0=$(date +%s.%N)
	insert_keys "$store" "$tid"
	t1=$(date +%s.%N)
	local count
	count=$(echo "SELECT COUNT(*) FROM api_keys;" | sql "$store")
	printf '%-10s inserted %s keys in %.1f s (%s rows in api_keys)\n' "$store" "$KEYS" \
		"$(echo "$t1 - $t0" | bc)" "$count"
	sleep 2
	printf '%-10s rss idle: A %s kB, B %s kB\n' "$store" "$(rss_kb "$A_PID" VmRSS)" \
		"$(rss_kb "$B_PID" VmRSS)"

	$PY - "$store" "$A_URL" "$B_URL" "$ADMIN" "$KEY" "$DISTINCT" "$HOT" "$A_PID" \
		"$WORK/$store/hot.txt" <<'EOF'
import concurrent.futures, http.client, json, re, sys, threading, time, urllib.parse
store, A, B, admin, key, distinct, hot, a_pid, hot_file = sys.argv[1:10]
distinct, hot = int(distinct), int(hot)
prefix, secret = key.split(".", 1)
head = prefix.rsplit("_", 1)[0]  # "<prefix>_live"
keys = [f"{head}_7BENCH{i:020d}.{secret}" for i in range(1, distinct + 1)]
with open(hot_file, "w") as f:
    f.write("\n".join(keys[:hot]) + "\n")
local = threading.local()

def conn(base):
    c = getattr(local, base, None)
    if c is None:
        u = urllib.parse.urlsplit(base)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        setattr(local, base, c)
    return c

def verify(base, k):
    c = conn(base)
    c.request("GET", "/v1/verify", headers={"Authorization": "Bearer " + k})
    r = c.getresponse()
    r.read()
    return r.status

def verify_all(base, ks):
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        bad = sum(s != 200 for s in ex.map(lambda k: verify(base, k), ks, chunksize=64))
    if bad:
        sys.exit(f"bench: {bad} verifications failed on {base}")

def rss(field):
    for line in open(f"/proc/{a_pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

def metric(base, name):
    c = http.client.HTTPConnection(urllib.parse.urlsplit(base).hostname,
                                   urllib.parse.urlsplit(base).port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    return int(m.group(1)) if m else 0

def settled(base, name):
    last = metric(base, name)
    while True:
        time.sleep(2.5)
        now = metric(base, name)
        if now == last:
            return now
        last = now

t0 = time.monotonic()
verify_all(A, keys)
dt = time.monotonic() - t0
print(f"{store:10s} verify distinct: {distinct} keys in {dt:.1f} s ({distinct / dt:.0f}/s); "
      f"A VmRSS {rss('VmRSS')} kB, VmHWM {rss('VmHWM')} kB")
verify_all(B, keys[:hot])
before = settled(B, "portcullis_keycache_reloads_total")
rechecks = metric(B, "portcullis_change_rechecks_total")
victim = keys[hot // 2].split("_")[2].split(".")[0]
u = urllib.parse.urlsplit(A)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
c.request("POST", f"/v1/api-keys/{victim}/kill", headers={"Authorization": "Bearer " + admin})
r = c.getresponse()
r.read()
if r.status != 200:
    sys.exit(f"bench: kill answered {r.status}")
if verify(B, keys[hot // 2]) != 503:
    sys.exit("bench: the killed key still verifies on B")
reads = settled(B, "portcullis_keycache_reloads_total") - before
print(f"{store:10s} kill cost on B: {reads} key rows re-read with {hot} keys cached there, "
      f"{metric(B, 'portcullis_change_rechecks_total') - rechecks} full re-checks")
c.request("DELETE", f"/v1/api-keys/{victim}/kill", headers={"Authorization": "Bearer " + admin})
r = c.getresponse()
r.read()
if r.status != 200 or verify(A, keys[hot // 2]) != 200:
    sys.exit(f"bench: lifting the kill answered {r.status}")
# The hot set were the first keys verified: the least recently used, so partly evicted by the
# 90,000 after them. Verify them again so that they are what a hot set is: cached.
verify_all(A, keys[:hot])
EOF

	# Both runs tally the statuses they got (printed as "status count" lines after wrk's own).
	cat >"$WORK/$store/status.lua" <<'LUA'
local threads = {}
function setup(thread) threads[#threads + 1] = thread end
function init(args) counts = {} end
function response(status) counts[status] = (counts[status] or 0) + 1 end
function done()
	local all = {}
	for _, t in ipairs(threads) do
		for s, n in pairs(t:get("counts")) do all[s] = (all[s] or 0) + n end
	end
	for s, n in pairs(all) do io.write(string.format("status %d %d\n", s, n)) end
end
LUA
	cat "$WORK/$store/status.lua" - >"$WORK/$store/hot.lua" <<LUA
local keys = {}
for line in io.lines("$WORK/$store/hot.txt") do keys[#keys + 1] = "Bearer " .. line end
local i = 0
request = function()
	i = i % #keys + 1
	return wrk.format("GET", "/v1/verify", {Authorization = keys[i]})
end
LUA
	local hot_stat one_stat
	run_wrk "$WORK/$store/wrk-hot.txt" "$A_URL/v1/verify" -s "$WORK/$store/hot.lua"
	hot_stat=$(wrk_stat "$WORK/$store/wrk-hot.txt")
	run_wrk "$WORK/$store/wrk-one.txt" "$A_URL/v1/verify" -H "Authorization: Bearer $KEY" \
		-s "$WORK/$store/status.lua"
	one_stat=$(wrk_stat "$WORK/$store/wrk-one.txt")
	read -r hot_rps _ hot_p99 _ hot_bad <<<"$hot_stat"
	read -r one_rps _ one_p99 _ one_bad <<<"$one_stat"
	printf '%-10s verify throughput: %s hot keys %s req/s (p99 %s ms, %s bad), one key %s req/s (p99 %s ms, %s bad), hot/one %.2f\n' \
		"$store" "$HOT" "$hot_rps" "$hot_p99" "$hot_bad" "$one_rps" "$one_p99" "$one_bad" \
		"$(echo "$hot_rps / $one_rps" | bc -l)"
	printf '%-10s statuses: hot %s; one %s\n' "$store" \
		"$(awk '/^status/ {printf "%s:%s ", $2, $3}' "$WORK/$store/wrk-hot.txt")" \
		"$(awk '/^status/ {printf "%s:%s ", $2, $3}' "$WORK/$store/wrk-one.txt")"
	printf '%-10s rss after: A VmRSS %s kB, VmHWM %s kB\n' "$store" "$(rss_kb "$A_PID" VmRSS)" \
		"$(rss_kb "$A_PID" VmHWM)"
	kill "$A_PID" "$B_PID"
	wait "$A_PID" "$B_PID" 2>/dev/null || true
}

echo "keys-1m benchmark: $(nproc) cores, $KEYS keys, $DISTINCT distinct verified, $HOT hot" >&2
for s in $STORES; do
	run_store "$s"
done
