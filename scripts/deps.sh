#!/usr/bin/env bash
# deps.sh: install every Debian and npm package that building, running and
# testing Portcullis needs. Idempotent: packages already present are skipped,
# and apt-get is not touched at all when nothing is missing.
set -euo pipefail

cd "$(dirname "$0")/.."

BUILD_PKGS=(
	build-essential pkg-config meson ninja-build
	libcurl4-gnutls-dev libgnutls28-dev libcrypt-dev libnghttp2-dev
	libjansson-dev libsqlite3-dev libpq-dev libhiredis-dev libmaxminddb-dev
	libinih-dev libsodium-dev
)
TEST_PKGS=(
	libcmocka-dev clang-format clang-tidy cppcheck clang libclang-rt-14-dev
	python3-pytest python3-requests python3-psycopg2 python3-redis python3-h11 python3-cryptography
	python3-h2 python3-hyperframe python3-httpx
	postgresql redis-server sqlite3 openssl curl gnutls-bin python3-aiosmtpd testssl.sh
	chromium chromium-driver python3-selenium nghttp2-client
)
BENCH_PKGS=(nginx wrk nghttp2-client strace) # h2load: bench/h2.sh; strace: bench/syscalls.sh

want=("${BUILD_PKGS[@]}")
case "${1:-all}" in
build) ;;
test) want+=("${TEST_PKGS[@]}") ;;
all) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
*)
	echo "usage: $0 [build|test|all]" >&2
	exit 2
	;;
esac

# Node.js may come from outside Debian (NodeSource); only ask apt when absent.
if [ "${1:-all}" != build ] && ! command -v npm >/dev/null; then
	want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts the packaged servers on install; the tests run private
	# instances on free ports, so the system-wide ones are not needed.
	for svc in nginx redis-server postgresql; do
		if [[ " ${missing[*]} " == *" $svc "* ]] && command -v service >/dev/null; then
			$SUDO service "$svc" stop >/dev/null 2>&1 || true
		fi
	done
fi

# Geo-IP country database (CC0), from npm; installed into third_party/geoip.
GEO_DIR=third_party/geoip
GEO_PKG=@ip-location-db/geo-whois-asn-country-mmdb
if [ "${1:-all}" != build ] && [ ! -d "$GEO_DIR/node_modules/$GEO_PKG" ]; then
	mkdir -p "$GEO_DIR"
	echo "deps: installing npm $GEO_PKG"
	(cd "$GEO_DIR" && npm install --no-audit --no-fund --silent --prefix . "$GEO_PKG" >/dev/null)
fi

# OpenAPI tools for the tests (scripts/openapi-check.js, tests/integration/test_openapi.py):
# swagger-parser validates docs/openapi.yaml, Prism's validating proxy checks the real server
# against it. Pinned, installed into third_party/openapi.
OPENAPI_DIR=third_party/openapi
OPENAPI_PKGS=(@apidevtools/swagger-parser@13.1.0 @stoplight/prism-cli@5.16.0)
if [ "${1:-all}" != build ]; then
	for p in "${OPENAPI_PKGS[@]}"; do
		name=${p%@*}
		if ! grep -qs "\"version\": \"${p##*@}\"" "$OPENAPI_DIR/node_modules/$name/package.json"; then
			mkdir -p "$OPENAPI_DIR"
			echo "deps: installing npm ${OPENAPI_PKGS[*]}"
			(cd "$OPENAPI_DIR" && npm install --no-audit --no-fund --silent --save-exact \
				--prefix . "${OPENAPI_PKGS[@]}" >/dev/null)
			break
		fi
	done
fi

# Standard Webhooks' reference library, which checks the signatures Portcullis sends in
# tests/integration/test_webhooks.py (tests/integration/webhook_verify.js). Pinned, installed
# into third_party/standardwebhooks.
SW_DIR=third_party/standardwebhooks
SW_PKG=standardwebhooks@1.1.1
if [ "${1:-all}" != build ] &&
	! grep -qs "\"version\": \"${SW_PKG##*@}\"" "$SW_DIR/node_modules/${SW_PKG%@*}/package.json"; then
	mkdir -p "$SW_DIR"
	echo "deps: installing npm $SW_PKG"
	(cd "$SW_DIR" && npm install --no-audit --no-fund --silent --save-exact --prefix . "$SW_PKG" >/dev/null)
fi

# Segment's Node analytics SDK, sending to the ingest listener in tests/integration/test_ingest.py
# (tests/integration/segment_send.js). Pinned, installed into third_party/segment.
SEG_DIR=third_party/segment
SEG_PKG=@segment/analytics-node@3.1.0
if [ "${1:-all}" != build ] &&
	! grep -qs "\"version\": \"${SEG_PKG##*@}\"" "$SEG_DIR/node_modules/${SEG_PKG%@*}/package.json"; then
	mkdir -p "$SEG_DIR"
	echo "deps: installing npm $SEG_PKG"
	(cd "$SEG_DIR" && npm install --no-audit --no-fund --silent --save-exact --prefix . "$SEG_PKG" >/dev/null)
fi

# A certified OpenID provider (panva's oidc-provider), run on loopback by
# tests/integration/oidc_provider.mjs for tests/integration/test_oidc.py. Pinned,
# installed into third_party/oidc-provider. It needs Node.js 20 or later (Debian 12's own
# nodejs is 18: use NodeSource's, as this machine does).
OP_DIR=third_party/oidc-provider
OP_PKG=oidc-provider@9.13.3
if [ "${1:-all}" != build ] &&
	! grep -qs "\"version\": \"${OP_PKG##*@}\"" "$OP_DIR/node_modules/${OP_PKG%@*}/package.json"; then
	mkdir -p "$OP_DIR"
	echo "deps: installing npm $OP_PKG"
	(cd "$OP_DIR" && npm install --no-audit --no-fund --silent --save-exact --prefix . "$OP_PKG" >/dev/null)
fi
