#!/usr/bin/env bash
# Durability figures for the README:
#   1. recovery time for KEYS keys (16-byte keys, 32-byte values):
#      Burrow from a snapshot, Burrow from the WAL alone, Redis from an RDB;
#   2. SET throughput under each --fsync policy (50 clients, pipeline 1 and 16),
#      relative to --fsync no.
#
# Environment: KEYS (default 1000000), RUNS (default 3; medians are reported),
# BURROW_SERVER (the burrow-server binary to measure, default target/release),
# REQUESTS (per throughput run, default 300000), SKIP_BUILD=1, NO_REDIS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
KEYS=${KEYS:-1000000}
RUNS=${RUNS:-3}
REQUESTS=${REQUESTS:-300000}

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin burrow-server --bin burrow-bench --bin burrow-cli
fi
SERVER="${BURROW_SERVER:-$ROOT/target/release/burrow-server}"
BENCH="$ROOT/target/release/burrow-bench"
CLI="$ROOT/target/release/burrow-cli"
WORK=$(mktemp -d)
PIDS=""
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Seconds from `$1` (a start time) until the Burrow server on port $2 answers PING.
wait_burrow() {
    local t0=$1 port=$2
    for _ in $(seq 1 6000); do
        if "$CLI" --port "$port" PING >/dev/null 2>&1; then
            calc "$(now) - $t0"
            return
        fi
        sleep 0.01
    done
    echo "burrow on port $port never answered" >&2
    exit 1
}

start_burrow() { # dir port extra-args...
    local dir=$1 port=$2
    shift 2
    "$SERVER" --port "$port" --data-dir "$dir" --snapshot-every 0 --snapshot-wal-bytes 0 "$@" \
        2>>"$dir.log" &
    BURROW_PID=$!
    PIDS="$PIDS $BURROW_PID"
}

logged_recovery_ms() { # log file: the last "recovery complete" line's ms=
    grep 'recovery complete' "$1" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | sed -n 's/.* ms=\([0-9]*\).*/\1/p'
}

echo "== Recovery of $KEYS keys (16-byte keys, 32-byte values); $RUNS runs, medians"
wal_ready=(); wal_logged=(); snap_ready=(); snap_logged=(); redis_ready=(); redis_logged=()
for run in $(seq 1 "$RUNS"); do
    dir="$WORK/burrow-$run"
    port=$(free_port)
    t0=$(now); start_burrow "$dir" "$port" --fsync no; wait_burrow "$t0" "$port" >/dev/null
    "$BENCH" -p "$port" -t set -n "$KEYS" -r "$KEYS" --sequential -c 50 -P 64 -q >/dev/null
    kill -9 "$BURROW_PID"; wait "$BURROW_PID" 2>/dev/null || true
    # WAL alone (the kill left no snapshot).
    : >"$dir.log"
    t0=$(now); start_burrow "$dir" "$port"; wal_ready+=("$(wait_burrow "$t0" "$port")")
    wal_logged+=("$(logged_recovery_ms "$dir.log")")
    [ "$("$CLI" --port "$port" DBSIZE)" = "$KEYS" ] || { echo "WAL recovery lost keys" >&2; exit 1; }
    "$CLI" --port "$port" SAVE >/dev/null
    kill -9 "$BURROW_PID"; wait "$BURROW_PID" 2>/dev/null || true
    # Snapshot (SAVE closed and deleted the WAL segment it covers).
    : >"$dir.log"
    t0=$(now); start_burrow "$dir" "$port"; snap_ready+=("$(wait_burrow "$t0" "$port")")
    snap_logged+=("$(logged_recovery_ms "$dir.log")")
    [ "$("$CLI" --port "$port" DBSIZE)" = "$KEYS" ] || { echo "snapshot recovery lost keys" >&2; exit 1; }
    kill -9 "$BURROW_PID"; wait "$BURROW_PID" 2>/dev/null || true

    if [ -z "${NO_REDIS:-}" ] && command -v redis-server >/dev/null; then
        rdir="$WORK/redis-$run"; mkdir -p "$rdir"; rport=$(free_port)
        redis-server --port "$rport" --dir "$rdir" --save '' --appendonly no --logfile "$rdir/log" --daemonize no &
        rpid=$!; PIDS="$PIDS $rpid"
        until redis-cli -p "$rport" PING >/dev/null 2>&1; do sleep 0.01; done
        "$BENCH" --protocol resp -p "$rport" -t set -n "$KEYS" -r "$KEYS" --sequential -c 50 -P 64 -q >/dev/null
        redis-cli -p "$rport" SAVE >/dev/null
        kill -9 "$rpid"; wait "$rpid" 2>/dev/null || true
        t0=$(now)
        redis-server --port "$rport" --dir "$rdir" --save '' --appendonly no --logfile "$rdir/log" --daemonize no &
        rpid=$!; PIDS="$PIDS $rpid"
        until redis-cli -p "$rport" PING 2>/dev/null | grep -q PONG; do sleep 0.01; done
        redis_ready+=("$(calc "$(now) - $t0")")
        secs=$(grep 'DB loaded from disk' "$rdir/log" | tail -1 | sed -n 's/.*: \([0-9.]*\) seconds.*/\1/p')
        redis_logged+=("$(calc "int($secs * 1000)")")
        kill -9 "$rpid"; wait "$rpid" 2>/dev/null || true
    fi
