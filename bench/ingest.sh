#!/usr/bin/env bash
# bench/ingest.sh [BIN]: durable SDK events per second through the ingest
# listener (issue 11's benchmark, INGEST.md), beside the machine's limit for
# the same write.
#
# For each store in STORES (default: sqlite, and postgres when its server
# binaries are installed): a fresh Portcullis with an ingest listener, an
# organisation, a project and an ingest key; then for each batch size in
# BATCHES (default "100 1"):
#   portcullis  wrk (ingest.lua) POSTs /v1/batch bodies of BATCH realistic
#               events (email, phone, context.ip, advertisingId, properties;
#               a fresh messageId for every event) over WRK_CONNS connections
#               for WRK_SECS; events/s counts the 200s only (each sent after
#               its group commit: durable), p50/p99 acknowledgement latency
#               from wrk's distribution; the mean group size (events per
#               transaction) from the commit metrics; serve's CPU time (all
#               threads) per committed event, and the committer thread's
#               (pcl-ingest-cmt) alone
#   raw         ingest_raw (bench/ingest_raw.c, sqlite3/libpq only) writes the
#               same rows (a row Portcullis stored as the template) into a
#               fresh store of the same kind for WRK_SECS, in transactions of
#               the mean group size Portcullis reached: the machine's limit
#   ratio       portcullis / raw
# Targets on SQLite with batches of 100: >= 50,000 events/s and ratio >= 0.5.
# PostgreSQL is scripts/test-servers.sh's private server, made durable for the
# run (fsync, synchronous_commit and full_page_writes back on).
# BIN defaults to build/portcullis (`make`; a release build, with
# build/bench/ingest_raw beside it). Needs wrk, curl, python3 (+ psycopg2 for
# PostgreSQL). Settings: STORES, BATCHES, WRK_SECS (10), WRK_CONNS (50),
# WRK_THREADS (2), PERF=1 (perf record -g on serve during each portcullis run,
# kept in the work directory), BENCH_KEEP=1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=$(realpath "${1:-$REPO_DIR/build/portcullis}")
RAW=${RAW:-$(dirname "$BIN")/bench/ingest_raw}
BATCHES=${BATCHES:-100 1}
# The raw side's tables: migration 0006, then 0015's form for the store (the
# events tables as Portcullis has them after its migrations).
MIGRATIONS=$REPO_DIR/src/store/migrations
SCHEMA_PARTS=("$MIGRATIONS/0006_events.sql" "$MIGRATIONS/0015_events_btrees.%s.sql")
if [ -z "${STORES:-}" ]; then
	STORES=sqlite
	if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then STORES="sqlite postgres"; fi
fi
[ -x "$BIN" ] || die "no portcullis binary at $BIN (build one: make, or meson + ninja)"
[ -x "$RAW" ] || die "no ingest_raw at $RAW (built with portcullis: ninja -C build)"
for part in "${SCHEMA_PARTS[@]}"; do
	for store in sqlite postgres; do
		# shellcheck disable=SC2059 # the part is its own format (%s: the store)
		f=$(printf "$part" "$store")
		[ -f "$f" ] || die "no migration $f"
	done
done
need wrk curl

bench_workdir ingest

