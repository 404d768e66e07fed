#!/usr/bin/env bash
# shellcheck disable=SC2317 # cleanup is called from a trap
# Several gateway nodes sharing rooms through one redis-server (store: redis://..., docs/redis.md),
# next to one node in memory mode (store: memory), on this machine. Measures:
#
#   1. polls/s on the waiting path (GET /__fg/v1/rooms/poll/status with a waiting ticket cookie,
#      wrk + bench/peers/multinode_poll.lua): 1 node in memory mode, then 1, 2, ... NODES nodes
#      through Redis, one wrk per node, all at once; and the CPU share of every process (/proc);
#   2. join latency (GET /joins, JSON, answered 503 + waiting ticket): p50/p99 of a timed loop,
#      memory mode and Redis mode, paced (JOIN_PAUSE between joins) and back to back;
#   3. Redis commands (INFO commandstats before/after) with NODES nodes: idle (the background),
#      a crowd of waiting people polling every 1 s, the same crowd polling every 0.2 s, and a
#      crowd that is admitted and gives its slot back: commands per waiting person per minute
#      and per admitted person, background taken off.
#
#   bench/multinode.sh [--smoke] [--out DIR]
#
# Every gateway runs with `threads: 1`; nothing is pinned: the gateways, redis-server, wrk and
# the crowd share all CPUs, and the table says how busy each was.
#
# Environment (all optional):
#   BUILD_DIR=build/release           where floodgate and floodgate-demo-booking are
#   FLOODGATE_BIN, BOOKING_BIN         override the two binaries
#   REDIS_SERVER=redis-server REDIS_CLI=redis-cli
#   NODES=3            most nodes (--smoke: 2)
#   DURATION=10        seconds of each wrk run (--smoke: 2)
#   CONNECTIONS=32     wrk -c, per node
#   PEOPLE=300         waiting people of the crowd runs (--smoke: 20)
#   CROWD_SECONDS=30   length of each Redis-commands run (--smoke: 3)
#   ADMIT_PEOPLE=200   people admitted in the admit run (--smoke: 20)
#   JOINS=2000         joins in each join-latency loop (at most 20 s; --smoke: 200)
#   JOIN_PAUSE=0.005   seconds between joins of the paced loop
# --out DIR: where the table, wrk outputs, logs and commandstats go [bench/out/multinode-<UTC>].
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=bench/lib.sh
. bench/lib.sh

parse_bench_args multinode.sh "$@"
bench_command_line bench/multinode.sh "JOIN_PAUSE JOINS ADMIT_PEOPLE CROWD_SECONDS PEOPLE CONNECTIONS DURATION NODES BUILD_DIR"

if [ "$smoke" = 1 ]; then
  NODES="${NODES:-2}" DURATION="${DURATION:-2}" PEOPLE="${PEOPLE:-20}" CROWD_SECONDS="${CROWD_SECONDS:-3}"
  ADMIT_PEOPLE="${ADMIT_PEOPLE:-20}" JOINS="${JOINS:-200}"
fi
NODES="${NODES:-3}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
PEOPLE="${PEOPLE:-300}"
CROWD_SECONDS="${CROWD_SECONDS:-30}"
ADMIT_PEOPLE="${ADMIT_PEOPLE:-200}"
JOINS="${JOINS:-2000}"
JOIN_PAUSE="${JOIN_PAUSE:-0.005}"
BUILD_DIR="${BUILD_DIR:-build/release}"
FLOODGATE_BIN="${FLOODGATE_BIN:-$BUILD_DIR/gateway/floodgate}"
BOOKING_BIN="${BOOKING_BIN:-$BUILD_DIR/bench/demo/floodgate-demo-booking}"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
REDIS_CLI="${REDIS_CLI:-redis-cli}"

