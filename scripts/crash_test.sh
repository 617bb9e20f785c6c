#!/usr/bin/env bash
# Long crash test of an import: imports a generated file of ROWS rows (default 200000) while
# SIGKILLing import-processor KILLS times (default 20) at random moments, restarting it on the same
# data folder each time, then checks that the job's counts, its error log and the store's content
# equal a clean run of the same file; then the same while SIGKILLing contact-store, with every
# batch ingested as SST files. These are the integration tests ImportCrashTest.* with bigger
# numbers (about 1.5 minutes on 2 cores).
#
#   scripts/crash_test.sh                  # 200k rows, 20 kills, seed 1234
#   ROWS=50000 KILLS=5 SEED=7 scripts/crash_test.sh
#
# Builds the needed targets into ${BUILD_DIR:-build} first (set NO_BUILD=1 to skip).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [[ -z "${NO_BUILD:-}" ]]; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
  cmake -G Ninja -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} >/dev/null
  ninja -C "$BUILD_DIR" -j"${JOBS:-$(nproc)}" import_processor_integration_test import-processor contact-store
fi
# Absolute either way: BUILD_DIR may be relative to the repository or absolute (a build elsewhere).
build_abs=$(cd "$BUILD_DIR" && pwd)
export CONTACTS_BIN_DIR="$build_abs/bin"
export CRASH_ROWS=${ROWS:-200000} CRASH_KILLS=${KILLS:-20} CRASH_SEED=${SEED:-1234}
echo "crash test: ${CRASH_ROWS} rows, ${CRASH_KILLS} kills, seed ${CRASH_SEED}"
exec "$BUILD_DIR/services/import_processor/import_processor_integration_test" \
  --gtest_filter='ImportCrashTest.*'
