#!/usr/bin/env bash
# What elections cost steady-state writes (issue 10: "within 5 % of
# today's"): SET throughput and p99 on the leader of a 3-node cluster, in
# quorum and in async mode, for two server builds — the last fixed-role
# build (BASE) and one with elections (NEW) — alternated run by run (the
# order flips every run) so drift in this shared machine's speed hits both
# alike. Medians of RUNS, and new/base.
#
#   BASE=/path/to/fixed-role/burrow-server bench/election-writes.sh
#
# Same cluster file for both builds (initial_leader = 1, heartbeat_ms =
# 100, no election_timeout_ms: NEW runs its default), every process
# unpinned, persistence off on every node (the disk is not what is
# measured), 32-byte values over 100,000 random keys, a fresh cluster per
# build and run. Workloads: set-c50-P1 (50 clients, one request in flight
# each) and set-c50-P16 (pipelines of 16).
#
# CALLGRIND=1 counts instead the instructions the leader executes (its whole
# run, under valgrind's callgrind, as bench/callgrind.sh does) for REQUESTS
# SETs per workload, one cluster per build, mode and workload, one run each
# (the count does not depend on the machine's load, which wall-clock
# figures on a shared machine do). The leader under valgrind is slow, so
# both builds get link_timeout_ms = 5000 and NEW election_timeout_ms =
# "5000..10000" (its followers would otherwise depose it); the count per
# write does not depend on either.
#
# Environment: BASE, NEW (server binaries), RUNS (default 3), SECS per
# workload (default 5), MODES (default "quorum async"), BURROW_ARGS (flags
# for every node, default "--persistence off"), CALLGRIND=1, REQUESTS (per
# workload with CALLGRIND, default 300000), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-3}
SECS=${SECS:-5}
MODES=${MODES:-"quorum async"}
REQUESTS=${REQUESTS:-300000}
case "${1:-}" in
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    "") ;;
    *) echo "usage: $0 (settings through the environment; see --help)" >&2; exit 2 ;;
esac
read -r -a EXTRA <<<"${BURROW_ARGS:---persistence off}"

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin burrow-server --bin burrow-bench --bin burrow-cli
fi
NEW=${NEW:-$ROOT/target/release/burrow-server}
BASE=${BASE:?set BASE to the burrow-server binary to compare against}
BENCH="$ROOT/target/release/burrow-bench"
CLI="$ROOT/target/release/burrow-cli"
WORK=$(mktemp -d)
PIDS=""
stop_all() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    PIDS=""
}
trap 'stop_all; rm -rf "$WORK"' EXIT
if [ -n "${CALLGRIND:-}" ]; then
    command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install -y valgrind" >&2; exit 1; }
