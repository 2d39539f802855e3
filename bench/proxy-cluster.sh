#!/usr/bin/env bash
# bench/proxy-cluster.sh [BIN]: the data-plane benchmark of the scale-out
# issue: forwarding through two Portcullis nodes on one PostgreSQL and one
# Redis (private instances from scripts/test-servers.sh), beside the
# single-node SQLite figure and nginx proxy_pass, alternated ROUNDS times
# (default 2) in one run against the same nginx upstream:
#   (b) nginx proxy   proxy_pass with keep-alive upstream connections
#   (c) 1 node        Portcullis on SQLite + memory kv (as bench/proxy.sh)
#   (d) 2 nodes       Portcullis A and B on PostgreSQL + Redis, one wrk per
#                     node at the same time (half the connections each);
#                     requests/s is the sum, p99 the worse of the two
# Every Portcullis run uses a valid cached key, the rate limit (GCRA in Redis
# for d) high enough not to trigger, and the request log on. Prints a table
# and the ratios d/c and d/b. Everything started is stopped at the end.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=$(realpath "${1:-$REPO_DIR/build/portcullis}")
[ -x "$BIN" ] || die "no portcullis binary at $BIN (build one: make, or meson + ninja)"
need nginx wrk curl

bench_workdir cluster
bench_start_servers

UP_PORT=$(free_port)
start_nginx upstream "    server {
        listen 127.0.0.1:$UP_PORT;
        default_type application/json;
        location / { return 200 '{\"ok\":true}'; }
    }"
wait_http "http://127.0.0.1:$UP_PORT/"

NP_PORT=$(free_port)
start_nginx proxy "    upstream backend { server 127.0.0.1:$UP_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NP_PORT;
        location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
    }"
wait_http "http://127.0.0.1:$NP_PORT/"

EXTRA="[rate_limit]
requests = 1000000
burst = 1000000
[log]
level = warn"

# (c) one node on SQLite.
start_portcullis "$BIN" "http://127.0.0.1:$UP_PORT" "$EXTRA"
new_gateway_key
ONE_URL="$PCL_BASE/bench/item?id=1"
ONE_KEY=$KEY
curl -sf -o /dev/null -H "Authorization: Bearer $ONE_KEY" "$ONE_URL" || die "single node does not forward"

# (d) two nodes on one fresh PostgreSQL database and Redis.
DB_URL=$($PY - "$PORTCULLIS_TEST_PG_URL" <<'PY'
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
)
export PORTCULLIS_STORE_URL=$DB_URL PORTCULLIS_KV_URL=$PORTCULLIS_TEST_REDIS_URL
start_node() { # start_node NAME CONF PORT: sets NODE_PID
	local dir="$WORK/$1"
	(cd "$dir" && exec "$BIN" serve -c "$2") >"$dir/server.log" 2>&1 &
	NODE_PID=$!
	PIDS+=("$NODE_PID")
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$3/healthz" && return 0
		kill -0 "$NODE_PID" 2>/dev/null || die "node $1 exited: $(tail -3 "$dir/server.log")"
		sleep 0.1
	done
	die "node $1 did not come up"
}
A_PORT=$(free_port)
B_PORT=$(free_port)
mkdir -p "$WORK/node-b"
out=$("$BIN" init --data-dir "$WORK/node-a" --listen "127.0.0.1:$A_PORT" \
	--upstream "http://127.0.0.1:$UP_PORT" --bcrypt-cost 4) || die "init of node A failed"
CLUSTER_ROOT=$(grep -oE '[a-z]{2,8}_root_[0-9A-Z]{26}\.[0-9A-Za-z]{49}' <<<"$out" | head -1)
printf '\n%s\n' "$EXTRA" >>"$WORK/node-a/portcullis.conf"
sed "s/^listen = .*/listen = 127.0.0.1:$B_PORT/" "$WORK/node-a/portcullis.conf" >"$WORK/node-b/portcullis.conf"
start_node node-a "$WORK/node-a/portcullis.conf" "$A_PORT"
A_PID=$NODE_PID
start_node node-b "$WORK/node-b/portcullis.conf" "$B_PORT"
B_PID=$NODE_PID
PCL_BASE="http://127.0.0.1:$A_PORT" ROOT_KEY=$CLUSTER_ROOT
new_gateway_key
CLUSTER_KEY=$KEY
for port in "$A_PORT" "$B_PORT"; do
	curl -sf -o /dev/null -H "Authorization: Bearer $CLUSTER_KEY" "http://127.0.0.1:$port/bench/item?id=1" ||
		die "node on $port does not forward"
done

