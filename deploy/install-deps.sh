#!/usr/bin/env bash
# Installs everything Floodgate needs to build, test and benchmark, from Debian 12
# packages only. Idempotent: packages already present are skipped, and apt-get is
# not called at all when nothing is missing.
#   deploy/install-deps.sh            build + test + bench dependencies
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-all-dev libssl-dev libabsl-dev prometheus-cpp-dev catch2
  libyaml-cpp-dev libspdlog-dev libfmt-dev libhiredis-dev
  # tests and benchmarks
  libbenchmark-dev curl wrk nginx-light haproxy redis-server python3 procps openssl
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or install them with sudo apt-get install)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts services when it installs them; tests and benchmarks start their own
# instances on ephemeral ports, so stop the system ones.
for svc in nginx haproxy redis-server; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
echo "install-deps: done"
