#!/usr/bin/env bash
# Alternates two variants of the 1M-row import bench (contacts_bench_import --skip_pg) N times and
# prints one line per run: end to end, job run, each service's CPU and peak RSS, and the huge pages
# the kernel zeroed meanwhile (/proc/vmstat thp_fault_alloc, 2 MiB each). This machine's speed
# drifts by 10-20% within minutes, so compare pairs, not runs far apart (tests/bench/RESULTS.md).
#
#   scripts/ab_import.sh N BIN_DIR_A BIN_DIR_B [bench flags...]       # two builds' bin folders
#   ENV_A="X=1" ENV_B="MALLOC_CONF=..." scripts/ab_import.sh N BIN_DIR [bench flags...]
#                                                                    # one build, two environments
#
# A bin folder holds contact-store, import-processor and contacts_bench_import (copy
# build-bench/bin aside before rebuilding it for the other variant).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
runs=$1
dir_a=$2
shift 2
dir_b=$dir_a
if [[ $# -gt 0 && "$1" != --* ]]; then
  [[ "$1" != "-" ]] && dir_b=$1
  shift
fi
env_a=${ENV_A:-}
env_b=${ENV_B:-}
if [[ "$dir_a" == "$dir_b" && "$env_a" == "$env_b" ]]; then
  echo "the two variants are the same: give two bin folders, or ENV_A and ENV_B" >&2
  exit 2
fi
export CONTACTS_SOURCE_DIR
CONTACTS_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)

thp_faults() { awk '/^thp_fault_alloc /{print $2}' /proc/vmstat; }

run_one() {
  local label=$1 dir=$2 env_text=$3
  shift 3
  local before after out
  before=$(thp_faults)
  # shellcheck disable=SC2086  # env_text is a list of NAME=VALUE words
  out=$(env $env_text CONTACTS_BIN_DIR="$dir" "$dir/contacts_bench_import" --rows 1000000 --skip_pg "$@" 2>&1) || {
    echo "[$label] bench failed:"
    echo "$out" | tail -5
    return 1
  }
  after=$(thp_faults)
  echo "[$label] $(grep -oE 'COMPLETED: [0-9.]+ s end to end \(job run [0-9.]+ s' <<<"$out")" \
    "| CPU $(grep -oE 'import-processor [0-9.]+ s, contact-store [0-9.]+ s' <<<"$out")" \
    "| $(grep -oE 'peak RSS import-processor [0-9]+ MiB, contact-store [0-9]+ MiB' <<<"$out")" \
    "| huge pages zeroed +$((after - before))"
}

for _ in $(seq "$runs"); do
  run_one A "$dir_a" "$env_a" "$@"
  run_one B "$dir_b" "$env_b" "$@"
done
