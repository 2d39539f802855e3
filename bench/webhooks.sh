#!/usr/bin/env bash
# bench/webhooks.sh [BIN]: webhook delivery end to end (issue 10's benchmark).
#
# One nginx as the HTTPS receiver (a test CA and a localhost certificate made
# here with openssl; `return 204` to every POST; each request's "$uri
# $http_webhook_id" logged). For each store in STORES (default: sqlite, and
# postgres when its server binaries are installed): a fresh Portcullis
# (serve with its worker child, `[webhooks] allow_ranges = 127.0.0.0/8`,
# `ca_file` the test CA), ENDPOINTS (4) endpoints https://localhost:PORT/eN
# on the nginx, then:
#   deliver  wrk publishes one message type as fast as it can for PUB_SECS (5)
#            through POST /v1/orgs/{org}/webhook-messages (PUB_CONNS, 16,
#            connections); once every delivery is recorded, from the store:
#            deliveries/s (2xx recorded / time from the first message's
#            created_at to the last success) and p50/p99 publish-to-2xx
#            latency (created_at to the end of the succeeding attempt).
#            Target on SQLite: >= 5,000 deliveries/s
#   wrk      in the same run, wrk POSTs a body of the same shape and size with
#            the same headers over TLS to the same nginx (WRK_CONNS, default
#            16 per endpoint: what the worker may hold open); the ratio
#            deliveries/s / wrk requests/s. Target: >= 0.5
#   kill -9  the publish again, with the worker child killed (SIGKILL) half-way;
#            serve restarts it; then every message must reach every endpoint:
#            "lost" (must be 0) and "duplicates" from nginx's log
# BIN defaults to build/portcullis (`make`; use a release build). Needs nginx,
# wrk, curl, openssl, python3 (+ psycopg2 for PostgreSQL). Settings: STORES,
# ENDPOINTS, PUB_SECS, PUB_CONNS, WRK_SECS (10), WRK_CONNS, BENCH_KEEP=1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=$(realpath "${1:-$REPO_DIR/build/portcullis}")
ENDPOINTS=${ENDPOINTS:-4}
PUB_SECS=${PUB_SECS:-5}
PUB_CONNS=${PUB_CONNS:-16}
WRK_CONNS=${WRK_CONNS:-$((ENDPOINTS * 16))}
SETTLE_SECS=${SETTLE_SECS:-180}
if [ -z "${STORES:-}" ]; then
	STORES=sqlite
	if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then STORES="sqlite postgres"; fi
fi
[ -x "$BIN" ] || die "no portcullis binary at $BIN (build one: make, or meson + ninja)"
need nginx wrk curl openssl

bench_workdir webhooks

# ---- the receiver: nginx over TLS with a test CA ----
CA=$WORK/ca
mkdir -p "$CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CA/ca.key" \
	-out "$CA/ca.pem" -days 2 -subj "/CN=bench CA" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CA/server.key" \
	-out "$CA/server.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$CA/ext"
openssl x509 -req -in "$CA/server.csr" -CA "$CA/ca.pem" -CAkey "$CA/ca.key" -CAcreateserial \
	-out "$CA/server.pem" -days 2 -extfile "$CA/ext" 2>/dev/null

NG_PORT=$(free_port)
NG_LOG=$WORK/receiver/logs/hooks.log
start_nginx receiver "
    log_format hook '\$uri \$http_webhook_id';
    server {
        listen 127.0.0.1:$NG_PORT ssl;
        ssl_certificate $CA/server.pem;
        ssl_certificate_key $CA/server.key;
        ssl_session_cache shared:hooks:10m;
        access_log $NG_LOG hook buffer=256k flush=1s;
        location / { return 204; }
    }"
for _ in $(seq 100); do
	curl -s -o /dev/null --cacert "$CA/ca.pem" -d x "https://localhost:$NG_PORT/" && break
	sleep 0.1
done
curl -sf -o /dev/null --cacert "$CA/ca.pem" -d x "https://localhost:$NG_PORT/" ||
	die "nginx did not come up over TLS"

# ---- the publisher and the reference client (wrk scripts) ----
# shellcheck disable=SC2089,SC2090 # JSON text, quotes and all
export PAYLOAD='{"invoice":"in_0123456789abcdef","customer":"cus_0123456789abcdef","amount":1250,"currency":"eur","status":"paid","lines":3}'
cat >"$WORK/publish.lua" <<'LUA'
-- POST one message per request; counts 201s (acknowledged) per thread.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
	ok, refused = 0, 0
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("ROOT_KEY")
wrk.body = '{"type":"' .. os.getenv("MSG_TYPE") .. '","payload":' .. os.getenv("PAYLOAD") .. '}'
function response(status, headers, body)
	if status == 201 then ok = ok + 1 else refused = refused + 1 end
end
function done(summary, latency, requests)
	local o, r = 0, 0
	for _, t in ipairs(threads) do o = o + t:get("ok"); r = r + t:get("refused") end
	io.write(string.format("acknowledged %d refused %d\n", o, r))
end
LUA
# What a delivery looks like on the wire: the body and Standard Webhooks headers of the same size.
cat >"$WORK/deliver.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "Portcullis-Webhooks/0.0.0"
wrk.headers["webhook-id"] = "msg_01M8TS9RK0CNQZECFMPK2RYHHZ"
wrk.headers["webhook-timestamp"] = "1764662400"
wrk.headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
wrk.body = '{"type":"bench.deliver","timestamp":"2026-12-02T08:00:00.000Z","data":' ..
	os.getenv("PAYLOAD") .. '}'
LUA

worker_pid() { pgrep -P "$PCL_PID" -f ' worker ' | head -1; }

