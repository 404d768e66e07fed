#!/usr/bin/env bash
# shellcheck disable=SC2317 # stop_pids is called from a trap
# Floodgate next to nginx's own admission control, on the same overload: one
# floodgate-bench scenario run twice, with the same crowd (same arrivals, same
# abandoners and their patience, same devices, same booking requests), in
# front of a fresh demo booking site each time:
#   floodgate    the scenario's waiting room (bench/run.sh)
#   nginx-limit  plain nginx with limit_req at the room's rate and burst on the
#                first page and limit_conn at the site's capacity
#                (bench/peers/nginx-limit.conf.in, worker_processes = the
#                gateway's threads). A person refused with 429 or 503 reloads the
#                page after people.refresh (default 1s..5s) until it comes back
#                200 or their patience ends (floodgate-bench --target nginx-limit).
# It prints a side-by-side table of what the site and the people saw, and
# writes it (compare.md, compare.json) next to both runs' reports.
#
#   bench/limit_compare.sh bench/scenarios/steady-overload.yaml
#   bench/limit_compare.sh bench/scenarios/kdca-2021-opening.yaml --scale 0.5 --out /tmp/kdca
#
# options:
#   --out DIR      where everything goes [bench/out/limit-<scenario>-<UTC date>]:
#                  DIR/floodgate/, DIR/nginx-limit/ (each a floodgate-bench report),
#                  DIR/compare.md, DIR/compare.json, DIR/machine.txt
#   --scale F      shorten (or lengthen) the arrivals and drain by F, rates unchanged
#   --quiet        no progress lines from floodgate-bench
# binaries (default: the release build):
#   FLOODGATE_BIN  [build/release/gateway/floodgate]
#   BOOKING_BIN    [build/release/bench/demo/floodgate-demo-booking]
#   BENCH_BIN      [build/release/bench/loadgen/floodgate-bench]
#   NGINX_BIN      [nginx on PATH, else /usr/sbin/nginx]
# Every process is started on 127.0.0.1 ephemeral ports and stopped by its PID
# at the end, on failure and on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
export FLOODGATE_BIN=${FLOODGATE_BIN:-$root/build/release/gateway/floodgate}
export BOOKING_BIN=${BOOKING_BIN:-$root/build/release/bench/demo/floodgate-demo-booking}
export BENCH_BIN=${BENCH_BIN:-$root/build/release/bench/loadgen/floodgate-bench}
if [ -z "${NGINX_BIN:-}" ]; then
  NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
fi
export NGINX_BIN

usage() { sed -n '3,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
log() { printf 'limit_compare: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

scenario="" out="" scale="" quiet=()
original_args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --scale) scale=${2:?--scale needs a factor}; shift 2 ;;
    --quiet) quiet=(--quiet); shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "limit_compare.sh: unknown option \"$1\" (try --help)" >&2; exit 2 ;;
    *) if [ -z "$scenario" ]; then scenario=$1; shift; else echo "limit_compare.sh: one scenario at a time" >&2; exit 2; fi ;;
  esac
done
[ -n "$scenario" ] || { usage >&2; exit 2; }
[ -f "$scenario" ] || { echo "limit_compare.sh: no scenario file $scenario" >&2; exit 2; }
for bin in "$FLOODGATE_BIN" "$BOOKING_BIN" "$BENCH_BIN"; do
  [ -x "$bin" ] || die "$bin is missing: build it (cmake --preset release && cmake --build --preset release), or set FLOODGATE_BIN, BOOKING_BIN and BENCH_BIN"
done
[ -x "$NGINX_BIN" ] || die "nginx is not installed (apt-get install nginx-light), or set NGINX_BIN"
command -v python3 >/dev/null || die "python3 is not installed (it builds the table)"
scale_args=()
[ -z "$scale" ] || scale_args=(--scale "$scale")
"$BENCH_BIN" --check "$scenario" "${scale_args[@]}" >/dev/null  # a bad scenario stops here
declare -A limits
while IFS='=' read -r k v; do limits[$k]=$v; done < <("$BENCH_BIN" --nginx-limits "$scenario")

name=$(basename "$scenario" .yaml)
[ -n "$out" ] || out="$root/bench/out/limit-$name-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out/floodgate" "$out/nginx-limit"
mkdir -p "$out/nginx-limit/nginx"
# nginx's workers run as nobody when the master is root: they must reach their prefix.
chmod 755 "$out" "$out/nginx-limit" "$out/nginx-limit/nginx"
pids=()

trap stop_pids EXIT
trap 'echo "limit_compare.sh: interrupted" >&2; exit 130' INT TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

command_line="bench/limit_compare.sh ${original_args[*]}"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "nginx: $("$NGINX_BIN" -v 2>&1 | sed 's|.*: ||')"
  echo "command: $command_line"
} > "$out/machine.txt"

