#!/usr/bin/env bash
# Spurious elections in steady state (issue 10): a 3-node cluster with the
# default election timeout, all processes on 127.0.0.1 and unpinned, under a
# long client load on the leader (burrow-bench, 50 clients, mixed SET/GET).
# Nothing fails meanwhile, so every election is a spurious one: a follower
# that missed heartbeats because the machine was busy. Reports, per node,
# `term` and `elections_started` (INFO replication: elections a node
# started, pre-vote rounds included) before and after the load and the
# "role changed" lines its log gained meanwhile (printed, with their
# reasons); the load average, sampled every 10 s; and the count the issue
# asks for: elections during the load, i.e. how far the cluster's term
# rose, and pre-vote rounds that did not raise it (both should be 0). The
# load is given every node (--hosts), so it follows the leader if one is
# elected meanwhile.
#
# Environment: SECS (load duration, default 600), REPLICATION (default
# quorum), RATIO (SET:GET of the mixed load, default 1:1), CLIENTS (default
# 50), PIPELINE (default 1), BURROW_SERVER (binary, default target/release),
# BURROW_ARGS (extra flags for every node), SKIP_BUILD=1, KEEP_WORK=1.
# Exit status 1 if any election was started during the load.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${SECS:-600}
REPLICATION=${REPLICATION:-quorum}
RATIO=${RATIO:-1:1}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-1}
DEFAULT_ARGS=""
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
cluster_bench_setup "$@"
role_changes() { plain_log "$1" | grep -c 'role changed' || true; }
healthy() { # one leader, node 1, both followers linked
    [ "$(info "${P[0]}" role)" = leader ] && [ "$(info "${P[0]}" connected_followers)" = 2 ] &&
        [ "$(info "${P[1]}" link_status)" = up ] && [ "$(info "${P[2]}" link_status)" = up ]
}

P=("$(free_port)" "$(free_port)" "$(free_port)")
# No election_timeout_ms: the default is what is measured.
printf '[cluster]\ninitial_leader = 1\nreplication = "%s"\nheartbeat_ms = 100\n' "$REPLICATION" >"$WORK/cluster.toml"
for i in 1 2 3; do
    printf '\n[[node]]\nid = %d\naddr = "127.0.0.1:%d"\ndata_dir = "%s/n%d"\n' \
        "$i" "${P[$((i - 1))]}" "$WORK" "$i" >>"$WORK/cluster.toml"
done
for i in 1 2 3; do
    "$SERVER" --config "$WORK/cluster.toml" --node-id "$i" "${EXTRA[@]}" 2>"$WORK/n$i.log" &
    PIDS="$PIDS $!"
done
deadline=$(($(date +%s) + 60))
until healthy; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "cluster not healthy within 60 s" >&2; KEEP_WORK=1; exit 1; }
    sleep 0.05
done

declare -A TERM0=() ELEC0=() ROLE0=() LINES0=()
for i in 1 2 3; do
    LINES0[$i]=$(plain_log "$i" | wc -l)
    TERM0[$i]=$(info "${P[$((i - 1))]}" term)
    ELEC0[$i]=$(info "${P[$((i - 1))]}" elections_started)
    ROLE0[$i]=$(role_changes "$i")
done
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "# $(nproc) CPUs, ${CPU:-unknown CPU}; $(date -u '+%Y-%m-%d %H:%M') UTC; replication=$REPLICATION;" \
    "election_timeout_ms=$(info "${P[1]}" election_timeout_ms) (default); load: burrow-bench -t mixed" \
    "--ratio $RATIO -c $CLIENTS -P $PIPELINE --duration $SECS on the leader"

# Load average every 10 s while the load runs.
(while sleep 10; do cut -d' ' -f1 /proc/loadavg; done) >"$WORK/loadavg" &
SAMPLER=$!
PIDS="$PIDS $SAMPLER"
"$BENCH" --hosts "127.0.0.1:${P[0]},127.0.0.1:${P[1]},127.0.0.1:${P[2]}" -t mixed --ratio "$RATIO" -c "$CLIENTS" -P "$PIPELINE" -d 32 -r 100000 \
    --duration "$SECS" --json -q >"$WORK/bench.json" || echo "WARNING: burrow-bench exited non-zero" >&2
kill "$SAMPLER" 2>/dev/null || true

field() { tr '{,' '\n\n' <"$WORK/bench.json" | sed -n "s/^\"$1\"://p" | head -1; }
ERRORS=$(field errors)
echo "load: $(field ops_per_sec) ops/s, p99 $(field p99_ms) ms, errors ${ERRORS:-?} (unknown outcome $(field unknown))"
sort -g "$WORK/loadavg" | awk '{v[NR]=$1} END {if (NR) printf "load average (1 min, every 10 s): min %s, median %s, max %s (%d samples)\n", v[1], v[int((NR+1)/2)], v[NR], NR}'
echo
echo "| node | role | term before → after | elections_started before → after | role changes in the log during the load |"
echo "|---|---|---|---|---:|"
TERM_BEFORE=0
TERM_AFTER=0
STARTED=0
for i in 1 2 3; do
    port=${P[$((i - 1))]}
    t1=$(info "$port" term)
    e1=$(info "$port" elections_started)
    r1=$(role_changes "$i")
    [ "${TERM0[$i]}" -gt "$TERM_BEFORE" ] && TERM_BEFORE=${TERM0[$i]}
    [ "$t1" -gt "$TERM_AFTER" ] && TERM_AFTER=$t1
    STARTED=$((STARTED + e1 - ELEC0[$i]))
    echo "| $i | $(info "$port" role) | ${TERM0[$i]} → $t1 | ${ELEC0[$i]} → $e1 | $((r1 - ROLE0[$i])) |"
done
for i in 1 2 3; do
    plain_log "$i" | tail -n +"$((LINES0[$i] + 1))" | grep 'role changed' | sed "s/^/node $i: /" || true
done
echo
echo "spurious elections during ${SECS} s of load: $((TERM_AFTER - TERM_BEFORE)) (the term rose from" \
    "$TERM_BEFORE to $TERM_AFTER); elections started, pre-vote rounds included: $STARTED"
[ "$STARTED" = 0 ] && [ "$TERM_AFTER" = "$TERM_BEFORE" ]