log() { printf 'multinode: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in wrk curl python3 "$REDIS_SERVER" "$REDIS_CLI"; do
  command -v "$tool" >/dev/null || die "$tool is not installed (deploy/install-deps.sh)"
done
[ -x "$FLOODGATE_BIN" ] || die "$FLOODGATE_BIN is missing; build it (ninja floodgate) or set BUILD_DIR"
[ -x "$BOOKING_BIN" ] || die "$BOOKING_BIN is missing; build it (ninja floodgate-demo-booking) or set BUILD_DIR"
[[ "$NODES" =~ ^[1-9]$ ]] || die "NODES must be 1..9, got \"$NODES\""

[ -n "$out_dir" ] || out_dir="bench/out/multinode-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
work="$(mktemp -d -t floodgate-multinode.XXXXXX)"
crowd=(python3 "$repo_root/bench/peers/multinode_crowd.py")
pids=()

cleanup() {
  stop_pids
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted"; exit 130' INT TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

stop_pid() {
  local pid="$1" p keep=() i
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  pids=("${keep[@]+"${keep[@]}"}")
}

# user+system clock ticks of a process (0 once it is gone)
ticks() {
  local t
  t=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}') || true
  echo "${t:-0}"
}
hz=$(getconf CLK_TCK)

# --- processes ----------------------------------------------------------------------------------

"$BOOKING_BIN" --listen 127.0.0.1:0 --threads 1 --port-file "$work/site.port" >"$out_dir/site.log" 2>&1 &
pids+=($!)
wait_for_file "$work/site.port" "$!" floodgate-demo-booking "$out_dir/site.log" || die "no demo site"
site_port=$(cat "$work/site.port")

# One key file for every node: "<kid> <32 random bytes, base64url>".
printf 'mn1 %s\n' "$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')" >"$work/keys"
chmod 600 "$work/keys"

# gateway_config NAME STORE_LINES: a config with the bench rooms (all queue_all):
#   poll   rate 0.001: the measured ticket waits for the whole run
#   joins  rate 0.001: the join-latency loop; nobody is called
#   wait   rate 0.001: the waiting crowd
#   admit  rate 50/s, max_active 1000: the crowd that is admitted and releases
gateway_config() {
  cat <<EOF
threads: 1
listen:
  - address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
upstreams:
  booking:
    servers: [127.0.0.1:$site_port]
default_upstream: booking
access_log: off
log_level: warn
keys_file: $work/keys
$2
rooms:
  poll:
    match: {paths: [/poll]}
    admission: {rate: 0.001, burst: 1, abandon_after: 10m}
    mode: queue_all
  joins:
    match: {paths: [/joins]}
    admission: {rate: 0.001, burst: 1, abandon_after: 10m}
    mode: queue_all
  wait:
    match: {paths: [/wait]}
    admission: {rate: 0.001, burst: 1, abandon_after: 10m}
    mode: queue_all
  admit:
    match: {paths: [/admit]}
    admission: {rate: 50, burst: 10, max_active: 1000, abandon_after: 60s}
    mode: queue_all
EOF
}

declare -A gw_pid gw_port
# start_gateway NAME STORE_LINES: sets gw_pid[NAME], gw_port[NAME]; waits for /readyz 200.
start_gateway() {
  local name="$1" admin _
  gateway_config "$name" "$2" >"$out_dir/$name.yaml"
  "$FLOODGATE_BIN" --config "$out_dir/$name.yaml" --ports-file "$work/$name.ports" >"$out_dir/$name.log" 2>&1 &
  pids+=($!)
  gw_pid[$name]=$!
  wait_for_file "$work/$name.ports" "$!" "floodgate $name" "$out_dir/$name.log" || die "floodgate $name did not start"
  gw_port[$name]=$(awk '$1 == "listen" { n = split($3, a, ":"); print a[n]; exit }' "$work/$name.ports")
  admin=$(awk '$1 == "admin" { n = split($2, a, ":"); print a[n]; exit }' "$work/$name.ports")
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$admin/readyz" || true)" = 200 ] && return 0
    sleep 0.1
  done
  die "floodgate $name is not ready: $(curl -s --max-time 1 "http://127.0.0.1:$admin/readyz"; tail -5 "$out_dir/$name.log")"
}