# (a) floodgate, exactly as bench/run.sh runs a scenario (it stops its own processes).
log "floodgate: bench/run.sh $scenario, report in $out/floodgate"
"$root/bench/run.sh" "$scenario" --out "$out/floodgate" --no-charts "${scale_args[@]}" "${quiet[@]}" \
  > "$out/floodgate.log" 2>&1 &
pids+=($!)
rc=0
wait "${pids[-1]}" || rc=$?
pids=()
[ "$rc" = 0 ] || { tail -20 "$out/floodgate.log" >&2; die "the floodgate run failed ($rc); log $out/floodgate.log"; }

# (b) nginx limit_req/limit_conn in front of a fresh demo site.
nl="$out/nginx-limit"
mapfile -t site_args < <("$BENCH_BIN" --site-args "$scenario")
"$BOOKING_BIN" --listen 127.0.0.1:0 --port-file "$nl/site.port" "${site_args[@]}" > "$nl/site.log" 2>&1 &
pids+=($!)
wait_for_file "$nl/site.port" "${pids[-1]}" floodgate-demo-booking "$nl/site.log" || die "the demo site did not start"
site_port=$(cat "$nl/site.port")
port=$(free_port)
sed -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|$site_port|g" -e "s|@PREFIX@|$nl/nginx|g" \
    -e "s|@RATE@|${limits[rate]}|g" -e "s|@BURST@|${limits[burst]}|g" -e "s|@CONN@|${limits[conn]}|g" \
    -e "s|@WORKERS@|${limits[workers]}|g" -e "s|@ENTRY@|${limits[entry]}|g" \
    "$root/bench/peers/nginx-limit.conf.in" > "$nl/nginx/nginx.conf"
"$NGINX_BIN" -t -q -c "$nl/nginx/nginx.conf" -p "$nl/nginx" -e "$nl/nginx/error.log" -g 'daemon off;' \
  > "$nl/nginx-check.log" 2>&1 || { cat "$nl/nginx-check.log" >&2; die "nginx refused $nl/nginx/nginx.conf"; }
nginx_argv "$nl/nginx"
"${nginx_cmd[@]}" > "$nl/nginx/stdout.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
wait_for_port "$port" "$nginx_pid" nginx "$nl/nginx/error.log" || die "nginx did not start"
log "nginx-limit: site 127.0.0.1:$site_port, nginx 127.0.0.1:$port (pid $nginx_pid; rate ${limits[rate]}, burst ${limits[burst]}, limit_conn ${limits[conn]}, ${limits[workers]} workers), report in $nl"
# In the background and first in pids: a signal stops it first, and it writes the report so far.
"$BENCH_BIN" "$scenario" --target nginx-limit --gateway "127.0.0.1:$port" --site "127.0.0.1:$site_port" \
  --gateway-pid "$nginx_pid" --out "$nl" "${scale_args[@]}" "${quiet[@]}" > "$out/nginx-limit.log" 2>&1 &
pids=($! "${pids[@]}")
rc=0
wait "${pids[0]}" || rc=$?
pids=("${pids[@]:1}")
stop_pids
[ "$rc" = 0 ] || { tail -20 "$out/nginx-limit.log" >&2; die "the nginx-limit run failed ($rc); log $out/nginx-limit.log"; }

# The table, from the two reports.
python3 - "$out" "$command_line" <<'PY'
import json, sys
out, command = sys.argv[1], sys.argv[2]
runs = {t: json.load(open(f"{out}/{t}/report.json")) for t in ("floodgate", "nginx-limit")}
machine = dict(l.split(": ", 1) for l in open(f"{out}/machine.txt").read().splitlines() if ": " in l)

def get(r, path):
    for k in path.split("."):
        if not isinstance(r, dict) or k not in r:
            return None
        r = r[k]
    return r

def fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:,.{digits}f}"

rows = []  # (section, label, key, floodgate value, nginx value, shown)
def row(section, label, key, f):
    vals = {t: f(r) for t, r in runs.items()}
    rows.append({"section": section, "label": label, "key": key, **vals})

