#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs the whole suite on this machine with
# its data under ./data (RocksDB per service), listening on loopback with auth off:
#   contact-store 127.0.0.1:50051, import-processor 127.0.0.1:50052, audience-query 127.0.0.1:50053
#   metrics on 127.0.0.1:9464 / 9465 / 9466. Ctrl-C (or SIGTERM) stops all three gracefully.
# Set DATA_DIR to keep the data elsewhere; flags after the script name go to every service.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
DATA_DIR=${DATA_DIR:-$PWD/data}
BIN="$BUILD_DIR/bin"
mkdir -p "$DATA_DIR"

pids=()
stopped=0
stop() {
  trap - INT TERM HUP
  [[ $stopped == 1 ]] && return 0
  stopped=1
  echo "stopping the suite..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
# HUP too (the terminal closed), and EXIT for any other way out: the services run in sessions of
# their own, so nothing else would stop them, and the next run would find their ports taken.
trap stop INT TERM HUP
trap stop EXIT

# Each service runs in a session of its own (setsid), so a terminal's Ctrl-C reaches only this
# script, which sends every service one SIGTERM: a second signal would make a service skip its
# graceful drain and exit at once.
setsid "$BIN/contact-store" --data_dir="$DATA_DIR/contact-store" "$@" &
pids+=($!)
setsid "$BIN/import-processor" --data_dir="$DATA_DIR/import-processor" --store=127.0.0.1:50051 "$@" &
pids+=($!)
setsid "$BIN/audience-query" --data_dir="$DATA_DIR/audience-query" --store=127.0.0.1:50051 "$@" &
pids+=($!)

cat <<MSG
contacts suite running, data under $DATA_DIR
  contact-store     127.0.0.1:50051   (metrics http://127.0.0.1:9464/metrics)
  import-processor  127.0.0.1:50052   (metrics http://127.0.0.1:9465/metrics)
  audience-query    127.0.0.1:50053   (metrics http://127.0.0.1:9466/metrics)
Press Ctrl-C to stop.
MSG
# Exit when any service exits (or on Ctrl-C), stopping the others. A service that exits by itself
# (a port in use, a store it cannot open) fails the script with its status.
status=0
wait -n || status=$?
if [[ $stopped == 1 ]]; then
  status=0  # asked to stop (Ctrl-C, SIGTERM, SIGHUP): the services drained
else
  echo "a service exited (status $status); stopping the others" >&2
  [[ $status == 0 ]] && status=1
fi
stop
exit "$status"
