#!/usr/bin/env bash
# Large records against heartbeats (issue 11, "Also fix"): a 2-node async
# cluster (node 1 `initial_leader`, `heartbeat_ms` 100, the default
# `election_timeout_ms` and `link_timeout_ms`) under CLIENTS clients ×
# pipeline 4 of 16 MiB SETs over 16 keys for SECS seconds on the leader.
# Every election, link drop and full resync during the load is one that
# slow bytes caused: nothing fails meanwhile. Then a SET and `WAIT 1 5000`
# on one connection of the leader: 1 if the follower holds the write.
#
# Prints, per node, term and elections_started (pre-votes included)
# before → after, the links dropped (log lines: the leader's "follower link
# closed" — of which "follower silent", a liveness failure, and "fell out
# of the backlog", a follower slower than the writes — and the follower's
# "replication link lost/down"), the full and partial resyncs the leader
# started, and the WAIT result.
#
# Environment: SECS (default 30), CLIENTS (default 8), PIPELINE (default 4),
# VALUE (bytes per value, default 16777000), BURROW_SERVER (binary, default
# target/release), BURROW_ARGS (extra flags for both nodes, default
# "--persistence off"), SKIP_BUILD=1, KEEP_WORK=1.
# Exit status 1 if an election started, a link dropped or WAIT returned < 1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${SECS:-30}
CLIENTS=${CLIENTS:-8}
PIPELINE=${PIPELINE:-4}
VALUE=${VALUE:-16777000}
DEFAULT_ARGS="--persistence off"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
cluster_bench_setup "$@"
count() { plain_log "$1" | grep -cE "$2" || true; }

P=("$(free_port)" "$(free_port)")
printf '[cluster]\ninitial_leader = 1\nreplication = "async"\nheartbeat_ms = 100\n' >"$WORK/cluster.toml"
for i in 1 2; do
    printf '\n[[node]]\nid = %d\naddr = "127.0.0.1:%d"\ndata_dir = "%s/n%d"\n' \
        "$i" "${P[$((i - 1))]}" "$WORK" "$i" >>"$WORK/cluster.toml"
done
for i in 1 2; do
    "$SERVER" --config "$WORK/cluster.toml" --node-id "$i" "${EXTRA[@]}" 2>"$WORK/n$i.log" &
    PIDS="$PIDS $!"
done
deadline=$(($(date +%s) + 60))
until [ "$(info "${P[0]}" role)" = leader ] && [ "$(info "${P[1]}" link_status)" = up ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "cluster not up within 60 s" >&2; KEEP_WORK=1; exit 1; }
    sleep 0.05
done

LEADER_LINES=$(plain_log 1 | wc -l)
FOLLOWER_LINES=$(plain_log 2 | wc -l)
declare -A TERM0=() ELEC0=()
for i in 1 2; do
    TERM0[$i]=$(info "${P[$((i - 1))]}" term)
    ELEC0[$i]=$(info "${P[$((i - 1))]}" elections_started)
done
echo "# $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M') UTC; load average $(cut -d' ' -f1 /proc/loadavg);" \
    "burrow-bench -t set -c $CLIENTS -P $PIPELINE -d $VALUE -r 16 --duration $SECS; server args: ${EXTRA[*]}"
"$BENCH" --hosts "127.0.0.1:${P[0]},127.0.0.1:${P[1]}" -t set -c "$CLIENTS" -P "$PIPELINE" -d "$VALUE" -r 16 \
    --duration "$SECS" --timeout 60 --json -q >"$WORK/bench.json" || echo "WARNING: burrow-bench exited non-zero" >&2
# WAIT right after the load: the follower must hold the write within 5 s.
started=$(date +%s%N)
WAITED=$(printf 'SET after-load 1\nWAIT 1 5000\n' | "$CLI" --port "${P[0]}" 2>&1 | tail -1 | tr -d '\r')
WAIT_MS=$((($(date +%s%N) - started) / 1000000))

field() { tr '{,' '\n\n' <"$WORK/bench.json" | sed -n "s/^\"$1\":\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" | head -1; }
echo "load: $(field ops_per_sec) ops/s, p99 $(field p99_ms) ms, errors $(field errors)"
echo
echo "| node | role | term before → after | elections_started before → after |"
echo "|---|---|---|---|"
STARTED=0
for i in 1 2; do
    port=${P[$((i - 1))]}
    e1=$(info "$port" elections_started)
    STARTED=$((STARTED + e1 - ELEC0[$i]))
    echo "| $i | $(info "$port" role) | ${TERM0[$i]} → $(info "$port" term) | ${ELEC0[$i]} → $e1 |"
done
leader_lines() { plain_log 1 | tail -n +"$((LEADER_LINES + 1))"; }
LEADER_DROPS=$(leader_lines | grep -cE 'follower link closed' || true)
BEHIND=$(leader_lines | grep -cE 'fell out of the backlog' || true)
SILENT=$(leader_lines | grep -cE 'follower silent' || true)
FOLLOWER_DROPS=$(plain_log 2 | tail -n +"$((FOLLOWER_LINES + 1))" | grep -cE 'replication link (lost|down)' || true)
# From the leader's log: a follower's INFO counts only since its side last started.
FULL=$(leader_lines | grep -cE 'full resync: streaming a snapshot' || true)
PARTIAL=$(leader_lines | grep -cE 'partial resync: streaming from the backlog' || true)
echo
echo "elections started (pre-votes included): $STARTED"
echo "links dropped: leader logged $LEADER_DROPS ($SILENT follower silent, $BEHIND fell out of the backlog)," \
    "follower logged $FOLLOWER_DROPS"
echo "resyncs during the load: $FULL full, $PARTIAL partial"
echo "WAIT 1 5000 after a SET: $WAITED ($WAIT_MS ms)"
leader_lines | grep -E 'follower link closed|role changed|held back|slowly' | head -5 |
    sed 's/^/leader: /' || true
plain_log 2 | tail -n +"$((FOLLOWER_LINES + 1))" | grep -E 'replication link|role changed|election' | head -5 |
    sed 's/^/follower: /' || true
[ "$STARTED" = 0 ] && [ "$LEADER_DROPS" = 0 ] && [ "$FOLLOWER_DROPS" = 0 ] && [ "$WAITED" = "(integer) 1" ]
