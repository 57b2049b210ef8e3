#!/usr/bin/env bash
# Burrow vs Redis, measured by one load generator (burrow-bench, which speaks
# both Burrow's protocol and Redis's RESP2).
#
#   bench/compare-redis.sh               throughput/latency table + memory per key
#   bench/compare-redis.sh --crosscheck  burrow-bench vs redis-benchmark, both on Redis:
#                                        burrow-bench must reach >= 90 % or it is the bottleneck
#   bench/compare-redis.sh --uds         Unix domain sockets: Burrow and Redis each over TCP and
#                                        over its Unix socket (--unix-socket / unixsocket), the four
#                                        alternated run by run (UDS_CASES="50/1 50/16",
#                                        UDS_PLACEMENTS="unpinned")
#
# Environment:
#   RUNS=3            runs per case and server (alternating servers); the median is reported
#   REQUESTS=N        requests per run for every case (default: per case, ~2-3 s each)
#   MEMORY_KEYS=1000000  keys loaded for the memory measurement (0 skips it)
#   CASES="50/1 50/16 1/1"          clients/pipeline cases of the comparison
#   CROSSCHECK_CASES="50/16 50/1"   clients/pipeline cases of --crosscheck
#   SKIP_BUILD=1      use the existing target/release binaries
#   BURROW_ARGS=...   extra burrow-server flags (e.g. "--threads 1")
#
# Placements (applied to BOTH the server and the load generator):
#   unpinned  the scheduler decides
#   1core     server and burrow-bench both under `taskset -c 0`
# Servers are restarted for each placement. Redis runs with --save '' --appendonly no,
# Burrow with --persistence off.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-3}
MEMORY_KEYS=${MEMORY_KEYS:-1000000}
MODE=compare
case "${1:-}" in
    --crosscheck) MODE=crosscheck ;;
    --uds) MODE=uds ;;
    "") ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--crosscheck|--uds]" >&2; exit 2 ;;
esac

if ! command -v redis-server >/dev/null; then
    echo "redis-server not found; install it with:" >&2
    echo "  apt-get install -y redis-server redis-tools" >&2
    exit 1
fi
if [ "$MODE" = crosscheck ] && ! command -v redis-benchmark >/dev/null; then
    echo "redis-benchmark not found; install it with:" >&2
    echo "  apt-get install -y redis-tools" >&2
    exit 1
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin burrow-server --bin burrow-bench
fi
BENCH="$ROOT/target/release/burrow-bench"
SERVER="$ROOT/target/release/burrow-server"

WORK=$(mktemp -d)
REDIS_PID=""
BURROW_PID=""
REDIS_PORT=""
BURROW_PORT=""

