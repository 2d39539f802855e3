#!/usr/bin/env bash
# fuzz.sh [SECONDS]: build the libFuzzer targets (tests/fuzz) in build-fuzz if
# needed and run each for SECONDS (default 10) over its seed corpus, printing
# one summary line per target. Fails if any target crashes, leaks, trips a
# sanitizer or breaks an invariant; the input is kept under
# build-fuzz/fuzz-out/<target>/ (copy it to tests/fuzz/crashes/ to report it).
#
# New corpus units go to build-fuzz/fuzz-corpus/<target>/ and are reused by the
# next run; tests/fuzz/corpus/ (the seeds in the tree) is only read, as is
# tests/fuzz/<target>.dict when there is one.
# FUZZ_BUILD overrides the build directory.
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
BUILD=${FUZZ_BUILD:-build-fuzz}
TARGETS=(keyfmt rfc3339 int config json_body idem h1parse reqcheck json_string sealed schedule egress segment scankeys h1request jose console rawjson)

if ! [[ "$SECS" =~ ^[0-9]+$ ]] || [ "$SECS" -lt 1 ]; then
	echo "usage: $0 [SECONDS]" >&2
	exit 2
fi

if [ ! -f "$BUILD/build.ninja" ]; then
	if ! setup_out=$(CC=clang meson setup "$BUILD" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dtests=false 2>&1); then
		echo "$setup_out" | tail -40 >&2
		echo "fuzz: meson setup failed" >&2
		exit 1
	fi
fi
exes=()
for t in "${TARGETS[@]}"; do exes+=("tests/fuzz/fuzz_$t"); done
if ! ninja -C "$BUILD" "${exes[@]}" >"$BUILD/fuzz-build.log" 2>&1; then
	tail -40 "$BUILD/fuzz-build.log" >&2
	echo "fuzz: build failed (is $BUILD configured with -Dfuzz=true?)" >&2
	exit 1
fi

# UBSan only reports by default; make every finding fatal so libFuzzer keeps
# the input. Leak checking is on by default under libFuzzer.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}

failed=()
for t in "${TARGETS[@]}"; do
	work="$BUILD/fuzz-corpus/$t"
	out="$BUILD/fuzz-out/$t"
	log="$out/fuzz.log"
	dict=()
	[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	mkdir -p "$work" "$out"
	"$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECS" -print_final_stats=1 "${dict[@]}" \
		-artifact_prefix="$out/" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	ncorp=$(find "$work" -type f | wc -l)
	if [ "$rc" -eq 0 ] && ! grep -qE '^(==[0-9]+==ERROR|SUMMARY: )' "$log"; then
		printf '%-16s ok: %s runs in %ss, %s exec/s, cov %s, corpus %s\n' \
			"fuzz_$t" "${runs:-?}" "$SECS" "${eps:-?}" "${cov:-?}" "$ncorp"
	else
		artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
		why=$(grep -m1 -E 'ERROR: |invariant failed|runtime error' "$log")
		printf '%-16s CRASH after %s runs: %s; input %s; log %s\n' \
			"fuzz_$t" "${runs:-?}" "${why:-exit $rc}" "${artifact:-?}" "$log"
		failed+=("$t")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}"
	exit 1
fi
echo "fuzz: ok (${#TARGETS[@]} targets, ${SECS}s each)"
