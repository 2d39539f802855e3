# bench/lib.sh: helpers shared by bench/verify.sh and bench/proxy.sh (sourced,
# not run). Everything started through these helpers is recorded in PIDS and
# stopped by bench_cleanup, which the scripts install as an EXIT trap, so no
# server outlives a benchmark run, pass or fail.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
PY=/usr/bin/python3
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-50}
WRK_SECS=${WRK_SECS:-10}
ROUNDS=${ROUNDS:-2}
PIDS=()

die() {
	echo "bench: $*" >&2
	exit 1
}

need() {
	for c in "$@"; do
		command -v "$c" >/dev/null || die "$c is not installed (scripts/deps.sh all installs it)"
	done
}

# bench_cleanup (the EXIT trap): stop what PIDS lists and the servers of
# bench_start_servers, then remove WORK unless BENCH_KEEP is set.
SERVERS=''
bench_cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "$SERVERS" ]; then
		"$REPO_DIR/scripts/test-servers.sh" stop "$SERVERS" >/dev/null 2>&1 || true
	fi
	if [ -n "${WORK:-}" ] && [ -z "${BENCH_KEEP:-}" ]; then
		rm -rf "$WORK"
	fi
}

# bench_workdir NAME: WORK, a fresh /tmp/portcullis-bench-NAME.XXXXXX, and
# the traps that clean up after the run (also on ^C).
bench_workdir() {
	WORK=$(mktemp -d "/tmp/portcullis-bench-$1.XXXXXX")
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

# bench_start_servers: a private PostgreSQL and Redis (scripts/test-servers.sh,
# in a directory of their own: PostgreSQL runs as postgres, WORK is ours),
# their PORTCULLIS_TEST_* variables exported; stopped by bench_cleanup, and by
# themselves if this script dies without its trap.
bench_start_servers() {
	local exports
	exports=$("$REPO_DIR/scripts/test-servers.sh" start --owner $$) ||
		die "could not start PostgreSQL and Redis (scripts/test-servers.sh)"
	eval "$exports"
	SERVERS=$PORTCULLIS_TEST_SERVERS_DIR
}

free_port() {
	$PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL [SECONDS [LOG]]: until URL answers (any status), at most
# SECONDS (10); on a timeout, the last lines of LOG go into the message.
wait_http() {
	local tries=$((${2:-10} * 10))
	for _ in $(seq "$tries"); do
		if curl -s -o /dev/null "$1"; then return 0; fi
		sleep 0.1
	done
	die "$1 did not come up${3:+: $(tail -5 "$3")}"
}

# start_nginx NAME HTTP_BLOCK_BODY: a private nginx (master in the foreground,
# so $! is its pid) with its own prefix, pid file, logs and temp paths under
# $WORK/NAME; the caller gives the inside of the http {} block. Sets NGINX_PID.
start_nginx() {
	local name=$1 body=$2 dir="$WORK/$1"
	mkdir -p "$dir/logs" "$dir/tmp"
	cat >"$dir/nginx.conf" <<CONF
worker_processes ${NGINX_WORKERS:-auto};
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$body
}
CONF
	nginx -t -q -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" ||
		die "nginx config $dir/nginx.conf rejected"
	nginx -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
}

# start_portcullis BIN UPSTREAM_URL EXTRA_CONF: init a fresh instance in
# $WORK/pcl (bcrypt cost $BCRYPT_COST, default 4), append EXTRA_CONF, serve it.
# Sets PCL_PID, PCL_PORT, PCL_BASE, PCL_DIR, ROOT_KEY.
# start_upstream_nginx: the benches' upstream, an nginx answering every path
# with a small JSON 200 on a free port; sets UP_PORT and UP_PID.
start_upstream_nginx() {
	UP_PORT=$(free_port)
	start_nginx upstream "    server {
        listen 127.0.0.1:$UP_PORT;
        default_type application/json;
        location / { return 200 '{\"ok\":true}'; }
    }"
	UP_PID=$NGINX_PID
	wait_http "http://127.0.0.1:$UP_PORT/"
}