done
printf '%-28s %14s %16s\n' "source" "load (ms, log)" "start→ready (s)"
printf '%-28s %14s %16s\n' "Burrow, snapshot" "$(printf '%s\n' "${snap_logged[@]}" | median)" "$(printf '%s\n' "${snap_ready[@]}" | median)"
printf '%-28s %14s %16s\n' "Burrow, WAL alone" "$(printf '%s\n' "${wal_logged[@]}" | median)" "$(printf '%s\n' "${wal_ready[@]}" | median)"
if [ ${#redis_ready[@]} -gt 0 ]; then
    printf '%-28s %14s %16s\n' "Redis, RDB" "$(printf '%s\n' "${redis_logged[@]}" | median)" "$(printf '%s\n' "${redis_ready[@]}" | median)"
fi

echo
echo "== SET throughput by --fsync policy (50 clients, -d 32, -r 100000, $REQUESTS requests, $RUNS runs, medians)"
printf '%-10s %-9s %14s %10s %10s\n' "fsync" "pipeline" "ops/s" "% of no" "p99 ms"
# Policies alternate run by run, so drift in this shared machine's speed
# hits all three alike.
for p in 1 16; do
    declare -A ops=() p99=()
    for run in $(seq 1 "$RUNS"); do
        for policy in no everysec always; do
            dir="$WORK/fsync-$policy-$p-$run"; port=$(free_port)
            t0=$(now); start_burrow "$dir" "$port" --fsync "$policy"; wait_burrow "$t0" "$port" >/dev/null
            line=$("$BENCH" -p "$port" -t set -c 50 -P "$p" -n "$REQUESTS" --csv 2>/dev/null | tail -1)
            ops[$policy]+="$(echo "$line" | cut -d, -f10) "
            p99[$policy]+="$(echo "$line" | cut -d, -f14) "
            kill -9 "$BURROW_PID"; wait "$BURROW_PID" 2>/dev/null || true
            rm -rf "$dir"
        done
    done
    base=$(printf '%s\n' ${ops[no]} | median)
    for policy in no everysec always; do
        m=$(printf '%s\n' ${ops[$policy]} | median)
        pct=$(calc "int(1000 * $m / $base) / 10")
        printf '%-10s %-9s %14.0f %9s%% %10s\n' "$policy" "$p" "$m" "$pct" "$(printf '%s\n' ${p99[$policy]} | median)"
    done
    unset ops p99
done
