#!/usr/bin/env bash
# Replication figures for the README:
#   1. full sync of KEYS keys (16-byte keys, 32-byte values) to a new
#      follower, Burrow vs Redis: seconds from the follower process's start
#      until it holds every key;
#   2. leader SET throughput with 2 followers attached vs a standalone server
#      (50 clients, pipeline 16), persistence off and on (fsync everysec);
#   3. follower lag right after that load: records behind, and ms until both
#      followers have applied the leader's last index;
#   4. (PARTS=quorum) quorum writes under --fsync always on every node: SET
#      ops/s, p50 and p99 on the leader of a 3-node quorum cluster at 1 and 50
#      clients (pipeline 1) — a write is acknowledged once a follower has
#      fsynced it too, so its latency is about one round trip plus one fsync
#      on each side. With BASE (another burrow-server build) both builds are
#      measured, alternated run by run.
#
# Full sync is timed from the follower's process start, for both servers (a
# Redis replica started with --replicaof connects at once). Redis runs three
# ways: disk-based (repl-diskless-sync no), diskless (yes, delay 0; the
# replica still stores the RDB in a file before loading it), and diskless on
# both sides (repl-diskless-load on-empty-db). Parts 2 and 3 measure Redis the
# same way (a master with 2 replicas vs alone) for context. Polling goes
# through bench/replpoll.py, which keeps one connection per server.
#
# Environment: KEYS (default 1000000), RUNS (default 3; medians are reported),
# BURROW_SERVER (the burrow-server binary to measure, default target/release),
# REQUESTS (per throughput run, default 3000000), SKIP_BUILD=1,
# NO_REDIS=1 (Burrow only), QSECS (seconds per part-4 run, default 5), MODES (persistence of part 2, default "off everysec"),
# PARTS (default "sync throughput"), BURROW_ARGS (extra flags for every Burrow
# server, e.g. "--backlog-bytes 67108864"), KEEP_WORK=1 (keep logs).
#
# PLACEMENT (default "shared"): every process unpinned, so the scheduler
# places the servers and the load generator on the machine's cores — on a
# small machine the followers' work then comes out of the leader's CPU.
# "split": the leader (or the server alone) and the load generator pinned to
# CPU 0, followers/replicas to CPU 1 — followers on hardware of their own, as
# in a real deployment; the ratio then shows what feeding followers costs the
# leader. Needs at least 2 CPUs. Setups alternate run by run, so drift in
# a shared machine's speed hits all of them alike.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
KEYS=${KEYS:-1000000}
RUNS=${RUNS:-3}
REQUESTS=${REQUESTS:-3000000}
MODES=${MODES:-"off everysec"}
PARTS=${PARTS:-"sync throughput"}
PLACEMENT=${PLACEMENT:-shared}
case $PLACEMENT in
    shared) LEAD_PIN=(); FOLLOW_PIN=() ;;
    split) LEAD_PIN=(taskset -c 0); FOLLOW_PIN=(taskset -c 1) ;;
    *) echo "PLACEMENT must be shared or split" >&2; exit 2 ;;
esac
case "${1:-}" in
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    "") ;;
    *) echo "usage: $0 (settings through the environment; see --help)" >&2; exit 2 ;;
esac
read -r -a EXTRA <<<"${BURROW_ARGS:-}"

WITH_REDIS=1
if [ -n "${NO_REDIS:-}" ]; then
    WITH_REDIS=""
