#!/usr/bin/env bash
# test.sh BUILD_DIR: every check `make test` runs, in order, each printing a
# summary line: clang-format, cppcheck, clang-tidy, the OpenAPI document's
# validity, unit tests (cmocka), integration tests (pytest against the real
# binary). Private PostgreSQL and Redis servers are started for the run and
# stopped at the end, pass or fail.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-test}
failed=()

step() { printf '\n== %s\n' "$1"; }

step "clang-format"
C_FILES=$(git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c')
fmt_out=$(clang-format --dry-run --Werror $C_FILES 2>&1)
if [ -n "$fmt_out" ]; then
	echo "$fmt_out" | head -20
	echo "clang-format: FAILED (run make format)"
	failed+=(format)
else
	echo "clang-format: ok ($(echo "$C_FILES" | wc -w) files)"
fi

step "cppcheck"
# varFuncNullUB: log_event's NULL sentinel is ((void *)0) on every platform we
# build for, and the function carries __attribute__((sentinel)).
cpp_out=$(cppcheck --quiet --enable=warning,performance,portability --inline-suppr \
	-I src -I "$BUILD" --suppress=missingIncludeSystem --suppress=varFuncNullUB -j2 src 2>&1)
if [ -n "$cpp_out" ]; then
	echo "$cpp_out" | head -40
	echo "cppcheck: FAILED"
	failed+=(cppcheck)
else
	echo "cppcheck: ok"
fi

step "clang-tidy"
tidy_out=$(git ls-files 'src/*.c' | xargs -P2 -n4 clang-tidy -p "$BUILD" --quiet 2>/dev/null | grep -E "(warning|error):" || true)
if [ -n "$tidy_out" ]; then
	echo "$tidy_out" | head -40
	echo "clang-tidy: FAILED"
	failed+=(clang-tidy)
else
	echo "clang-tidy: ok"
fi

step "openapi"
# docs/openapi.yaml must be valid OpenAPI (swagger-parser, installed by scripts/deps.sh);
# tests/integration/test_openapi.py then checks the server against it through Prism.
if api_out=$(node scripts/openapi-check.js docs/openapi.yaml 2>&1); then
	echo "$api_out"
else
	echo "$api_out" | head -40
	echo "openapi: FAILED"
	failed+=(openapi)
fi

# Private servers for the PostgreSQL/Redis halves of the suites.
SERVERS_DIR=$(mktemp -d /tmp/portcullis-servers.XXXXXX)
trap 'scripts/test-servers.sh stop "$SERVERS_DIR" >/dev/null 2>&1 || true; rm -rf "$SERVERS_DIR"' EXIT
if [ -x scripts/test-servers.sh ]; then
	if env_lines=$(scripts/test-servers.sh start --owner $$ "$SERVERS_DIR"); then
		eval "$env_lines"
	else
		echo "test servers: could not start PostgreSQL/Redis"
		failed+=(servers)
	fi
fi

step "fuzz (short)"
if ! command -v clang >/dev/null; then
	echo "fuzz: skipped (clang not installed)"
elif scripts/fuzz.sh 5 >"$BUILD/fuzz.log" 2>&1; then
	tail -1 "$BUILD/fuzz.log"
else
	tail -20 "$BUILD/fuzz.log"
	echo "fuzz: FAILED"
	failed+=(fuzz)
fi

step "unit tests"
if meson test -C "$BUILD" --suite unit --print-errorlogs >"$BUILD/unit.log" 2>&1; then
	grep -E "^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass):" "$BUILD/unit.log" | tr '\n' ' '
	echo
	echo "unit: ok"
else
	tail -60 "$BUILD/unit.log"
	echo "unit: FAILED"
	failed+=(unit)
fi

step "integration tests"
if PORTCULLIS_BIN="$PWD/$BUILD/portcullis" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	tests/integration 2>&1 | tee "$BUILD/integration.log" | tail -40; then
	:
fi
if ! grep -qE "^[0-9]+ passed" <(tail -1 "$BUILD/integration.log" | sed 's/^=* //'); then
	failed+=(integration)
elif grep -qE "failed|error" <(tail -1 "$BUILD/integration.log"); then
	failed+=(integration)
fi

echo
if ((${#failed[@]})); then
	echo "make test: FAILED (${failed[*]})"
	exit 1
fi
echo "make test: all checks passed"
