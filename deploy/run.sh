#!/usr/bin/env bash
# shellcheck disable=SC2317 # stop_all and on_signal are called from traps
# The main job: on a fresh Debian 12 machine (as root), install the
# dependencies, build Floodgate in Release, then start the demo booking site
# and Floodgate in front of it, print the URLs, and keep both running until
# Ctrl-C or SIGTERM, which stops them both.
#
#   sudo deploy/run.sh                      everything, with deploy/floodgate.example.yaml
#   FLOODGATE_PORT=8081 deploy/run.sh       other ports (see below)
#   SKIP_DEPS=1 SKIP_BUILD=1 deploy/run.sh  just start (already installed and built)
#
# Environment (all optional):
#   FLOODGATE_CONFIG  gateway config file      [deploy/floodgate.example.yaml]
#   FLOODGATE_PORT    public port              [8080]
#   ADMIN_PORT        admin port               [9090]
#   BOOKING_PORT      demo booking site port   [9000]
#     With the example config, the three ports are written into a copy of it.
#     With your own FLOODGATE_CONFIG the ports come from that file; set these
#     to match it (they are used for the demo site and the URLs printed).
#   BOOKING_ARGS      extra flags for floodgate-demo-booking, e.g. "--capacity 100 --threads 2"
#   PUBLIC_HOST       host name shown in the printed URLs [127.0.0.1]
#   ADMIN_TOKEN       the operator token for the dashboard, the admin API and
#                     floodgatectl [a random one for this run, printed below]
#   FLOODGATE_BIN, BOOKING_BIN   other binaries than the ones in build/release
#   SKIP_DEPS=1       do not run deploy/install-deps.sh
#   SKIP_BUILD=1      do not configure and build
#
# Works from any directory: paths are relative to the repository root.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

FLOODGATE_PORT="${FLOODGATE_PORT:-8080}"
ADMIN_PORT="${ADMIN_PORT:-9090}"
BOOKING_PORT="${BOOKING_PORT:-9000}"
BOOKING_ARGS="${BOOKING_ARGS:-}"
PUBLIC_HOST="${PUBLIC_HOST:-127.0.0.1}"
example_config="deploy/floodgate.example.yaml"
floodgate_bin="${FLOODGATE_BIN:-build/release/gateway/floodgate}"
booking_bin="${BOOKING_BIN:-build/release/bench/demo/floodgate-demo-booking}"

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- 1. dependencies and build -------------------------------------------------
if [ "${SKIP_DEPS:-0}" != 1 ]; then
  log "installing dependencies (deploy/install-deps.sh)"
  deploy/install-deps.sh
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building (cmake --preset release)"
  cmake --preset release
  cmake --build --preset release
fi
[ -x "$floodgate_bin" ] || die "$floodgate_bin is missing; build first (or unset SKIP_BUILD)"
[ -x "$booking_bin" ] || die "$booking_bin is missing; build first (or unset SKIP_BUILD)"

# --- 2. configuration ---------------------------------------------------------------
work_dir="$(mktemp -d -t floodgate-run.XXXXXX)"
booking_pid=""
floodgate_pid=""

stop_all() {
  local pid
  for pid in $floodgate_pid $booking_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $floodgate_pid $booking_pid; do
    wait "$pid" 2>/dev/null || true
  done
  floodgate_pid=""
  booking_pid=""
  rm -rf "$work_dir"
}
on_signal() {
  echo >&2
  log "stopping"
  stop_all
  exit 0
}
trap on_signal INT TERM
trap stop_all EXIT

if [ -n "${FLOODGATE_CONFIG:-}" ]; then
  config="$FLOODGATE_CONFIG"
  [ -r "$config" ] || die "FLOODGATE_CONFIG=$config: cannot read the file"
else
  # The example config with this run's ports.
  config="$work_dir/floodgate.yaml"
  sed -e "s/address: 0\.0\.0\.0:8080/address: 0.0.0.0:${FLOODGATE_PORT}/" \
      -e "s/address: 127\.0\.0\.1:9090/address: 127.0.0.1:${ADMIN_PORT}/" \
      -e "s/servers: \[127\.0\.0\.1:9000\]/servers: [127.0.0.1:${BOOKING_PORT}]/" \
      "$example_config" > "$config"
fi
"$floodgate_bin" --check-config "$config" >/dev/null || die "$config: the configuration is not valid (see above)"

# --- 3. start ------------------------------------------------------------------------
# Polls URL until it answers (any HTTP status) or PID exits or ~10 s pass.
wait_for() {
  local url="$1" pid="$2" name="$3" _
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up"
    if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
    sleep 0.1
  done
  die "$name did not answer on $url within 10 seconds"
}

# shellcheck disable=SC2086 # BOOKING_ARGS is a list of flags
"$booking_bin" --listen "127.0.0.1:${BOOKING_PORT}" $BOOKING_ARGS &
booking_pid=$!
wait_for "http://127.0.0.1:${BOOKING_PORT}/ping" "$booking_pid" "floodgate-demo-booking"

# The operator's admin token, passed in the environment (admin.tokens_env).
ADMIN_TOKEN="${ADMIN_TOKEN:-$(openssl rand -hex 24)}"
FLOODGATE_ADMIN_TOKENS="operator demo ${ADMIN_TOKEN}" "$floodgate_bin" --config "$config" &
floodgate_pid=$!
wait_for "http://127.0.0.1:${ADMIN_PORT}/healthz" "$floodgate_pid" "floodgate"

cat >&2 <<EOF

  Seoul Concert Hall (demo) through Floodgate:  http://${PUBLIC_HOST}:${FLOODGATE_PORT}/
  booking page:                                 http://${PUBLIC_HOST}:${FLOODGATE_PORT}/reserve
  operators' live dashboard:                    http://127.0.0.1:${ADMIN_PORT}/dashboard/
  admin token (dashboard, API, floodgatectl):   ${ADMIN_TOKEN}
  Floodgate admin health:                       http://127.0.0.1:${ADMIN_PORT}/healthz
  Floodgate metrics (with the token):           http://127.0.0.1:${ADMIN_PORT}/metrics
  command line:  FLOODGATE_ADMIN=127.0.0.1:${ADMIN_PORT} FLOODGATE_TOKEN=${ADMIN_TOKEN} build/release/gateway/ctl/floodgatectl rooms
  demo site directly (bypassing the gateway):   http://127.0.0.1:${BOOKING_PORT}/
  config:                                       ${FLOODGATE_CONFIG:-$example_config (a copy with these ports)}

  Ctrl-C stops both.

EOF

# --- 4. wait ---------------------------------------------------------------------------
# Returns when either process exits (or a signal arrives, handled by on_signal).
set +e
wait -n "$booking_pid" "$floodgate_pid"
status=$?
set -e
if ! kill -0 "$booking_pid" 2>/dev/null; then
  log "floodgate-demo-booking exited (status $status); stopping floodgate"
  booking_pid=""
else
  log "floodgate exited (status $status); stopping the demo site"
  floodgate_pid=""
fi
exit 1