elif ! command -v redis-server >/dev/null; then
    echo "redis-server not found; install it with:" >&2
    echo "  apt-get install -y redis-server redis-tools" >&2
    echo "(or NO_REDIS=1 $0 for Burrow's figures alone)" >&2
    exit 1
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin burrow-server --bin burrow-bench --bin burrow-cli
fi
SERVER="${BURROW_SERVER:-$ROOT/target/release/burrow-server}"
BENCH="$ROOT/target/release/burrow-bench"
CLI="$ROOT/target/release/burrow-cli"
POLL=(python3 "$ROOT/bench/replpoll.py")
WORK=$(mktemp -d)
PIDS=" "
cleanup() {
    # A follower replpoll.py started and stop_spawned has not stopped yet.
    if [ -f "$WORK/follower.pid" ]; then kill -9 "$(cat "$WORK/follower.pid")" 2>/dev/null || true; fi
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP_WORK:-}" ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
calc() { awk "BEGIN { print $1 }"; }
median() {
    sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "nan"} else if (NR%2) {print v[(NR+1)/2]} else {printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}}'
}
med() { printf '%s\n' "$@" | median; }
stop() { # pid...: kill -9, reap, and forget them (a reused pid is never killed later)
    local p
    for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
    for p in "$@"; do PIDS=${PIDS// $p / }; done
}
# stop_spawned PID: kill -9 a follower replpoll.py started (not this shell's
# child, so no `wait`) and wait until it is gone, so its port is free again.
stop_spawned() {
    kill -9 "$1" 2>/dev/null || true
    for _ in $(seq 1 500); do
        if ! [ -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; then
            rm -f "$WORK/follower.pid"
            return 0
        fi
        sleep 0.01
    done
    echo "follower $1 did not exit" >&2
    exit 1
}
# json_field JSON TEST KEY: a number from burrow-bench --json output.
json_field() {
    printf '%s' "$1" | tr '{' '\n' | grep "\"test\":\"$2\"" | tr ',' '\n' | grep "\"$3\":" | head -1 | cut -d: -f2
}
plain() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }
# logged_ms FILE PATTERN: the ms= field of FILE's last line matching PATTERN.
logged_ms() { plain "$1" | grep "$2" | tail -1 | sed -n 's/.* ms=\([0-9]*\).*/\1/p'; }

wait_burrow() { # port: until it answers PING (60 s deadline)
    for _ in $(seq 1 6000); do
        "$CLI" --port "$1" PING >/dev/null 2>&1 && return
        sleep 0.01
    done
    echo "burrow on port $1 never answered" >&2
    exit 1
}
wait_redis() {
    for _ in $(seq 1 6000); do
        redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return
        sleep 0.01
    done
    echo "redis on port $1 never answered" >&2
    exit 1
}
info_field() { # port field: from Burrow's INFO replication
    "$CLI" --port "$1" INFO replication | tr -d '\r' | sed -n "s/^$2://p"
}

# cluster_file FILE DIR PORT...: an async cluster, node i at PORT i, led by node 1.
cluster_file() {
    local file=$1 dir=$2 id=0
    shift 2
    printf '[cluster]\ninitial_leader = 1\nreplication = "async"\nheartbeat_ms = 100\n' >"$file"
    for port in "$@"; do
        id=$((id + 1))
        printf '\n[[node]]\nid = %d\naddr = "127.0.0.1:%d"\ndata_dir = "%s/n%d"\n' "$id" "$port" "$dir" "$id" >>"$file"
    done
}
# Burrow's persistence flags for a mode: off, or on with that fsync policy.
burrow_persist() { [ "$1" = off ] && echo "--persistence off" || echo "--persistence on --fsync $1"; }
start_node() { # file id log persistence-mode: a cluster member, pid in NODE_PID
    local pin=("${FOLLOW_PIN[@]}")
    [ "$2" = 1 ] && pin=("${LEAD_PIN[@]}")
    # shellcheck disable=SC2046 # the persistence flags are a list
    RUST_LOG=info "${pin[@]}" "$SERVER" --config "$1" --node-id "$2" $(burrow_persist "$4") "${EXTRA[@]}" 2>>"$3" &
    NODE_PID=$!
    PIDS="$PIDS$NODE_PID "
}
start_redis() { # port dir mode extra-args...: pid in REDIS_PID
    local port=$1 dir=$2 mode=$3
    shift 3
    mkdir -p "$dir"
    redis_mode_args "$mode"
    local pin=("${LEAD_PIN[@]}")
    [[ " $* " == *" --replicaof "* ]] && pin=("${FOLLOW_PIN[@]}")
    "${pin[@]}" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" "${RA[@]}" --logfile "$dir/log" \
        --daemonize no "$@" &
    REDIS_PID=$!
    PIDS="$PIDS$REDIS_PID "
}
redis_mode_args() { # mode: persistence arguments as an array in RA
    if [ "$1" = off ]; then RA=(--save "" --appendonly no); else RA=(--save "" --appendonly yes --appendfsync "$1"); fi
}
# redis log "HH:MM:SS.mmm" of the last line matching PATTERN, in ms of the day.
redis_log_ms() {
    grep "$2" "$1" | tail -1 | awk '{split($5, t, ":"); printf "%d\n", (t[1]*3600 + t[2]*60 + t[3]) * 1000}'
}

CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
REDIS_VERSION=$([ -n "$WITH_REDIS" ] && redis-server --version | awk '{print $3}' | sed 's/v=//' || echo "-")
PLACED=$([ "$PLACEMENT" = split ] && echo "leader and load generator on CPU 0, followers on CPU 1" \
    || echo "all processes unpinned")
echo "# $(nproc) CPUs, ${CPU:-unknown CPU}; Redis ${REDIS_VERSION}; KEYS=$KEYS RUNS=$RUNS REQUESTS=$REQUESTS;" \
    "$PLACED"

want() { [[ " $PARTS " == *" $1 "* ]]; }
if want sync; then
    # ---- 1. full sync ---------------------------------------------------------
    echo "== 1. Full sync of $KEYS keys to a new follower ($RUNS runs)" >&2
    declare -A SYNC=() PH1=() PH2=()
    # Burrow: one leader per persistence mode, filled once; a fresh follower
    # (empty data directory) per run.
    declare -A BL_PORT=() BF_PORT=() BL_FILE=() BL_TARGET=() BL_PID=()
    for mode in off everysec; do
        dir="$WORK/sync-$mode"; mkdir -p "$dir"
        BL_PORT[$mode]=$(free_port); BF_PORT[$mode]=$(free_port); BL_FILE[$mode]="$dir/cluster.toml"
        cluster_file "${BL_FILE[$mode]}" "$dir" "${BL_PORT[$mode]}" "${BF_PORT[$mode]}"
        start_node "${BL_FILE[$mode]}" 1 "$dir/n1.log" "$mode"
        BL_PID[$mode]=$NODE_PID
        wait_burrow "${BL_PORT[$mode]}"
        "$BENCH" -p "${BL_PORT[$mode]}" -t set -n "$KEYS" -r "$KEYS" --sequential -d 32 -c 50 -P 64 -q >/dev/null
        BL_TARGET[$mode]=$(info_field "${BL_PORT[$mode]}" last_index)
        [ "$("$CLI" --port "${BL_PORT[$mode]}" DBSIZE)" = "$KEYS" ] || { echo "leader fill failed" >&2; exit 1; }
    done
    if [ -n "$WITH_REDIS" ]; then
        RM_DIR="$WORK/sync-redis-master"; RM_PORT=$(free_port); RR_PORT=$(free_port)
        start_redis "$RM_PORT" "$RM_DIR" off
        RM_PID=$REDIS_PID
        wait_redis "$RM_PORT"
        "$BENCH" --protocol resp -p "$RM_PORT" -t set -n "$KEYS" -r "$KEYS" --sequential -d 32 -c 50 -P 64 -q >/dev/null
        [ "$(redis-cli -p "$RM_PORT" DBSIZE)" = "$KEYS" ] || { echo "redis fill failed" >&2; exit 1; }
    fi

    SYNC_VARIANTS="burrow-off burrow-everysec"
    [ -n "$WITH_REDIS" ] && SYNC_VARIANTS="$SYNC_VARIANTS redis-disk redis-diskless redis-diskless-load"
    for run in $(seq 1 "$RUNS"); do
        order=$SYNC_VARIANTS
        [ $((run % 2)) = 0 ] && order=$(echo "$SYNC_VARIANTS" | tr ' ' '\n' | tac | tr '\n' ' ')
        for v in $order; do
            case $v in
                burrow-*)
                    mode=${v#burrow-}; dir="$WORK/sync-$mode"
                    rm -rf "$dir/n2"; : >"$dir/n2.log"
                    # shellcheck disable=SC2046 # the persistence flags are a list
                    s=$(RUST_LOG=info "${POLL[@]}" spawn-sync burrow "$WORK/follower.pid" "$dir/n2.log" \
                        "${BF_PORT[$mode]}" "${BL_TARGET[$mode]}" "$KEYS" -- \
                        "$SERVER" --config "${BL_FILE[$mode]}" --node-id 2 $(burrow_persist "$mode") "${EXTRA[@]}")
                    stop_spawned "$(cat "$WORK/follower.pid")"
                    PH1[$v]+="$(logged_ms "$dir/n1.log" 'full resync: snapshot sent') "
                    PH2[$v]+="$(logged_ms "$dir/n2.log" 'full resync: snapshot loaded') "
                    ;;
                redis-*)
                    rdir="$WORK/sync-redis-$run-$v"; extra=()
                    case $v in
                        redis-disk) redis-cli -p "$RM_PORT" CONFIG SET repl-diskless-sync no >/dev/null ;;
                        redis-diskless*)
                            redis-cli -p "$RM_PORT" CONFIG SET repl-diskless-sync yes >/dev/null
                            redis-cli -p "$RM_PORT" CONFIG SET repl-diskless-sync-delay 0 >/dev/null
                            [ "$v" = redis-diskless-load ] && extra=(--repl-diskless-load on-empty-db)
                            ;;
                    esac
                    mkdir -p "$rdir"
                    s=$("${POLL[@]}" spawn-sync redis "$WORK/follower.pid" "$rdir/out" "$RR_PORT" 0 "$KEYS" -- \
                        redis-server --port "$RR_PORT" --bind 127.0.0.1 --dir "$rdir" --save "" --appendonly no \
                        --logfile "$rdir/log" --daemonize no --replicaof 127.0.0.1 "$RM_PORT" "${extra[@]}")
                    stop_spawned "$(cat "$WORK/follower.pid")"
                    # Transfer: full resync accepted -> loading starts; load: -> loaded.
                    a=$(redis_log_ms "$rdir/log" 'Full resync from master')
                    b=$(redis_log_ms "$rdir/log" 'Loading DB in memory')
                    c=$(redis_log_ms "$rdir/log" 'Done loading RDB\|MASTER <-> REPLICA sync: Finished with success')
                    if [ "$v" = redis-diskless-load ]; then
                        PH1[$v]+="$((c - a)) "; PH2[$v]+="- "
                    else
                        PH1[$v]+="$((b - a)) "; PH2[$v]+="$((c - b)) "
                    fi
                    rm -rf "$rdir"
                    ;;
            esac
            SYNC[$v]+="$s "
            echo "  run $run $v: ${s} s" >&2
        done
    done
    stop "${BL_PID[@]}"
    if [ -n "$WITH_REDIS" ]; then stop "$RM_PID"; fi
    fi

