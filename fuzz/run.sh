#!/usr/bin/env bash
# Runs every fuzz target (or those named as arguments) one after another,
# without a sanitizer (stable toolchain), each for RUNS inputs or SECS
# seconds, whichever comes first, and prints one line per target:
#
#   target  runs  seconds  exec/s  crashes
#
# Corpora grow in corpus/<target> (local, gitignored); seeds/<target>, when
# present, is read too and never written. A crash is saved under
# artifacts/<target>/ and makes the script exit 1 (after the other targets
# ran). Defaults are the campaign issue 11 asks for: 10,000,000 runs or
# 30 minutes per target. One fuzz process at a time (the machine is shared).
#
#   fuzz/run.sh                         # every target, the full campaign
#   RUNS=100000 SECS=120 fuzz/run.sh connection node_file
#   JOBS=1 fuzz/run.sh                  # cargo build jobs (default: cargo's)
set -euo pipefail
cd "$(dirname "$0")"

RUNS=${RUNS:-10000000}
SECS=${SECS:-1800}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

[ -n "${JOBS:-}" ] && export CARGO_BUILD_JOBS="$JOBS"
for t in "${targets[@]}"; do cargo fuzz build -s none "$t"; done

mkdir -p logs
failed=0
printf '%-20s %12s %8s %10s %8s\n' target runs seconds exec/s crashes
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    dirs=("corpus/$t")
    [ -d "seeds/$t" ] && dirs+=("seeds/$t")
    log="logs/$t.log"
    before=$(find "artifacts/$t" -type f | wc -l)
    start=$(date +%s)
    status=0
    cargo fuzz run -s none "$t" "${dirs[@]}" -- \
        -runs="$RUNS" -max_total_time="$SECS" -print_final_stats=1 >"$log" 2>&1 || status=$?
    secs=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    crashes=$(( $(find "artifacts/$t" -type f | wc -l) - before ))
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # died without an artifact (out of memory, a timeout, a build error): see the log
    fi
    printf '%-20s %12s %8s %10s %8s\n' "$t" "${runs:-?}" "$secs" "${rate:-?}" "$crashes"
    if [ "$crashes" -ne 0 ]; then
        failed=1
        echo "  $t: see fuzz/$log and fuzz/artifacts/$t/" >&2
    fi
done
exit "$failed"