# thread_ticks PID NAME: utime+stime (clock ticks) of PID's threads called NAME.
thread_ticks() {
	local total=0 t
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] || continue
		total=$((total + $(sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}')))
	done
	echo "$total"
}

json_field() { $PY -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

# metric NAME: its value on the main listener's /metrics.
metric() {
	curl -sf "$PCL_BASE/metrics" | awk -v n="$1" '$1 == n {print $2}'
}

# new_pg_db: a fresh database on the private server; prints its URL.
new_pg_db() {
	$PY - "$PORTCULLIS_TEST_PG_URL" <<'PY'
import secrets, sys, urllib.parse
import psycopg2
url = sys.argv[1]
name = "bench_" + secrets.token_hex(4)
conn = psycopg2.connect(url)
conn.autocommit = True
conn.cursor().execute(f'CREATE DATABASE "{name}"')
conn.close()
print(urllib.parse.urlunparse(urllib.parse.urlparse(url)._replace(path="/" + name)))
PY
}

start_pg() {
	[ -n "$SERVERS" ] && return 0
	bench_start_servers
	# The test server trades durability for speed; a benchmark of durable writes needs it back
	# (as the superuser test-servers.sh made: this server is the benchmark's own).
	$PY - "$PORTCULLIS_TEST_PG_URL" "$(cat "$SERVERS/pg.superpass")" <<'PY'
import sys, urllib.parse
import psycopg2
u = urllib.parse.urlparse(sys.argv[1])
conn = psycopg2.connect(host=u.hostname, port=u.port, user="postgres", password=sys.argv[2],
                        dbname="postgres")
conn.autocommit = True
cur = conn.cursor()
for s in ("fsync", "synchronous_commit", "full_page_writes"):
    cur.execute(f"ALTER SYSTEM SET {s} = on")
cur.execute("SELECT pg_reload_conf()")
import time
for _ in range(50):
    cur.execute("SHOW fsync")
    if cur.fetchone()[0] == "on":
        break
    time.sleep(0.1)
else:
    sys.exit("PostgreSQL kept fsync off")
PY
}

RESULTS=()

run_store() {
	local store=$1 db raw_db
	if [ "$store" = postgres ]; then
		start_pg
		db=$(new_pg_db)
		raw_db=$(new_pg_db)
		export PORTCULLIS_STORE_URL=$db
	else
		unset PORTCULLIS_STORE_URL
	fi
	rm -rf "$WORK/pcl"
	ING_PORT=$(free_port)
	start_portcullis "$BIN" "http://127.0.0.1:9" "
# ingest.sh: measure the ingest, not the rate limit or the access log.
[server]
max_connections_per_ip = 0
[rate_limit]
requests = 1000000
burst = 1000000
[log]
level = warn
[ingest]
listen = 127.0.0.1:$ING_PORT"
	if [ "$store" = sqlite ]; then
		db=$PCL_DIR/portcullis.db
		raw_db=$WORK/raw.db
		rm -f "$raw_db"*
	fi
	local org admin project
	org=$(curl -sf -H "Authorization: Bearer $ROOT_KEY" -H 'Content-Type: application/json' \
		-d '{"name":"bench"}' "$PCL_BASE/v1/orgs" | json_field id) || die "could not create the org"
	admin=$(curl -sf -H "Authorization: Bearer $ROOT_KEY" -H 'Content-Type: application/json' \
		-d '{"name":"admin","scopes":["gateway","keys:read","keys:write","logs:read"]}' \
		"$PCL_BASE/v1/orgs/$org/api-keys" | json_field key) || die "could not create the admin key"
	project=$(curl -sf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
		-d '{"name":"app"}' "$PCL_BASE/v1/projects" | json_field id) || die "could not create the project"
	INGEST_KEY=$(curl -sf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
		-d "{\"name\":\"ingest\",\"scopes\":[\"events:ingest\"],\"project_id\":\"$project\"}" \
		"$PCL_BASE/v1/api-keys" | json_field key) || die "could not create the ingest key"
	export INGEST_KEY

	# Warm-up: one second of batches of 10 (connections, statements, caches).
	BATCH=10 WRK_SECS=1 run_wrk "$WORK/$store-warm.out" "http://127.0.0.1:$ING_PORT" \
		-s "$BENCH_DIR/ingest.lua"
	grep -q 'acknowledged [1-9]' "$WORK/$store-warm.out" ||
		die "warm-up: no batch acknowledged: $(cat "$WORK/$store-warm.out"; tail -3 "$PCL_DIR/server.log")"

	local batch
	for batch in $BATCHES; do
		local g0 e0 c0 g1 e1 c1 out=$WORK/$store-b$batch.out perf_pid=''
		g0=$(metric portcullis_ingest_commit_groups_total)
		e0=$(metric portcullis_ingest_commit_group_events_total)
		c0=$(metric portcullis_ingest_events_committed_total)
		local t0 t1 k0 k1
		t0=$(cpu_ticks "$PCL_PID")
		k0=$(thread_ticks "$PCL_PID" pcl-ingest-cmt)
		if [ -n "${PERF:-}" ]; then
			# shellcheck disable=SC2086 # PERF_ARGS is a list of perf options
			perf record ${PERF_ARGS:--g} -o "$WORK/$store-b$batch.perf" -p "$PCL_PID" -- sleep "$WRK_SECS" \
				>/dev/null 2>&1 &
			perf_pid=$!
		fi
		BATCH=$batch run_wrk "$out" "http://127.0.0.1:$ING_PORT" -s "$BENCH_DIR/ingest.lua"
		[ -n "$perf_pid" ] && wait "$perf_pid"
		t1=$(cpu_ticks "$PCL_PID")
		k1=$(thread_ticks "$PCL_PID" pcl-ingest-cmt)
		g1=$(metric portcullis_ingest_commit_groups_total)
		e1=$(metric portcullis_ingest_commit_group_events_total)
		c1=$(metric portcullis_ingest_events_committed_total)
		local wrk_line acked group tx
		wrk_line=$(wrk_stat "$out")
		acked=$(grep -o 'acknowledged [0-9]* refused [0-9]*' "$out")
		group=$(awk -v g=$((g1 - g0)) -v e=$((e1 - e0)) 'BEGIN {printf "%.1f", g ? e / g : 0}')
		tx=$(awk -v g="$group" 'BEGIN {t = int(g + 0.5); print t < 1 ? 1 : t}')
		local raw_out
		local schema=$WORK/schema-$store.sql part
		for part in "${SCHEMA_PARTS[@]}"; do
			# shellcheck disable=SC2059 # as above
			cat "$(printf "$part" "$store")"
		done >"$schema"
		raw_out=$("$RAW" "$store" "$db" "$raw_db" "$schema" "$tx" "$WRK_SECS") ||
			die "ingest_raw failed"
		RESULTS+=("$($PY - "$store" "$batch" "$out" "$wrk_line" "$acked" "$((c1 - c0))" "$group" "$raw_out" "$((t1 - t0))" "$(getconf CLK_TCK)" "$((k1 - k0))" <<'PY'
import re, sys
store, batch, out, wrk_line, acked, committed, group, raw, ticks, hz, cticks = sys.argv[1:]
batch = int(batch)
text = open(out).read()
secs = float(re.search(r"requests in ([0-9.]+)s", text).group(1))
ok = int(acked.split()[1])
refused = int(acked.split()[3])
_, p50, p99, _, bad = wrk_line.split()
ev_s = ok * batch / secs
r = dict(zip(raw.split()[::2], raw.split()[1::2]))
raw_s = float(r["per_s"])
print(f"{store:8} batch {batch:3}: {ev_s:8.0f} events/s ({ok} x {batch} acknowledged in {secs:.1f}s, "
      f"{refused} refused), p50 {float(p50):.1f} ms, p99 {float(p99):.1f} ms; committed {committed}, "
      f"{group} events/transaction, serve CPU {int(ticks) / int(hz) * 1e6 / max(int(committed), 1):.0f} us/event "
      f"(committer {int(cticks) / int(hz) * 1e6 / max(int(committed), 1):.1f}) | raw {raw_s:8.0f} rows/s ({r['tx']} tx of {int(r['rows']) // max(int(r['tx']), 1)}, "
      f"adids {r['adids']}) | ratio {ev_s / raw_s:.2f}")
PY
)")
		echo "${RESULTS[-1]}"
	done
	kill "$PCL_PID" 2>/dev/null || true
	wait "$PCL_PID" 2>/dev/null || true
}

echo "ingest.sh $(date -u +%FT%TZ) on $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECS}s; $BIN"
for store in $STORES; do
	run_store "$store"
done
echo
echo "== summary (load average at the end $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%s\n' "${RESULTS[@]}"
