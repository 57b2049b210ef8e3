#!/usr/bin/env bash
# A crashed leader's history after a restart: a 3-node async cluster
# (persistence on, fsync everysec) holding KEYS keys (16-byte keys, 32-byte
# values), the load stopped and the leader's WAL complete, then kill -9.
# The cases (CASES, default all three):
# - restart: the same leader restarted at once; per run, the time from the
#   restart to the leader answering PING, then to both followers being back
#   on the link with the leader's last index applied, and the leader's
#   full/partial resync counters (each follower may count twice: a
#   handshake sent while the leader recovers is given up after
#   link_timeout_ms and sent again).
# - failover: the others elect a new leader (time from the kill), which
#   takes EXTRA writes (default 20000); then the old leader is restarted:
#   the time from its restart to it answering PING, then to it following
#   the new leader with the link up and the new leader's last index
#   applied, and which resync it took (its follower INFO). Two cases:
#   `partial` (default backlog: the new leader serves the records it
#   received as a follower) and `full` (nodes 2 and 3 with a 256 KiB
#   backlog, which the EXTRA writes overrun: a full resync). A third,
#   `loaded` (not in the default CASES), kills the leader under a write
#   load instead: the old leader then often holds records the new one
#   never received, already applied, which take a full resync (see
#   README).
# Medians over the runs at the end.
#
# Usage: bench/leader-restart.sh [TARGET_DIR]  (default target/release, which
# must hold burrow-server, burrow-bench and burrow-cli). Environment: KEYS
# (default 1000000), RUNS (default 3), CASES, EXTRA. Run it against two
# builds in turn to compare them.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-target/release}; KEYS=${KEYS:-1000000}; RUNS=${RUNS:-3}
CASES=${CASES:-restart partial full}; EXTRA=${EXTRA:-20000}
SERVER=$T/burrow-server; BENCH=$T/burrow-bench; CLI=$T/burrow-cli
WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
info() { "$CLI" --port "$1" INFO replication 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
now_ms() { date +%s%3N; }
PIDS=""
stop_all() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    PIDS=""
}
# On a failure the runs' logs are kept (and named).
trap 'rc=$?; stop_all; if [ $rc = 0 ]; then rm -rf "$WORK"; else echo "logs kept in $WORK" >&2; fi' EXIT
# wait_until WHAT CONDITION...: polls CONDITION (a command) for up to 120 s.
wait_until() {
    local what=$1 deadline=$(($(date +%s) + 120))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $what" >&2; exit 1; }
        sleep 0.01
    done
}
caught_up() { # true once both followers stream and hold the leader's last index
    local last a2 a3
    last=$(info "${P[0]}" last_index); a2=$(info "${P[1]}" applied_index); a3=$(info "${P[2]}" applied_index)
    [ -n "$last" ] && [ "$(info "${P[1]}" link_status)" = up ] && [ "$(info "${P[2]}" link_status)" = up ] \
        && [ "${a2:-0}" -ge "$last" ] && [ "${a3:-0}" -ge "$last" ]
}
answers() { "$CLI" --port "$1" PING >/dev/null 2>&1; }
leader_wal_complete() {
    local last
    last=$(info "${P[0]}" last_index)
    [ -n "$last" ] && [ "$(info "${P[0]}" durable_index)" = "$last" ]
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR ? v[int((NR + 1) / 2)] : "-")}'; }
# cluster W [BACKLOG]: writes the cluster file for a run in W; nodes 2 and 3
# get --backlog-bytes BACKLOG if given. Sets P (ports) and ARGS2.
cluster() {
    W=$1; mkdir -p "$W"
    P=("$(free_port)" "$(free_port)" "$(free_port)")
    ARGS2=()
    [ -z "${2:-}" ] || ARGS2=(--backlog-bytes "$2")
    printf '[cluster]\ninitial_leader = 1\nreplication = "async"\nheartbeat_ms = 100\n' >"$W/cluster.toml"
    for i in 1 2 3; do
        printf '\n[[node]]\nid = %d\naddr = "127.0.0.1:%d"\ndata_dir = "%s/n%d"\n' $i "${P[$((i - 1))]}" "$W" $i >>"$W/cluster.toml"
    done
}
start() {
    local extra=()
    [ "$1" = 1 ] || extra=("${ARGS2[@]}")
    RUST_LOG=info "$SERVER" --config "$W/cluster.toml" --node-id "$1" --persistence on --fsync everysec \
        ${extra[@]+"${extra[@]}"} 2>>"$W/n$1.log" &
    eval "PID$1=$!"
    PIDS="$PIDS $!"
}
wrote_more() { [ "$(info "${P[0]}" last_index)" -ge $((KEYS + 50000)) ]; }
# Starts the cluster, loads KEYS keys, waits for the followers and the
# leader's WAL, then kills the leader (-9); with an argument, under a
# write load (once it wrote 50000 more records).
load_and_kill() {
    start 1; start 2; start 3
    wait_until "the leader" answers "${P[0]}"
    "$BENCH" -p "${P[0]}" -t set -n "$KEYS" -r "$KEYS" --sequential -d 32 -c 50 -P 64 -q >/dev/null
    wait_until "the followers to catch up" caught_up
    wait_until "the leader's WAL" leader_wal_complete
    local load=""
    if [ -n "${1:-}" ]; then
        "$BENCH" -p "${P[0]}" -t set -n 100000000 -r "$KEYS" -d 32 -c 50 -P 64 -q >/dev/null 2>&1 &
        load=$!
        wait_until "the write load" wrote_more
    fi
    kill -9 "$PID1"
    wait "$PID1" 2>/dev/null || true
    if [ -n "$load" ]; then
        kill "$load" 2>/dev/null || true
        wait "$load" 2>/dev/null || true
    fi
}
# restart_timed WHAT CONDITION: restarts node 1; t0 = then, t1 = once it
# answers PING, t2 = once CONDITION holds.
restart_timed() {
    t0=$(now_ms)
    start 1
    wait_until "node 1 to answer" answers "${P[0]}"
    t1=$(now_ms)
    wait_until "$1" "$2"
    t2=$(now_ms)
}
restart_case() {
    for run in $(seq 1 "$RUNS"); do
        cluster "$WORK/restart$run"
        load_and_kill
        restart_timed "the followers after the restart" caught_up
        echo "restart run $run: $KEYS keys; restart -> leader serving $((t1 - t0)) ms; -> both followers caught up" \
            "$((t2 - t1)) ms more (total $((t2 - t0)) ms); leader full_resyncs $(info "${P[0]}" full_resyncs)" \
            "partial_resyncs $(info "${P[0]}" partial_resyncs)"
        echo "$((t2 - t0))" >>"$WORK/restart.total"
        stop_all
    done
    echo "restart: median restart -> both followers caught up $(median <"$WORK/restart.total") ms"
}
NEW=0
elected() { # true once node 2 or 3 leads; sets NEW to its index in P
    local i
    for i in 1 2; do
        if [ "$(info "${P[$i]}" role)" = leader ]; then NEW=$i; return 0; fi
    done
    return 1
}
rejoined() { # true once node 1 follows the new leader with its last index applied
    local last a1
    last=$(info "${P[$NEW]}" last_index); a1=$(info "${P[0]}" applied_index)
    [ -n "$last" ] && [ "$(info "${P[0]}" role)" = follower ] && [ "$(info "${P[0]}" link_status)" = up ] \
        && [ "$(info "${P[0]}" leader_id)" = $((NEW + 1)) ] && [ "${a1:-0}" -ge "$last" ]
}
failover_case() { # KIND BACKLOG [UNDER_LOAD]
    local kind=$1 backlog=${2:-}
    for run in $(seq 1 "$RUNS"); do
        cluster "$WORK/failover-$kind$run" "$backlog"
        load_and_kill "${3:-}"
        tk=$(now_ms)
        wait_until "a new leader" elected
        te=$(now_ms)
        "$BENCH" -p "${P[$NEW]}" -t set -n "$EXTRA" -r "$KEYS" -d 32 -c 10 -P 16 -q >/dev/null
        restart_timed "the old leader to rejoin" rejoined
        echo "failover/$kind run $run: $KEYS keys; kill -> node $((NEW + 1)) elected $((te - tk)) ms;" \
            "old leader restart -> serving $((t1 - t0)) ms; -> caught up as a follower $((t2 - t1)) ms more" \
            "(total $((t2 - t0)) ms); its full_resyncs $(info "${P[0]}" full_resyncs)" \
            "partial_resyncs $(info "${P[0]}" partial_resyncs); new leader full_resyncs" \
            "$(info "${P[$NEW]}" full_resyncs) partial_resyncs $(info "${P[$NEW]}" partial_resyncs)"
        echo "$((t2 - t0))" >>"$WORK/failover-$kind.total"
        echo "$((t2 - t1))" >>"$WORK/failover-$kind.sync"
        stop_all
    done
    echo "failover/$kind: median old leader restart -> caught up $(median <"$WORK/failover-$kind.total") ms" \
        "(of which after serving: $(median <"$WORK/failover-$kind.sync") ms)"
}
for c in $CASES; do
    case $c in
        restart) restart_case ;;
        partial) failover_case partial ;;
        full) failover_case full 262144 ;;
        loaded) failover_case loaded "" 1 ;;
        *) echo "unknown case $c" >&2; exit 2 ;;
    esac
done
