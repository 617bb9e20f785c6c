#!/usr/bin/env bash
# Configures and builds everything into ${BUILD_DIR:-build} (Release with debug info), after making
# sure the packages are installed. Used by run_local.sh, test.sh and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake -G Ninja -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} >/dev/null
ninja -C "$BUILD_DIR" -j"$JOBS"