if want throughput; then
    # ---- 2 + 3. throughput with 2 followers vs none, then lag ----------------
    echo "== 2. SET throughput, 2 followers vs none; 3. lag after the load ($RUNS runs)" >&2
    BENCH_ARGS=(-t set -c 50 -P 16 -d 32 -r 100000 -n "$REQUESTS" --json -q)
    declare -A OPS=() P99=() LAGREC=() LAGMS=() RESYNCS=() CPU_L=() CPU_F=() CPU_B=()
    # Each setup: start it, run the load through replpoll (which reads the
    # followers' positions as soon as the load ends), stop it.
    redis_full_syncs() { redis-cli -p "$1" INFO stats | tr -d '\r' | sed -n 's/^sync_full://p'; }
    # cpu_s PID...: user+sys CPU seconds the processes have used so far.
    cpu_s() {
        local p t=0
        for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
        calc "$t / $(getconf CLK_TCK)"
    }
    run_setup() { # setup mode run
        local setup=$1 mode=$2 run=$3 dir="$WORK/tp-$1-$2-$3" res out
        mkdir -p "$dir"
        local key="$setup $mode" p1 p2 p3 lpid fpids="" flist=- proto=burrow
        p1=$(free_port); p2=$(free_port); p3=$(free_port)
        case $setup in
            burrow-alone)
                # shellcheck disable=SC2046
                RUST_LOG=info "${LEAD_PIN[@]}" "$SERVER" --port "$p1" --data-dir "$dir/n1" $(burrow_persist "$mode") "${EXTRA[@]}" \
                    2>>"$dir/n1.log" &
                lpid=$!; PIDS="$PIDS$lpid "
                wait_burrow "$p1"
                ;;
            burrow-2f)
                cluster_file "$dir/cluster.toml" "$dir" "$p1" "$p2" "$p3"
                start_node "$dir/cluster.toml" 1 "$dir/n1.log" "$mode"; lpid=$NODE_PID
                for id in 2 3; do start_node "$dir/cluster.toml" "$id" "$dir/n$id.log" "$mode"; fpids="$fpids $NODE_PID"; done
                for p in $p1 $p2 $p3; do wait_burrow "$p"; done
                "${POLL[@]}" wait-cluster burrow "$p1" "$p2" "$p3"
                flist="$p2,$p3"
                ;;
            redis-alone)
                proto=resp
                start_redis "$p1" "$dir/r1" "$mode"; lpid=$REDIS_PID
                wait_redis "$p1"
                ;;
            redis-2r)
                proto=resp
                start_redis "$p1" "$dir/r1" "$mode" --repl-diskless-sync yes --repl-diskless-sync-delay 0; lpid=$REDIS_PID
                wait_redis "$p1"
                for p in $p2 $p3; do
                    start_redis "$p" "$dir/r$p" "$mode" --replicaof 127.0.0.1 "$p1"; fpids="$fpids $REDIS_PID"
                    wait_redis "$p"
                done
                "${POLL[@]}" wait-cluster resp "$p1" "$p2" "$p3"
                flist="$p2,$p3"
                ;;
        esac
        local resyncs_before=0 l0 f0=0 l1 f1=0
        [ "$setup" = burrow-2f ] && resyncs_before=$(info_field "$p1" full_resyncs)
        [ "$setup" = redis-2r ] && resyncs_before=$(redis_full_syncs "$p1")
        l0=$(cpu_s "$lpid"); [ -n "$fpids" ] && f0=$(cpu_s $fpids)
        res=$("${POLL[@]}" run-lag "$proto" "$p1" "$flist" "$dir/out" -- \
            "${LEAD_PIN[@]}" "$BENCH" --protocol "$proto" -p "$p1" "${BENCH_ARGS[@]}")
        l1=$(cpu_s "$lpid"); [ -n "$fpids" ] && f1=$(cpu_s $fpids)
        case $setup in
            burrow-2f) RESYNCS[$key]+="$(($(info_field "$p1" full_resyncs) - resyncs_before)) " ;;
            redis-2r) RESYNCS[$key]+="$(($(redis_full_syncs "$p1") - resyncs_before)) " ;;
        esac
        # shellcheck disable=SC2086
        stop "$lpid" $fpids
        out=$(cat "$dir/out")
        local errs; errs=$(json_field "$out" set errors)
        [ "$errs" = 0 ] || echo "WARNING: $key run $run saw $errs errors" >&2
        OPS[$key]+="$(json_field "$out" set ops_per_sec) "
        P99[$key]+="$(json_field "$out" set p99_ms) "
        local lagrec lagms lagall bcpu
        read -r lagrec lagms lagall bcpu <<<"$res"
        if [ "$lagrec" != - ]; then
            LAGREC[$key]+="$(echo "$lagrec" | tr ',' '\n' | sort -g | tail -1) "
            LAGMS[$key]+="$lagall "
            # Followers: the mean per follower, load and catch-up included.
            CPU_F[$key]+="$(calc "($f1 - $f0) / 2 * 1e6 / $REQUESTS") "
        fi
        CPU_L[$key]+="$(calc "($l1 - $l0) * 1e6 / $REQUESTS") "
        CPU_B[$key]+="$(calc "$bcpu * 1e6 / $REQUESTS") "
        echo "  run $run $key: $(json_field "$out" set ops_per_sec) ops/s, lag $lagrec, catch-up ms $lagms," \
            "cpu s: leader $(calc "$l1 - $l0") followers $(calc "$f1 - $f0") bench $bcpu" >&2
        if [ -z "${KEEP_WORK:-}" ]; then rm -rf "$dir"; fi
    }
    SETUPS="burrow-alone burrow-2f"
    [ -n "$WITH_REDIS" ] && SETUPS="$SETUPS redis-alone redis-2r"
    for mode in $MODES; do
        for run in $(seq 1 "$RUNS"); do
            order=$SETUPS
            [ $((run % 2)) = 0 ] && order=$(echo "$SETUPS" | tr ' ' '\n' | tac | tr '\n' ' ')
            for setup in $order; do run_setup "$setup" "$mode" "$run"; done
        done
    done
