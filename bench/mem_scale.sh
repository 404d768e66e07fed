#!/usr/bin/env bash
# shellcheck disable=SC2317 # cleanup is called from a trap
# Gateway memory per waiting person, end to end, at millions of people waiting: the real floodgate
# process (store: memory, threads: 1) with one paused room, filled by wrk with explicit joins
# (POST /__fg/v1/rooms/mem/join, no cookies: every join is a new person; bench/peers/mem_join.lua).
# Nobody is called (mode: paused) and nobody is abandoned (abandon_after and ticket_ttl 24 h), so
# every ticket stays waiting; no upstream is needed (the join endpoint answers by itself).
#
# After a warm-up (WARMUP joins, so connection buffers and first allocations are in the baseline),
# the room is filled up to each step of STEPS in turn, in the same process. At the baseline and
# after each step (wrk stopped, 2 s settled) it records VmRSS and RssAnon (/proc/PID/status), the
# room's waiting count (admin API, a viewer token), every mapping whose Rss grew by 256 KiB or
# more (/proc/PID/smaps) and the join rate of the step. bytes/person = RSS growth since the
# baseline / people added since the baseline.
#
#   bench/mem_scale.sh [--smoke] [--out DIR]
#
# Environment (all optional):
#   BUILD_DIR=build/release      where floodgate is; FLOODGATE_BIN overrides the binary
#   STEPS="1000000 10000000"     waiting counts to measure at (--smoke: 20000)
#   WARMUP=20000                 joins before the baseline (--smoke: 2000)
#   CONNECTIONS=64               wrk -c
#   TIME_LIMIT=2400              seconds for the whole run; a step still filling then is stopped
#                                and measured at the count it reached (--smoke: 60)
#   STATE_DIR=0                  1: give the gateway a state_dir, so the room keeps a journal;
#                                the table then also says how many bytes it holds on disk
#   IDENTITY=0                   1: the room de-duplicates people by a header (identity.header:
#                                X-Bench-User) and every join sends a distinct one, so the room
#                                also holds one identity-map entry per person
# --out DIR: where the table, config, logs and smaps go [bench/out/mem-scale-<UTC>].
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=bench/lib.sh
. bench/lib.sh

parse_bench_args mem_scale.sh "$@"
bench_command_line bench/mem_scale.sh "IDENTITY STATE_DIR TIME_LIMIT CONNECTIONS WARMUP STEPS BUILD_DIR"

if [ "$smoke" = 1 ]; then
  STEPS="${STEPS:-20000}" WARMUP="${WARMUP:-2000}" TIME_LIMIT="${TIME_LIMIT:-60}"
fi
STEPS="${STEPS:-1000000 10000000}"
WARMUP="${WARMUP:-20000}"
CONNECTIONS="${CONNECTIONS:-64}"
TIME_LIMIT="${TIME_LIMIT:-2400}"
STATE_DIR="${STATE_DIR:-0}"
IDENTITY="${IDENTITY:-0}"
BUILD_DIR="${BUILD_DIR:-build/release}"
FLOODGATE_BIN="${FLOODGATE_BIN:-$BUILD_DIR/gateway/floodgate}"