# start_proxy_nginx: the reference, nginx proxy_pass (keep-alive pool of 64)
# to the upstream on UP_PORT, plain HTTP on a free port; sets NP_PORT and NP_PID.
# REF_ACCESS_LOG=1: the proxy nginx writes an access log line per request
# (buffered, as a busy site would), the nearest thing it has to the request log.
start_proxy_nginx() {
	local log=""
	NP_PORT=$(free_port)
	[ -z "${REF_ACCESS_LOG:-}" ] ||
		log="access_log $WORK/proxy/logs/access.log combined buffer=64k flush=1s;"
	start_nginx proxy "    upstream backend {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NP_PORT;
        $log
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
	NP_PID=$NGINX_PID
	wait_http "http://127.0.0.1:$NP_PORT/"
}

start_portcullis() {
	local bin=$1 upstream=$2 extra=$3 out
	PCL_DIR="$WORK/pcl"
	PCL_PORT=$(free_port)
	PCL_BASE="http://127.0.0.1:$PCL_PORT"
	out=$("$bin" init --data-dir "$PCL_DIR" --listen "127.0.0.1:$PCL_PORT" \
		--upstream "$upstream" --bcrypt-cost "${BCRYPT_COST:-4}") || die "portcullis init failed"
	ROOT_KEY=$(grep -oE '[a-z]{2,8}_root_[0-9A-Z]{26}\.[0-9A-Za-z]{49}' <<<"$out" | head -1)
	[ -n "$ROOT_KEY" ] || die "no root key in the output of portcullis init"
	printf '\n%s\n' "$extra" >>"$PCL_DIR/portcullis.conf"
	"$bin" config check -c "$PCL_DIR/portcullis.conf" >/dev/null || die "bad benchmark config"
	# PCL_WRAP: a command the server runs under (bench/callgrind.sh: valgrind).
	# shellcheck disable=SC2086
	(cd "$PCL_DIR" && exec ${PCL_WRAP:-} "$bin" serve -c "$PCL_DIR/portcullis.conf") >"$PCL_DIR/server.log" 2>&1 &
	PCL_PID=$!
	PIDS+=("$PCL_PID")
	for _ in $(seq "${PCL_START_TRIES:-100}"); do
		if curl -s -o /dev/null "$PCL_BASE/healthz"; then return 0; fi
		kill -0 "$PCL_PID" 2>/dev/null ||
			die "portcullis serve exited: $(tail -3 "$PCL_DIR/server.log")"
		sleep 0.1
	done
	die "portcullis did not come up: $(tail -3 "$PCL_DIR/server.log")"
}

# start_two_nodes DIR TAG: init node A in DIR/a (no rate limit in the way, warn-level log), copy
# its configuration to DIR/b on another port, start both and wait for them. The store is the
# default SQLite file unless PORTCULLIS_STORE_URL is set. Sets A_PID, B_PID, A_URL, B_URL,
# ROOT_KEY; TAG names the script in the configuration's comment.
start_two_nodes() {
	local dir=$1 tag=$2 out a_port b_port n
	a_port=$(free_port)
	b_port=$(free_port)
	mkdir -p "$dir"
	out=$("$BIN" init --data-dir "$dir/a" --listen "127.0.0.1:$a_port" \
		--bcrypt-cost "${BCRYPT_COST:-4}") || die "portcullis init failed"
	ROOT_KEY=$(grep -oE '[a-z]{2,8}_root_[0-9A-Z]{26}\.[0-9A-Za-z]{49}' <<<"$out" | head -1)
	[ -n "$ROOT_KEY" ] || die "no root key in the output of portcullis init"
	cat >>"$dir/a/portcullis.conf" <<CONF

# $tag: measure the nodes, not the rate limit.
[rate_limit]
requests = 1000000
burst = 1000000
[log]
level = warn
CONF
	mkdir -p "$dir/b"
	sed "s/^listen = .*/listen = 127.0.0.1:$b_port/" "$dir/a/portcullis.conf" >"$dir/b/portcullis.conf"
	for n in a b; do
		"$BIN" config check -c "$dir/$n/portcullis.conf" >/dev/null || die "bad config for node $n"
		(cd "$dir/$n" && exec "$BIN" serve -c "$dir/$n/portcullis.conf") >"$dir/$n/server.log" 2>&1 &
		PIDS+=("$!")
		if [ $n = a ]; then A_PID=$!; else B_PID=$!; fi
	done
	A_URL="http://127.0.0.1:$a_port"
	B_URL="http://127.0.0.1:$b_port"
	wait_http "$A_URL/healthz"
	wait_http "$B_URL/healthz"
}


