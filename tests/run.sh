#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# through ctest. Exits non-zero on any failure. .ci/run calls exactly this.
#
#   tests/run.sh                 release build, all tests
#   FLOODGATE_PRESET=asan tests/run.sh   the same under ASan + UBSan
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
