#!/usr/bin/env bash
# bench/h2.sh [BIN]: HTTP/2 forwarding over TLS, Portcullis against nginx.
#
# In one run, on this machine, the same upstream (nginx answering
# `{"ok":true}` as application/json over plain HTTP/1.1) behind two TLS
# proxies speaking HTTP/2 (ALPN h2) to the client, alternated ROUNDS times
# (default 2) with h2load -t2 -c50 -m10 -D10 (H2_THREADS, H2_CONNS,
# H2_STREAMS, H2_SECS):
#   (b) nginx proxy  `listen ... ssl http2` (nginx 1.22 has no `http2 on;`,
#                    which is the same thing from 1.25.1 on), proxy_pass with
#                    keep-alive upstream connections as in bench/proxy.sh
#   (c) portcullis   [server] tls_cert/tls_key, http2_max_concurrent_streams
#                    (H2_STREAMS_MAX, 128), a valid cached key, rate limit out
#                    of the way, request log on
# Both use the same self-signed ECDSA P-256 certificate. For each: requests/s,
# proxy CPU per request (utime+stime of the proxy's processes, all threads,
# from /proc/PID/stat before and after the run, over the requests h2load
# completed), peak RSS, and the ratio c/b (issue #14's target >= 0.9).
# BIN defaults to build/portcullis; use a release build. Everything the
# script starts is stopped when it ends. Settings: ROUNDS, H2_SECS, H2_CONNS,
# H2_STREAMS, H2_THREADS, H2_STREAMS_MAX, NGINX_WORKERS (auto), BENCH_KEEP=1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=$(realpath "${1:-$REPO_DIR/build/portcullis}")
[ -x "$BIN" ] || die "no portcullis binary at $BIN (build one: make, or meson + ninja)"
need nginx h2load curl pgrep openssl
H2_THREADS=${H2_THREADS:-2}
H2_CONNS=${H2_CONNS:-50}
H2_STREAMS=${H2_STREAMS:-10}
H2_SECS=${H2_SECS:-10}
H2_STREAMS_MAX=${H2_STREAMS_MAX:-128}

bench_workdir h2
TICK_US=$((1000000 / $(getconf CLK_TCK)))

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
	-keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 || die "openssl could not make a certificate"

start_upstream_nginx

NP_PORT=$(free_port)
start_nginx proxy "    upstream backend {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NP_PORT ssl http2;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        http2_max_concurrent_streams $H2_STREAMS_MAX;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
NP_PID=$NGINX_PID
for _ in $(seq 100); do
	curl -sk -o /dev/null "https://127.0.0.1:$NP_PORT/" && break
	sleep 0.1
done

# Portcullis: init, then TLS and HTTP/2 set inside its [server] section.
PCL_DIR="$WORK/pcl"
PCL_PORT=$(free_port)
PCL_BASE="https://127.0.0.1:$PCL_PORT"
out=$("$BIN" init --data-dir "$PCL_DIR" --listen "127.0.0.1:$PCL_PORT" \
	--upstream "http://127.0.0.1:$UP_PORT" --bcrypt-cost "${BCRYPT_COST:-4}") || die "portcullis init failed"
ROOT_KEY=$(grep -oE '[a-z]{2,8}_root_[0-9A-Z]{26}\.[0-9A-Za-z]{49}' <<<"$out" | head -1)
[ -n "$ROOT_KEY" ] || die "no root key in the output of portcullis init"
grep -q '^\[server\]' "$PCL_DIR/portcullis.conf" || die "no [server] section in the generated config"
sed -i "s|^\[server\]\$|[server]\ntls_cert = $WORK/cert.pem\ntls_key = $WORK/key.pem\nhttp2_max_concurrent_streams = $H2_STREAMS_MAX|" \
	"$PCL_DIR/portcullis.conf"
printf '\n[rate_limit]\nrequests = 1000000\nburst = 1000000\n[log]\nlevel = warn\n' >>"$PCL_DIR/portcullis.conf"
"$BIN" config check -c "$PCL_DIR/portcullis.conf" >/dev/null || die "bad benchmark config"
(cd "$PCL_DIR" && exec "$BIN" serve -c "$PCL_DIR/portcullis.conf") >"$PCL_DIR/server.log" 2>&1 &
PCL_PID=$!
PIDS+=("$PCL_PID")
up=0
for _ in $(seq 100); do
	if curl -sk -o /dev/null "$PCL_BASE/healthz"; then up=1 && break; fi
	kill -0 "$PCL_PID" 2>/dev/null || die "portcullis serve exited: $(tail -3 "$PCL_DIR/server.log")"
	sleep 0.1