# new_gateway_key: an organisation "bench" and a gateway key for it; sets KEY.
new_gateway_key() {
	local org
	org=$(curl -sf -H "Authorization: Bearer $ROOT_KEY" -H 'Content-Type: application/json' \
		-d '{"name":"bench"}' "$PCL_BASE/v1/orgs" |
		$PY -c 'import json, sys; print(json.load(sys.stdin)["id"])') || die "could not create the org"
	KEY=$(curl -sf -H "Authorization: Bearer $ROOT_KEY" -H 'Content-Type: application/json' \
		-d '{"name":"b","scopes":["gateway"]}' "$PCL_BASE/v1/orgs/$org/api-keys" |
		$PY -c 'import json, sys; print(json.load(sys.stdin)["key"])') || die "could not create the key"
}

# run_wrk OUTFILE URL [wrk args...]: one wrk run; its output is kept in OUTFILE.
run_wrk() {
	local out=$1 url=$2
	shift 2
	wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${WRK_SECS}s" --latency "$@" "$url" >"$out" 2>&1 ||
		die "wrk failed: $(cat "$out")"
}

# wrk_stat OUTFILE: "rps p50_ms p99_ms requests bad" where bad counts
# non-2xx/3xx responses and socket errors (a run with bad > 0 is not clean).
wrk_stat() {
	$PY "$BENCH_DIR/wrkstat.py" "$1"
}

# cpu_ticks PID...: utime+stime (clock ticks, all threads) of the processes
# and of their direct children (nginx workers).
cpu_ticks() {
	local total=0 p f
	for p in "$@"; do
		for f in /proc/"$p"/stat $(pgrep -P "$p" | sed 's|.*|/proc/&/stat|'); do
			[ -r "$f" ] || continue
			# Fields after the ")" that ends comm: utime is the 12th, stime the 13th.
			total=$((total + $(sed 's/.*) //' "$f" | awk '{print $12 + $13}')))
		done
	done
	echo "$total"
}

# thread_ticks PID...: one line per thread of the processes, "name utime
# stime" (clock ticks), the name without a trailing -N (http-0, http-1 ->
# http), for a CPU breakdown by kind of thread.
thread_ticks() {
	local p f
	for p in "$@"; do
		for f in /proc/"$p"/task/*/stat; do
			[ -r "$f" ] || continue
			sed -E 's/^[0-9]+ \(([^)]*)\) (.*)/\1 \2/' "$f" |
				awk '{n = $1; sub(/-[0-9]+$/, "", n); print n, $13, $14}'
		done
	done
}

# thread_breakdown FILE REQUESTS: CPU per request by kind of thread (user +
# system, us) from FILE's thread_ticks lines, "- " before the runs and "+ "
# after them, over REQUESTS requests.
thread_breakdown() {
	local tick_us=$((1000000 / $(getconf CLK_TCK)))
	awk -v req="$2" -v tick="$tick_us" '
	{ sign = $1 == "+" ? 1 : -1; u[$2] += sign * $3; s[$2] += sign * $4 }
	END {
		for (n in u) if (u[n] + s[n] > 0)
			printf "  %-16s %6.2f + %6.2f = %6.2f\n", n, u[n] * tick / req, s[n] * tick / req, (u[n] + s[n]) * tick / req
	}' "$1" | sort -k1,1
}

# peak_rss_kb PID...: sum of VmHWM over the processes and their direct children.
peak_rss_kb() {
	local total=0 p f v
	for p in "$@"; do
		for f in /proc/"$p"/status $(pgrep -P "$p" | sed 's|.*|/proc/&/status|'); do
			v=$(awk '/^VmHWM:/ {print $2}' "$f" 2>/dev/null)
			total=$((total + ${v:-0}))
		done
	done
	echo "$total"
}
