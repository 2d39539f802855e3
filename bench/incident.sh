#!/usr/bin/env bash
# bench/incident.sh: the incident report and GET /v1/usage over a large request log.
#
#   make && bench/incident.sh [BUILD_DIR]
#
# For each backend (SQLite, and PostgreSQL when PG_URL names a server, e.g.
# the PORTCULLIS_TEST_PG_URL of scripts/test-servers.sh; a database
# pcl_bench_incident is created there afresh):
# 1. `portcullis init` a fresh instance, then bench/incident_load.c loads ROWS
#    (10000000) request-log rows (2000 keys of 50 organisations, 30 days,
#    8 regions + the busy key's leak from NL) through store_request_log_insert in
#    batches of BATCH (512, the writer's), so the usage rollups are written as in
#    production; prints the load rate.
# 2. `portcullis serve` on it, then RUNS (5) timed requests each (curl's total
#    time, printed as min / median / max): GET /v1/incidents/report for the busy
#    key (default window: 30 days), GET /v1/usage for its project over 30 days by
#    hour, and `portcullis incident report` (text) for the busy key (the CLI's
#    whole run: process start, migrations check, report, rendering).
# Targets (INCIDENT.md): report under 1 s, usage under 100 ms. The data
# directories are in $TMPDIR (BENCH_KEEP=1 keeps them). BACKENDS ("sqlite
# postgres") chooses which of the two run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BUILD=$(realpath "${1:-$REPO_DIR/build}") # absolute: serve runs in its data directory
BIN=$BUILD/portcullis
LOAD=$BUILD/bench/incident_load
ROWS=${ROWS:-10000000}
BATCH=${BATCH:-512}
RUNS=${RUNS:-5}
PG_URL=${PG_URL:-}
BACKENDS=${BACKENDS:-sqlite postgres}
[ -x "$BIN" ] && [ -x "$LOAD" ] || die "$BIN or $LOAD not found (run make first)"
need curl
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pcl-incident-bench-XXXXXX")
trap bench_cleanup EXIT

# stats: min / median / max of the seconds on stdin, in ms.
stats() {
	sort -n | awk '{ v[NR] = $1 * 1000 } END {
		printf "min %.1f ms  median %.1f ms  max %.1f ms  (%d runs)\n", v[1], v[int((NR + 1) / 2)], v[NR], NR }'
}

timed_get() {
	local path=$1
	for _ in $(seq "$RUNS"); do
		curl -s -o "$WORK/out.json" -w '%{http_code} %{time_total}\n' \
			-H "Authorization: Bearer $ROOT_KEY" "$PCL_BASE$path" >"$WORK/t"
		read -r code secs <"$WORK/t"
		[ "$code" = 200 ] || die "GET $path: $code $(head -c 300 "$WORK/out.json")"
		echo "$secs"
	done | stats
}

one_backend() {
	local name=$1 url=$2 dir="$WORK/$1" out busy project since
	PCL_PORT=$(free_port)
	PCL_BASE="http://127.0.0.1:$PCL_PORT"
	out=$("$BIN" init --data-dir "$dir" --listen "127.0.0.1:$PCL_PORT" --bcrypt-cost 4) ||
		die "portcullis init failed"
	ROOT_KEY=$(grep -oE '[a-z]{2,8}_root_[0-9A-Z]{26}\.[0-9A-Za-z]{49}' <<<"$out" | head -1)
	[ -n "$url" ] || url="sqlite://$dir/portcullis.db"
	echo "== $name: loading $ROWS rows"
	"$LOAD" "$url" "$ROWS" "$BATCH" | tee "$dir/load.txt"
	busy=$(awk '/^busy_key/ { print $2 }' "$dir/load.txt")
	project=$(awk '/^busy_project/ { print $2 }' "$dir/load.txt")
	(cd "$dir" && exec "$BIN" serve -c "$dir/portcullis.conf") >"$dir/server.log" 2>&1 &
	PIDS+=("$!")
	local t0=$SECONDS
	wait_http "$PCL_BASE/healthz" 60 "$dir/server.log"
	echo "$name: serve answered /healthz after $((SECONDS - t0)) s"
	since=$(date -u -d '30 days ago' +%Y-%m-%dT%H:%M:%SZ)
	echo "$name: GET /v1/incidents/report (busy key, 30 days): $(timed_get "/v1/incidents/report?key_id=$busy")"
	echo "$name: report size $(wc -c <"$WORK/out.json") bytes, $(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["traffic"]["requests"], "requests,", r["refused"]["attempts"], "refused,", len(r["traffic"]["by_hour"]), "hours")' "$WORK/out.json")"
	echo "$name: GET /v1/usage (project, 30 days, by hour): $(timed_get "/v1/usage?project_id=$project&granularity=hour&since=$since")"
	echo "$name: GET /v1/usage (project, 30 days, by day, by key): $(timed_get "/v1/usage?project_id=$project&granularity=day&group_by=key&since=$since")"
	for _ in $(seq "$RUNS"); do
		/usr/bin/time -f %e -o "$WORK/t" "$BIN" incident report --key "$busy" -c "$dir/portcullis.conf" >"$WORK/report.txt"
		cat "$WORK/t"
	done | stats | sed "s/^/$name: portcullis incident report (text, whole process): /"
	kill "${PIDS[-1]}" && wait "${PIDS[-1]}" 2>/dev/null || true
	unset 'PIDS[-1]'
}

if [[ " $BACKENDS " == *" sqlite "* ]]; then
	one_backend sqlite ""
fi
if [ -n "$PG_URL" ] && [[ " $BACKENDS " == *" postgres "* ]]; then
	need psql
	psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS pcl_bench_incident" -c "CREATE DATABASE pcl_bench_incident"
	base=${PG_URL%/*}
	query=""
	case "$PG_URL" in *\?*) query="?${PG_URL#*\?}" ;; esac
	export PORTCULLIS_STORE_URL="$base/pcl_bench_incident$query"
	one_backend postgres "$PORTCULLIS_STORE_URL"
fi
