#!/usr/bin/env bash
# What holding reads back costs (reads never show a write before it is
# durable): GET throughput and p99 under --fsync always, for two server
# builds, alternated run by run so drift in this shared machine's speed
# hits both alike. Medians of RUNS.
#
#   BASE=/path/to/old/burrow-server NEW=target/release/burrow-server bench/read-visibility.sh
#
# Workloads, 50 clients, 32-byte values, 100,000 keys (loaded first):
#   get P1 / get P16   pure GETs after the load (no write in flight);
#   mixed 1:10 / 1:1   SET:GET mixes (writes in flight during reads).
#
# Environment: BASE, NEW (server binaries), RUNS (default 3), SECS per
# workload (default 5), FSYNC (default always), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-3}
SECS=${SECS:-5}
FSYNC=${FSYNC:-always}
KEYS=100000

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin burrow-server --bin burrow-bench --bin burrow-cli
fi
NEW=${NEW:-$ROOT/target/release/burrow-server}
BASE=${BASE:?set BASE to the burrow-server binary to compare against}
BENCH="$ROOT/target/release/burrow-bench"
CLI="$ROOT/target/release/burrow-cli"
WORK=$(mktemp -d)
PID=""
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
calc() { awk "BEGIN { print $1 }"; }

# label, test, pipeline, SET:GET ratio (mixed only)
WORKLOADS=("get-P1 get 1 -" "get-P16 get 16 -" "mixed-1:10 mixed 1 1:10" "mixed-1:1 mixed 1 1:1")
declare -A ops=() p99=()
for run in $(seq 1 "$RUNS"); do
    for build in base new; do
        server=$BASE; [ "$build" = new ] && server=$NEW
        dir="$WORK/$build-$run"; port=$(free_port)
        "$server" --port "$port" --data-dir "$dir" --fsync "$FSYNC" --snapshot-every 0 \
            --snapshot-wal-bytes 0 2>"$dir.log" &
        PID=$!
        until "$CLI" --port "$port" PING >/dev/null 2>&1; do sleep 0.01; done
        "$BENCH" -p "$port" -t set -n "$KEYS" -r "$KEYS" --sequential -c 50 -P 16 -q >/dev/null
        for w in "${WORKLOADS[@]}"; do
            read -r name test pipeline ratio <<<"$w"
            args=(-t "$test" -P "$pipeline")
            [ "$ratio" != - ] && args+=(--ratio "$ratio")
            line=$("$BENCH" -p "$port" -c 50 -r "$KEYS" --duration "$SECS" "${args[@]}" --csv \
                --fail-on-error 2>/dev/null | tail -1)
            ops[$build,$name]+="$(echo "$line" | cut -d, -f10) "
            p99[$build,$name]+="$(echo "$line" | cut -d, -f14) "
        done
        kill -9 "$PID"; wait "$PID" 2>/dev/null || true
        PID=""
        rm -rf "$dir"
    done
done

echo "--fsync $FSYNC, 50 clients, $KEYS keys, ${SECS}s per run; medians of $RUNS, builds alternated"
printf '%-14s %12s %12s %7s %10s %10s\n' workload "base ops/s" "new ops/s" "new/base" "base p99" "new p99"
for w in "${WORKLOADS[@]}"; do
    read -r name _ <<<"$w"
    b=$(printf '%s\n' ${ops[base,$name]} | median)
    n=$(printf '%s\n' ${ops[new,$name]} | median)
    printf '%-14s %12.0f %12.0f %7.3f %10s %10s\n' "$name" "$b" "$n" "$(calc "$n / $b")" \
        "$(printf '%s\n' ${p99[base,$name]} | median)" "$(printf '%s\n' ${p99[new,$name]} | median)"
done
