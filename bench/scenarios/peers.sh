#!/usr/bin/env bash
# Side-by-side benchmark: Switchboard (Centrifuge protocol, 2 shards,
# bench/scenarios/bench.toml) against Bun's built-in WebSocket pub/sub
# (bench/peers/bun_server.js), both driven by build/bin/swload with the same
# parameters, each scenario (idle, broadcast, chat) RUNS times, the two
# servers alternating. Every run gets a fresh server and a 1-client warm-up.
# swload samples the server itself (--server-pid): RSS before the load and
# after all clients are ready, CPU time (utime+stime) from the start of
# publishing to the end of the drain.
#
# Prints one line per run, then a table of medians and switchboard/bun
# ratios: idle bytes per connection, broadcast deliveries/s, broadcast and
# chat p50/p99 latency, server CPU µs per delivered message.
#
# usage: bench/scenarios/peers.sh [N=19000] [RUNS=2] [--pub-rate R] [--msg-rate R]
#                                 [--duration S] [--room-size K] [--hold S]
#                                 [--scenarios "idle broadcast chat"]
#   --pub-rate: broadcast publications/s (3: 19,000 × 3 = 57k deliveries/s,
#     which both servers sustain on the 2-core development machine, which
#     also runs swload itself; 20/s = 380k/s is far beyond it)
#   --msg-rate: chat publications per client per second (0.25: rooms of 10,
#     19,000 clients → 47.5k deliveries/s)
# SB_BIN_DIR=DIR takes switchboard from DIR (a build from before a change,
# for before/after figures in one sitting); swload always from build/bin.
# Run from anywhere; builds switchboard and swload if missing, and runs
# `npm ci` in bench/peers if node_modules is missing. Every step is bounded
# by a timeout; every process started here is killed by PID on exit. Exit 1
# when any run had failed connections, lost messages or a timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/scenarios/lib.sh
source bench/scenarios/lib.sh

N=19000
RUNS=2
PUB_RATE=3
MSG_RATE=0.25
DURATION=10
ROOM_SIZE=10
HOLD=5
SCENARIOS="idle broadcast chat"
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pub-rate) PUB_RATE="$2"; shift 2 ;;
    --msg-rate) MSG_RATE="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --room-size) ROOM_SIZE="$2"; shift 2 ;;
    --hold) HOLD="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set /p' "$0" | grep '^#'; exit 0 ;;
    -*) echo "peers.sh: unknown flag $1" >&2; exit 2 ;;
    *) positional+=("$1"); shift ;;
  esac