stop_servers() {
    for pid in $REDIS_PID $BURROW_PID; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $REDIS_PID $BURROW_PID; do
        wait "$pid" 2>/dev/null || true
    done
    REDIS_PID=""
    BURROW_PID=""
}
cleanup() {
    stop_servers
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port, json_field and median: bench/lib.sh.
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# wait_ping PROTOCOL PORT: poll until the server answers PING (10 s deadline).
wait_ping() {
    local deadline=$((SECONDS + 10))
    until "$BENCH" --protocol "$1" -p "$2" -t ping -n 1 -c 1 -q --fail-on-error >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            echo "server ($1) on port $2 did not answer PING within 10 s" >&2
            exit 1
        fi
        sleep 0.1
    done
}

# start_redis / start_burrow PLACEMENT: a fresh server under the placement.
pin_for() { [ "$1" = 1core ] && echo "taskset -c 0" || true; }
start_redis() {
    local placement=$1
    shift
    REDIS_PORT=$(free_port)
    $(pin_for "$placement") redis-server --save '' --appendonly no --port "$REDIS_PORT" --bind 127.0.0.1 \
        --daemonize no "$@" >"$WORK/redis-$placement.log" 2>&1 &
    REDIS_PID=$!
    wait_ping resp "$REDIS_PORT"
}
start_burrow() {
    local placement=$1
    shift
    BURROW_PORT=$(free_port)
    # Persistence off, like Redis with --save '' --appendonly no.
    # shellcheck disable=SC2086 # BURROW_ARGS is a list of flags
    RUST_LOG=warn $(pin_for "$placement") "$SERVER" --port "$BURROW_PORT" --persistence off ${BURROW_ARGS:-} "$@" \
        >>"$WORK/burrow-$placement.log" 2>&1 &
    BURROW_PID=$!
    wait_ping burrow "$BURROW_PORT"
}
start_servers() {
    start_redis "$1"
    start_burrow "$1"
}

# cpu_of CMD...: runs CMD, prints its stdout, and leaves its user+sys CPU
# seconds in $WORK/cpu (bash's `time`, so no extra tool is needed).
cpu_of() {
    local TIMEFORMAT='%U %S'
    { time "$@" >"$WORK/out" 2>/dev/null; } 2>"$WORK/cpu"
    cat "$WORK/out"
}
# cpu_us N: the last cpu_of's CPU in microseconds per request, for a run of
# N requests per test over two tests (set and get).
cpu_us() { awk -v n="$1" '{printf "%.3f", ($1 + $2) * 1e6 / (2 * n)}' "$WORK/cpu"; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# cpu_ticks PID: the process's user+system CPU so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Requests per run for CLIENTS/PIPELINE, aiming at ~2-3 s on a small machine.
requests_for() {
    if [ -n "${REQUESTS:-}" ]; then echo "$REQUESTS"; return; fi
    case "$1/$2" in
        50/1) echo 500000 ;;
        50/16) echo 2500000 ;;
        1/1) echo 300000 ;;
        *) echo 200000 ;;
    esac
}

CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "# $(nproc) CPUs, ${CPU:-unknown CPU}; $(redis-server --version | awk '{print $1, $3}'); RUNS=$RUNS"

if [ "$MODE" = crosscheck ]; then
    # Both tools against the same Redis, same settings and placement,
    # alternating, median of RUNS. On one core the generator competes with
    # the server for CPU, so that placement also shows its efficiency.
    N=${REQUESTS:-2000000}
    CASES=${CROSSCHECK_CASES:-"50/16 50/1"}
    : >"$WORK/cross"
    for placement in unpinned 1core; do
        read -r -a pin <<<"$(pin_for "$placement")"
        start_redis "$placement"
        for case in $CASES; do
            c=${case%/*}; P=${case#*/}
            n=$N
            [ "$P" = 1 ] && [ -z "${REQUESTS:-}" ] && n=300000
            args=(-t set,get -n "$n" -c "$c" -P "$P" -d 32 -r 100000)
            echo "# [$placement] ${pin[*]} redis-benchmark -p $REDIS_PORT ${args[*]} --csv"
            echo "# [$placement] ${pin[*]} burrow-bench --protocol resp -p $REDIS_PORT ${args[*]} --json"
            for run in $(seq "$RUNS"); do
                out=$(cpu_of "${pin[@]}" redis-benchmark -p "$REDIS_PORT" "${args[@]}" --csv)
                for t in SET GET; do
                    rps=$(printf '%s\n' "$out" | awk -F'","' -v t="\"$t" '$1==t {print $2}')
                    echo "$placement $case $t redis-benchmark $rps $(cpu_us "$n")" >>"$WORK/cross"
                done
                out=$(cpu_of "${pin[@]}" "$BENCH" --protocol resp -p "$REDIS_PORT" "${args[@]}" --json -q)
                for t in set get; do
                    echo "$placement $case ${t^^} burrow-bench $(json_field "$out" "$t" ops_per_sec) $(cpu_us "$n")" \
                        >>"$WORK/cross"
                    errs=$(json_field "$out" "$t" errors)
                    [ "$errs" = 0 ] || echo "WARNING: burrow-bench saw $errs errors on $t" >&2
                done
            done
        done
        stop_servers
    done
    echo
    printf '%-9s %-6s %-5s %16s %16s %8s %14s %14s\n' placement "c/P" test "redis-benchmark" "burrow-bench" ratio \
        "rb cpu us/req" "bb cpu us/req"
    fail=0
    for placement in unpinned 1core; do
        for case in $CASES; do
            for t in SET GET; do
                pick() { awk -v p="$placement" -v c="$case" -v t="$t" -v s="$1" -v f="$2" \
                    '$1==p && $2==c && $3==t && $4==s {print $f}' "$WORK/cross" | median; }
                rb=$(pick redis-benchmark 5); bb=$(pick burrow-bench 5)
                ratio=$(awk -v a="$bb" -v b="$rb" 'BEGIN {printf "%.1f%%", 100*a/b}')
                printf '%-9s %-6s %-5s %16.0f %16.0f %8s %14.3f %14.3f\n' "$placement" "$case" "$t" "$rb" "$bb" "$ratio" \
                    "$(pick redis-benchmark 6)" "$(pick burrow-bench 6)"
                if awk -v a="$bb" -v b="$rb" 'BEGIN {exit !(a < 0.9*b)}'; then fail=1; fi
            done
        done
    done
    echo "(median of $RUNS runs, requests per second; ratio = burrow-bench/redis-benchmark;"
    echo " cpu us/req = the load generator's own user+sys CPU per request, SET and GET runs together)"
    if [ $fail = 1 ]; then
        echo "FAIL: burrow-bench below 90 % of redis-benchmark: the generator is the bottleneck" >&2
        exit 1
    fi
    echo "OK: burrow-bench reaches >= 90 % of redis-benchmark on every case"
    exit 0