# publish TYPE OUT: wrk publishing messages of TYPE for PUB_SECS.
publish() {
	MSG_TYPE=$1 ROOT_KEY=$ROOT_KEY wrk -t2 -c"$PUB_CONNS" -d"${PUB_SECS}s" -s "$WORK/publish.lua" \
		"$PCL_BASE/v1/orgs/$ORG/webhook-messages" >"$2" 2>&1 || die "wrk (publish) failed: $(cat "$2")"
}

run_store() {
	local store=$1 db out
	if [ "$store" = postgres ]; then
		if [ -z "$SERVERS" ]; then
			bench_start_servers
		fi
		db=$($PY - "$PORTCULLIS_TEST_PG_URL" <<'PY'
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
		export PORTCULLIS_STORE_URL=$db
	else
		unset PORTCULLIS_STORE_URL
	fi
	rm -rf "$WORK/pcl"
	start_portcullis "$BIN" "http://127.0.0.1:$NG_PORT" "
# webhooks.sh: measure delivery, not the rate limit or the access log.
[rate_limit]
requests = 1000000
burst = 1000000
[log]
level = warn
[webhooks]
allow_ranges = 127.0.0.0/8
ca_file = $CA/ca.pem
lease_s = 5"
	[ "$store" = sqlite ] && db=$PCL_DIR/portcullis.db
	ORG=$(curl -sf -H "Authorization: Bearer $ROOT_KEY" -H 'Content-Type: application/json' \
		-d '{"name":"bench"}' "$PCL_BASE/v1/orgs" | $PY -c 'import json, sys; print(json.load(sys.stdin)["id"])') ||
		die "could not create the org"
	local key
	key=$(curl -sf -H "Authorization: Bearer $ROOT_KEY" -H 'Content-Type: application/json' \
		-d '{"name":"hooks","scopes":["webhooks:write","logs:read"]}' "$PCL_BASE/v1/orgs/$ORG/api-keys" |
		$PY -c 'import json, sys; print(json.load(sys.stdin)["key"])') || die "could not create the key"
	for i in $(seq "$ENDPOINTS"); do
		curl -sf -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
			-d "{\"url\":\"https://localhost:$NG_PORT/e$i\",\"event_types\":[\"bench.warm\",\"bench.deliver\",\"bench.kill\"]}" \
			"$PCL_BASE/v1/webhook-endpoints" || die "could not create endpoint $i: $(tail -3 "$PCL_DIR/server.log")"
	done
	[ -n "$(worker_pid)" ] || die "serve has no worker child"

	# Warm-up: a few messages, delivered (connections open, statements prepared).
	PUB_SECS=1 publish bench.warm "$WORK/$store-warm.out"
	$PY "$BENCH_DIR/whstat.py" settle "$db" bench.warm "$SETTLE_SECS" >/dev/null ||
		die "warm-up not delivered: $(tail -3 "$PCL_DIR/server.log")"

	publish bench.deliver "$WORK/$store-deliver.out"
	out=$($PY "$BENCH_DIR/whstat.py" settle "$db" bench.deliver "$SETTLE_SECS") ||
		die "deliveries still pending after ${SETTLE_SECS}s: $out"
	local stats acked
	stats=$($PY "$BENCH_DIR/whstat.py" stats "$db" bench.deliver)
	acked=$(grep -o 'acknowledged [0-9]* refused [0-9]*' "$WORK/$store-deliver.out")

	# The reference: wrk POSTing the same-shaped delivery to the same nginx over TLS.
	run_wrk "$WORK/$store-wrk.out" "https://localhost:$NG_PORT/e1" -s "$WORK/deliver.lua"
	local wrk_line
	wrk_line=$(wrk_stat "$WORK/$store-wrk.out")

	# kill -9 of the worker half-way through a burst.
	publish bench.kill "$WORK/$store-kill.out" &
	local pub=$!
	sleep "$(awk -v s="$PUB_SECS" 'BEGIN {print s / 2}')"
	local victim
	victim=$(worker_pid)
	[ -n "$victim" ] || die "no worker to kill"
	kill -9 "$victim"
	wait "$pub"
	for _ in $(seq 100); do
		[ -n "$(worker_pid)" ] && [ "$(worker_pid)" != "$victim" ] && break
		sleep 0.1
	done
	[ "$(worker_pid)" != "$victim" ] || die "serve did not restart its worker"
	out=$($PY "$BENCH_DIR/whstat.py" settle "$db" bench.kill "$SETTLE_SECS") ||
		echo "kill -9 round: still pending after ${SETTLE_SECS}s: $out"
	sleep 1.5 # nginx flushes its log buffer every second
	local kill_line kill_acked
	kill_line=$($PY "$BENCH_DIR/whstat.py" lost "$db" bench.kill "$ENDPOINTS" "$NG_LOG")
	kill_acked=$(grep -o 'acknowledged [0-9]* refused [0-9]*' "$WORK/$store-kill.out")

	echo
	echo "== $store: $ENDPOINTS endpoints, published for ${PUB_SECS}s over $PUB_CONNS connections"
	echo "publish:   $acked"
	echo "delivery:  $stats"
	echo "wrk:       rps p50_ms p99_ms requests bad = $wrk_line"
	$PY - "$stats" "$wrk_line" <<'PY'
import sys
s = sys.argv[1].split()
d = dict(zip(s[::2], s[1::2]))
rps = float(sys.argv[2].split()[0])
print(f"ratio:     deliveries/s {d['per_s']} / wrk {rps:.0f} = {float(d['per_s']) / rps:.2f}")
PY
	echo "kill -9:   $kill_acked; $kill_line"
	kill "$PCL_PID" 2>/dev/null || true
	wait "$PCL_PID" 2>/dev/null || true
}

for store in $STORES; do
	run_store "$store"
done
