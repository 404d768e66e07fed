#!/usr/bin/env bash
# shellcheck disable=SC2317 # cleanup is called from a trap
# Proxy comparison: how much does Floodgate cost as a plain reverse proxy,
# next to nginx and HAProxy doing the same job on the same machine?
#
# One after another, in one run, wrk (keep-alive) measures GET /ping of the
# demo booking site:
#   direct     the demo site itself (floodgate-demo-booking --threads 1)
#   floodgate  floodgate (threads: 1, no rooms, access_log off) in front of it
#   nginx      nginx (worker_processes 1, upstream keepalive 64)
#   haproxy    haproxy (nbthread 1, http-reuse always)
# and prints a table: requests/s, p50, p99, errors and the CPU time the server
# under test spent per request, plus floodgate/nginx and floodgate/haproxy.
#
#   bench/proxy_compare.sh [--out FILE]
#
# Environment (all optional):
#   DURATION=10s      measured run per target (wrk -d)
#   WARMUP=2s         unmeasured run before each (0 to skip)
#   CONNECTIONS=64    wrk -c
#   WRK_THREADS=1     wrk -t
#   TARGETS="direct floodgate nginx haproxy floodgate_pass floodgate_poll nginx_return"   which rows, in order
#                     (floodgate_pass: the proxied path of an admitted person, GET /ping through a
#                     room with a valid pass cookie: verified and its slot touched on every request)
#                     (floodgate_poll: the waiting path, GET /__fg/v1/rooms/bench/status with a
#                     waiting ticket; nginx_return: nginx answering a constant return 200)
#   ROUNDS=1          repeat the whole sequence; the table shows each target's median
#                     (per column) and the errors summed over rounds. On a shared
#                     machine ROUNDS=3 smooths out other processes' bursts.
#   BUILD_DIR=build/release   where floodgate and floodgate-demo-booking are
#   FLOODGATE_BIN, BOOKING_BIN    override the two binaries
#   PIN=1             pin processes to CPUs with taskset (0: let the kernel place them)
#   SERVER_CPUS=0     CPUs of the server under test (the proxy; for "direct", the demo site)
#   LOAD_CPUS=1       CPUs of wrk and of the upstream behind the proxies
#   SERVER_CPU_QUOTA=50   the server under test may use this % of one CPU (a cgroup
#                     CPU quota, 5 ms in every 10 ms at 50); 0 for no limit
#
# CPU placement (PIN=1, the default). On a 2-core machine the server under
# test gets CPU 0 to itself, and wrk shares CPU 1 with the upstream the
# proxies forward to. Every proxy sees the same placement, so the rows compare
# fairly; the absolute numbers are bounded by what CPU 1 can generate and
# serve, which is why the "CPU µs/req" column (the server under test's own
# user+system time per completed request, from /proc) is the steadier measure
# of cost on a busy machine.
#
# CPU quota (SERVER_CPU_QUOTA=50, the default). Unlimited, every server here
# answers faster than wrk and the upstream on CPU 1 can ask and serve (about
# 34,000 requests/s on the 2-core VM of RESULTS.md, whichever proxy is in
# front), so requests/s would measure CPU 1, not the server. With half a CPU
# the server under test is the bottleneck and requests/s is what it can do
# with it. The quota is a cgroup (v1 cpu controller, or v2 cpu.max); where
# none can be created the run goes on without one and the report says so.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=bench/lib.sh
. bench/lib.sh

# The invocation, with the settings given in the environment, for the report.
command_line="bench/proxy_compare.sh"
for var in SERVER_CPU_QUOTA LOAD_CPUS SERVER_CPUS PIN BUILD_DIR ROUNDS TARGETS WRK_THREADS CONNECTIONS WARMUP DURATION; do
  if [ -n "${!var+set}" ]; then command_line="$var=$(printf '%q' "${!var}") $command_line"; fi
done

DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
CONNECTIONS="${CONNECTIONS:-64}"
WRK_THREADS="${WRK_THREADS:-1}"
TARGETS="${TARGETS:-direct floodgate nginx haproxy floodgate_pass floodgate_poll nginx_return}"
ROUNDS="${ROUNDS:-1}"
BUILD_DIR="${BUILD_DIR:-build/release}"
FLOODGATE_BIN="${FLOODGATE_BIN:-$BUILD_DIR/gateway/floodgate}"
BOOKING_BIN="${BOOKING_BIN:-$BUILD_DIR/bench/demo/floodgate-demo-booking}"
PIN="${PIN:-1}"
SERVER_CPU_QUOTA="${SERVER_CPU_QUOTA:-50}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOAD_CPUS="${LOAD_CPUS:-1}"

original_args=("$@")
out_file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "proxy_compare.sh: --out needs a file name" >&2; exit 2; }
           out_file="$2"; shift 2 ;;
    --out=*) out_file="${1#--out=}"; shift ;;
    -h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "proxy_compare.sh: unknown argument \"$1\" (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf 'proxy_compare: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive whole number, got \"$ROUNDS\""
[[ "$SERVER_CPU_QUOTA" =~ ^[0-9]+$ ]] && [ "$SERVER_CPU_QUOTA" -le 100 ] ||
  die "SERVER_CPU_QUOTA must be a whole percentage from 0 to 100, got \"$SERVER_CPU_QUOTA\""

for tool in wrk curl python3 pgrep; do
  command -v "$tool" >/dev/null || die "$tool is not installed (deploy/install-deps.sh)"
done
[ -x "$BOOKING_BIN" ] || die "$BOOKING_BIN is missing; build it (ninja floodgate-demo-booking) or set BUILD_DIR"
if [ "$PIN" = 1 ] && ! command -v taskset >/dev/null; then
  log "taskset not found; running unpinned"
  PIN=0
fi

work_dir="$(mktemp -d -t floodgate-proxy-compare.XXXXXX)"
chmod 755 "$work_dir"  # nginx's worker (user nobody when started as root) reads under it
pids=()

quota_dir=""    # the cgroup of the server under test, when SERVER_CPU_QUOTA is set
quota_note=""

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
  [ -n "$quota_dir" ] && rmdir "$quota_dir" 2>/dev/null
  rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted"; exit 130' INT TERM

# --- helpers ---------------------------------------------------------------------------