# ticket PORT ROOM PATH: a waiting ticket (the second join: the first may be called by the burst)
ticket() {
  local t _
  for _ in 1 2; do
    t=$(curl -s -o /dev/null -D - -H 'Accept: application/json' "http://127.0.0.1:$1$3" |
      sed -n "s/^[Ss]et-[Cc]ookie: fg_ticket_$2=\\([^;]*\\).*/\\1/p")
  done
  [ -n "$t" ] || die "no ticket from 127.0.0.1:$1$3"
  echo "$t"
}

# --- measurements ---------------------------------------------------------------------------------

# poll_run LABEL NAME...: one wrk per named gateway, concurrently, each with its own waiting
# ticket (joined on the next node, so tickets cross nodes). Records polls/s (sum, per node),
# p50/p99 (worst of the nodes), non-2xx, and every process's CPU % over the middle of the run.
declare -A row_busy row_us row_rps row_per_node row_p50 row_p99 row_err row_cpu
rows=()
poll_run() {
  local label="$1" i n name t0 t1
  shift
  local names=("$@") wrk_pids=() tickets=()
  n=${#names[@]}
  for i in $(seq 0 $((n - 1))); do
    tickets+=("$(ticket "${gw_port[${names[$(((i + 1) % n))]}]}" poll /poll)")
    # the ticket must say "waiting" on the node it is measured on
    curl -s -H "Cookie: fg_ticket_poll=${tickets[$i]}" \
      "http://127.0.0.1:${gw_port[${names[$i]}]}/__fg/v1/rooms/poll/status" | grep -q '"state":"waiting"' ||
      die "$label: the measured ticket is not waiting on ${names[$i]}"
  done
  declare -A gw_start
  for name in "${names[@]}"; do gw_start[$name]=$(ticks "${gw_pid[$name]}"); done
  [ -n "${redis_pid:-}" ] && gw_start[redis]=$(ticks "$redis_pid")
  for i in $(seq 0 $((n - 1))); do
    FG_ROOM=poll FG_TICKET="${tickets[$i]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
      -s bench/peers/multinode_poll.lua "http://127.0.0.1:${gw_port[${names[$i]}]}" \
      >"$out_dir/wrk-$label-${names[$i]}.txt" 2>&1 &
    wrk_pids+=($!)
    pids+=($!)
  done
  # CPU of each process over [0.5 s, DURATION - 0.5 s] of the run
  local procs=("${names[@]}") p
  [ -n "${redis_pid:-}" ] && procs+=(redis)
  declare -A before after pidof start_ticks
  for i in "${!names[@]}"; do pidof[${names[$i]}]=${gw_pid[${names[$i]}]}; done
  [ -n "${redis_pid:-}" ] && pidof[redis]=$redis_pid
  for p in "${procs[@]}"; do start_ticks[$p]=${gw_start[$p]:-0}; done
  for i in "${!wrk_pids[@]}"; do pidof[wrk$((i + 1))]=${wrk_pids[$i]}; procs+=("wrk$((i + 1))"); done
  # servers: over the whole run (they outlive it); wrk: sampled from 0.5 s to DURATION - 0.5 s
  declare -A span
  sleep 0.5
  t0=$(date +%s.%N)
  for p in "${procs[@]}"; do case "$p" in wrk*) before[$p]=$(ticks "${pidof[$p]}") ;; esac; done
  local busy0
  busy0=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8; exit }' /proc/stat)
  sleep "$(awk -v d="$DURATION" 'BEGIN { print (d > 2.5 ? d - 2 : 0.3) }')"
  for p in "${procs[@]}"; do case "$p" in wrk*) after[$p]=$(ticks "${pidof[$p]}") ;; esac; done
  t1=$(date +%s.%N)
  local busy1
  busy1=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8; exit }' /proc/stat)
  row_busy[$label]=$(awk -v a="$busy0" -v b="$busy1" -v n="$(nproc)" \
    'BEGIN { split(a, x, " "); split(b, y, " "); if (y[2] > x[2]) printf "%.0f", (y[1] - x[1]) / (y[2] - x[2]) * 100 * n }')
  for p in "${procs[@]}"; do case "$p" in wrk*) span[$p]=$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }') ;; esac; done
  for p in "${wrk_pids[@]}"; do wait "$p" || true; done
  for p in "${procs[@]}"; do
    case "$p" in wrk*) ;; *) after[$p]=$(ticks "${pidof[$p]}"); before[$p]=${start_ticks[$p]}; span[$p]=$DURATION ;; esac
  done
  local keep=() q
  for q in "${pids[@]}"; do case " ${wrk_pids[*]} " in *" $q "*) ;; *) keep+=("$q") ;; esac; done
  pids=("${keep[@]}")
  local cpu=""
  for p in "${procs[@]}"; do
    cpu+="$p $(awk -v a="${after[$p]}" -v b="${before[$p]}" -v hz="$hz" -v t="${span[$p]}" \
      'BEGIN { if (a >= b && t > 0) printf "%.0f%%", (a - b) / hz / t * 100; else printf "-" }'), "
  done
  local gw_ticks=0
  for name in "${names[@]}"; do gw_ticks=$((gw_ticks + after[$name] - before[$name])); done
  local sum=0 worst50=0 worst99=0 errs=0 f r50 r99 rps e
  for name in "${names[@]}"; do
    f="$out_dir/wrk-$label-$name.txt"
    read -r rps r50 r99 e <<<"$(awk '
      function ms(v) {
        if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
        if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
        if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
        return v + 0 }
      $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
      /Requests\/sec:/ { rps = $2 }
      /Non-2xx or 3xx responses:/ { err += $NF }
      /Socket errors:/ { for (i = 3; i <= NF; i++) { gsub(",", "", $i); if ($i ~ /^[0-9]+$/) err += $i } }
      END { printf "%s %s %s %d\n", rps + 0, p50 + 0, p99 + 0, err }' "$f")"
    sum=$(awk -v a="$sum" -v b="$rps" 'BEGIN { print a + b }')
    worst50=$(awk -v a="$worst50" -v b="$r50" 'BEGIN { print (b > a ? b : a) }')
    worst99=$(awk -v a="$worst99" -v b="$r99" 'BEGIN { print (b > a ? b : a) }')
    errs=$((errs + e))
  done
  rows+=("$label")
  row_rps[$label]=$(printf '%.0f' "$sum")
  row_per_node[$label]=$(awk -v s="$sum" -v n="$n" 'BEGIN { printf "%.0f", s / n }')
  row_us[$label]=$(awk -v t="$gw_ticks" -v hz="$hz" -v s="$sum" -v d="$DURATION" \
    'BEGIN { if (s > 0) printf "%.1f", t / hz * 1e6 / (s * d); else print "-" }')
  row_p50[$label]=$worst50 row_p99[$label]=$worst99 row_err[$label]=$errs row_cpu[$label]="${cpu%, }; whole machine ${row_busy[$label]}% of $(nproc)00%"
  log "$label: ${row_rps[$label]} polls/s (${row_per_node[$label]} per node), ${row_us[$label]} gateway CPU µs/poll, p99 $worst99 ms, errors $errs; CPU ${row_cpu[$label]}"
}

