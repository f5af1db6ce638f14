#!/bin/bash
# Builds the libFuzzer targets (-sanitize=fuzzer,address, into .build-fuzz, apart from the
# regular build) and runs each for FUZZ_TIME seconds from fuzz/corpus/<target> and fuzz/regressions/<target>.
# FUZZ_TIME (default 600), FUZZ_TARGETS (default: all six), FUZZ_JOBS (parallel runs, default 1),
# FUZZ_SEED (libFuzzer's -seed; unset = random): `make test` fixes it, so what CI explores is a
# prefix of what the same command explores here given more time — a crash CI finds is reproducible.
# New inputs go to .build-fuzz/corpus/<target>, crashes to .build-fuzz/crashes/<target>/; the
# committed seeds are only read. Exit status: 1 when a target crashed. Final stats: .build-fuzz/<target>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
FUZZ_TIME=${FUZZ_TIME:-600}
TARGETS=${FUZZ_TARGETS:-fuzz-smtp fuzz-mime fuzz-lookup fuzz-rpc fuzz-imap fuzz-pop3}
# A trap is reported by libFuzzer and ASan; Swift's own backtracer would only get in their way.
export SWIFT_BACKTRACE=enable=no
FLAGS=(-c debug --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DPOSTERN_LIBFUZZER)

start=$(date +%s)
for t in $TARGETS; do
    $SWIFT build "${FLAGS[@]}" --product "$t" 2>&1 | grep -E "error:|Build .*complete" || { echo "fuzz: building $t failed"; exit 2; }
done
echo "fuzz: built $TARGETS in $(( $(date +%s) - start ))s"
bin=$($SWIFT build "${FLAGS[@]}" --show-bin-path)

run() {
    local t=$1 dirs=() extra=()
    mkdir -p ".build-fuzz/corpus/$t" ".build-fuzz/crashes/$t"
    for d in "fuzz/corpus/$t" "fuzz/regressions/$t"; do [ -d "$d" ] && dirs+=("$d"); done
    [ -f "fuzz/$t.dict" ] && extra+=("-dict=fuzz/$t.dict")
    [ -n "${FUZZ_SEED:-}" ] && extra+=("-seed=$FUZZ_SEED")
    "$bin/$t" -max_total_time="$FUZZ_TIME" -max_len=4096 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix=".build-fuzz/crashes/$t/" "${extra[@]}" ".build-fuzz/corpus/$t" "${dirs[@]}" > ".build-fuzz/$t.log" 2>&1
    local rc=$?
    local cov; cov=$(grep -E "^#[0-9]+.*(DONE|pulse|NEW|REDUCE)" ".build-fuzz/$t.log" | tail -1 | grep -oE "cov: [0-9]+ ft: [0-9]+")
    local runs; runs=$(grep -oE "stat::number_of_executed_units: [0-9]+" ".build-fuzz/$t.log" | grep -oE "[0-9]+$")
    echo "fuzz: $t rc=$rc runs=${runs:-?} ${cov:-} time=${FUZZ_TIME}s crashes=$(ls ".build-fuzz/crashes/$t" | wc -l)"
    [ $rc -eq 0 ] || { grep -E "ERROR|SUMMARY|Fatal error|Precondition" ".build-fuzz/$t.log" | head -5; return 1; }
}

status=0
jobs=${FUZZ_JOBS:-1}
pids=()
for t in $TARGETS; do
    run "$t" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}" || status=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
