#!/usr/bin/env bash
# Bytes per key: RSS after loading KEYS keys minus RSS when empty, and the
# store's own accounting (INFO used_memory, what --maxmemory limits) per key.
#
#   bench/memory.sh                 1,000,000 keys of 16 bytes with 32-byte values
#
# Environment: KEYS (1000000), DATA (32, value bytes), BIN (target/release;
#   a directory holding burrow-server and burrow-bench), SKIP_BUILD=1 to use
#   what BIN holds, BURROW_ARGS for extra server flags.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}
DATA=${DATA:-32}
BIN=${BIN:-target/release}
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin burrow-server --bin burrow-bench
fi
PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; fi; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
"$BIN/burrow-server" --port "$PORT" --persistence off ${BURROW_ARGS:-} 2>/dev/null &
PID=$!
for _ in $(seq 1 600); do
    "$BIN/burrow-bench" -p "$PORT" -t ping -n 1 -c 1 >/dev/null 2>&1 && break
    sleep 0.1
done
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
before=$(rss_kb)
"$BIN/burrow-bench" -p "$PORT" -t set --sequential -n "$KEYS" -r "$KEYS" -d "$DATA" -c 50 -P 16 -q --fail-on-error >/dev/null
after=$(rss_kb)
used=$(python3 - "$PORT" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
key = b"memory"
s.sendall(struct.pack(">BBBBIBBHI", 0xB7, 1, 0x33, 0, 1, 0, 0, len(key), 0) + key)
def read(n):
    b = b""
    while len(b) < n:
        b += s.recv(n - len(b))
    return b
head = read(16)
text = read(struct.unpack(">I", head[12:16])[0] + head[10]).decode()
fields = dict(l.split(":", 1) for l in text.splitlines() if ":" in l)
# Servers before --maxmemory showed the same figure as used_memory_dataset only.
print(fields.get("used_memory", fields.get("used_memory_dataset")))
PY
)
awk -v a="$after" -v b="$before" -v n="$KEYS" -v u="$used" -v d="$DATA" 'BEGIN {
    printf "%d keys of 16 bytes with %d-byte values: RSS %.1f bytes per key, used_memory %.1f bytes per key\n",
        n, d, (a - b) * 1024 / n, u / n }'
