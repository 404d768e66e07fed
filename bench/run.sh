#!/usr/bin/env bash
# Runs one floodgate-bench scenario end to end: starts the demo booking site and
# floodgate (configured from the scenario) on 127.0.0.1 ephemeral ports, runs the
# crowd against them, stops both by PID (also on Ctrl-C or failure), and writes
# the report and charts. docs/bench.md explains the scenarios and the report.
#
#   bench/run.sh bench/scenarios/kdca-2021-opening.yaml
#   bench/run.sh bench/scenarios/step.yaml --out /tmp/step --scale 0.5
#
# options:
#   --out DIR      where everything goes [bench/out/<scenario>-<UTC date>]
#   --scale F      shorten (or lengthen) the arrivals and drain by F, rates unchanged
#   --no-charts    skip gnuplot
#   other options go to floodgate-bench (see floodgate-bench --help)
# binaries (default: the release build):
#   FLOODGATE_BIN  [build/release/gateway/floodgate]
#   BOOKING_BIN    [build/release/bench/demo/floodgate-demo-booking]
#   BENCH_BIN      [build/release/bench/loadgen/floodgate-bench]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
FLOODGATE_BIN=${FLOODGATE_BIN:-$root/build/release/gateway/floodgate}
BOOKING_BIN=${BOOKING_BIN:-$root/build/release/bench/demo/floodgate-demo-booking}
BENCH_BIN=${BENCH_BIN:-$root/build/release/bench/loadgen/floodgate-bench}

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

scenario="" out="" charts=1
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --no-charts) charts=0; shift ;;
    -h|--help) usage; exit 0 ;;
    --scale) extra+=("$1" "${2:?--scale needs a factor}"); shift 2 ;;
    -*) extra+=("$1"); shift ;;
    *) if [ -z "$scenario" ]; then scenario=$1; shift; else echo "run.sh: one scenario at a time" >&2; exit 2; fi ;;
  esac
done
[ -n "$scenario" ] || { usage >&2; exit 2; }
[ -f "$scenario" ] || { echo "run.sh: no scenario file $scenario" >&2; exit 2; }
for bin in "$FLOODGATE_BIN" "$BOOKING_BIN" "$BENCH_BIN"; do
  [ -x "$bin" ] || { echo "run.sh: $bin is missing: build it (cmake --preset release && cmake --build --preset release), or set FLOODGATE_BIN, BOOKING_BIN and BENCH_BIN" >&2; exit 2; }
done
"$BENCH_BIN" --check "$scenario" >/dev/null  # a bad scenario stops here, with file:line:column

name=$(basename "$scenario" .yaml)
[ -n "$out" ] || out="$root/bench/out/$name-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
pids=()

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
stop_all() {
  stop_pids
  rm -rf "$work"
}
trap stop_all EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

# Each process gets many connections; raise the open-file limit as far as allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# wait_for FILE PID WHAT LOG: until FILE exists (10 s), or stop if PID died.
wait_for() { wait_for_file "$@" || { echo "run.sh: $3 did not start" >&2; exit 1; }; }

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "command: bench/run.sh $scenario ${extra[*]:-}"
} > "$out/machine.txt"
cp "$scenario" "$out/scenario.yaml"

mapfile -t site_args < <("$BENCH_BIN" --site-args "$scenario")
"$BOOKING_BIN" --listen 127.0.0.1:0 --port-file "$work/site.port" "${site_args[@]}" > "$out/site.log" 2>&1 &
pids+=($!)
wait_for "$work/site.port" "${pids[-1]}" "floodgate-demo-booking" "$out/site.log"
site="127.0.0.1:$(cat "$work/site.port")"

"$BENCH_BIN" --gateway-config "$scenario" --site "$site" > "$out/floodgate.yaml"
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
FLOODGATE_ADMIN_TOKENS="viewer bench $token" "$FLOODGATE_BIN" --config "$out/floodgate.yaml" \
  --ports-file "$work/ports" > "$out/floodgate.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_for "$work/ports" "$gateway_pid" "floodgate" "$out/floodgate.log"
gateway=$(awk '$1 == "listen" { print $3; exit }' "$work/ports")
admin=$(awk '$1 == "admin" { print $2; exit }' "$work/ports")

echo "run.sh: site $site, floodgate $gateway (admin $admin, pid $gateway_pid), report in $out" >&2
# In the background and waited for, so that a signal to this script is handled at once; the
# bench goes first in pids, so it is stopped first and writes the report of the run so far.
FLOODGATE_BENCH_ADMIN_TOKEN=$token "$BENCH_BIN" "$scenario" --gateway "$gateway" --site "$site" \
  --admin "$admin" --gateway-pid "$gateway_pid" --out "$out" "${extra[@]}" &
bench_pid=$!
pids=("$bench_pid" "${pids[@]}")
rc=0
wait "$bench_pid" || rc=$?
pids=("${pids[@]:1}")
[ "$rc" = 0 ] || { echo "run.sh: floodgate-bench failed ($rc)" >&2; exit "$rc"; }

stop_all
trap - EXIT
if [ "$charts" = 1 ]; then
  if command -v gnuplot >/dev/null 2>&1; then
    (cd "$out" && gnuplot charts.gp 2> gnuplot.log) && echo "run.sh: charts $out/charts.png, $out/charts.svg" >&2 \
      || echo "run.sh: gnuplot failed, see $out/gnuplot.log" >&2
  else
    echo "run.sh: gnuplot is not installed (deploy/install-deps.sh installs gnuplot-nox); no charts" >&2
  fi
fi
echo "run.sh: report $out/report.json, summary $out/summary.txt" >&2
