#!/usr/bin/env bash
# Installs every build and runtime dependency on a fresh Debian 12 machine. Idempotent: packages
# already present are skipped, and apt is not touched at all when nothing is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto libssl-dev
  libabsl-dev librocksdb-dev
  libzip-dev zipcmp zipmerge ziptool zip
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus-cpp-dev libroaring-dev libjemalloc-dev
  postgresql
  python3
  openssl
)

missing=()
for p in "${packages[@]}"; do
  # Not piped into grep -q: under pipefail, grep quitting early could fail the pipeline (SIGPIPE)
  # and count an installed package as missing.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
# DEBIAN_FRONTEND goes on apt-get's command line: sudo resets the environment (env_reset), so an
# exported variable would not reach it and debconf could stop to ask a question.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "setup: missing packages and not root; install sudo or run as root: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=(sudo)
fi
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