site_cap = get(runs["floodgate"], "upstream.capacity")
row("site", f"peak requests in flight (capacity {site_cap})", "peak_in_flight", lambda r: get(r, "upstream.peak_in_flight"))
row("site", "seconds over capacity", "seconds_over_capacity", lambda r: get(r, "upstream.seconds_over_capacity"))
row("site", "booking requests/s, mean over busy seconds", "requests_per_s_mean", lambda r: get(r, "upstream.requests_per_s_mean"))
row("site", "booking requests/s, peak second", "requests_per_s_peak", lambda r: get(r, "upstream.requests_per_s_peak"))
row("site", "503s over its hard limit", "site_503", lambda r: get(r, "upstream.rejected_over_hard_limit"))
row("people", "arrived", "arrived", lambda r: get(r, "people.arrived"))
row("people", "got in (share of arrivals)", "got_in_share", lambda r: get(r, "people.got_in_share"))
row("people", "gave up (abandoners out of patience)", "abandoned", lambda r: get(r, "people.abandoned"))
row("people", "not in by the end (still waiting or refreshing)", "not_in_by_end", lambda r: get(r, "people.not_admitted_by_end"))
row("people", "arrival to getting in, p50 (s)", "wait_p50_s", lambda r: get(r, "wait_s.p50"))
row("people", "arrival to getting in, p90 (s)", "wait_p90_s", lambda r: get(r, "wait_s.p90"))
row("people", "arrival to getting in, max (s)", "wait_max_s", lambda r: get(r, "wait_s.max"))
row("people", "refusals (429/503/full) seen, total", "refusals", lambda r: get(r, "refusals.total"))
row("people", "people refused at least once", "people_refused", lambda r: get(r, "refusals.people_refused"))
row("people", "refusals per person: mean", "refusals_mean", lambda r: get(r, "refusals.per_person_mean"))
row("people", "refusals per person: p90 / max", "refusals_p90_max",
    lambda r: f"{fmt(get(r, 'refusals.p90'))} / {fmt(get(r, 'refusals.max'))}")
row("people", "errors (timeouts, refused mid-booking, ...)", "errors", lambda r: get(r, "errors.total"))
row("people", "refused mid-booking after getting in", "session_refused", lambda r: get(r, "errors.by_kind.session_refused") or 0)
row("people", "bookings completed", "completed", lambda r: get(r, "outcomes.completed") or 0)
row("people", "people compared for order (got in after waiting)", "fifo_compared", lambda r: get(r, "fifo.people_compared"))
row("people", "FIFO inversions (a later arrival in before an earlier one's last refusal/wait)", "fifo_inversions",
    lambda r: get(r, "fifo.inversions"))
row("people", "order in vs order of arrival: Kendall tau (normalized)", "kendall_tau",
    lambda r: get(r, "fifo.pass_order_kendall_tau_normalized"))
row("front", "requests the front answered (joins/refreshes + polls)", "front_requests",
    lambda r: (get(r, "requests.joins") or 0) + (get(r, "requests.polls") or 0))
row("front", "front CPU % of one core, mean / peak", "front_cpu",
    lambda r: f"{fmt(get(r, 'gateway.cpu_percent_mean'))} / {fmt(get(r, 'gateway.cpu_percent_peak'))}")

digits = {"got_in_share": 3, "refusals_mean": 2, "kendall_tau": 4, "wait_p50_s": 1, "wait_p90_s": 1, "wait_max_s": 1,
          "requests_per_s_mean": 1}
f, n = runs["floodgate"], runs["nginx-limit"]
lines = [
    f"### {f['scenario']}: floodgate vs nginx limit_req/limit_conn",
    "",
    f"- command: `{command}`",
    f"- date: {machine.get('date', '-')}; machine: {machine.get('host', '-')}; load before: {machine.get('load average before the runs', '-')}",
    f"- scale: {f.get('scale', '-').strip()}",
    f"- floodgate room: rate {get(f, 'config.rate'):g}/s, burst {get(f, 'config.burst')}, max_active {get(f, 'config.max_active')}; "
    f"nginx: limit_req rate {get(f, 'config.rate'):g}/s burst {get(f, 'config.burst')} nodelay on the first page, "
    f"limit_conn {site_cap}, {get(f, 'config.gateway_threads')} worker(s); refused people reload after people.refresh (1-5 s unless the scenario says otherwise)",
    "",
    "| | floodgate | nginx limit_req + limit_conn |",
    "|---|---:|---:|",
]
section = None
for r in rows:
    if r["section"] != section:
        section = r["section"]
        lines.append(f"| **{ {'site': 'the site (downstream)', 'people': 'the people', 'front': 'the front'}[section] }** | | |")
    d = digits.get(r["key"], 0)
    cell = lambda v: v if isinstance(v, str) else fmt(v, d)
    lines.append(f"| {r['label']} | {cell(r['floodgate'])} | {cell(r['nginx-limit'])} |")
table = "\n".join(lines) + "\n"
open(f"{out}/compare.md", "w").write(table)
json.dump({"scenario": f["scenario"], "command": command, "machine": machine,
           "rows": rows, "reports": {"floodgate": "floodgate/report.json", "nginx-limit": "nginx-limit/report.json"}},
          open(f"{out}/compare.json", "w"), indent=1)
print(table)
PY
log "table $out/compare.md, $out/compare.json; reports $out/floodgate/report.json, $out/nginx-limit/report.json"