fi

if [ "$MODE" = uds ]; then
    # Four targets, same placement, one load generator: each server over
    # loopback TCP and over its Unix socket, alternated run by run (the
    # order rotates so that drift hits all alike); medians of RUNS.
    CASES=${UDS_CASES:-"50/1 50/16"}
    TARGETS="burrow-tcp burrow-uds redis-tcp redis-uds"
    : >"$WORK/uds"
    for placement in ${UDS_PLACEMENTS:-unpinned}; do
        read -r -a pin <<<"$(pin_for "$placement")"
        start_redis "$placement" --unixsocket "$WORK/redis.sock" --unixsocketperm 700
        start_burrow "$placement" --unix-socket "$WORK/burrow.sock"
        for case in $CASES; do
            c=${case%/*}; P=${case#*/}
            n=$(requests_for "$c" "$P")
            args=(-t set,get -n "$n" -c "$c" -P "$P" -d 32 -r 100000 --json -q)
            echo "# [$placement] ${pin[*]} burrow-bench ${args[*]}, with -p PORT (tcp) or -s SOCKET (uds);" \
                "--protocol resp for Redis" >&2
            for run in $(seq "$RUNS"); do
                read -r -a order <<<"$TARGETS"
                shift_by=$(((run - 1) % 4))
                order=("${order[@]:$shift_by}" "${order[@]:0:$shift_by}")
                for target in "${order[@]}"; do
                    case $target in
                        burrow-tcp) to=(--protocol burrow -p "$BURROW_PORT") ;;
                        burrow-uds) to=(--protocol burrow -s "$WORK/burrow.sock") ;;
                        redis-tcp) to=(--protocol resp -p "$REDIS_PORT") ;;
                        redis-uds) to=(--protocol resp -s "$WORK/redis.sock") ;;
                    esac
                    pid=$BURROW_PID
                    [ "${target%-*}" = redis ] && pid=$REDIS_PID
                    before=$(cpu_ticks "$pid")
                    out=$(cpu_of "${pin[@]}" "$BENCH" "${to[@]}" "${args[@]}")
                    gen=$(cpu_us "$n")
                    # The server's own CPU per request (SET and GET runs together):
                    # the kernel's TCP work shows here, whatever the machine's load.
                    cpu=$(awk -v a="$before" -v b="$(cpu_ticks "$pid")" -v hz="$(getconf CLK_TCK)" -v n="$n" \
                        'BEGIN {printf "%.3f", (b - a) / hz * 1e6 / (2 * n)}')
                    for t in set get; do
                        errs=$(json_field "$out" "$t" errors)
                        [ "$errs" = 0 ] || echo "WARNING: $target $t saw $errs errors" >&2
                        echo "$placement $t $case $target $(json_field "$out" "$t" ops_per_sec)" \
                            "$(json_field "$out" "$t" p99_ms) $cpu $gen" >>"$WORK/uds"
                    done
                done
            done
        done
        stop_servers
    done
    echo
    printf '%-9s %-4s %7s %8s %12s %12s %12s %12s %9s %9s %9s %9s\n' placement test clients pipeline \
        "burrow-tcp" "burrow-uds" "redis-tcp" "redis-uds" "B uds/tcp" "R uds/tcp" "uds B/R" "tcp B/R"
    for placement in ${UDS_PLACEMENTS:-unpinned}; do
        for case in $CASES; do
            for t in set get; do
                pick() { awk -v p="$placement" -v t="$t" -v c="$case" -v s="$1" -v f="$2" \
                    '$1==p && $2==t && $3==c && $4==s {print $f}' "$WORK/uds" | median; }
                bt=$(pick burrow-tcp 5); bu=$(pick burrow-uds 5); rt=$(pick redis-tcp 5); ru=$(pick redis-uds 5)
                ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
                printf '%-9s %-4s %7s %8s %12.0f %12.0f %12.0f %12.0f %9s %9s %9s %9s\n' "$placement" "$t" \
                    "${case%/*}" "${case#*/}" "$bt" "$bu" "$rt" "$ru" "$(ratio "$bu" "$bt")" "$(ratio "$ru" "$rt")" \
                    "$(ratio "$bu" "$ru")" "$(ratio "$bt" "$rt")"
            done
        done
    done
    echo
    printf '%-9s %-4s %7s %8s %12s %12s %12s %12s\n' placement test clients pipeline \
        "B-tcp p99" "B-uds p99" "R-tcp p99" "R-uds p99"
    for placement in ${UDS_PLACEMENTS:-unpinned}; do
        for case in $CASES; do
            for t in set get; do
                pick() { awk -v p="$placement" -v t="$t" -v c="$case" -v s="$1" -v f="$2" \
                    '$1==p && $2==t && $3==c && $4==s {print $f}' "$WORK/uds" | median; }
                printf '%-9s %-4s %7s %8s %12.3f %12.3f %12.3f %12.3f\n' "$placement" "$t" "${case%/*}" \
                    "${case#*/}" "$(pick burrow-tcp 6)" "$(pick burrow-uds 6)" "$(pick redis-tcp 6)" \
                    "$(pick redis-uds 6)"
            done
        done
    done
    echo
    printf '%-9s %7s %8s %-10s %12s %12s %12s %12s\n' placement clients pipeline cpu \
        "burrow-tcp" "burrow-uds" "redis-tcp" "redis-uds"
    for placement in ${UDS_PLACEMENTS:-unpinned}; do
        for case in $CASES; do
            for what in server generator total; do
                pick() { awk -v p="$placement" -v c="$case" -v s="$1" -v w="$what" \
                    '$1==p && $2=="set" && $3==c && $4==s {print (w=="server" ? $7 : w=="generator" ? $8 : $7+$8)}' \
                    "$WORK/uds" | median; }
                printf '%-9s %7s %8s %-10s %12.2f %12.2f %12.2f %12.2f\n' "$placement" "${case%/*}" "${case#*/}" \
                    "$what" "$(pick burrow-tcp)" "$(pick burrow-uds)" "$(pick redis-tcp)" "$(pick redis-uds)"
            done
        done
    done
    echo "(median of $RUNS runs; ops/s, p99 in ms; cpu = user+sys CPU in us per request of the server, of"
    echo " the load generator, and both, SET and GET runs together: over loopback TCP the kernel delivers"
    echo " to the receiver in the sender's context, so only the total compares fairly; B = Burrow, R = Redis)"
    exit 0