fi

# ---- summary ---------------------------------------------------------------
echo
echo "Command: \`RUNS=$RUNS KEYS=$KEYS REQUESTS=$REQUESTS PLACEMENT=$PLACEMENT${BURROW_ARGS:+ BURROW_ARGS=\"$BURROW_ARGS\"} bench/replication.sh\`;" \
    "$(nproc) CPUs, ${CPU:-unknown CPU};" \
    "Redis ${REDIS_VERSION}; $PLACED; medians of $RUNS runs."
if want sync; then
    echo
    echo "**Full sync of $KEYS keys** (16-byte keys, 32-byte values) to a new, empty follower: seconds from the"
    echo "follower process's start until it reports the sync done and DBSIZE = $KEYS (polled every 10 ms)."
    echo
    echo "| follower | start → synced (s) | phases (ms, from the logs) |"
    echo "|---|---:|---|"
    phase_text() { # variant
        local a b
        a=$(printf '%.0f' "$(med ${PH1[$1]})")
        b=$(printf '%.0f' "$(printf '%s\n' ${PH2[$1]} | grep -v '^-$' | median)")
        case $1 in
            burrow-*) echo "leader sends snapshot $a (follower loads it as it arrives), install $b after the last byte" ;;
            redis-diskless-load) echo "transfer + load $a" ;;
            redis-*) echo "transfer $a, load $b" ;;
        esac
    }
    for v in $SYNC_VARIANTS; do
        case $v in
            burrow-off) name="Burrow, persistence off (snapshot loaded as it arrives)" ;;
            burrow-everysec) name="Burrow, persistence on, fsync everysec (loaded as it arrives, also written to a file)" ;;
            redis-disk) name="Redis, disk-based (\`repl-diskless-sync no\`: master writes an RDB, then sends it)" ;;
            redis-diskless) name="Redis, diskless (\`repl-diskless-sync yes\`, delay 0; replica writes the RDB to a file, then loads it)" ;;
            redis-diskless-load) name="Redis, diskless both sides (… and \`repl-diskless-load on-empty-db\`)" ;;
        esac
        echo "| $name | $(med ${SYNC[$v]}) | $(phase_text "$v") |"
    done
    if [ -n "$WITH_REDIS" ]; then
        echo
        echo "| Burrow/Redis (time, lower is better) | Redis disk-based | Redis diskless | Redis diskless both sides |"
        echo "|---|---:|---:|---:|"
        for b in burrow-off burrow-everysec; do
            row="| ${b/burrow-/Burrow persistence } |"
            for r in redis-disk redis-diskless redis-diskless-load; do
                row="$row $(awk -v a="$(med ${SYNC[$b]})" -v b="$(med ${SYNC[$r]})" 'BEGIN {printf "%.2f", a / b}') |"
            done
            echo "$row"
        done
    fi