done
[[ ${#positional[@]} -ge 1 ]] && N="${positional[0]}"
[[ ${#positional[@]} -ge 2 ]] && RUNS="${positional[1]}"

SECRET="switchboard-bench-secret"  # = token_hmac_secret_key in bench.toml
BUN=bench/peers/node_modules/.bin/bun
OUT="$(mktemp -d /tmp/sb_peers.XXXXXX)"
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() {  # drops a PID from PIDS once it has been reaped
  local keep=() p
  for p in "${PIDS[@]}"; do [[ "$p" != "$1" ]] && keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

if [[ ! -x build/bin/switchboard || ! -x build/bin/swload ]]; then
  timeout 1800 ops/build release --target switchboard --target swload
fi
if [[ ! -x "$BUN" ]]; then
  (cd bench/peers && timeout 600 npm ci --no-audit --no-fund)
fi

# start_server KIND LOG: sets SERVER_PID and SERVER_PORT once the server is
# listening (a new LOG each time, so no earlier server's line is seen).
start_server() {
  local kind="$1" log="$2"
  SERVER_PORT="$(free_port)"
  if [[ "$kind" == switchboard ]]; then
    "${SB_BIN_DIR:-build/bin}/switchboard" --config bench/scenarios/bench.toml --shards 2 \
      --listen "127.0.0.1:$SERVER_PORT" --ops-listen "127.0.0.1:$(free_port)" >"$log" 2>&1 &
  else
    "$BUN" bench/peers/bun_server.js --port "$SERVER_PORT" >"$log" 2>&1 &
  fi
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_listening "$log" "$SERVER_PID" && return 0
  echo "peers.sh: $kind did not start:" >&2
  cat "$log" >&2
  exit 1
}

stop_server() {
  stop_pid "$SERVER_PID"
  forget "$SERVER_PID"
}

# swload_run LIMIT_S ARGS...: swload against the current server, bounded.
swload_run() {
  local limit="$1" pid rc=0
  shift
  local proto_args=(--proto centrifuge --secret "$SECRET")
  [[ "$KIND" == bun ]] && proto_args=(--proto raw)
  timeout "$((limit + 30))" build/bin/swload --port "$SERVER_PORT" "${proto_args[@]}" --timeout "$limit" "$@" &
  pid=$!
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget "$pid"
  return "$rc"
}

scenario_args() {
  case "$1" in
    idle) echo "--scenario idle --hold $HOLD" ;;
    broadcast) echo "--scenario broadcast --pub-rate $PUB_RATE --duration $DURATION --drain 5" ;;
    chat) echo "--scenario chat --room-size $ROOM_SIZE --msg-rate $MSG_RATE --duration $DURATION --drain 5" ;;
  esac
}

echo "peers.sh: N=$N RUNS=$RUNS broadcast pub-rate $PUB_RATE/s, chat rooms of $ROOM_SIZE at $MSG_RATE msg/s per client," \
  "duration ${DURATION}s, idle hold ${HOLD}s; output in $OUT"
results="$OUT/results.jsonl"
: >"$results"
for scen in $SCENARIOS; do
  for run in $(seq "$RUNS"); do
    for KIND in switchboard bun; do
      log="$OUT/$scen.$KIND.$run"
      start_server "$KIND" "$log.server"
      # Warm-up: one client in and out, so one-off allocations (pools, JIT,
      # first buffers) are not charged to the N connections.
      swload_run 20 -n 1 --scenario idle --hold 0 >/dev/null 2>&1 || true
      sleep 0.5
      rc=0
      # shellcheck disable=SC2046
      swload_run 150 -n "$N" --inflight 500 --server-pid "$SERVER_PID" $(scenario_args "$scen") >"$log.out" 2>"$log.err" || rc=$?
      stop_server
      line="$(grep '^{"swload":' "$log.out" || true)"
      if [[ -z "$line" ]]; then
        echo "  $scen $KIND run $run: no result (exit $rc); see $log.err" >&2
        continue
      fi
      printf '%s\n' "${line%\}},\"server\":\"$KIND\",\"run\":$run,\"exit\":$rc}" >>"$results"
      python3 - "$line" "$KIND" "$run" "$rc" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
kind, run, rc = sys.argv[2], sys.argv[3], sys.argv[4]
s = (f"  {r['scenario']:9} {kind:11} run {run}: ready {r['ready']}/{r['n']} in {r['connect_s']:.2f}s, "
     f"server {r['server_rss_per_conn_b']:.0f} B/conn")
if r["scenario"] != "idle":
    l = r["lat_us"]
    s += (f", {r['deliveries_per_s']:.0f} deliveries/s, lost {r['lost']}, p50 {l['p50']} µs, p99 {l['p99']} µs, "
          f"server {r['server_cpu_us_per_delivery']:.2f} µs CPU/delivery")
print(s + (f"  ** exit {rc} **" if rc != "0" else ""), flush=True)
EOF
    done
  done
done

python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]

def med(scen, kind, get):
    vals = [get(r) for r in rows if r["scenario"] == scen and r["server"] == kind]
    return statistics.median(vals) if vals else None

metrics = [
    ("idle: server bytes per connection", "idle", lambda r: r["server_rss_per_conn_b"], "lower"),
    ("idle: handshakes/s", "idle", lambda r: r["handshake_rate"], "higher"),
    ("broadcast: deliveries/s", "broadcast", lambda r: r["deliveries_per_s"], "higher"),
    ("broadcast: p50 latency µs", "broadcast", lambda r: r["lat_us"]["p50"], "lower"),
    ("broadcast: p99 latency µs", "broadcast", lambda r: r["lat_us"]["p99"], "lower"),
    ("broadcast: server CPU µs/delivery", "broadcast", lambda r: r["server_cpu_us_per_delivery"], "lower"),
    ("chat: deliveries/s", "chat", lambda r: r["deliveries_per_s"], "higher"),
    ("chat: p50 latency µs", "chat", lambda r: r["lat_us"]["p50"], "lower"),
    ("chat: p99 latency µs", "chat", lambda r: r["lat_us"]["p99"], "lower"),
    ("chat: server CPU µs/delivery", "chat", lambda r: r["server_cpu_us_per_delivery"], "lower"),
]
fmt = lambda v: "—" if v is None else (f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}")
print()
print(f"{'median of runs':36} {'switchboard':>12} {'bun':>12} {'sb/bun':>8}  better")
for name, scen, get, better in metrics:
    sb, bun = med(scen, "switchboard", get), med(scen, "bun", get)
    ratio = f"{sb / bun:.2f}" if sb is not None and bun not in (None, 0) else "—"
    print(f"{name:36} {fmt(sb):>12} {fmt(bun):>12} {ratio:>8}  {better}")
bad = [r for r in rows if r["exit"] != 0]
print()
print(f"{len(rows)} runs, {len(bad)} with failed connections, lost messages or timeouts"
      + "".join(f"\n  {r['scenario']} {r['server']} run {r['run']}: failed {r['failed']}, lost {r['lost']}, "
                f"pub_errors {r['pub_errors']}, timeout {r['timeout']}" for r in bad))
sys.exit(1 if bad else 0)
EOF