# join_run LABEL PORT: the join-latency loops, paced then back to back
declare -A join_line
join_modes=()
join_run() {
  local k
  for k in paced burst; do
    join_line[$1 $k]=$("${crowd[@]}" joins --port "$2" --room joins --count "$JOINS" --duration 20 \
      --pause "$([ $k = paced ] && echo "$JOIN_PAUSE" || echo 0)")
    echo "${join_line[$1 $k]}" >"$out_dir/joins-$1-$k.txt"
    join_modes+=("$1 $k")
    log "$1 joins, $k: ${join_line[$1 $k]}"
  done
}
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$1"; }

# Redis commands so far, all commands but INFO (this script's own).
redis_calls() {
  "$REDIS_CLI" -p "$redis_port" INFO commandstats | tr -d '\r' |
    awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" { s += $3 } END { print s + 0 }'
}
# redis_window NAME COMMAND...: the Redis commands (and seconds) while COMMAND runs
declare -A win_calls win_secs win_out
redis_window() {
  local name="$1" a b t0 t1
  shift
  "$REDIS_CLI" -p "$redis_port" INFO commandstats >"$out_dir/commandstats-$name-before.txt"
  # MONITOR shows every command with its keys: the per-room counts come from it
  "$REDIS_CLI" -p "$redis_port" MONITOR >"$out_dir/monitor-$name.txt" 2>/dev/null &
  local mon=$!
  pids+=("$mon")
  sleep 0.2
  a=$(redis_calls)
  t0=$(date +%s.%N)
  win_out[$name]=$("$@")
  t1=$(date +%s.%N)
  b=$(redis_calls)
  stop_pid "$mon"
  "$REDIS_CLI" -p "$redis_port" INFO commandstats >"$out_dir/commandstats-$name-after.txt"
  win_calls[$name]=$((b - a))
  win_secs[$name]=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
  log "$name: ${win_calls[$name]} Redis commands in ${win_secs[$name]} s; ${win_out[$name]}"
}