# Runs a command pinned to CPU list $1 (or unpinned with PIN=0).
pinned() {
  local cpus="$1"
  shift
  if [ "$PIN" = 1 ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

# A cgroup that gives its processes SERVER_CPU_QUOTA % of one CPU: sets $quota_dir
# (empty when there is no quota) and $quota_note, what the report says about it.
setup_quota() {
  local period=10000 quota=$((SERVER_CPU_QUOTA * 100)) dir
  [ "$SERVER_CPU_QUOTA" != 0 ] && [ "$SERVER_CPU_QUOTA" != 100 ] || { quota_note="no CPU quota"; return; }
  if [ -w /sys/fs/cgroup/cpu/cgroup.procs ]; then  # cgroup v1
    dir="/sys/fs/cgroup/cpu/floodgate-proxy-compare-$$"
    if mkdir "$dir" 2>/dev/null && echo "$period" >"$dir/cpu.cfs_period_us" &&
       echo "$quota" >"$dir/cpu.cfs_quota_us"; then
      quota_dir=$dir
    fi
  elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then  # cgroup v2
    dir="/sys/fs/cgroup/floodgate-proxy-compare-$$"
    { grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu >/sys/fs/cgroup/cgroup.subtree_control; } 2>/dev/null
    if mkdir "$dir" 2>/dev/null && echo "$quota $period" >"$dir/cpu.max" 2>/dev/null; then
      quota_dir=$dir
    fi
  fi
  if [ -n "$quota_dir" ]; then
    quota_note="the server under test limited to $SERVER_CPU_QUOTA % of one CPU (cgroup $quota_dir)"
  else
    [ -n "${dir:-}" ] && rmdir "$dir" 2>/dev/null
    quota_note="no CPU quota: no cgroup CPU controller could be set up here (requests/s may measure wrk and the upstream)"
    log "$quota_note"
  fi
}

# Starts "$@" in the background on CPU list $1, logging to $work_dir/$2.log; sets $started_pid.
# On the server's CPUs it runs inside the quota's cgroup, if there is one.
start_server() {
  local cpus="$1" name="$2"
  shift 2
  if [ -n "$quota_dir" ] && [ "$cpus" = "$SERVER_CPUS" ] && [ "$name" != backend ]; then
    set -- sh -c 'echo $$ >"$0" && exec "$@"' "$quota_dir/cgroup.procs" "$@"
  fi
  # A simple command, not the pinned() function: a backgrounded function runs in a
  # subshell, and $! would be that subshell instead of the server.
  if [ "$PIN" = 1 ]; then
    taskset -c "$cpus" "$@" >"$work_dir/$name.log" 2>&1 &
  else
    "$@" >"$work_dir/$name.log" 2>&1 &
  fi
  started_pid=$!
  pids+=("$started_pid")
}

stop_server() {
  local pid="$1" p keep=()
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  pids=("${keep[@]+"${keep[@]}"}")
}

# Waits until $1 answers 200 (the server $2 must stay alive), up to ~10 s.
wait_ready() {
  local url="$1" pid="$2" _
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

# User+system clock ticks of a process and its children (nginx's worker).
cpu_ticks() {
  local pid="$1" total=0 p ticks
  for p in "$pid" $(pgrep -P "$pid" || true); do
    # Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends the command name.
    ticks=$(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12 + $13}') || ticks=0
    total=$((total + ${ticks:-0}))
  done
  echo "$total"
}

# wrk's output -> "requests_per_s p50_ms p99_ms errors requests"
parse_wrk() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
      return v + 0
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Requests\/sec:/ { rps = $2 }
    / requests in / { requests = $1 }
    /Non-2xx or 3xx responses:/ { errors += $NF }
    /Socket errors:/ {
      for (i = 3; i <= NF; i++) { gsub(",", "", $i); if ($i ~ /^[0-9]+$/) errors += $i }
    }
    END { printf "%s %s %s %d %s\n", rps, p50, p99, errors, requests }'
}

# Per target: the values of every round (space-separated), and at the end their medians.
declare -A rps_all p50_all p99_all cpu_all rps p50 p99 cpu_per_req errors label note

# Measures http://127.0.0.1:$2$4 (default /ping) for target $1 whose server process is $3,
# with the extra request header $5 if given.
measure() {
  local target="$1" port="$2" pid="$3" path="${4:-/ping}" header="${5:-}" url before after output r
  local -a extra=()
  [ -n "$header" ] && extra=(-H "$header")
  url="http://127.0.0.1:$port$path"
  if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then
    pinned "$LOAD_CPUS" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${extra[@]}" "$url" >/dev/null 2>&1 || true
  fi
  before=$(cpu_ticks "$pid")
  output=$(pinned "$LOAD_CPUS" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${extra[@]}" "$url" 2>&1) ||
    { note[$target]="wrk failed"; log "$target: wrk failed: $output"; return 0; }
  after=$(cpu_ticks "$pid")
  printf '%s\n' "$output" >"$work_dir/$target.wrk"
  local v_rps v_p50 v_p99 v_errors
  read -r v_rps v_p50 v_p99 v_errors r <<<"$(parse_wrk <<<"$output")"
  local v_cpu
  v_cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="${r:-0}" \
    'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n }')
  rps_all[$target]+="$v_rps " p50_all[$target]+="$v_p50 " p99_all[$target]+="$v_p99 "
  cpu_all[$target]+="${v_cpu:-} " errors[$target]=$(( ${errors[$target]:-0} + v_errors ))
  log "$target: $v_rps req/s, p50 $v_p50 ms, p99 $v_p99 ms, errors $v_errors, CPU ${v_cpu:--} µs/req"
}

# --- the upstream ------------------------------------------------------------------------

# Starts a demo booking site on CPU list $1; sets $booking_port and $booking_pid.
start_booking() {
  local cpus="$1" name="$2" _
  rm -f "$work_dir/$name.port"
  start_server "$cpus" "$name" "$BOOKING_BIN" --listen 127.0.0.1:0 --threads 1 \
    --port-file "$work_dir/$name.port"
  booking_pid=$started_pid
  for _ in $(seq 1 100); do [ -s "$work_dir/$name.port" ] && break; sleep 0.05; done
  booking_port=$(cat "$work_dir/$name.port" 2>/dev/null) || die "the demo site did not start: $(cat "$work_dir/$name.log")"
  wait_ready "http://127.0.0.1:$booking_port/ping" "$booking_pid" ||
    die "the demo site does not answer: $(cat "$work_dir/$name.log")"
}

# --- targets -----------------------------------------------------------------------------

target_direct() {
  label[direct]="direct (demo /ping)"
  start_booking "$SERVER_CPUS" direct
  measure direct "$booking_port" "$booking_pid"
  stop_server "$booking_pid"
}

# $1: target, $2: server pid, $3: port. Measures when the proxy answers, else records why not.
measure_proxy() {
  local target="$1" pid="$2" port="$3"
  if wait_ready "http://127.0.0.1:$port/ping" "$pid"; then
    measure "$target" "$port" "$pid"
  else
    note[$target]="did not start or did not proxy /ping (log: $(tail -n 3 "$work_dir/$target.log" | tr '\n' ' '))"
    log "$target: ${note[$target]}"
  fi
  stop_server "$pid"
}

fill_template() {
  sed -e "s|@PORT@|$2|g" -e "s|@UPSTREAM_PORT@|$3|g" -e "s|@ADMIN_PORT@|${4:-0}|g" \
      -e "s|@PREFIX@|$work_dir/$5|g" "$1"
}

target_floodgate() {
  label[floodgate]=floodgate
  if [ ! -x "$FLOODGATE_BIN" ]; then
    note[floodgate]="$FLOODGATE_BIN is missing"
    return
  fi
  label[floodgate]="floodgate $({ "$FLOODGATE_BIN" --version 2>/dev/null || true; } | awk 'NR == 1 {print $NF}')"
  local port admin_port
  port=$(free_port)
  admin_port=$(free_port)
  fill_template bench/peers/floodgate.yaml.in "$port" "$backend_port" "$admin_port" floodgate \
    >"$work_dir/floodgate.yaml"
  start_server "$SERVER_CPUS" floodgate "$FLOODGATE_BIN" --config "$work_dir/floodgate.yaml"
  measure_proxy floodgate "$started_pid" "$port"
}

target_nginx() {
  label[nginx]=nginx
  command -v nginx >/dev/null || { note[nginx]="nginx is not installed"; return; }
  label[nginx]="nginx $(nginx -v 2>&1 | sed 's|.*/||')"
  local port
  port=$(free_port)
  mkdir -p "$work_dir/nginx"
  fill_template bench/peers/nginx.conf.in "$port" "$backend_port" "" nginx >"$work_dir/nginx/nginx.conf"
  nginx_argv "$work_dir/nginx"
  start_server "$SERVER_CPUS" nginx "${nginx_cmd[@]}"
  measure_proxy nginx "$started_pid" "$port"
}

target_haproxy() {
  label[haproxy]=haproxy
  command -v haproxy >/dev/null || { note[haproxy]="haproxy is not installed"; return; }
  label[haproxy]="haproxy $(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}')"
  local port
  port=$(free_port)
  fill_template bench/peers/haproxy.cfg.in "$port" "$backend_port" "" haproxy >"$work_dir/haproxy.cfg"
  start_server "$SERVER_CPUS" haproxy haproxy -f "$work_dir/haproxy.cfg" -db
  measure_proxy haproxy "$started_pid" "$port"
}

# ---------------------------------------------------------------------------------------
# SECOND WORKLOAD (to be added): "waiting path".
# When the waiting room exists, measure the status poll that every waiting user sends
# (GET /__fg/v1/rooms/{room}/status with a ticket) against floodgate alone: a config
# with one room in queue_all mode, tickets minted up front, wrk with a Lua script that
# sends one ticket per connection. There is no nginx/haproxy equivalent; report
# requests/s, p50, p99 and CPU µs/req next to the proxy rows.
target_floodgate_poll() {
  label[floodgate_poll]="floodgate status poll"
  [ -x "$FLOODGATE_BIN" ] || { note[floodgate_poll]="$FLOODGATE_BIN is missing"; return; }
  local port admin_port ticket _
  port=$(free_port)
  admin_port=$(free_port)
  fill_template bench/peers/floodgate-room.yaml.in "$port" "$backend_port" "$admin_port" floodgate_poll \
    >"$work_dir/floodgate_poll.yaml"
  start_server "$SERVER_CPUS" floodgate_poll "$FLOODGATE_BIN" --config "$work_dir/floodgate_poll.yaml"
  local pid=$started_pid
  wait_ready "http://127.0.0.1:$port/ping" "$pid" || { note[floodgate_poll]="did not start"; stop_server "$pid"; return; }
  # The first joiner is called at once (the burst); the third stays waiting for the run.
  for _ in 1 2 3; do
    ticket=$(curl -s -o /dev/null -D - -H 'Accept: application/json' "http://127.0.0.1:$port/reserve" |
      sed -n 's/^[Ss]et-[Cc]ookie: fg_ticket_bench=\([^;]*\).*/\1/p')
  done
  if [ -z "$ticket" ]; then
    note[floodgate_poll]="no ticket was issued"
    stop_server "$pid"
    return
  fi
  measure floodgate_poll "$port" "$pid" /__fg/v1/rooms/bench/status "Floodgate-Ticket: $ticket"
  stop_server "$pid"
}

# The proxied path of an admitted person: GET /ping with a pass (cookie), through a room
# that verifies it and touches its slot on every request, then proxies.
target_floodgate_pass() {
  label[floodgate_pass]="floodgate with a pass"
  [ -x "$FLOODGATE_BIN" ] || { note[floodgate_pass]="$FLOODGATE_BIN is missing"; return; }
  local port admin_port pass
  port=$(free_port)
  admin_port=$(free_port)
  fill_template bench/peers/floodgate-pass.yaml.in "$port" "$backend_port" "$admin_port" floodgate_pass \
    >"$work_dir/floodgate_pass.yaml"
  start_server "$SERVER_CPUS" floodgate_pass "$FLOODGATE_BIN" --config "$work_dir/floodgate_pass.yaml"
  local pid=$started_pid
  wait_ready "http://127.0.0.1:$port/__fg/v1/lights" "$pid" || { note[floodgate_pass]="did not start"; stop_server "$pid"; return; }
  pass=$(curl -s -o /dev/null -D - -H 'Accept: application/json' "http://127.0.0.1:$port/ping" |
    sed -n 's/^[Ss]et-[Cc]ookie: fg_pass_bench=\([^;]*\).*/\1/p')
  if [ -z "$pass" ]; then
    note[floodgate_pass]="no pass was issued"
    stop_server "$pid"
    return
  fi
  measure floodgate_pass "$port" "$pid" /ping "Cookie: fg_pass_bench=$pass"
  stop_server "$pid"
}

target_nginx_return() {
  label[nginx_return]="nginx return 200"
  command -v nginx >/dev/null || { note[nginx_return]="nginx is not installed"; return; }
  local port
  port=$(free_port)
  mkdir -p "$work_dir/nginx_return"
  fill_template bench/peers/nginx-return.conf.in "$port" 0 "" nginx_return >"$work_dir/nginx_return/nginx.conf"
  nginx_argv "$work_dir/nginx_return"
  start_server "$SERVER_CPUS" nginx_return "${nginx_cmd[@]}"
  measure_proxy nginx_return "$started_pid" "$port"
}
# ---------------------------------------------------------------------------------------

# --- run -----------------------------------------------------------------------------------

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
machine="$(nproc) CPUs, ${cpu_model:-unknown CPU}, $(uname -sr)"
started_at="$(date -u '+%Y-%m-%d %H:%M UTC')"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$PIN" = 1 ]; then
  placement="server under test on CPU $SERVER_CPUS; wrk and the proxies' upstream on CPU $LOAD_CPUS"
else
  placement="not pinned"
fi
setup_quota
placement="$placement; $quota_note"
log "$machine; $placement"

needs_backend=0
for t in $TARGETS; do
  case "$t" in
    direct|nginx_return) ;;
    floodgate|nginx|haproxy|floodgate_poll|floodgate_pass) needs_backend=1 ;;
    *) die "unknown target \"$t\" (direct, floodgate, nginx, haproxy, floodgate_pass, floodgate_poll, nginx_return)" ;;
  esac
