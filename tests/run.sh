#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# through ctest. Exits non-zero on any failure. .ci/run calls exactly this.
#
#   tests/run.sh                 release build, all tests; then (in CI, or with
#                                FLOODGATE_SANITIZE=1) the unit tests again under
#                                ASan + UBSan
#   FLOODGATE_PRESET=asan tests/run.sh   everything under ASan + UBSan
#   tests/run.sh -R proxy        extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh

preset=${FLOODGATE_PRESET:-release}
werror=OFF
[ -n "${CI:-}" ] && werror=ON
jobs=$(nproc)

echo "== configure ($preset, -Werror $werror)"
cmake --preset "$preset" -DFLOODGATE_WERROR=$werror >/dev/null
echo "== build"
start=$(date +%s)
cmake --build --preset "$preset" -j "$jobs"
echo "== build took $(( $(date +%s) - start ))s"
echo "== test"
ctest --preset "$preset" -j "$jobs" --timeout 600 "$@"

if [ "$preset" != asan ] && { [ -n "${CI:-}" ] || [ "${FLOODGATE_SANITIZE:-0}" = 1 ]; }; then
  echo "== unit tests under ASan + UBSan"
  cmake --preset asan -DFLOODGATE_WERROR=$werror >/dev/null
  cmake --build --preset asan -j "$jobs" --target floodgate_gateway_unit tokenstore_tests
  build/asan/tests/unit/gateway/floodgate_gateway_unit
  build/asan/tests/unit/tokenstore/tokenstore_tests
fi
