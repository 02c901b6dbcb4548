#!/usr/bin/env bash
# Installs convstore's build and test dependencies from Debian 12 packages. Idempotent.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  build-essential cmake ninja-build pkg-config \
  libsqlite3-dev sqlite3 libssl-dev libconcurrentqueue-dev libabsl-dev libspdlog-dev \
  nlohmann-json3-dev libcli11-dev catch2 libbenchmark-dev \
  clang clang-format libclang-rt-14-dev
