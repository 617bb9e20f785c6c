#!/usr/bin/env bash
# README command 2: installs what is missing, builds, and runs every test (unit, integration, e2e)
# with ctest. Exits non-zero when any test fails. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure -j"${JOBS:-$(nproc)}" --timeout 600 "$@"