HALF=$((WRK_CONNS / 2))
ROWS=()
one() { # one KIND LABEL URL PIDS [wrk args]
	local kind=$1 label=$2 url=$3 pids=$4 out t0 t1
	shift 4
	out="$WORK/wrk-$kind-${#ROWS[@]}.txt"
	# shellcheck disable=SC2086
	t0=$(cpu_ticks $pids)
	run_wrk "$out" "$url" "$@"
	# shellcheck disable=SC2086
	t1=$(cpu_ticks $pids)
	ROWS+=("$kind $(wrk_stat "$out") $(((t1 - t0) * TICK_US)) $label")
}
two() { # two LABEL: one wrk per node at once
	local outa="$WORK/wrk-d-a-${#ROWS[@]}.txt" outb="$WORK/wrk-d-b-${#ROWS[@]}.txt" t0 t1 sa sb
	t0=$(cpu_ticks "$A_PID" "$B_PID")
	WRK_CONNS=$HALF WRK_THREADS=1 run_wrk "$outa" "http://127.0.0.1:$A_PORT/bench/item?id=1" \
		-H "Authorization: Bearer $CLUSTER_KEY" &
	local wa=$!
	WRK_CONNS=$HALF WRK_THREADS=1 run_wrk "$outb" "http://127.0.0.1:$B_PORT/bench/item?id=1" \
		-H "Authorization: Bearer $CLUSTER_KEY"
	wait "$wa"
	t1=$(cpu_ticks "$A_PID" "$B_PID")
	sa=$(wrk_stat "$outa")
	sb=$(wrk_stat "$outb")
	ROWS+=("d $(awk -v a="$sa" -v b="$sb" 'BEGIN { split(a, x, " "); split(b, y, " ");
		printf "%f %f %f %d %d", x[1] + y[1], (x[2] > y[2] ? x[2] : y[2]), (x[3] > y[3] ? x[3] : y[3]), x[4] + y[4], x[5] + y[5] }') $(((t1 - t0) * TICK_US)) $1")
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
echo "cluster proxy benchmark: $(nproc) cores, wrk -c$WRK_CONNS -d${WRK_SECS}s (split over both nodes for d), $ROUNDS rounds" >&2
for r in $(seq "$ROUNDS"); do
	one b "(b) nginx proxy (round $r)" "http://127.0.0.1:$NP_PORT/bench/item?id=1" "$NGINX_PID"
	one c "(c) 1 node, SQLite (round $r)" "$ONE_URL" "$PCL_PID" -H "Authorization: Bearer $ONE_KEY"
	two "(d) 2 nodes, PG+Redis (round $r)"
done

printf '%s\n' "${ROWS[@]}" | awk '
BEGIN {
	printf "\n| %-34s | %9s | %7s | %7s | %13s | %6s |\n", "run", "req/s", "p50 ms", "p99 ms", "CPU/req (us)", "errors"
	printf "|%s|%s|%s|%s|%s|%s|\n", "------------------------------------", "-----------", "---------", "---------", "---------------", "--------"
}
{
	kind = $1; label = $8; for (i = 9; i <= NF; i++) label = label " " $i
	printf "| %-34s | %9d | %7.3f | %7.3f | %13.1f | %6d |\n", label, $2, $3, $4, $7 / $5, $6
	n[kind]++; rps[kind] += $2; p99[kind] += $4; req[kind] += $5; cpu[kind] += $7; err[kind] += $6
}
END {
	name["b"] = "(b) nginx proxy_pass"; name["c"] = "(c) 1 node, SQLite"; name["d"] = "(d) 2 nodes, PostgreSQL + Redis"
	printf "\n| %-34s | %9s | %7s | %13s |\n", "mean of rounds", "req/s", "p99 ms", "CPU/req (us)"
	printf "|%s|%s|%s|%s|\n", "------------------------------------", "-----------", "---------", "---------------"
	split("b c d", ks, " ")
	for (j = 1; j <= 3; j++) { k = ks[j]; printf "| %-34s | %9d | %7.3f | %13.1f |\n", name[k], rps[k] / n[k], p99[k] / n[k], cpu[k] / req[k] }
	printf "\nrequests/s 2 nodes / 1 node (d/c): %.2f   2 nodes / nginx proxy (d/b): %.2f\n", rps["d"] / rps["c"], rps["d"] / rps["b"]
	printf "(both nodes share these 2 cores with PostgreSQL, Redis, nginx and wrk: d shows the cost of\n the shared tier, not the gain of a second machine)\n"
	if (err["b"] + err["c"] + err["d"] > 0) printf "WARNING: some runs had errors or non-2xx answers\n"
}'