# --- run -----------------------------------------------------------------------------------------

cpu_model=$(lscpu 2>/dev/null | awk -F': *' '/Model name/ { print $2; exit }')
machine="$(nproc) CPUs, ${cpu_model:-unknown CPU}, $(uname -sr)"
started_at="$(date -u '+%Y-%m-%d %H:%M UTC')"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "$machine; load $load_before; out $out_dir"

# 1 node in memory mode
start_gateway mem "store: memory"
poll_run "memory-1" mem
join_run memory "${gw_port[mem]}"
stop_pid "${gw_pid[mem]}"

# redis-server on a free port, its own directory, no persistence
redis_port=$(free_port)
mkdir -p "$work/redis"
"$REDIS_SERVER" --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" --save '' --appendonly no \
  --daemonize no --logfile "$out_dir/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
for _ in $(seq 100); do "$REDIS_CLI" -p "$redis_port" PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
"$REDIS_CLI" -p "$redis_port" PING | grep -q PONG || die "redis-server did not start: $(tail -5 "$out_dir/redis.log")"

store="store: redis://127.0.0.1:$redis_port/0
store_failure: hold"
names=()
for i in $(seq 1 "$NODES"); do
  start_gateway "node$i" "$store
node_id: node$i"
  names+=("node$i")
  sleep 1  # let the new node take its part (ranges, sync) before it is measured
  poll_run "redis-$i" "${names[@]}"
done
join_run redis "${gw_port[node1]}"

ports=$(for n in "${names[@]}"; do printf '%s,' "${gw_port[$n]}"; done)
ports=${ports%,}
redis_window idle sleep "$CROWD_SECONDS"
redis_window wait1 "${crowd[@]}" wait --ports "$ports" --room wait --people "$PEOPLE" --interval 1 \
  --duration "$CROWD_SECONDS"
redis_window wait5 "${crowd[@]}" wait --ports "$ports" --room wait --people "$PEOPLE" --interval 0.2 \
  --duration "$CROWD_SECONDS"
redis_window admit "${crowd[@]}" admit --ports "$ports" --room admit --people "$ADMIT_PEOPLE" \
  --duration "$((CROWD_SECONDS > 20 ? CROWD_SECONDS : 20))"

# --- report ----------------------------------------------------------------------------------------

