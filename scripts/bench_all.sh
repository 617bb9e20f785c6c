#!/usr/bin/env bash
# Builds the benchmarks (Release) and runs them one after another, teeing everything to a file.
# Figures only: nothing here passes or fails on a number. Each bench starts its own services and
# its own PostgreSQL (scripts/bench_postgres.sh) and stops them.
#
#   scripts/bench_all.sh [--rows N] [--out FILE] [--only store|query|import] [--query10m]
#
# --only import also runs the in-process dedup bench (the import's first pass, no PostgreSQL).
#
# Environment: BUILD_DIR (default <repo>/build-bench), JOBS (ninja -j, default 2).
# --query10m also runs the audience-query bench on 10M contacts (count figures); that loads 10M
# rows into contact-store and into PostgreSQL and takes tens of minutes.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$repo/build-bench}
jobs=${JOBS:-2}
rows=1000000
out=""
only=""
query10m=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --query10m) query10m=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${out:-$repo/bench-results-$(date +%Y%m%d-%H%M%S).txt}

export CCACHE_BASEDIR=$repo CCACHE_NOHASHDIR=true
cmake -G Ninja -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
# The bench targets depend on the service binaries they start (tests/bench/CMakeLists.txt).
ninja -C "$build" -j"$jobs" contacts_bench_store contacts_bench_query contacts_bench_import contacts_bench_dedup

export CONTACTS_BIN_DIR=$build/bin CONTACTS_SOURCE_DIR=$repo
run() {
  echo
  echo "### $* (commit $(git -C "$repo" rev-parse --short HEAD), $(git -C "$repo" status --short --untracked-files=no | wc -l) files modified, $(date -Is), load $(cut -d' ' -f1-3 /proc/loadavg))"
  local start=$SECONDS
  "$@" || echo "### exit status $?"
  echo "### took $((SECONDS - start)) s"
}
{
  echo "contacts benchmarks on $(uname -n): $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
  [[ -z "$only" || "$only" == store ]] && run "$build/bin/contacts_bench_store" --rows "$rows"
  [[ -z "$only" || "$only" == query ]] && run "$build/bin/contacts_bench_query" --rows "$rows"
  [[ -z "$only" || "$only" == import ]] && run "$build/bin/contacts_bench_import" --rows "$rows" --repeat 3
  [[ -z "$only" || "$only" == import ]] && run "$build/bin/contacts_bench_dedup" --rows "$rows"
  [[ "$query10m" == 1 ]] && run "$build/bin/contacts_bench_query" --rows 10000000 --calls 100 --pg_calls 10
  true
} 2>&1 | tee "$out"
echo "results written to $out"
