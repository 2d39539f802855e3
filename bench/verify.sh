#!/usr/bin/env bash
# bench/verify.sh [BIN]: the benchmark of GET /v1/verify (the API-keys issue).
#
# In one run, on this machine, side by side:
#   nginx        `return 200 "ok"` (the floor: what an HTTP server costs here)
#   portcullis   GET /v1/verify with a valid, cached key: authentication from
#                the verified-secret cache plus the organisation rate limit
# alternated ROUNDS times (default 2) with wrk -t2 -c50 -d10s --latency; then
# the same Portcullis instance again while a second client fires 50 requests/s
# with a wrong secret for the same key id (each one a real bcrypt verification
# in the verifier pool). Prints requests/s and latency for every run and:
#   portcullis/nginx requests/s      target >= 0.6
#   good-key p99 under attack/clean  target <= 2
# BIN defaults to build/portcullis (`make`); use a release build. Everything
# the script starts is stopped when it ends. Settings: ROUNDS, WRK_SECS,
# WRK_CONNS, WRK_THREADS, BAD_RATE (50), BCRYPT_COST (4), NGINX_WORKERS (auto),
# BENCH_KEEP=1 keeps the work directory (configs, logs, wrk outputs).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=$(realpath "${1:-$REPO_DIR/build/portcullis}")
BAD_RATE=${BAD_RATE:-50}
[ -x "$BIN" ] || die "no portcullis binary at $BIN (build one: make, or meson + ninja)"
need nginx wrk curl pgrep

WORK=$(mktemp -d /tmp/portcullis-bench-verify.XXXXXX)
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

NGX_PORT=$(free_port)
start_nginx nginx "    server {
        listen 127.0.0.1:$NGX_PORT;
        location / { return 200 \"ok\"; }
    }"
wait_http "http://127.0.0.1:$NGX_PORT/"

# The brute-force guard counts failures per client address; on loopback the
# attacker and the good client share 127.0.0.1, so the guard is set out of the
# way here: this run measures the bcrypt load, not the guard.
start_portcullis "$BIN" "http://127.0.0.1:$NGX_PORT" "[rate_limit]
requests = 1000000000
burst = 1000000000
[auth]
failed_attempts_max = 1000000
[log]
level = warn"
new_gateway_key

VERIFY="$PCL_BASE/v1/verify"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "$VERIFY")
[ "$code" = 200 ] || die "warm-up GET /v1/verify answered $code"

ROWS=()
# measure LABEL KIND URL [wrk args]: one wrk run, appended to ROWS.
measure() {
	local label=$1 kind=$2 url=$3 out
	shift 3
	out="$WORK/wrk-$kind-${#ROWS[@]}.txt"
	run_wrk "$out" "$url" "$@"
	ROWS+=("$kind $(wrk_stat "$out") $label")
	printf '  %-34s %s\n' "$label" "$(wrk_stat "$out" | awk '{printf "%8d req/s  p99 %8.3f ms  errors %d", $1, $3, $5}')" >&2
}

echo "verify benchmark: $(nproc) cores, wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECS}s, $ROUNDS rounds" >&2
for r in $(seq "$ROUNDS"); do
	measure "nginx return 200 (round $r)" nginx "http://127.0.0.1:$NGX_PORT/"
	measure "portcullis /v1/verify (round $r)" clean "$VERIFY" -H "Authorization: Bearer $KEY"
done

$PY "$BENCH_DIR/badkeys.py" "$VERIFY" "$KEY" "$BAD_RATE" "$WORK/badkeys.json" &
BAD_PID=$!
PIDS+=("$BAD_PID")
sleep 1
for r in $(seq "$ROUNDS"); do
	measure "portcullis + $BAD_RATE bad/s (round $r)" attack "$VERIFY" -H "Authorization: Bearer $KEY"
done
kill "$BAD_PID"
wait "$BAD_PID" || true

# The table. Means over the rounds of each kind.
printf '%s\n' "${ROWS[@]}" | awk -v rate="$BAD_RATE" -v bad="$(cat "$WORK/badkeys.json")" '
{
	kind = $1; label = $7; for (i = 8; i <= NF; i++) label = label " " $i
	printf "| %-36s | %9d | %8.3f | %8.3f | %6d |\n", label, $2, $3, $4, $6
	n[kind]++; rps[kind] += $2; p50[kind] += $3; p99[kind] += $4; err[kind] += $6
}
BEGIN {
	printf "\n| %-36s | %9s | %8s | %8s | %6s |\n", "run", "req/s", "p50 ms", "p99 ms", "errors"
	printf "|%s|%s|%s|%s|%s|\n", "--------------------------------------", "-----------", "----------", "----------", "--------"
}
END {
	for (k in n) { rps[k] /= n[k]; p50[k] /= n[k]; p99[k] /= n[k] }
	printf "\n| %-36s | %9s | %8s | %8s |\n", "mean of rounds", "req/s", "p50 ms", "p99 ms"
	printf "|%s|%s|%s|%s|\n", "--------------------------------------", "-----------", "----------", "----------"
	printf "| %-36s | %9d | %8.3f | %8.3f |\n", "nginx return 200", rps["nginx"], p50["nginx"], p99["nginx"]
	printf "| %-36s | %9d | %8.3f | %8.3f |\n", "portcullis /v1/verify", rps["clean"], p50["clean"], p99["clean"]
	printf "| %-36s | %9d | %8.3f | %8.3f |\n", "portcullis /v1/verify + " rate " bad/s", rps["attack"], p50["attack"], p99["attack"]
	ratio = rps["clean"] / rps["nginx"]
	p99r = p99["attack"] / p99["clean"]
	printf "\nrequests/s portcullis/nginx:           %.2f  (target >= 0.6: %s)\n", ratio, (ratio >= 0.6 ? "met" : "NOT MET")
	printf "good-key p99 with %s bad/s vs clean:     %.2fx (target <= 2x: %s)\n", rate, p99r, (p99r <= 2 ? "met" : "NOT MET")
	printf "good-key req/s with %s bad/s vs clean:   %.2f\n", rate, rps["attack"] / rps["clean"]
	if (err["clean"] + err["attack"] + err["nginx"] > 0)
		printf "WARNING: some runs had errors or non-2xx answers (see the errors column)\n"
	printf "bad-secret client: %s\n", bad
}'
