#!/usr/bin/env bash
# bench/reqlog.sh: the request-log write path's cost per row (reqlog_bench.c).
#
#   make && bench/reqlog.sh [build/bench/reqlog_bench [STORE_URL]]
#
# 1. RUNS (3) runs of ROWS (200000) rows through reqlog_submit and the writer
#    thread into a fresh SQLite file in $TMPDIR (or STORE_URL), printing rows/s
#    end to end, the process's CPU time per row (user + system, every thread:
#    this one includes the kernel's share, e.g. the writes) and the submit
#    time per row. Noisy on a shared machine; TMPDIR=/dev/shm takes the disk
#    out of it.
# 2. One run of CG_ROWS (100000) rows under valgrind's callgrind (about a
#    minute), printing user-space instructions (Ir) per row, which do not
#    depend on the machine's load: the worker side (reqlog_submit, inclusive)
#    and the writer side (writer_main, inclusive: taking batches, cleaning
#    rows, the store's transaction and the driver; not the system calls).
#    Only the second of reqlog_bench's two rounds is counted. CG=0 skips it.
#
# BATCH (512) is the writer's batch size ([request_log] batch_size).
set -euo pipefail

BIN=${1:-build/bench/reqlog_bench}
URL=${2:-}
ROWS=${ROWS:-200000}
CG_ROWS=${CG_ROWS:-100000}
BATCH=${BATCH:-512}
RUNS=${RUNS:-3}
CG=${CG:-1}

[ -x "$BIN" ] || { echo "reqlog.sh: $BIN not found (run make first)" >&2; exit 1; }

for _ in $(seq "$RUNS"); do
	"$BIN" "$ROWS" "$BATCH" $URL
done

[ "$CG" = 0 ] && exit 0
command -v valgrind >/dev/null || { echo "reqlog.sh: valgrind is not installed" >&2; exit 1; }
OUT=$(mktemp -d /tmp/pcl-reqlog-cg-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" -q "$BIN" "$CG_ROWS" "$BATCH" $URL \
	| sed 's/^/callgrind: /'
# The dump reqlog_bench requests after its measured round.
callgrind_annotate --inclusive=yes --threshold=100 "$OUT/cg.1" >"$OUT/annotated" 2>/dev/null
per_row() {
	local ir
	ir=$(grep -E ":$1 \[" "$OUT/annotated" | head -1 | awk '{gsub(",", "", $1); print $1}')
	awk -v ir="${ir:-0}" -v n="$CG_ROWS" 'BEGIN { printf "%.0f", ir / n }'
}
submit=$(per_row reqlog_submit)
writer=$(per_row writer_main)
echo "instructions per row: submit (worker side) $submit, writer $writer," \
	"total $((submit + writer)) ($CG_ROWS rows, batch $BATCH)"