log() { printf 'mem_scale: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed (deploy/install-deps.sh)"
done
[ -x "$FLOODGATE_BIN" ] || die "$FLOODGATE_BIN is missing; build it (ninja floodgate) or set BUILD_DIR"
prev=0
for s in $STEPS; do
  if ! [[ "$s" =~ ^[0-9]+$ ]] || [ "$s" -le "$prev" ]; then die "STEPS must be increasing whole numbers, got \"$STEPS\""; fi
  prev=$s
done

[ -n "$out_dir" ] || out_dir="bench/out/mem-scale-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
work="$(mktemp -d -t floodgate-mem-scale.XXXXXX)"
pids=()
deadline=$(($(date +%s) + TIME_LIMIT))

cleanup() {
  stop_pids
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted"; exit 130' INT TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- the gateway ----------------------------------------------------------------------------------

token="bench-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
state_line=""
if [ "$STATE_DIR" = 1 ]; then
  mkdir -p "$work/state"
  state_line="state_dir: $work/state"
fi
identity_line=""
[ "$IDENTITY" = 1 ] && identity_line="    identity: {header: X-Bench-User}"
# The upstream is never contacted: the room is paused and only its join endpoint is used.
cat >"$out_dir/floodgate.yaml" <<EOF
threads: 1
listen:
  - address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
upstreams:
  unused:
    servers: [127.0.0.1:9]
default_upstream: unused
access_log: off
log_level: warn
$state_line
rooms:
  mem:
    match: {paths: [/mem]}
    admission: {rate: 0.001, burst: 1, abandon_after: 24h}
    mode: paused
    tokens: {ticket_ttl: 24h}
$identity_line
EOF

FLOODGATE_ADMIN_TOKENS="viewer bench $token" \
  "$FLOODGATE_BIN" --config "$out_dir/floodgate.yaml" --ports-file "$work/ports" >"$out_dir/floodgate.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_for_file "$work/ports" "$gw" floodgate "$out_dir/floodgate.log" || die "floodgate did not start"
port=$(awk '$1 == "listen" { n = split($3, a, ":"); print a[n]; exit }' "$work/ports")
admin=$(awk '$1 == "admin" { n = split($2, a, ":"); print a[n]; exit }' "$work/ports")
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$admin/readyz" || true)" = 200 ] && break
  sleep 0.1
done

# the room's waiting count (admin API; -1 if it does not answer three times)
waiting() {
  local i w
  for i in 1 2 3; do
    w=$(curl -s --max-time 10 -H "Authorization: Bearer $token" "http://127.0.0.1:$admin/admin/v1/rooms/mem" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["stats"]["waiting"])' 2>/dev/null) && { echo "$w"; return; }
    sleep "$i"
  done
  echo -1
}
[ "$(waiting)" -ge 0 ] || die "the admin API does not answer: $(tail -5 "$out_dir/floodgate.log")"
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$gw/status"; }
# smaps_sample NAME: /proc/PID/smaps as "start-end size_kb rss_kb name" lines, in NAME.smaps
smaps_sample() {
  awk '/^[0-9a-f]+-[0-9a-f]+ / { if (r != "") print r, sz, rss, nm; r = $1; nm = (NF >= 6 ? $6 : "[anon]"); sz = 0; rss = 0 }
       $1 == "Size:" { sz = $2 } $1 == "Rss:" { rss = $2 }
       END { if (r != "") print r, sz, rss, nm }' "/proc/$gw/smaps" >"$out_dir/$1.smaps"
  cp "/proc/$gw/smaps_rollup" "$out_dir/$1.smaps_rollup" 2>/dev/null || true
}
# grown BEFORE AFTER: the mappings (by address range) whose Rss changed by 256 KiB or more, the
# six largest changes as "range name (size MiB mapped): +X MiB" and how many more; a range that is
# gone counts as shrunk to 0
grown() {
  awk 'NR == FNR { before[$1] = $3; name[$1] = $4; size[$1] = $2; next }
       { d = $3 - before[$1]; seen[$1] = 1
         if (d >= 256 || d <= -256) print (d < 0 ? -d : d), sprintf("%s %s (%.0f MiB mapped): %+.1f MiB", $1, $4, $2 / 1024, d / 1024) }
       END { for (r in before) if (!(r in seen) && before[r] >= 256)
               print before[r], sprintf("%s %s (%.0f MiB mapped, gone): %+.1f MiB", r, name[r], size[r] / 1024, -before[r] / 1024) }' \
    "$out_dir/$1.smaps" "$out_dir/$2.smaps" |
    sort -k1,1nr | awk 'NR <= 6 { sub(/^[0-9]+ /, ""); printf "%s; ", $0 } END { if (NR > 6) printf "and %d more", NR - 6; print "" }'
}

# fill TARGET: joins until the room holds TARGET waiting or the time limit; sets fill_rate (joins/s)
fill_rate=0
fill() {
  local target="$1" have need t0 t1 w now left
  fill_rate=0
  have=$(waiting)
  need=$((target - have))
  [ "$need" -gt 0 ] || return 0
  now=$(date +%s)
  left=$((deadline - now))
  [ "$left" -gt 1 ] || { log "time limit reached before filling to $target"; return 0; }
  t0=$(date +%s.%N)
  FG_IDENTITY="$([ "$IDENTITY" = 1 ] && echo X-Bench-User)" FG_ID_PREFIX="s$target" \
    FG_ROOM=mem FG_JOINS="$need" FG_THREADS=1 nice -n 10 wrk -t1 -c"$CONNECTIONS" -d"${left}s" \
    -s "$repo_root/bench/peers/mem_join.lua" "http://127.0.0.1:$port" >"$out_dir/wrk-$target.txt" 2>&1 &
  local wrk_pid=$!
  pids+=("$wrk_pid")
  # wrk's threads stop after their share, but wrk itself waits out -d: stop it when the room is full
  while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep 1
    w=$(waiting)
    if [ "$w" -ge "$target" ] || [ "$(date +%s)" -ge "$deadline" ]; then break; fi
  done
  t1=$(date +%s.%N)
  kill -INT "$wrk_pid" 2>/dev/null || true
  wait "$wrk_pid" 2>/dev/null || true
  pids=("$gw")
  w=$(waiting)
  [ "$w" -ge "$target" ] || log "stopped at $w waiting of $target (time limit $TIME_LIMIT s)"
  fill_rate=$(awk -v a="$have" -v b="$w" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", (b - a) / (t1 - t0) }')
}

# --- the run -------------------------------------------------------------------------------------

start_rss=$(status_kb VmRSS)
start_anon=$(status_kb RssAnon)
log "started: VmRSS $start_rss kB, RssAnon $start_anon kB; warm-up $WARMUP joins"
fill "$WARMUP"
sleep 2
base_w=$(waiting)
base_rss=$(status_kb VmRSS)
base_anon=$(status_kb RssAnon)
smaps_sample base
log "baseline: $base_w waiting, VmRSS $base_rss kB, RssAnon $base_anon kB"

rows=()
for target in $STEPS; do
  fill "$target"
  rate=$fill_rate
  sleep 2
  w=$(waiting)
  rss=$(status_kb VmRSS)
  anon=$(status_kb RssAnon)
  smaps_sample "at-$target"
  disk="-"
  [ "$STATE_DIR" = 1 ] && disk=$(du -sb "$work/state" | awk '{ print $1 }')
  added=$((w - base_w))
  per=$(awk -v a="$rss" -v b="$base_rss" -v n="$added" 'BEGIN { if (n > 0) printf "%.2f", (a - b) * 1024 / n; else print "-" }')
  per_anon=$(awk -v a="$anon" -v b="$base_anon" -v n="$added" 'BEGIN { if (n > 0) printf "%.2f", (a - b) * 1024 / n; else print "-" }')
  per_total=$(awk -v a="$rss" -v b="$start_rss" -v n="$w" 'BEGIN { if (n > 0) printf "%.2f", (a - b) * 1024 / n; else print "-" }')
  row="| $w | $rss | $anon | $per | $per_anon | $per_total | $rate | $disk |"
  rows+=("$row")
  log "at $w waiting: VmRSS $rss kB, RssAnon $anon kB; $per bytes/person (VmRSS), $per_anon (RssAnon), $per_total since start; $rate joins/s; grown: $(grown base "at-$target")"
  grown base "at-$target" >"$out_dir/grown-$target.txt"
  [ "$w" -ge "$target" ] || break
done

{
  echo "# bench/mem_scale.sh"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- commit: $(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown); binary: $FLOODGATE_BIN"
  echo "- command: $command_line"
  echo "- at start: VmRSS $start_rss kB, RssAnon $start_anon kB; baseline after $base_w warm-up joins: VmRSS $base_rss kB, RssAnon $base_anon kB"
  echo
  echo "| waiting | VmRSS kB | RssAnon kB | bytes/person (VmRSS growth since baseline) | bytes/person (RssAnon) | bytes/person (VmRSS since start) | joins/s of the step | state_dir bytes |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  for target in $STEPS; do
    [ -f "$out_dir/grown-$target.txt" ] && echo "- grown by $target: $(cat "$out_dir/grown-$target.txt")"
  done
} >"$out_dir/table.md"
cat "$out_dir/table.md"

# the table must be filled with numbers (the smoke test's check)
for row in "${rows[@]}"; do
  [[ "$row" =~ ^\|\ [0-9]+\ \|\ [0-9]+\ \|\ [0-9]+\ \|\ [0-9.]+\ \| ]] || die "incomplete row: $row"
done
[ "${#rows[@]}" -gt 0 ] || die "no measurement"
last_w=$(waiting)
[ "$last_w" -ge "${STEPS##* }" ] || die "the room reached $last_w waiting, not ${STEPS##* }"
