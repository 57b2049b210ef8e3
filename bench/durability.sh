#!/usr/bin/env bash
# Durability figures for the README:
#   1. recovery time for KEYS keys (16-byte keys, 32-byte values):
#      Burrow from a snapshot, Burrow from the WAL alone, Redis from an RDB;
#   2. SET throughput under each --fsync policy (50 clients, pipeline 1 and 16),
#      relative to --fsync no, with Redis 7 (`appendonly yes`, `appendfsync
#      always`) driven by the same load generator (burrow-bench --protocol resp)
#      in the same runs, and with BASE (another burrow-server build, e.g. the
#      one before a change) under --fsync always if set.
#
# Environment: KEYS (default 1000000), RUNS (default 3; medians are reported),
# BURROW_SERVER (the burrow-server binary to measure, default target/release),
# REQUESTS (per throughput run, default 300000), SKIP_BUILD=1, NO_REDIS=1,
# BASE (a burrow-server binary to measure under --fsync always as well),
# PARTS (default "recovery throughput").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
KEYS=${KEYS:-1000000}
RUNS=${RUNS:-3}
REQUESTS=${REQUESTS:-300000}
PARTS=${PARTS:-"recovery throughput"}
want() { [[ " $PARTS " == *" $1 "* ]]; }
WITH_REDIS=""
if [ -z "${NO_REDIS:-}" ]; then
    if ! command -v redis-server >/dev/null; then
        apt-get install -y redis-server >/dev/null 2>&1 || true
    fi
    command -v redis-server >/dev/null && WITH_REDIS=1
fi

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
    "${BURROW_BIN:-$SERVER}" --port "$port" --data-dir "$dir" --snapshot-every 0 --snapshot-wal-bytes 0 "$@" \
        2>>"$dir.log" &
    BURROW_PID=$!
    PIDS="$PIDS $BURROW_PID"
}

logged_recovery_ms() { # log file: the last "recovery complete" line's ms=
    grep 'recovery complete' "$1" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | sed -n 's/.* ms=\([0-9]*\).*/\1/p'
}

if want recovery; then
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
fi
want throughput || exit 0

echo
echo "== SET throughput by --fsync policy (50 clients, -d 32, -r 100000, $REQUESTS requests, $RUNS runs, medians)"
printf '%-16s %-9s %14s %10s %10s %10s\n' "fsync" "pipeline" "ops/s" "% of no" "p50 ms" "p99 ms"
# Setups alternate run by run, so drift in this shared machine's speed
# hits all of them alike.
SETUPS="no everysec always"
[ -n "${BASE:-}" ] && SETUPS="$SETUPS base-always"
[ -n "$WITH_REDIS" ] && SETUPS="$SETUPS redis-always"
for p in 1 16; do
    declare -A ops=() p50=() p99=()
    for run in $(seq 1 "$RUNS"); do
        for setup in $SETUPS; do
            dir="$WORK/fsync-$setup-$p-$run"; port=$(free_port)
            proto=()
            case $setup in
                redis-always)
                    mkdir -p "$dir"
                    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly yes \
                        --appendfsync always --logfile "$dir/log" --daemonize no &
                    BURROW_PID=$!; PIDS="$PIDS $BURROW_PID"
                    until redis-cli -p "$port" PING 2>/dev/null | grep -q PONG; do sleep 0.01; done
                    proto=(--protocol resp) ;;
                base-always)
                    t0=$(now); BURROW_BIN=$BASE start_burrow "$dir" "$port" --fsync always
                    wait_burrow "$t0" "$port" >/dev/null ;;
                *)
                    t0=$(now); start_burrow "$dir" "$port" --fsync "$setup"; wait_burrow "$t0" "$port" >/dev/null ;;
            esac
            line=$("$BENCH" "${proto[@]}" -p "$port" -t set -c 50 -P "$p" -d 32 -r 100000 -n "$REQUESTS" \
                --csv 2>/dev/null | tail -1)
            ops[$setup]+="$(echo "$line" | cut -d, -f10) "
            p50[$setup]+="$(echo "$line" | cut -d, -f12) "
            p99[$setup]+="$(echo "$line" | cut -d, -f14) "
            kill -9 "$BURROW_PID"; wait "$BURROW_PID" 2>/dev/null || true
            rm -rf "$dir" "$dir.log"
        done
    done
    base=$(printf '%s\n' ${ops[no]} | median)
    for setup in $SETUPS; do
        m=$(printf '%s\n' ${ops[$setup]} | median)
        pct=$(calc "int(1000 * $m / $base) / 10")
        printf '%-16s %-9s %14.0f %9s%% %10s %10s\n' "$setup" "$p" "$m" "$pct" \
            "$(printf '%s\n' ${p50[$setup]} | median)" "$(printf '%s\n' ${p99[$setup]} | median)"
    done
    if [ -n "$WITH_REDIS" ]; then
        a=$(printf '%s\n' ${ops[always]} | median); r=$(printf '%s\n' ${ops[redis-always]} | median)
        echo "pipeline $p: Burrow always / Redis appendfsync always = $(calc "int(100 * $a / $r + 0.5) / 100")"
    fi
    unset ops p50 p99
done