fi
if want throughput; then
    echo
    echo "**Leader SET throughput with 2 followers vs none** (\`burrow-bench -t set -c 50 -P 16 -d 32 -r 100000"
    echo "-n $REQUESTS\`), then **follower lag** when the load ends: the farther follower's records (Redis:"
    echo "bytes) behind the leader, and ms until both followers have applied the leader's last write (polled every ~1 ms)."
    echo "*none* is a standalone server; *2 followers* a 3-node async cluster, all three processes on this machine ($PLACED)."
    echo
    echo "| server | persistence | none ops/s | 2 followers ops/s | ratio | p99 ms none / 2 followers | lag at end | catch-up ms | full resyncs during the load ($RUNS runs) |"
    echo "|---|---|---:|---:|---:|---|---:|---:|---:|"
    for mode in $MODES; do
        for s in burrow redis; do
            [ "$s" = redis ] && [ -z "$WITH_REDIS" ] && continue
            if [ "$s" = burrow ]; then a="burrow-alone $mode"; b="burrow-2f $mode"; else a="redis-alone $mode"; b="redis-2r $mode"; fi
            oa=$(med ${OPS[$a]}); ob=$(med ${OPS[$b]})
            if [ "$mode" = off ]; then pm="off"; else pm="fsync $mode"; fi
            [ "$s" = redis ] && { [ "$mode" = off ] && pm="off (no RDB, no AOF)" || pm="AOF, appendfsync $mode"; }
            [ "$s" = burrow ] && name=Burrow || name="Redis"
            total=0
            for n in ${RESYNCS[$b]}; do total=$((total + n)); done
            printf '| %s | %s | %s | %s | %s %% | %s / %s | %s | %s | %s |\n' "$name" "$pm" \
                "$(printf '%.0f' "$oa")" "$(printf '%.0f' "$ob")" "$(calc "int(1000 * $ob / $oa + 0.5) / 10")" \
                "$(med ${P99[$a]})" "$(med ${P99[$b]})" \
                "$(printf '%.0f' "$(med ${LAGREC[$b]})")$([ "$s" = redis ] && echo " B" || true)" "$(printf '%.1f' "$(med ${LAGMS[$b]})")" "$total"
        done
    done
    echo
    echo "CPU per write (µs, user+sys from /proc/PID/stat and getrusage; followers' figure is per follower and"
    if [ "$PLACEMENT" = split ]; then
        echo "includes their catch-up after the load): the leader and the load generator share CPU 0, the"
        echo "followers CPU 1."
    else
        echo "includes their catch-up after the load): on this machine every process shares $(nproc) cores, so the"
        echo "followers' work comes out of the leader's and the load generator's time."
    fi
    echo
    echo "| server | persistence | setup | leader / server | each follower | load generator | total |"
    echo "|---|---|---|---:|---:|---:|---:|"
    for mode in $MODES; do
        for s in burrow redis; do
            [ "$s" = redis ] && [ -z "$WITH_REDIS" ] && continue
            for setup in alone 2; do
                if [ "$s" = burrow ]; then
                    [ "$setup" = alone ] && key="burrow-alone $mode" || key="burrow-2f $mode"; name=Burrow
                else
                    [ "$setup" = alone ] && key="redis-alone $mode" || key="redis-2r $mode"; name=Redis
                fi
                l=$(med ${CPU_L[$key]}); b=$(med ${CPU_B[$key]}); f=0; fshow="-"
                if [ "$setup" = 2 ]; then f=$(med ${CPU_F[$key]}); fshow=$(printf '%.2f' "$f"); fi
                printf '| %s | %s | %s | %.2f | %s | %.2f | %.2f |\n' "$name" "$mode" \
                    "$([ "$setup" = alone ] && echo none || echo "2 followers")" "$l" "$fshow" "$b" \
                    "$(calc "$l + 2 * $f + $b")"
            done
        done
    done
