#!/usr/bin/env bash
# What linearizable reads cost (a quorum leader confirms with a majority,
# after each batch of reads, that it still leads: ReadIndex): GET
# throughput, p50 and p99 on the leader of a 3-node quorum cluster, for two
# server builds, alternated run by run so drift in this shared machine's
# speed hits both alike. Medians of RUNS.
#
#   BASE=/path/to/old/burrow-server NEW=target/release/burrow-server bench/linearizable-reads.sh
#
# Every process unpinned; persistence off on every node (the disk is not
# what is measured); 32-byte values, 100,000 keys loaded first. Workloads:
#   get-c50-P1    50 clients, one request in flight each;
#   get-c50-P16   50 clients, pipelines of 16;
#   get-c1-P1     one client: the latency a lone read pays.
#
# Environment: BASE, NEW (server binaries), RUNS (default 3), SECS per
# workload (default 5), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-3}
SECS=${SECS:-5}
KEYS=100000

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

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
calc() { awk "BEGIN { print $1 }"; }
info() { "$CLI" --port "$1" INFO replication 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
# wait_until WHAT CONDITION...: polls CONDITION (a command) for up to 60 s.
wait_until() {
    local what=$1 deadline=$(($(date +%s) + 60))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $what" >&2; exit 1; }
        sleep 0.01
    done
}
leads() { [ "$(info "$1" role)" = leader ] && [ "$(info "$1" connected_followers)" = 2 ]; }

# label, clients, pipeline
WORKLOADS=("get-c50-P1 50 1" "get-c50-P16 50 16" "get-c1-P1 1 1")
declare -A ops=() p50=() p99=()
for run in $(seq 1 "$RUNS"); do
    for build in base new; do
        server=$BASE; [ "$build" = new ] && server=$NEW
        W="$WORK/$build-$run"; mkdir -p "$W"
        P=("$(free_port)" "$(free_port)" "$(free_port)")
        printf '[cluster]\ninitial_leader = 1\nreplication = "quorum"\nheartbeat_ms = 100\n' >"$W/cluster.toml"
        for i in 1 2 3; do
            printf '\n[[node]]\nid = %d\naddr = "127.0.0.1:%d"\ndata_dir = "%s/n%d"\n' \
                "$i" "${P[$((i - 1))]}" "$W" "$i" >>"$W/cluster.toml"
        done
        for i in 1 2 3; do
            "$server" --config "$W/cluster.toml" --node-id "$i" --persistence off 2>"$W/n$i.log" &
            PIDS="$PIDS $!"
        done
        wait_until "node 1 to lead both followers" leads "${P[0]}"
        "$BENCH" -p "${P[0]}" -t set -n "$KEYS" -r "$KEYS" --sequential -d 32 -c 50 -P 16 -q >/dev/null
        for w in "${WORKLOADS[@]}"; do
            read -r name clients pipeline <<<"$w"
            line=$("$BENCH" -p "${P[0]}" -t get -c "$clients" -P "$pipeline" -d 32 -r "$KEYS" \
                --duration "$SECS" --csv --fail-on-error 2>/dev/null | tail -1)
            ops[$build,$name]+="$(echo "$line" | cut -d, -f10) "
            p50[$build,$name]+="$(echo "$line" | cut -d, -f12) "
            p99[$build,$name]+="$(echo "$line" | cut -d, -f14) "
        done
        [ "$build" = new ] && echo "run $run, new build: $(info "${P[0]}" read_rounds) read rounds," \
            "$(info "${P[0]}" read_batches) read batches" >&2
        stop_all
    done
done

echo "3-node quorum cluster, GET on the leader, 32-byte values, $KEYS keys, ${SECS}s per run;" \
    "medians of $RUNS, builds alternated"
printf '%-12s %12s %12s %8s %9s %9s %9s %9s\n' workload "base ops/s" "new ops/s" "new/base" \
    "base p50" "new p50" "base p99" "new p99"
for w in "${WORKLOADS[@]}"; do
    read -r name _ <<<"$w"
    b=$(printf '%s\n' ${ops[base,$name]} | median)
    n=$(printf '%s\n' ${ops[new,$name]} | median)
    printf '%-12s %12.0f %12.0f %8.3f %9s %9s %9s %9s\n' "$name" "$b" "$n" "$(calc "$n / $b")" \
        "$(printf '%s\n' ${p50[base,$name]} | median)" "$(printf '%s\n' ${p50[new,$name]} | median)" \
        "$(printf '%s\n' ${p99[base,$name]} | median)" "$(printf '%s\n' ${p99[new,$name]} | median)"
done
