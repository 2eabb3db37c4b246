# shellcheck shell=bash
# Shared by the scenario scripts (sourced, not run): a free port, waiting
# for a server to listen, stopping a process started here.

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_listening LOG PID [TRIES=200]: succeeds once LOG says "listening"
# (switchboard and the Bun peer both print it); fails when PID died or
# TRIES × 0.1 s passed.
wait_listening() {
  local log="$1" pid="$2" tries="${3:-200}" i
  for ((i = 0; i < tries; ++i)); do
    grep -qs listening "$log" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# stop_pid PID: SIGTERM, up to 10 s, then SIGKILL; reaps it. An empty PID
# is nothing to stop.
stop_pid() {
  [[ -z "${1:-}" ]] && return 0
  kill "$1" 2>/dev/null || true
  timeout 10 tail --pid="$1" -f /dev/null || kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
