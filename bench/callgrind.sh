#!/usr/bin/env bash
# Instructions the server executes for a fixed workload, counted by
# callgrind: repeatable whatever else the machine is doing, so it shows a
# code change's cost where wall-clock figures are too noisy.
#
#   bench/callgrind.sh              300,000 SETs, 50 clients, pipeline 16, 32-byte values
#
# Environment: REQUESTS (300000), CLIENTS (50), PIPELINE (16), TEST (set),
#   SKIP_BUILD=1 to use the existing target/release binaries,
#   BIN (target/release; a directory holding burrow-server and burrow-bench,
#   e.g. a "before" build: implies nothing is built),
#   BURROW_ARGS for extra server flags (default: --persistence off --threads 1).
# Prints the server's total instruction count (Ir) for the whole run.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-300000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-16}
TEST=${TEST:-set}
BURROW_ARGS=${BURROW_ARGS:---persistence off --threads 1}

command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install -y valgrind" >&2; exit 1; }
BIN=${BIN:-}
if [ -z "${SKIP_BUILD:-}" ] && [ -z "$BIN" ]; then
    cargo build --release --quiet --bin burrow-server --bin burrow-bench
fi
WORK=$(mktemp -d)
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
valgrind --tool=callgrind --callgrind-out-file="$WORK/out" \
    "${BIN:-target/release}/burrow-server" --port "$PORT" $BURROW_ARGS 2>"$WORK/server.log" &
PID=$!
for _ in $(seq 1 600); do
    "${BIN:-target/release}/burrow-bench" -p "$PORT" -t ping -n 1 -c 1 >/dev/null 2>&1 && break
    sleep 0.1
done
"${BIN:-target/release}/burrow-bench" -p "$PORT" -t "$TEST" -n "$REQUESTS" -c "$CLIENTS" -P "$PIPELINE" -d 32 -r 100000 >/dev/null
kill -INT "$PID"
wait "$PID" || true
PID=""
total=$(callgrind_annotate "$WORK/out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}')
echo "$TEST x $REQUESTS, $CLIENTS clients, pipeline $PIPELINE: $total instructions (server, whole run)"
