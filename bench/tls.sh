#!/usr/bin/env bash
# What TLS costs: burrow-bench against one burrow-server speaking plain TCP
# and one speaking TLS (same flags, same placement), runs alternated, the
# median of RUNS reported as ops/s per test and pipeline depth.
#
#   bench/tls.sh
#
# Environment:
#   RUNS=3                 runs per case and server (alternating); the median is reported
#   CASES="50/1 50/16"     clients/pipeline cases
#   REQUESTS=N             requests per run (default: per case, ~2-3 s each)
#   MTLS=1                 the TLS server also requires a client certificate (--tls-client-auth required)
#   SKIP_BUILD=1           use the existing target/release binaries
#   BURROW_ARGS=...        extra burrow-server flags for both servers
# Certificates (a CA and an ECDSA P-256 server/client certificate for
# 127.0.0.1) are made with openssl in a temporary directory. The handshake
# happens once per connection, before the clock starts: this measures the
# cost of encrypting the traffic.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-3}
CASES=${CASES:-"50/1 50/16"}
command -v openssl >/dev/null || { echo "openssl not found (apt-get install -y openssl)" >&2; exit 1; }
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin burrow-server --bin burrow-bench
fi
BENCH="$ROOT/target/release/burrow-bench"
SERVER="$ROOT/target/release/burrow-server"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A CA, and one leaf for 127.0.0.1 used as server and client certificate.
(
    cd "$WORK"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=burrow bench CA" -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout leaf.key -out leaf.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >leaf.ext
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile leaf.ext -out leaf.crt 2>/dev/null
)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start NAME PORT FLAGS...: a server, waited for until it answers.
start() {
    local name=$1 port=$2
    shift 2
    # shellcheck disable=SC2086
    "$SERVER" --port "$port" --persistence off --data-dir "$WORK/$name" ${BURROW_ARGS:-} "$@" \
        2>"$WORK/$name.log" &
    PIDS+=($!)
}

PLAIN_PORT=$(free_port)
TLS_PORT=$(free_port)
TLS_SERVER=(--tls-cert-file "$WORK/leaf.crt" --tls-key-file "$WORK/leaf.key")
TLS_CLIENT=(--tls --cacert "$WORK/ca.pem")
if [ -n "${MTLS:-}" ]; then
    TLS_SERVER+=(--tls-ca-file "$WORK/ca.pem" --tls-client-auth required)
    TLS_CLIENT+=(--cert "$WORK/leaf.crt" --key "$WORK/leaf.key")
fi
start plain "$PLAIN_PORT"
start tls "$TLS_PORT" "${TLS_SERVER[@]}"
for attempt in $(seq 200); do
    if "$BENCH" -p "$PLAIN_PORT" -t ping -n 1 -c 1 -q --fail-on-error >/dev/null 2>&1 &&
        "$BENCH" -p "$TLS_PORT" "${TLS_CLIENT[@]}" -t ping -n 1 -c 1 -q --fail-on-error >/dev/null 2>&1; then
        break
    fi
    [ "$attempt" = 200 ] && { echo "servers did not start" >&2; cat "$WORK"/*.log >&2; exit 1; }
    sleep 0.05
done

# json_field and median.
. "$ROOT/bench/lib.sh"
requests_for() {
    if [ -n "${REQUESTS:-}" ]; then echo "$REQUESTS"; return; fi
    case "$1" in
        50/16) echo 2500000 ;;
        *) echo 500000 ;;
    esac
}

CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "# $(nproc) CPUs, ${CPU:-unknown CPU}; RUNS=$RUNS; TLS: $("$SERVER" --version 2>/dev/null | head -1), rustls (ring)${MTLS:+, client certificates required}"
: >"$WORK/results"
for case in $CASES; do
    c=${case%/*}; P=${case#*/}
    args=(-t set,get -n "$(requests_for "$case")" -c "$c" -P "$P" -d 32 -r 100000 --json -q --fail-on-error)
    echo "# burrow-bench ${args[*]}   (TLS: ${TLS_CLIENT[*]})"
    for run in $(seq "$RUNS"); do
        for mode in plain tls; do
            if [ "$mode" = plain ]; then
                out=$("$BENCH" -p "$PLAIN_PORT" "${args[@]}")
            else
                out=$("$BENCH" -p "$TLS_PORT" "${TLS_CLIENT[@]}" "${args[@]}")
            fi
            for t in set get; do
                echo "$case ${t^^} $mode $(json_field "$out" "$t" ops_per_sec)" >>"$WORK/results"
            done
        done
    done
done
echo
printf '%-6s %-4s %14s %14s %8s\n' "c/P" test "plain ops/s" "TLS ops/s" "TLS/plain"
for case in $CASES; do
    for t in SET GET; do
        p=$(awk -v c="$case" -v t="$t" '$1==c && $2==t && $3=="plain" {print $4}' "$WORK/results" | median)
        s=$(awk -v c="$case" -v t="$t" '$1==c && $2==t && $3=="tls" {print $4}' "$WORK/results" | median)
        printf '%-6s %-4s %14.0f %14.0f %7.1f%%\n' "$case" "$t" "$p" "$s" "$(awk -v a="$s" -v b="$p" 'BEGIN {print 100*a/b}')"
    done
done
