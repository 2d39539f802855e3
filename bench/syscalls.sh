#!/usr/bin/env bash
# bench/syscalls.sh [BIN]: system calls per forwarded request and idle RSS,
# Portcullis against nginx proxy_pass (issue #14: no more calls than nginx,
# idle RSS at most 32 MB).
#
# The same set-up as bench/proxy.sh (an upstream nginx answering
# `{"ok":true}`, an nginx proxy with keep-alive upstream connections, one
# worker per core, and Portcullis with a valid cached key, rate limit out of the way,
# request log on). Idle memory (VmRSS and Pss of the process and its children:
# nginx's workers, Portcullis's background-tier child; and VmRSS of the main
# process alone) is read right after start-up and after a warm-up of 1000
# requests. Then, for each proxy,
# `strace -c -f` is attached to all its processes and threads while h2load
# --h1 sends exactly REQUESTS (20000) keep-alive requests over CONNS (4)
# connections; the summary's total calls over REQUESTS is the figure (strace
# slows the proxy down, not what it calls). Counts are machine-independent;
# the load on the machine only changes how many epoll_wait calls find
# nothing to do. BIN defaults to build/portcullis. Settings: REQUESTS, CONNS,
# BENCH_KEEP=1 keeps the strace summaries.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=$(realpath "${1:-$REPO_DIR/build/portcullis}")
[ -x "$BIN" ] || die "no portcullis binary at $BIN (build one: make, or meson + ninja)"
need nginx h2load curl pgrep strace
REQUESTS=${REQUESTS:-20000}
CONNS=${CONNS:-4}

bench_workdir syscalls

start_upstream_nginx

start_proxy_nginx

start_portcullis "$BIN" "http://127.0.0.1:$UP_PORT" "[rate_limit]
requests = 1000000
burst = 1000000
[log]
level = warn"

# mem_kb PID: "rss pss own": VmRSS and Pss (smaps_rollup: shared pages
# divided among the processes that map them) summed over the process and its
# direct children (nginx workers; Portcullis's background-tier child,
# `portcullis worker --supervised`), and VmRSS of PID alone.
mem_kb() {
	local rss=0 pss=0 p v w
	for p in "$1" $(pgrep -P "$1"); do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
		w=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
		rss=$((rss + ${v:-0}))
		pss=$((pss + ${w:-0}))
	done
	echo "$rss $pss $(awk '/^VmRSS:/ {print $2}' "/proc/$1/status")"
}
sleep 1
IDLE_B=$(mem_kb "$NP_PID")
IDLE_C=$(mem_kb "$PCL_PID")
new_gateway_key

NP_URL="http://127.0.0.1:$NP_PORT/bench/item?id=1"
PCL_URL="$PCL_BASE/bench/item?id=1"
h2load --h1 -n1000 -c"$CONNS" "$NP_URL" >/dev/null
h2load --h1 -n1000 -c"$CONNS" -H "Authorization: Bearer $KEY" "$PCL_URL" >/dev/null
sleep 1
WARM_B=$(mem_kb "$NP_PID")
WARM_C=$(mem_kb "$PCL_PID")

# count NAME URL PIDS [h2load args]: strace -c -f on PIDS while h2load sends
# REQUESTS requests; prints "calls 2xx".
count() {
	local name=$1 url=$2 pids=$3 args=() p spid out
	shift 3
	for p in $pids; do args+=(-p "$p"); done
	strace -c -f -o "$WORK/strace-$name.txt" "${args[@]}" 2>"$WORK/strace-$name.err" &
	spid=$!
	PIDS+=("$spid")
	sleep 1
	out=$(h2load --h1 -n"$REQUESTS" -c"$CONNS" "$@" "$url")
	sleep 0.5
	kill -INT "$spid"
	wait "$spid" || true
	printf '%s %s\n' "$(awk '$NF == "total" {print $4}' "$WORK/strace-$name.txt" | tail -1)" \
		"$(awk '/^status codes:/ {print $3}' <<<"$out")"
}

# nginx: master and its worker; Portcullis: all threads of the process.
read -r CALLS_B OK_B <<<"$(count nginx "$NP_URL" "$NP_PID $(pgrep -P "$NP_PID" | tr '\n' ' ')")"
read -r CALLS_C OK_C <<<"$(count portcullis "$PCL_URL" "$PCL_PID" -H "Authorization: Bearer $KEY")"

echo "system calls, strace -c -f, $REQUESTS requests over $CONNS keep-alive connections (h2load --h1):"
for n in nginx portcullis; do
	echo "--- $n (calls, syscall; top 8)"
	awk 'NR > 2 && $NF != "total" && $1 !~ /^-/ {print $4, $NF}' "$WORK/strace-$n.txt" |
		sort -rn | head -8
done
awk -v cb="$CALLS_B" -v cc="$CALLS_C" -v ob="$OK_B" -v oc="$OK_C" -v n="$REQUESTS" \
	-v ib="$IDLE_B" -v ic="$IDLE_C" -v wb="$WARM_B" -v wc="$WARM_C" 'BEGIN {
	printf "\n| %-18s | %8s | %8s | %9s | %12s |\n", "proxy", "requests", "2xx", "syscalls", "syscalls/req"
	printf "|--------------------|----------|----------|-----------|--------------|\n"
	printf "| %-18s | %8d | %8d | %9d | %12.2f |\n", "nginx proxy_pass", n, ob, cb, cb / n
	printf "| %-18s | %8d | %8d | %9d | %12.2f |\n", "portcullis", n, oc, cc, cc / n
	split(ib, IB, " "); split(ic, IC, " "); split(wb, WB, " "); split(wc, WC, " ")
	printf "\n| %-18s | %-9s | %13s | %13s | %20s |\n", "proxy", "when", "RSS sum (MB)", "PSS sum (MB)", "main process RSS (MB)"
	printf "|--------------------|-----------|---------------|---------------|----------------------|\n"
	printf "| %-18s | %-9s | %13.1f | %13.1f | %20.1f |\n", "nginx proxy_pass", "idle", IB[1] / 1024, IB[2] / 1024, IB[3] / 1024
	printf "| %-18s | %-9s | %13.1f | %13.1f | %20.1f |\n", "nginx proxy_pass", "warm", WB[1] / 1024, WB[2] / 1024, WB[3] / 1024
	printf "| %-18s | %-9s | %13.1f | %13.1f | %20.1f |\n", "portcullis", "idle", IC[1] / 1024, IC[2] / 1024, IC[3] / 1024
	printf "| %-18s | %-9s | %13.1f | %13.1f | %20.1f |\n", "portcullis", "warm", WC[1] / 1024, WC[2] / 1024, WC[3] / 1024
	printf "\nsyscalls per request portcullis/nginx: %.2f (target <= 1: %s)\n", cc / cb, (cc <= cb ? "met" : "NOT MET")
	printf "idle RSS, portcullis serve process alone: %.1f MB, with its worker child %.1f MB (target <= 32: %s alone, %s with the child)\n", \
		IC[3] / 1024, IC[1] / 1024, (IC[3] <= 32 * 1024 ? "met" : "NOT MET"), (IC[1] <= 32 * 1024 ? "met" : "NOT MET")
}'
