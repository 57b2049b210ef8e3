#!/usr/bin/env bash
# Failover figures (issue 10), all processes on 127.0.0.1:
#   burrow   failover time of a 3-node Burrow cluster: leader SIGKILL -> first
#            write acknowledged by a new leader, seen by a client that writes
#            continuously (one SET at a time, a light load) and, from the
#            kill on, tries every other node in turn. The killed node is
#            restarted (with elections it rejoins as a follower) and the
#            cluster waited for before the next kill. A build without
#            elections never gets a new leader: the series then reports
#            "no new leader within TIMEOUT s" after its first kill.
#   redis    the same for Redis Sentinel: 1 master + 2 replicas + 3 sentinels
#            (quorum 2), once with down-after-milliseconds tuned to 1000 and
#            once with Sentinel's default (30000); the killed master is
#            restarted as a replica of the new one between kills.
#   term     the same for a graceful stop: the Burrow leader gets SIGTERM
#            instead of SIGKILL (a planned restart). The server does not hand
#            its leadership over on the way out, so the followers elect as
#            after a crash; this series shows what an operator's restart
#            costs the clients.
# (The former "restart" part, leader restart -> its first acknowledged
# quorum write, is gone: with elections a stopped leader is replaced before
# it is back and rejoins as a follower, so the time to write again is the
# series above; its rejoin is bench/leader-restart.sh's figure.)
# Medians and p95 (nearest rank) per series; the client is bench/failpoll.py.
#
# Environment: RUNS (kills per series, default 20), DEFAULT_RUNS (kills with
# Sentinel's default down-after, default 5: each takes 30+ s), PARTS
# (default "burrow term redis"), TIMEOUT (seconds a kill waits for a new
# leader, default 10; the default Sentinel series waits 60), REPLICATION
# (Burrow's mode, default quorum), CLUSTER_EXTRA (lines for the [cluster]
# table, e.g. 'election_timeout_ms = "150..300"'), BURROW_SERVER (the
# burrow-server binary to measure, default target/release), BURROW_ARGS
# (extra flags for every Burrow node), SKIP_BUILD=1, NO_REDIS=1, KEEP_WORK=1
# (keep logs). redis-server and redis-sentinel are installed with apt-get if
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-20}
DEFAULT_RUNS=${DEFAULT_RUNS:-5}
PARTS=${PARTS:-"burrow term redis"}
TIMEOUT=${TIMEOUT:-10}
REPLICATION=${REPLICATION:-quorum}
case "${1:-}" in
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    "") ;;
    *) echo "usage: $0 (settings through the environment; see --help)" >&2; exit 2 ;;
esac
read -r -a EXTRA <<<"${BURROW_ARGS:-}"

