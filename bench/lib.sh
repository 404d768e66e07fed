# shellcheck shell=bash
# Shell functions the bench scripts share (bench/proxy_compare.sh,
# bench/limit_compare.sh): free ports on 127.0.0.1 and nginx as a foreground
# process under a prefix of its own. Source it; it defines functions only.

# A free TCP port on 127.0.0.1 (bound and released: free a moment later, in practice).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# nginx_argv PREFIX: sets the array nginx_cmd to run nginx in the foreground with PREFIX/nginx.conf,
# PREFIX as its prefix and PREFIX/error.log for start-up errors, so that nothing outside PREFIX is
# touched (the config itself puts its pid file and temp paths under PREFIX too). Start it as
#   nginx_argv "$dir"; "${nginx_cmd[@]}" > "$dir/stdout.log" 2>&1 & pid=$!
# (a command, not a function, in the background: $! is then nginx's master itself).
nginx_argv() {
  # shellcheck disable=SC2034 # used by the caller
  nginx_cmd=("${NGINX_BIN:-nginx}" -c "$1/nginx.conf" -p "$1" -e "$1/error.log" -g 'daemon off;')
}

# wait_for_file FILE PID WHAT LOG: until FILE is non-empty (10 s); fails with the tail of LOG if
# PID exits first or the time runs out.
wait_for_file() {
  local _
  for _ in $(seq 100); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { echo "$3 exited; its log:" >&2; tail -20 "$4" >&2; return 1; }
    sleep 0.1
  done
  echo "$3 did not start within 10 s; its log:" >&2
  tail -20 "$4" >&2
  return 1
}

# wait_for_port PORT PID WHAT LOG: until 127.0.0.1:PORT accepts a connection (10 s), as above.
wait_for_port() {
  local _
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "$3 exited; its log:" >&2; tail -20 "$4" >&2; return 1; }
    sleep 0.1
  done
  echo "$3 does not accept connections on 127.0.0.1:$1 after 10 s; its log:" >&2
  tail -20 "$4" >&2
  return 1
}

# parse_bench_args NAME "$@": the options every bench script takes. --smoke sets smoke=1,
# --out DIR sets out_dir, --help prints the script's header comment; anything else is refused
# (exit 2). Also sets original_args, the arguments as given.
# shellcheck disable=SC2034 # smoke, out_dir and original_args are the caller's
parse_bench_args() {
  local name="$1"; shift
  smoke=0
  out_dir=""
  original_args=("$@")
  while [ $# -gt 0 ]; do
    case "$1" in
      --smoke) smoke=1; shift ;;
      --out) out_dir="${2:?--out needs a directory}"; shift 2 ;;
      --out=*) out_dir="${1#--out=}"; shift ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | grep -v '^# shellcheck' | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) echo "$name: unknown argument \"$1\" (try --help)" >&2; exit 2 ;;
    esac
  done
}

# bench_command_line SCRIPT "VAR ...": sets command_line to how this run was started, for the
# tables: the variables among VAR ... that are set in the environment, the script, and
# original_args (parse_bench_args).
bench_command_line() {
  local var
  command_line="$1"
  for var in $2; do
    if [ -n "${!var+set}" ]; then command_line="$var=$(printf '%q' "${!var}") $command_line"; fi
  done
  command_line="$command_line${original_args[*]+ ${original_args[*]}}"
}

# stop_pids: SIGTERM to every process in the array pids, SIGKILL to those still there 5 s later;
# reaps them all and empties the array.
stop_pids() {
  local pid _
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