fi

# ---- comparison ---------------------------------------------------------
CASES=${CASES:-"50/1 50/16 1/1"}
: >"$WORK/results"
for placement in unpinned 1core; do
    read -r -a pin <<<"$(pin_for "$placement")"
    start_servers "$placement"
    for case in $CASES; do
        c=${case%/*}; P=${case#*/}
        n=$(requests_for "$c" "$P")
        args=(-t set,get -n "$n" -c "$c" -P "$P" -d 32 -r 100000 --json -q)
        echo "# [$placement] ${pin[*]} burrow-bench ${args[*]} (burrow port $BURROW_PORT; --protocol resp for Redis)" >&2
        for run in $(seq "$RUNS"); do
            # Alternate which server goes first, so drift hits both alike.
            if [ $((run % 2)) = 1 ]; then order="burrow redis"; else order="redis burrow"; fi
            for server in $order; do
                if [ "$server" = burrow ]; then
                    out=$("${pin[@]}" "$BENCH" --protocol burrow -p "$BURROW_PORT" "${args[@]}")
                else
                    out=$("${pin[@]}" "$BENCH" --protocol resp -p "$REDIS_PORT" "${args[@]}")
                fi
                for t in set get; do
                    ops=$(json_field "$out" "$t" ops_per_sec)
                    p99=$(json_field "$out" "$t" p99_ms)
                    errs=$(json_field "$out" "$t" errors)
                    [ "$errs" = 0 ] || echo "WARNING: $server $t saw $errs errors" >&2
                    echo "$placement $t $case $server $ops $p99" >>"$WORK/results"
                done
            done
        done
    done
    stop_servers