has_part() { [[ " $PARTS " == *" $1 "* ]]; }
if has_part redis && [ -z "${NO_REDIS:-}" ] && ! { command -v redis-server && command -v redis-sentinel; } >/dev/null; then
    echo "installing redis-server and redis-sentinel with apt-get" >&2
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-sentinel >/dev/null
fi
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin burrow-server
fi
SERVER="${BURROW_SERVER:-$ROOT/target/release/burrow-server}"
# No __pycache__ in bench/ (failpoll.py imports replpoll.py).
export PYTHONDONTWRITEBYTECODE=1
POLL=(python3 "$ROOT/bench/failpoll.py")
WORK=$(mktemp -d)
PIDS=" "
cleanup() {
    # shellcheck disable=SC2086
    stop $PIDS
    if [ -n "${KEEP_WORK:-}" ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# started PID: a server just started in the background. Disowned, so that
# the shell does not report its death (failpoll.py SIGKILLs servers); stop
# waits for it by polling instead.
started() {
    PIDS+="$1 "
    disown "$1"
}
gone() { # pid: exited (a zombie counts: its port is free)
    ! [ -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}
stop() { # pid...: kill -9, wait until gone (10 s at most), forget
    local p
    for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "$@"; do
        for _ in $(seq 1 1000); do gone "$p" && break; sleep 0.01; done
        PIDS=${PIDS// $p / }
    done
}
# summary NAME VALUE...: "NAME: median M ms, p95 P ms, max X ms (n=N)", and
# how many got no new leader at all.
summary() {
    local name=$1
    shift
    local ok none
    ok=$(printf '%s\n' "$@" | grep -v none | sort -g || true)
    none=$(printf '%s\n' "$@" | grep -c none || true)
    if [ -z "$ok" ]; then
        echo "$name: no new leader within the timeout in $none of $# tries"
        return
    fi
    printf '%s\n' "$ok" | awk -v name="$name" -v none="$none" '
        { v[NR] = $1 }
        END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            r = int(0.95 * NR); if (r < 0.95 * NR) r++
            printf "%s: median %.0f ms, p95 %.0f ms, max %.0f ms (n=%d", name, m, v[r], v[NR], NR
            if (none > 0) printf "; %d with no new leader within the timeout", none
            print ")"
        }'
}

CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
REDIS_VERSION=$(command -v redis-server >/dev/null && redis-server --version | awk '{print $3}' | cut -d= -f2 || echo none)
echo "# $(nproc) CPUs, ${CPU:-unknown CPU}; Redis ${REDIS_VERSION}; RUNS=$RUNS DEFAULT_RUNS=$DEFAULT_RUNS" \
    "TIMEOUT=${TIMEOUT}s; Burrow replication=$REPLICATION; $(date -u +%Y-%m-%d)"

# --- Burrow ---------------------------------------------------------------
BPORTS=()
BPID=()
burrow_cluster() { # writes $WORK/burrow/cluster.toml for 3 nodes on free ports
    local dir=$WORK/burrow
    rm -rf "$dir"
    mkdir -p "$dir"
    BPORTS=("$(free_port)" "$(free_port)" "$(free_port)")
    {
        printf '[cluster]\ninitial_leader = 1\nreplication = "%s"\nheartbeat_ms = 100\n' "$REPLICATION"
        printf '%s\n' "${CLUSTER_EXTRA:-}"
        for i in 1 2 3; do
            printf '\n[[node]]\nid = %d\naddr = "127.0.0.1:%d"\ndata_dir = "%s/node%d"\n' \
                "$i" "${BPORTS[$((i - 1))]}" "$dir" "$i"
        done
    } >"$dir/cluster.toml"
}
burrow_start() { # node id
    local i=$1
    "$SERVER" --config "$WORK/burrow/cluster.toml" --node-id "$i" --threads 1 "${EXTRA[@]}" \
        2>>"$WORK/burrow/node$i.log" &
    BPID[$i]=$!
    started $!
}
burrow_all_pids() { # PORT:PID,... of the three nodes
    local out="" i
    for i in 1 2 3; do out+="${BPORTS[$((i - 1))]}:${BPID[$i]},"; done
    echo "${out%,}"
}
burrow_healthy() {
    local ports
    ports=$(IFS=,; echo "${BPORTS[*]}")
    "${POLL[@]}" healthy burrow 60 "$ports" >/dev/null || {
        echo "burrow cluster not healthy; logs in $WORK/burrow" >&2
        KEEP_WORK=1
        exit 1
    }
}
burrow_id_of_port() {
    local i
    for i in 1 2 3; do
        if [ "${BPORTS[$((i - 1))]}" = "$1" ]; then echo "$i"; fi
    done
}
burrow_stop_all() {
    local i
    for i in 1 2 3; do stop "${BPID[$i]}"; done
}

# burrow_series SIGNAL: RUNS times, the leader gets SIGNAL (KILL or TERM)
# and is restarted once another node took a write.
burrow_series() {
    local sig=$1 run port ms id times=()
    burrow_cluster
    for i in 1 2 3; do burrow_start "$i"; done
    burrow_healthy
    for run in $(seq 1 "$RUNS"); do
        read -r port ms < <("${POLL[@]}" kill burrow "$TIMEOUT" "$(burrow_all_pids)" "$sig")
        [ "$port" = - ] && { echo "Burrow: no node takes writes before the kill" >&2; KEEP_WORK=1; exit 1; }
        id=$(burrow_id_of_port "$port")
        # A graceful stop is let finish (10 s at most) before stop's kill -9.
        if [ "$sig" = TERM ]; then
            for _ in $(seq 1 1000); do gone "${BPID[$id]}" && break; sleep 0.01; done
        fi
        stop "${BPID[$id]}"
        times+=("$ms")
        burrow_start "$id"
        burrow_healthy
        if [ "$ms" = none ] && [ "$run" = 1 ]; then
            echo "Burrow: no new leader within ${TIMEOUT} s of stopping the leader (no elections in this build?);" \
                "the series stops after its first kill"
            break
        fi
    done
    summary "Burrow ($REPLICATION), leader SIG$sig -> first acknowledged write" "${times[@]}"
    burrow_stop_all
}

if has_part burrow; then burrow_series KILL; fi
if has_part term; then burrow_series TERM; fi

# --- Redis Sentinel -------------------------------------------------------
RPORTS=()
RPID=()
SPORTS=()
redis_start() { # index, then replicaof port (empty: master)
    local i=$1 dir=$WORK/redis/r$1
    mkdir -p "$dir"
    local args=(--port "${RPORTS[$i]}" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir")
    [ -n "${2:-}" ] && args+=(--replicaof 127.0.0.1 "$2")
    redis-server "${args[@]}" >>"$dir/log" 2>&1 &
    RPID[$i]=$!
    started $!
}
redis_series() { # down-after ms ("" = Sentinel's default), kills, timeout
    local down_after=$1 kills=$2 timeout=$3 i
    rm -rf "$WORK/redis"
    mkdir -p "$WORK/redis"
    RPORTS=("$(free_port)" "$(free_port)" "$(free_port)")
    SPORTS=("$(free_port)" "$(free_port)" "$(free_port)")
    redis_start 0
    redis_start 1 "${RPORTS[0]}"
    redis_start 2 "${RPORTS[0]}"
    local spids=()
    for i in 0 1 2; do
        local conf=$WORK/redis/sentinel$i.conf
        {
            printf 'port %d\nbind 127.0.0.1\ndir %s\n' "${SPORTS[$i]}" "$WORK/redis"
            printf 'sentinel monitor mymaster 127.0.0.1 %d 2\n' "${RPORTS[0]}"
            [ -n "$down_after" ] && printf 'sentinel down-after-milliseconds mymaster %d\n' "$down_after"
        } >"$conf"
        redis-sentinel "$conf" >>"$WORK/redis/sentinel$i.log" 2>&1 &
        spids+=($!)
        started $!
    done
    local rports sports
    rports=$(IFS=,; echo "${RPORTS[*]}")
    sports=$(IFS=,; echo "${SPORTS[*]}")
    local master
    master=$("${POLL[@]}" healthy redis 120 "$rports" "$sports") || { KEEP_WORK=1; exit 1; }
    local times=() run spec port ms killed
    for run in $(seq 1 "$kills"); do
        spec=""
        for i in 0 1 2; do spec+="${RPORTS[$i]}:${RPID[$i]},"; done
        read -r port ms < <("${POLL[@]}" kill redis "$timeout" "${spec%,}")
        [ "$port" = - ] && { echo "Redis: no node takes writes before the kill" >&2; KEEP_WORK=1; exit 1; }
        times+=("$ms")
        for i in 0 1 2; do
            if [ "${RPORTS[$i]}" = "$port" ]; then killed=$i; fi
        done
        stop "${RPID[$killed]}"
        [ "$ms" = none ] && { echo "Redis: no new master within $timeout s; stopping this series" >&2; break; }
        # The new master, once the other survivor replicates it and every
        # sentinel names it.
        local left=""
        for i in 0 1 2; do
            if [ "$i" != "$killed" ]; then left+="${RPORTS[$i]},"; fi
        done
        master=$("${POLL[@]}" healthy redis 120 "${left%,}" "$sports") || { KEEP_WORK=1; exit 1; }
        redis_start "$killed" "$master"
        "${POLL[@]}" healthy redis 120 "$rports" "$sports" >/dev/null || { KEEP_WORK=1; exit 1; }
    done
    summary "Redis Sentinel, down-after-milliseconds ${down_after:-30000 (default)}: master SIGKILL -> first acknowledged write" \
        "${times[@]}"
    stop "${RPID[@]}" "${spids[@]}"
}

if has_part redis && [ -z "${NO_REDIS:-}" ]; then
    redis_series 1000 "$RUNS" "$TIMEOUT"
    if [ "$DEFAULT_RUNS" -gt 0 ]; then
        redis_series "" "$DEFAULT_RUNS" 60
    fi
fi