fi
if want quorum; then
    # ---- 4. quorum writes, fsync always ----------------------------------------
    QSECS=${QSECS:-5}
    QBUILDS="new"
    [ -n "${BASE:-}" ] && QBUILDS="base new"
    echo "== 4. Quorum writes, --fsync always ($RUNS runs, builds: $QBUILDS)" >&2
    declare -A QOPS=() QP50=() QP99=()
    for run in $(seq 1 "$RUNS"); do
        for build in $QBUILDS; do
            qserver=$SERVER
            [ "$build" = base ] && qserver=$BASE
            W="$WORK/quorum-$build-$run"; mkdir -p "$W"
            QP=("$(free_port)" "$(free_port)" "$(free_port)")
            cluster_file "$W/cluster.toml" "$W" "${QP[@]}"
            sed -i 's/^replication = "async"/replication = "quorum"/' "$W/cluster.toml"
            qpids=()
            for i in 1 2 3; do
                pin=("${FOLLOW_PIN[@]}")
                [ "$i" = 1 ] && pin=("${LEAD_PIN[@]}")
                "${pin[@]}" "$qserver" --config "$W/cluster.toml" --node-id "$i" --persistence on --fsync always \
                    "${EXTRA[@]}" 2>>"$W/n$i.log" &
                qpids+=("$!"); PIDS="$PIDS$! "
            done
            for _ in $(seq 1 6000); do
                [ "$(info_field "${QP[0]}" role)" = leader ] && [ "$(info_field "${QP[0]}" connected_followers)" = 2 ] && break
                sleep 0.01
            done
            [ "$(info_field "${QP[0]}" connected_followers)" = 2 ] || { echo "quorum cluster never formed" >&2; exit 1; }
            for c in 1 50; do
                line=$("${LEAD_PIN[@]}" "$BENCH" -p "${QP[0]}" -t set -c "$c" -P 1 -d 32 -r 100000 \
                    --duration "$QSECS" --csv 2>>"$W/bench.err" | tail -1) || true
                QOPS[$build,$c]+="$(echo "$line" | cut -d, -f10) "
                QP50[$build,$c]+="$(echo "$line" | cut -d, -f12) "
                QP99[$build,$c]+="$(echo "$line" | cut -d, -f14) "
            done
            stop "${qpids[@]}"
            rm -rf "$W"
        done
    done
    echo
    echo "**Quorum writes, \`--fsync always\` on all three nodes** (\`burrow-bench -t set -P 1 -d 32 -r 100000"
    echo "--duration $QSECS\` on the leader of a 3-node quorum cluster; medians of $RUNS runs, builds alternated):"
    echo
    echo "| build | clients | ops/s | p50 ms | p99 ms |"
    echo "|---|---:|---:|---:|---:|"
    for c in 1 50; do
        for build in $QBUILDS; do
            printf '| %s | %s | %.0f | %s | %s |\n' "$build" "$c" "$(med ${QOPS[$build,$c]})" \
                "$(med ${QP50[$build,$c]})" "$(med ${QP99[$build,$c]})"
        done
    done
fi
