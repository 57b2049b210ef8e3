#!/usr/bin/env bash
# Linearizability under fault schedules, the long run (issue 10): SCHEDULES
# seeded schedules (default 100) of SCHEDULE_SECS seconds each (default 3)
# against 3-node clusters of child processes, cycling through quorum/async,
# --fsync always/everysec, with and without kill -9 of the leader. Prints a
# line per schedule, then a summary table and each failure with its seed
# (LIN_SEED=<seed> replays a schedule in the CI tests) and counter-example.
#
#   bench/jepsen.sh                      # 100 schedules, debug build
#   SCHEDULES=400 SEED_BASE=5000 bench/jepsen.sh
#   CARGO_FLAGS=--release bench/jepsen.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export SCHEDULES="${SCHEDULES:-100}" SCHEDULE_SECS="${SCHEDULE_SECS:-3}" SEED_BASE="${SEED_BASE:-1000}"
# shellcheck disable=SC2086  # CARGO_FLAGS is a list of flags
exec cargo test ${CARGO_FLAGS:-} --test integration linearizability::schedules::many_fault_schedules \
    -- --ignored --nocapture --test-threads 1