# room_cmds WINDOW ROOM: commands the nodes sent that touch the room's keys (MONITOR lines with
# fg:{ROOM}:, not counting the commands run inside scripts, "[0 lua]")
room_cmds() { grep -v '\[[0-9]* lua\]' "$out_dir/monitor-$1.txt" | grep -c "fg:{$2}:" || true; }
per_person() {  # room $3's commands in window $1 minus its idle rate, per person ($2) [per minute with $4=min]
  local c ic
  c=$(room_cmds "$1" "$3")
  ic=$(room_cmds idle "$3")
  awk -v c="$c" -v s="${win_secs[$1]}" -v ic="$ic" -v is="${win_secs[idle]}" -v n="$2" -v per="${4:-}" \
    'BEGIN { if (n > 0 && s > 0) printf "%.1f", (c - ic / is * s) / n / (per == "min" ? s / 60 : 1); else print "-" }'
}
per_min() { per_person "$1" "$2" wait min; }
rate() { awk -v c="$1" -v s="$2" 'BEGIN { printf "%.1f", c / s }'; }
# room_bits WINDOW ROOM: liveness bits the nodes wrote for the room (the SETs inside BITFIELDs)
room_bits() {
  grep -v '\[[0-9]* lua\]' "$out_dir/monitor-$1.txt" | grep '"BITFIELD"' | grep "fg:{$2}:" |
    awk '{ n += gsub(/"SET"/, "") } END { print n + 0 }'
}
room_verbs() {  # WINDOW ROOM: "VERB count, ..." of the room's commands
  grep -v '\[[0-9]* lua\]' "$out_dir/monitor-$1.txt" | grep "fg:{$2}:" | awk '{ gsub(/"/, "", $4); print $4 }' |
    sort | uniq -c | sort -rn | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1 }'
}
report() {
  echo "## Several nodes through Redis"
  echo
  echo "- command: \`$command_line\`"
  echo "- date: $started_at; machine: $machine; load average before: $load_before"
  echo "- every gateway \`threads: 1\`; one redis-server $("$REDIS_SERVER" --version | awk '{print $3}' | sed 's/v=//') (no persistence);" \
       "nothing pinned: gateways, redis-server, wrk and the crowd script share the CPUs"
  echo "- polls: wrk -t1 -c$CONNECTIONS -d${DURATION}s per node, all nodes at once, GET /__fg/v1/rooms/poll/status" \
       "with a waiting ticket cookie (joined on another node)"
  echo
  echo "| setup | polls/s (all nodes) | polls/s per node | per node vs memory | gateway CPU µs/poll | vs memory | p50 ms | p99 ms | errors | CPU % of one core, per process (/proc) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  local r
  for r in "${rows[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$r" "${row_rps[$r]}" "${row_per_node[$r]}" \
      "$(awk -v a="${row_per_node[$r]}" -v b="${row_per_node[memory-1]}" 'BEGIN { printf "%.2f", a / b }')" \
      "${row_us[$r]}" "$(awk -v a="${row_us[$r]}" -v b="${row_us[memory-1]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" \
      "${row_p50[$r]}" "${row_p99[$r]}" "${row_err[$r]}" "${row_cpu[$r]}"
  done
  echo
  echo "| join: GET /joins → 503 + waiting ticket, one connection (paced: ${JOIN_PAUSE} s apart; burst: back to back) | joins sent | got a waiting ticket | p50 ms | p99 ms |"
  echo "|---|---:|---:|---:|---:|"
  local m
  for m in "${join_modes[@]}"; do
    printf '| %s | %s | %s | %s | %s |\n' "$m" "$(field "${join_line[$m]}" joins)" "$(field "${join_line[$m]}" waiting)" \
      "$(field "${join_line[$m]}" p50_ms)" "$(field "${join_line[$m]}" p99_ms)"
  done
  echo
  echo "| Redis, $NODES nodes | seconds | all commands/s (commandstats) | the room's commands/s (MONITOR) | crowd | Redis commands per person, over idle | liveness bits per waiting person per minute |"
  echo "|---|---:|---:|---:|---|---:|---:|"
  printf '| idle (4 rooms, nobody in them) | %s | %s | wait %s, admit %s | - | - | - |\n' "${win_secs[idle]}" \
    "$(rate "${win_calls[idle]}" "${win_secs[idle]}")" "$(rate "$(room_cmds idle wait)" "${win_secs[idle]}")" \
    "$(rate "$(room_cmds idle admit)" "${win_secs[idle]}")"
  local w interval waiting
  for w in wait1 wait5; do
    interval=$([ "$w" = wait1 ] && echo 1 || echo 0.2)
    waiting=$(field "${win_out[$w]}" joined)
    printf '| %s waiting, each polling every %s s | %s | %s | %s | %s | %s per minute | %s |\n' \
      "$waiting" "$interval" "${win_secs[$w]}" "$(rate "${win_calls[$w]}" "${win_secs[$w]}")" \
      "$(rate "$(room_cmds "$w" wait)" "${win_secs[$w]}")" "${win_out[$w]}" "$(per_min "$w" "$waiting")" \
      "$(awk -v b="$(room_bits "$w" wait)" -v n="$waiting" -v s="${win_secs[$w]}" 'BEGIN { if (n > 0) printf "%.1f", b / n / (s / 60); else print "-" }')"
  done
  local admitted
  admitted=$(field "${win_out[admit]}" admitted)
  printf '| %s admitted (join, poll every 0.5 s until called, release) | %s | %s | %s | %s | %s per admitted person | - |\n' \
    "$admitted" "${win_secs[admit]}" "$(rate "${win_calls[admit]}" "${win_secs[admit]}")" \
    "$(rate "$(room_cmds admit admit)" "${win_secs[admit]}")" "${win_out[admit]}" "$(per_person admit "$admitted" admit)"
  echo
  echo "Per person: the commands the nodes sent touching that room's keys (fg:{wait}:..., fg:{admit}:...;"
  echo "MONITOR, commands inside scripts not counted) minus the same room's idle rate over the same time,"
  echo "divided by the people (and by the minutes for waiting people). Joins fall inside the windows."
  echo "Liveness bits: the SET operations inside the nodes' BITFIELD commands for fg:{wait}:live:*."
  echo
  local w2
  for w2 in idle wait1 wait5; do echo "- room wait, $w2: $(room_verbs "$w2" wait)"; done
  for w2 in idle admit; do echo "- room admit, $w2: $(room_verbs "$w2" admit)"; done
  echo
  echo "commandstats and MONITOR of every window: $out_dir/{commandstats,monitor}-*.txt"
}

report_text="$(report)"
echo
printf '%s\n' "$report_text"
printf '%s\n' "$report_text" >"$out_dir/table.md"
log "wrote $out_dir/table.md"

if [ "$smoke" = 1 ]; then
  # every number the table needs is there and numeric
  bad=0
  for r in "${rows[@]}"; do
    if ! [[ "${row_rps[$r]}" =~ ^[0-9]+$ ]] || [ "${row_rps[$r]}" -eq 0 ]; then log "smoke: $r has no polls/s"; bad=1; fi
  done
  for m in "${join_modes[@]}"; do
    [[ "$(field "${join_line[$m]}" p99_ms)" =~ ^[0-9.]+$ ]] || { log "smoke: no join latency for $m"; bad=1; }
  done
  for w in idle wait1 wait5 admit; do
    [[ "${win_calls[$w]}" =~ ^[0-9]+$ ]] || { log "smoke: no Redis commands for $w"; bad=1; }
  done
  [[ "$(per_min wait1 "$(field "${win_out[wait1]}" joined)")" =~ ^-?[0-9.]+$ ]] || { log "smoke: no per-person figure"; bad=1; }
  [ "$bad" = 0 ] || die "smoke: FAILED"
  log "smoke: ok, all results numeric"
fi
