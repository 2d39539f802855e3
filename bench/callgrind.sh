#!/usr/bin/env bash
# bench/callgrind.sh: user-space instructions per request, by thread, under
# valgrind's callgrind: a figure that does not move with the machine's load,
# unlike wrk's (bench/proxy.sh, bench/verify.sh).
#
#   bench/callgrind.sh [BIN [proxy|verify]]
#
# Starts the upstream nginx and Portcullis ([server] workers = 1) under
# callgrind with instrumentation off, creates a key, sends WARM (500)
# requests with bench/reqcount.c, turns instrumentation on, sends N (5000)
# over C (4) keep-alive connections, dumps, and prints instructions per
# request of the HTTP worker (worker_main), the request-log writer
# (writer_main) and the whole process. The writer's figure moves by a few
# per cent between runs: how rows fall into batches depends on how valgrind
# schedules the threads. System calls are not counted (bench/syscalls.sh).
# KEEP=FILE keeps the dump for callgrind_annotate.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=$(realpath "${1:-$REPO_DIR/build/portcullis}")
MODE=${2:-proxy}
N=${N:-5000}
C=${C:-4}
WARM=${WARM:-500}
[ -x "$BIN" ] || die "no portcullis binary at $BIN (build one: make, or meson + ninja)"
need nginx curl valgrind callgrind_control callgrind_annotate cc

WORK=$(mktemp -d /tmp/portcullis-bench-callgrind.XXXXXX)
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -o "$WORK/reqcount" "$BENCH_DIR/reqcount.c"
start_upstream_nginx
PCL_WRAP="valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$WORK/cg.out" \
	PCL_START_TRIES=600 start_portcullis "$BIN" "http://127.0.0.1:$UP_PORT" "[server]
workers = 1
[rate_limit]
requests = 1000000
burst = 1000000
[log]
level = warn"
new_gateway_key
case $MODE in
proxy) path=/bench/item?id=1 ;;
verify) path=/v1/verify ;;
*) die "mode is proxy or verify, not $MODE" ;;
esac
"$WORK/reqcount" "$PCL_PORT" "$path" "$WARM" "$C" "Authorization: Bearer $KEY" >/dev/null
sleep 1 # the writer's rows of the warm-up
callgrind_control -i on "$PCL_PID" >/dev/null 2>&1
callgrind_control -z "$PCL_PID" >/dev/null 2>&1
"$WORK/reqcount" "$PCL_PORT" "$path" "$N" "$C" "Authorization: Bearer $KEY" >/dev/null
sleep 2 # the writer's rows of the measured requests
callgrind_control -d "$PCL_PID" >/dev/null 2>&1
callgrind_control -i off "$PCL_PID" >/dev/null 2>&1
dump=$(ls -t "$WORK"/cg.out.* | head -1)
[ -z "${KEEP:-}" ] || cp "$dump" "$KEEP" # KEEP=FILE: the dump, for callgrind_annotate
callgrind_annotate --inclusive=yes --threshold=100 "$dump" >"$WORK/annotated" 2>/dev/null
per_request() {
	local ir
	ir=$(grep -E "$1" "$WORK/annotated" | head -1 | awk '{gsub(",", "", $1); print $1}')
	awk -v ir="${ir:-0}" -v n="$N" 'BEGIN { printf "%.0f", ir / n }'
}
echo "callgrind, $MODE, $N requests over $C connections after $WARM of warm-up:"
echo "  HTTP worker (worker_main):        $(per_request ':worker_main \[') instructions per request"
echo "  request-log writer (writer_main): $(per_request ':writer_main \[') instructions per request"
echo "  whole process:                    $(per_request 'PROGRAM TOTALS') instructions per request"