done
if [ "$needs_backend" = 1 ]; then
  start_booking "$LOAD_CPUS" backend
  backend_port=$booking_port
fi
for round in $(seq 1 "$ROUNDS"); do
  for t in $TARGETS; do
    log "round $round/$ROUNDS: measuring $t"
    "target_$t"
  done
done

median() {  # of the numbers in $1; empty if none
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
for t in $TARGETS; do
  rps[$t]=$(median "${rps_all[$t]:-}")
  p50[$t]=$(median "${p50_all[$t]:-}")
  p99[$t]=$(median "${p99_all[$t]:-}")
  cpu_per_req[$t]=$(median "${cpu_all[$t]:-}")
done

# --- report ----------------------------------------------------------------------------------

ratio() {  # $1 / $2, or "-" when either is missing
  awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

report() {
  echo "## Proxy comparison"
  echo
  echo "- command: \`$command_line${original_args[*]+ ${original_args[*]}}\` (wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency, keep-alive, GET /ping; warm-up $WARMUP; $ROUNDS round(s), medians)"
  echo "- date: $started_at"
  echo "- machine: $machine; load average before the run: $load_before"
  echo "- placement: $placement"
  echo
  echo "| target | requests/s | p50 (ms) | p99 (ms) | errors | server CPU µs/req |"
  echo "|---|---:|---:|---:|---:|---:|"
  local t
  for t in $TARGETS; do
    if [ -n "${rps[$t]:-}" ]; then
      printf '| %s | %.0f | %.3f | %.3f | %s | %s |\n' "${label[$t]:-$t}" "${rps[$t]}" "${p50[$t]}" \
        "${p99[$t]}" "${errors[$t]:-0}" "${cpu_per_req[$t]:--}"
    else
      printf '| %s | pending: %s | | | | |\n' "${label[$t]:-$t}" "${note[$t]:-not measured}"
    fi
  done
  echo
  if [ -n "${rps[floodgate_poll]:-}" ] && [ -n "${rps[nginx_return]:-}" ]; then
    printf -- '- waiting path, floodgate status poll / nginx return 200: requests/s %s, p99 %s, CPU µs/req %s\n' \
      "$(ratio "${rps[floodgate_poll]}" "${rps[nginx_return]}")" "$(ratio "${p99[floodgate_poll]}" "${p99[nginx_return]}")" \
      "$(ratio "${cpu_per_req[floodgate_poll]:-}" "${cpu_per_req[nginx_return]:-}")"
  fi
  for t in nginx haproxy; do
    case " $TARGETS " in *" $t "*) ;; *) continue ;; esac
    printf -- '- floodgate/%s: requests/s %s, p99 %s, CPU µs/req %s\n' "$t" \
      "$(ratio "${rps[floodgate]:-}" "${rps[$t]:-}")" "$(ratio "${p99[floodgate]:-}" "${p99[$t]:-}")" \
      "$(ratio "${cpu_per_req[floodgate]:-}" "${cpu_per_req[$t]:-}")"
    if [ -n "${rps[floodgate_pass]:-}" ]; then
      printf -- '- floodgate with a pass/%s: requests/s %s, p99 %s, CPU µs/req %s\n' "$t" \
        "$(ratio "${rps[floodgate_pass]:-}" "${rps[$t]:-}")" "$(ratio "${p99[floodgate_pass]:-}" "${p99[$t]:-}")" \
        "$(ratio "${cpu_per_req[floodgate_pass]:-}" "${cpu_per_req[$t]:-}")"
    fi
  done
}

report_text="$(report)"
echo
printf '%s\n' "$report_text"
if [ -n "$out_file" ]; then
  printf '%s\n' "$report_text" >"$out_file"
  log "wrote $out_file"
fi