done

echo
printf '%-9s %-4s %7s %8s %13s %13s %7s %10s %10s\n' \
    placement test clients pipeline "burrow ops/s" "redis ops/s" ratio "burrow p99" "redis p99"
for placement in unpinned 1core; do
    for case in $CASES; do
        for t in set get; do
            pick() { awk -v p="$placement" -v t="$t" -v c="$case" -v s="$1" -v f="$2" \
                '$1==p && $2==t && $3==c && $4==s {print $f}' "$WORK/results" | median; }
            bo=$(pick burrow 5); ro=$(pick redis 5); bp=$(pick burrow 6); rp=$(pick redis 6)
            printf '%-9s %-4s %7s %8s %13.0f %13.0f %7.2f %10.3f %10.3f\n' "$placement" "$t" "${case%/*}" "${case#*/}" \
                "$bo" "$ro" "$(awk -v a="$bo" -v b="$ro" 'BEGIN {print a/b}')" "$bp" "$rp"
        done
    done
done
echo "(median of $RUNS runs; p99 in ms; ratio = Burrow/Redis)"

# ---- memory -------------------------------------------------------------
# Burrow keeps an op-log backlog for replication (8 MiB by default) that
# fills up during the load; Redis allocates its replication backlog (1 MiB)
# only once a replica connects. So Burrow is measured twice: as configured
# by default, and with a 1 MiB backlog, which shows the dataset's own cost.
if [ "$MEMORY_KEYS" -gt 0 ]; then
    echo
    printf '%-22s %12s %12s %14s\n' server "rss before" "rss after" "bytes per key"
    for server in burrow "burrow-1MiB-backlog" redis; do
        case $server in
            burrow) start_burrow unpinned; pid=$BURROW_PID; proto=burrow; port=$BURROW_PORT ;;
            burrow-1MiB-backlog)
                start_burrow unpinned --backlog-bytes 1048576; pid=$BURROW_PID; proto=burrow; port=$BURROW_PORT ;;
            redis) start_redis unpinned; pid=$REDIS_PID; proto=resp; port=$REDIS_PORT ;;
        esac
        before=$(rss_kb "$pid")
        # 16-byte keys (key:NNNNNNNNNNNN), 32-byte values, each key written exactly once.
        out=$("$BENCH" --protocol "$proto" -p "$port" -t set --sequential -n "$MEMORY_KEYS" -r "$MEMORY_KEYS" \
            -d 32 -c 50 -P 16 --json -q)
        errs=$(json_field "$out" set errors)
        [ "$errs" = 0 ] || echo "WARNING: $server load saw $errs errors" >&2
        after=$(rss_kb "$pid")
        printf '%-22s %9s kB %9s kB %14.1f\n' "$server" "$before" "$after" \
            "$(awk -v a="$after" -v b="$before" -v n="$MEMORY_KEYS" 'BEGIN {print (a-b)*1024/n}')"
        stop_servers
    done
    echo "($MEMORY_KEYS keys of 16 bytes with 32-byte values; RSS from /proc/PID/status VmRSS)"
fi