done
[ "$up" = 1 ] || die "portcullis did not come up: $(tail -3 "$PCL_DIR/server.log")"
# new_gateway_key uses curl on PCL_BASE: a self-signed certificate.
# shellcheck disable=SC2317 # called by new_gateway_key
curl() { command curl -k "$@"; }
new_gateway_key
unset -f curl

PCL_URL="$PCL_BASE/bench/item?id=1"
NP_URL="https://127.0.0.1:$NP_PORT/bench/item?id=1"
for url in "$PCL_URL" "$NP_URL"; do
	got=$(command curl -sk --http2 -o /dev/null -w '%{http_version} %{http_code}' -H "Authorization: Bearer $KEY" "$url")
	[ "$got" = "2 200" ] || die "$url over HTTP/2 answered '$got' (want '2 200')"
done

ROWS=()
# measure KIND LABEL URL PIDS [h2load args]: one h2load run, CPU of PIDS around it.
measure() {
	local kind=$1 label=$2 url=$3 pids=$4 out t0 t1 stat
	shift 4
	out="$WORK/h2load-$kind-${#ROWS[@]}.txt"
	# shellcheck disable=SC2086
	t0=$(cpu_ticks $pids)
	h2load -t"$H2_THREADS" -c"$H2_CONNS" -m"$H2_STREAMS" -D"$H2_SECS" "$@" "$url" >"$out" 2>&1 ||
		die "h2load failed: $(tail -5 "$out")"
	# shellcheck disable=SC2086
	t1=$(cpu_ticks $pids)
	grep -q 'Application protocol: h2' "$out" || die "h2load did not negotiate h2: $(tail -5 "$out")"
	# "rps bad 2xx" from h2load's summary lines: bad is failed requests
	# (errors, timeouts) plus 3xx, 4xx and 5xx answers.
	stat=$(awk '/^finished in/ {gsub(",", "", $4); rps = $4}
		/^requests:/ {failed = $10}
		/^status codes:/ {ok = $3; other = $5 + $7 + $9}
		END {printf "%d %d %d", rps, failed + other, ok}' "$out")
	ROWS+=("$kind $stat $(((t1 - t0) * TICK_US)) $label")
	printf '  %-30s %s\n' "$label" "$(awk '{printf "%8d req/s  %d 2xx, %d failed or not 2xx", $1, $3, $2}' <<<"$stat")" >&2
}

echo "h2 benchmark: $(nproc) cores, h2load -t$H2_THREADS -c$H2_CONNS -m$H2_STREAMS -D$H2_SECS over TLS, $ROUNDS rounds" >&2
for r in $(seq "$ROUNDS"); do
	measure b "(b) nginx h2 proxy (round $r)" "$NP_URL" "$NP_PID"
	measure c "(c) portcullis h2 (round $r)" "$PCL_URL" "$PCL_PID" -H "Authorization: Bearer $KEY"
done
RSS_B=$(peak_rss_kb "$NP_PID")
RSS_C=$(peak_rss_kb "$PCL_PID")

printf '%s\n' "${ROWS[@]}" | awk -v rss_b="$RSS_B" -v rss_c="$RSS_C" '
BEGIN {
	printf "\n| %-30s | %9s | %9s | %13s | %6s |\n", "run", "req/s", "2xx", "CPU/req (us)", "failed"
	printf "|%s|%s|%s|%s|%s|\n", "--------------------------------", "-----------", "-----------", "---------------", "--------"
}
{
	kind = $1; label = $6; for (i = 7; i <= NF; i++) label = label " " $i
	printf "| %-30s | %9d | %9d | %13.1f | %6d |\n", label, $2, $4, ($4 ? $5 / $4 : 0), $3
	n[kind]++; rps[kind] += $2; ok[kind] += $4; bad[kind] += $3; cpu[kind] += $5
}
END {
	name["b"] = "(b) nginx ssl http2 proxy_pass"; name["c"] = "(c) portcullis h2"
	rss["b"] = rss_b; rss["c"] = rss_c
	printf "\n| %-30s | %9s | %13s | %13s |\n", "mean of rounds", "req/s", "CPU/req (us)", "peak RSS (MB)"
	printf "|%s|%s|%s|%s|\n", "--------------------------------", "-----------", "---------------", "---------------"
	split("b c", ks, " ")
	for (j = 1; j <= 2; j++) {
		k = ks[j]
		printf "| %-30s | %9d | %13.1f | %13.1f |\n", name[k], rps[k] / n[k], (ok[k] ? cpu[k] / ok[k] : 0), rss[k] / 1024
	}
	ratio = rps["c"] / rps["b"]
	printf "\nrequests/s portcullis/nginx over HTTP/2 (c/b): %.2f  (target >= 0.9: %s)\n", ratio, (ratio >= 0.9 ? "met" : "NOT MET")
	if (bad["b"] + bad["c"] > 0)
		printf "WARNING: some requests failed or were not 2xx (see the failed column)\n"
}'
