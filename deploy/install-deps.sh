#!/usr/bin/env bash
# Installs everything Floodgate needs to build, test and benchmark, from Debian 12
# packages only, then the front-end packages from npm (uplot for the dashboard,
# playwright-core for the browser tests) with `npm ci` from their lock files.
# Idempotent: packages already present are skipped, apt-get is not called at all
# when nothing is missing, and npm ci runs only where node_modules is missing or
# older than its package-lock.json.
#   deploy/install-deps.sh            build + test + bench dependencies
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-all-dev libssl-dev libabsl-dev prometheus-cpp-dev catch2
  libyaml-cpp-dev libspdlog-dev libfmt-dev libhiredis-dev
  libgoogle-perftools-dev  # tcmalloc_minimal, the gateway's allocator
  # tests and benchmarks
  libbenchmark-dev curl wrk nginx-light haproxy redis-server python3 procps openssl
  # the flash-crowd bench's charts (bench/run.sh)
  gnuplot-nox
  # the admin API's OpenAPI check (tests/integration/admin/openapi_test.py)
  python3-jsonschema python3-yaml
  # promtool, which checks deploy/prometheus (rules, their unit tests, the scrape config)
  prometheus
  # browser tests (Debian's Chromium, driven by playwright-core) and a Korean font
  # so the waiting page's screenshots show Hangul
  chromium fonts-nanum
)
# Node.js and npm (the dashboard's build and the browser tests): Debian's, unless
# the machine already has them (NodeSource's nodejs, for one, bundles npm and
# conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

# npm ci where node_modules is missing or older than the lock file (npm ci writes
# node_modules/.package-lock.json, so that file's age is the install's).
npm_ci() {
  local dir
  for dir in dashboard tests/browser; do
    local d="$root/$dir"
    [ -f "$d/package-lock.json" ] || continue
    if [ ! -f "$d/node_modules/.package-lock.json" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
      echo "install-deps: npm ci in $dir"
      (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  done
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  npm_ci
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
for svc in nginx haproxy redis-server prometheus; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
npm_ci
echo "install-deps: done"
