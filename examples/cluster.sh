#!/usr/bin/env bash
# Runs the cluster described by cluster.toml (3 nodes) on this machine.
#
#   examples/cluster.sh start    # cargo build --release --bins, start every node in the
#                                # background, wait until each one answers (its own
#                                # process: INFO's process_id is the pid it started)
#   examples/cluster.sh stop     # SIGTERM every node and wait until it has exited
#   examples/cluster.sh status   # which nodes run and answer (exit 0 only if all do)
#
# A start fails (exit 1, with the end of the node's log) when a node exits,
# or when what answers on its address is not the process it started (say
# another server held the port and the new node died of "Address already
# in use").
#
# It works from the repository root wherever it is called from, so the
# file's relative data_dirs land in ./data/node1..3. Logs and pid files go
# to ./data/cluster-logs/. Environment: CONFIG (default cluster.toml),
# START_TIMEOUT and STOP_TIMEOUT in seconds (default 60 each: a start
# replays the WAL, a stop writes a snapshot), BIN_DIR (where burrow-server
# and burrow-cli are, e.g. ~/.cargo/bin after `cargo install --path .`:
# then nothing is built; default: a release build of this repository).
set -euo pipefail

cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-cluster.toml}
RUN_DIR=data/cluster-logs
START_TIMEOUT=${START_TIMEOUT:-60}
STOP_TIMEOUT=${STOP_TIMEOUT:-60}
BIN_DIR=${BIN_DIR:-}
SERVER=${BIN_DIR:-target/release}/burrow-server
CLI=${BIN_DIR:-target/release}/burrow-cli

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

# "ID ADDR" for each [[node]] table of $CONFIG, in file order. Only reads
# what it needs; the server itself validates the file at start.
nodes() {
  awk '
    { sub(/#.*/, "") }
    /^[[:space:]]*\[\[node\]\][[:space:]]*$/ { flush(); in_node = 1; next }
    /^[[:space:]]*\[/ { flush(); in_node = 0; next }
    in_node && /^[[:space:]]*id[[:space:]]*=/ { id = value($0) }
    in_node && /^[[:space:]]*addr[[:space:]]*=/ { addr = value($0) }
    END { flush() }
    function value(line) { sub(/^[^=]*=/, "", line); gsub(/[[:space:]"]/, "", line); return line }
    function flush() { if (id != "") print id, addr; id = ""; addr = "" }
  ' "$CONFIG"
}

load_nodes() {
  [[ -f $CONFIG ]] || die "no $CONFIG in $(pwd)"
  mapfile -t NODES < <(nodes)
  ((${#NODES[@]} > 0)) || die "$CONFIG has no [[node]] tables"
}

pid_file() { echo "$RUN_DIR/node$1.pid"; }
log_file() { echo "$RUN_DIR/node$1.log"; }

# Prints the pid of node $1 if it is running (a live burrow-server whose pid
# is in its pid file); fails otherwise.
running_pid() {
  local file pid
  file=$(pid_file "$1")
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # The pid may have been reused by another program since.
  [[ $(ps -o comm= -p "$pid" 2>/dev/null) == burrow-server ]] || return 1
  echo "$pid"
}

# Prints the pid of the server answering at ADDR (ip:port), from INFO's
# process_id; prints nothing if none answers. An answer alone proves
# nothing: another server may hold the port.
answering_pid() {
  local host=${1%:*} port=${1##*:}
  host=${host#[}
  host=${host%]}
  [[ -x $CLI ]] || die "$CLI is not built: run $0 start"
  timeout 5 "$CLI" --host "$host" --port "$port" INFO server </dev/null 2>/dev/null |
    sed -n 's/^process_id:\([0-9]*\).*/\1/p' || true
}

# Prints the last lines of node $1's log to stderr.
log_tail() {
  echo "  end of $(log_file "$1"):" >&2
  tail -n 20 "$(log_file "$1")" | sed 's/^/    /' >&2 || true
}

cmd_start() {
  load_nodes
  if [[ -z $BIN_DIR ]]; then
    echo "building: cargo build --release --bins"
    cargo build --release --bins
  fi
  [[ -x $SERVER ]] || die "no $SERVER"
  mkdir -p "$RUN_DIR"
  local entry id addr pid
  for entry in "${NODES[@]}"; do
    read -r id addr <<<"$entry"
    if pid=$(running_pid "$id"); then
      echo "node $id: already running (pid $pid)"
      continue
    fi
    NO_COLOR=1 nohup "$SERVER" --config "$CONFIG" --node-id "$id" </dev/null >>"$(log_file "$id")" 2>&1 &
    echo $! >"$(pid_file "$id")"
    echo "node $id: started (pid $!) for $addr, log $(log_file "$id")"
  done
  local deadline=$((SECONDS + START_TIMEOUT)) failed=0 answering
  for entry in "${NODES[@]}"; do
    read -r id addr <<<"$entry"
    pid=$(<"$(pid_file "$id")")
    until answering=$(answering_pid "$addr") && [[ $answering == "$pid" ]]; do
      if ! running_pid "$id" >/dev/null; then
        if [[ -n $answering ]]; then
          echo "node $id: exited during start, and another process (pid $answering) answers on $addr" >&2
        else
          echo "node $id: exited during start" >&2
        fi
        log_tail "$id"
        rm -f "$(pid_file "$id")"
        failed=1
        continue 2
      fi
      if ((SECONDS >= deadline)); then
        if [[ -n $answering ]]; then
          echo "node $id: running (pid $pid), but pid $answering answers on $addr after ${START_TIMEOUT}s" >&2
        else
          echo "node $id: running (pid $pid), not answering on $addr after ${START_TIMEOUT}s" >&2
        fi
        log_tail "$id"
        failed=1
        continue 2
      fi
      sleep 0.1
    done
    echo "node $id: answering on $addr (pid $pid)"
  done
  ((failed == 0)) || die "some nodes did not start (the others are still running: $0 stop)"
}

cmd_stop() {
  load_nodes
  local entry id addr pid
  local -A stopping=()
  for entry in "${NODES[@]}"; do
    read -r id addr <<<"$entry"
    if pid=$(running_pid "$id"); then
      kill -TERM "$pid"
      stopping[$id]=$pid
      echo "node $id: SIGTERM sent (pid $pid)"
    else
      echo "node $id: not running"
      rm -f "$(pid_file "$id")"
    fi
  done
  local deadline=$((SECONDS + STOP_TIMEOUT)) failed=0
  for entry in "${NODES[@]}"; do
    read -r id addr <<<"$entry"
    [[ -n ${stopping[$id]:-} ]] || continue
    pid=${stopping[$id]}
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        echo "node $id: still running after ${STOP_TIMEOUT}s (pid $pid); see $(log_file "$id")" >&2
        failed=1
        continue 2
      fi
      sleep 0.1
    done
    rm -f "$(pid_file "$id")"
    echo "node $id: stopped"
  done
  ((failed == 0)) || die "some nodes did not stop"
}

cmd_status() {
  load_nodes
  local entry id addr pid answering all=0
  for entry in "${NODES[@]}"; do
    read -r id addr <<<"$entry"
    if pid=$(running_pid "$id"); then
      answering=$(answering_pid "$addr")
      if [[ $answering == "$pid" ]]; then
        echo "node $id: running (pid $pid), answering on $addr"
      elif [[ -n $answering ]]; then
        echo "node $id: running (pid $pid), but pid $answering answers on $addr"
        all=1
      else
        echo "node $id: running (pid $pid), not answering on $addr yet"
        all=1
      fi
    else
      echo "node $id: stopped"
      all=1
    fi
  done
  return "$all"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