fi
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
calc() { awk "BEGIN { print $1 }"; }
info() { "$CLI" --port "$1" INFO replication 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
wait_until() { # WHAT CONDITION...: polls CONDITION for up to 60 s
    local what=$1 deadline=$(($(date +%s) + 60))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $what" >&2; exit 1; }
        sleep 0.01
    done
}
leads() { [ "$(info "$1" role)" = leader ] && [ "$(info "$1" connected_followers)" = 2 ]; }

# label, clients, pipeline
WORKLOADS=("set-c50-P1 50 1" "set-c50-P16 50 16")
declare -A ops=() p99=()
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "# $(nproc) CPUs, ${CPU:-unknown CPU}; $(date -u '+%Y-%m-%d %H:%M') UTC; RUNS=$RUNS SECS=$SECS;" \
    "node flags: ${EXTRA[*]}"
# start_cluster BUILD MODE DIR [WRAPPER...]: a fresh 3-node cluster of BUILD
# (node 1 run under WRAPPER, if any), once node 1 leads both followers.
# Ports in P, node 1's pid in LEADER.
start_cluster() {
    local build=$1 mode=$2 dir=$3 server=$BASE i
    shift 3
    [ "$build" = new ] && server=$NEW
    mkdir -p "$dir"
    P=("$(free_port)" "$(free_port)" "$(free_port)")
    printf '[cluster]\ninitial_leader = 1\nreplication = "%s"\nheartbeat_ms = 100\n' "$mode" >"$dir/cluster.toml"
    if [ -n "${CALLGRIND:-}" ]; then
        printf 'link_timeout_ms = 5000\n' >>"$dir/cluster.toml"
        [ "$build" = new ] && printf 'election_timeout_ms = "5000..10000"\n' >>"$dir/cluster.toml"
    fi
    for i in 1 2 3; do
        printf '\n[[node]]\nid = %d\naddr = "127.0.0.1:%d"\ndata_dir = "%s/n%d"\n' \
            "$i" "${P[$((i - 1))]}" "$dir" "$i" >>"$dir/cluster.toml"
    done
    "$@" "$server" --config "$dir/cluster.toml" --node-id 1 "${EXTRA[@]}" 2>"$dir/n1.log" &
    LEADER=$!
    PIDS="$PIDS $LEADER"
    for i in 2 3; do
        "$server" --config "$dir/cluster.toml" --node-id "$i" "${EXTRA[@]}" 2>"$dir/n$i.log" &
        PIDS="$PIDS $!"
    done
    wait_until "node 1 to lead both followers" leads "${P[0]}"
}

if [ -n "${CALLGRIND:-}" ]; then
    echo "| mode | workload | base instructions | new instructions | new/base | per SET base / new |"
    echo "|---|---|---:|---:|---:|---|"
    for mode in $MODES; do
        for w in "${WORKLOADS[@]}"; do
            read -r name clients pipeline <<<"$w"
            declare -A ir=()
            for build in base new; do
                W="$WORK/cg-$build-$mode-$name"
                start_cluster "$build" "$mode" "$W" valgrind --tool=callgrind --callgrind-out-file="$W/out"
                "$BENCH" -p "${P[0]}" -t set -c "$clients" -P "$pipeline" -d 32 -r 100000 -n "$REQUESTS" \
                    --timeout 60 --fail-on-error -q >/dev/null
                kill -INT "$LEADER"
                wait "$LEADER" || true
                stop_all
                ir[$build]=$(callgrind_annotate "$W/out" 2>/dev/null |
                    awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}')
                echo "$mode $name $build: ${ir[$build]} instructions" >&2
                rm -rf "$W"
            done
            printf '| %s | %s | %s | %s | %.3f | %.0f / %.0f |\n' "$mode" "$name" "${ir[base]}" "${ir[new]}" \
                "$(calc "${ir[new]} / ${ir[base]}")" "$(calc "${ir[base]} / $REQUESTS")" "$(calc "${ir[new]} / $REQUESTS")"
        done
    done
    echo "(leader's whole run, start and stop included; $REQUESTS SETs per workload, 50 clients, 32-byte values)"
    exit 0
fi

for run in $(seq 1 "$RUNS"); do
    order="base new"
    [ $((run % 2)) = 0 ] && order="new base"
    for mode in $MODES; do
        for build in $order; do
            W="$WORK/$build-$mode-$run"
            start_cluster "$build" "$mode" "$W"
            for w in "${WORKLOADS[@]}"; do
                read -r name clients pipeline <<<"$w"
                line=$("$BENCH" -p "${P[0]}" -t set -c "$clients" -P "$pipeline" -d 32 -r 100000 \
                    --duration "$SECS" --csv 2>"$W/bench.err" | tail -1) || true
                o=$(echo "$line" | cut -d, -f10)
                e=$(echo "$line" | cut -d, -f8)
                if [ "${e:-x}" != 0 ]; then
                    echo "WARNING: run $run $mode $build $name: ${e:-?} errors ($(tail -1 "$W/bench.err"));" \
                        "node 1 is now $(info "${P[0]}" role), term $(info "${P[0]}" term)" >&2
                fi
                ops[$build,$mode,$name]+="$o "
                p99[$build,$mode,$name]+="$(echo "$line" | cut -d, -f14) "
                echo "run $run $mode $build $name: $o ops/s" >&2
            done
            stop_all
            rm -rf "$W"
        done
    done
done

echo "3-node cluster, SET on the leader, 32-byte values, 100,000 keys, ${SECS}s per run; medians of $RUNS," \
    "builds alternated"
echo
echo "| mode | workload | base ops/s | new ops/s | new/base | base p99 ms | new p99 ms |"
echo "|---|---|---:|---:|---:|---:|---:|"
for mode in $MODES; do
    for w in "${WORKLOADS[@]}"; do
        read -r name _ <<<"$w"
        b=$(printf '%s\n' ${ops[base,$mode,$name]} | median)
        n=$(printf '%s\n' ${ops[new,$mode,$name]} | median)
        printf '| %s | %s | %.0f | %.0f | %.3f | %s | %s |\n' "$mode" "$name" "$b" "$n" "$(calc "$n / $b")" \
            "$(printf '%s\n' ${p99[base,$mode,$name]} | median)" "$(printf '%s\n' ${p99[new,$mode,$name]} | median)"
    done
done
