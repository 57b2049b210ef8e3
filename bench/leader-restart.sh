#!/usr/bin/env bash
# Followers' resync after the leader is killed (kill -9) and restarted: a
# 3-node async cluster (persistence on, fsync everysec) holding KEYS keys
# (16-byte keys, 32-byte values); per run, the time from the restart to the
# leader answering PING, then to both followers being back on the link with
# the leader's last index applied, and the leader's full/partial resync
# counters (each follower may count twice: a handshake sent while the
# leader recovers is given up after link_timeout_ms and sent again).
#
# Usage: bench/leader-restart.sh [TARGET_DIR]  (default target/release, which
# must hold burrow-server, burrow-bench and burrow-cli). Environment: KEYS
# (default 1000000), RUNS (default 3). Run it against two builds in turn to
# compare them.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-target/release}; KEYS=${KEYS:-1000000}; RUNS=${RUNS:-3}
SERVER=$T/burrow-server; BENCH=$T/burrow-bench; CLI=$T/burrow-cli
WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
info() { "$CLI" --port "$1" INFO replication 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
now_ms() { date +%s%3N; }
PIDS=""
stop_all() { for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done; PIDS=""; }
trap 'stop_all; rm -rf "$WORK"' EXIT
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
for run in $(seq 1 "$RUNS"); do
    W=$WORK/run$run; mkdir -p "$W"
    P=("$(free_port)" "$(free_port)" "$(free_port)")
    printf '[cluster]\ninitial_leader = 1\nreplication = "async"\nheartbeat_ms = 100\n' >"$W/cluster.toml"
    for i in 1 2 3; do
        printf '\n[[node]]\nid = %d\naddr = "127.0.0.1:%d"\ndata_dir = "%s/n%d"\n' $i "${P[$((i - 1))]}" "$W" $i >>"$W/cluster.toml"
    done
    start() {
        RUST_LOG=info "$SERVER" --config "$W/cluster.toml" --node-id "$1" --persistence on --fsync everysec 2>>"$W/n$1.log" &
        eval "PID$1=$!"
        PIDS="$PIDS $!"
    }
    start 1; start 2; start 3
    wait_until "the leader" answers "${P[0]}"
    "$BENCH" -p "${P[0]}" -t set -n "$KEYS" -r "$KEYS" --sequential -d 32 -c 50 -P 64 -q >/dev/null
    wait_until "the followers to catch up" caught_up
    wait_until "the leader's WAL" leader_wal_complete
    kill -9 "$PID1"
    wait "$PID1" 2>/dev/null || true
    t0=$(now_ms)
    start 1
    wait_until "the restarted leader" answers "${P[0]}"
    t1=$(now_ms)
    wait_until "the followers after the restart" caught_up
    t2=$(now_ms)
    echo "run $run: $KEYS keys; restart -> leader serving $((t1 - t0)) ms; -> both followers caught up" \
        "$((t2 - t1)) ms more (total $((t2 - t0)) ms); leader full_resyncs $(info "${P[0]}" full_resyncs)" \
        "partial_resyncs $(info "${P[0]}" partial_resyncs)"
    stop_all
done
