# Shell helpers the bench scripts share (sourced, not run).

# json_field JSON TEST KEY: a number from burrow-bench --json output.
json_field() {
    printf '%s' "$1" | tr '{' '\n' | grep "\"test\":\"$2\"" | tr ',' '\n' | grep "\"$3\":" | head -1 | cut -d: -f2
}

# median of the numbers on stdin.
median() {
    sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "nan"} else if (NR%2) {print v[(NR+1)/2]} else {printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}}'
}

# cluster_bench_setup "$@": what the cluster scripts (large-records.sh,
# steady-elections.sh) share before they start their nodes. Answers --help
# from the script's header comment; builds the release binaries unless
# SKIP_BUILD; sets SERVER (BURROW_SERVER overrides), BENCH, CLI, EXTRA (from
# BURROW_ARGS, default $DEFAULT_ARGS), WORK (a temporary directory, kept
# with KEEP_WORK) and PIDS, whose processes are killed on exit. Needs ROOT.
cluster_bench_setup() {
    case "${1:-}" in
        -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
        "") ;;
        *) echo "usage: $0 (settings through the environment; see --help)" >&2; exit 2 ;;
    esac
    read -r -a EXTRA <<<"${BURROW_ARGS:-${DEFAULT_ARGS:-}}"
    if [ -z "${SKIP_BUILD:-}" ]; then
        cargo build --release --quiet --bin burrow-server --bin burrow-bench --bin burrow-cli
    fi
    SERVER="${BURROW_SERVER:-$ROOT/target/release/burrow-server}"
    BENCH="$ROOT/target/release/burrow-bench"
    CLI="$ROOT/target/release/burrow-cli"
    WORK=$(mktemp -d)
    PIDS=""
    trap cluster_bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

cluster_bench_cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP_WORK:-}" ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}

# A free TCP port on 127.0.0.1 (without python3: a probed random one).
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
        return
    fi
    local p=$((20000 + RANDOM % 20000))
    while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
}

# info PORT FIELD: one field of the node's INFO replication.
info() { "$CLI" --port "$1" INFO replication 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }

# plain_log N: node N's log without colour codes.
plain_log() { sed 's/\x1b\[[0-9;]*m//g' "$WORK/n$1.log"; }
