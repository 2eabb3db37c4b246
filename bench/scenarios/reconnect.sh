#!/usr/bin/env bash
# Reconnect with recovery: N Centrifuge clients (build/bin/swload --scenario
# reconnect) subscribe to hist:reconnect on a switchboard with SHARDS shards
# (bench/swload/reconnect.toml: a namespace with history and force_recovery). swload publishes one
# publication through the server API, then every client (--drop 1) resets its
# TCP connection at once; swload publishes MISSED publications while they
# are away, and after 1 s they reconnect (at most --inflight handshakes
# outstanding) and subscribe with recover from their last offset and the
# epoch. Then 3 live publications check that nothing is missing or doubled.
# RUNS runs, each against a fresh gateway after a 1-client warm-up.
#
# Prints one line per run: time until every client is subscribed again and
# until every client has all MISSED publications (from the reconnect, and
# from the drop), clients back per second, the gateway's CPU time
# (utime+stime from /proc, --server-pid) from the reconnect until all are
# back and per client back, publications recovered, clients not recovered,
# lost; then the medians. The swload outputs stay in the output folder.
#
# Each run also reports the gateway's peak RSS (VmHWM) and the upgrades its
# admission refused with 503 (swload tries those again after Retry-After).
#
# usage: bench/scenarios/reconnect.sh [N=19000] [RUNS=3]
#   env: SHARDS=2 PROCS=2 (swload workers) MISSED=10 DROP=1 AWAY=1 (s)
#        RATE=20000 (connects/s) INFLIGHT=2000 (handshakes outstanding)
#        RECONNECT_RATE, RECONNECT_INFLIGHT: the same for the reconnect (RATE, INFLIGHT)
#        EXTRA_CONFIG: top-level gateway keys, "k = v; k2 = v2" (bench/scenarios/storm.sh
#        sets admission's), put before bench/swload/reconnect.toml
# Limits: a process holds at most 20,000 fds; the gateway has one fd table
# per shard and each swload worker one, so N / SHARDS and N / PROCS must
# stay under ~19,900. Every step is bounded by a timeout; every process
# started here is killed by PID on exit. Exit 1 when any run lost a message,
# had a client that did not come back or recover, or timed out.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/scenarios/lib.sh
source bench/scenarios/lib.sh

N="${1:-19000}"
RUNS="${2:-3}"
SHARDS="${SHARDS:-2}"
PROCS="${PROCS:-2}"
MISSED="${MISSED:-10}"
DROP="${DROP:-1}"
AWAY="${AWAY:-1}"
RATE="${RATE:-20000}"
INFLIGHT="${INFLIGHT:-2000}"
RECONNECT_RATE="${RECONNECT_RATE:-$RATE}"
RECONNECT_INFLIGHT="${RECONNECT_INFLIGHT:-$INFLIGHT}"
EXTRA_CONFIG="${EXTRA_CONFIG:-}"
SECRET="switchboard-bench-secret"   # = token_hmac_secret_key in $CONFIG
API_KEY="switchboard-bench-api-key" # = api_key in $CONFIG
CHANNEL="hist:reconnect"
OUT="$(mktemp -d /tmp/sb_reconnect.XXXXXX)"
CONFIG="$OUT/gateway.toml"
{ tr ';' '\n' <<<"$EXTRA_CONFIG"; echo; cat bench/swload/reconnect.toml; } >"$CONFIG"
GW_PID=""
SW_PID=""

trap 'stop_pid "$SW_PID"; stop_pid "$GW_PID"' EXIT
trap 'exit 130' INT TERM

die() {
  echo "reconnect.sh: $*" >&2
  exit 1
}

((N >= 1 && RUNS >= 1)) || die "N and RUNS must be positive"
((N / SHARDS < 19900 && N / PROCS < 19900)) || die "more than ~19,900 connections per shard or per swload worker"
if [[ ! -x build/bin/switchboard || ! -x build/bin/swload ]]; then
  timeout 1800 ops/build release --target switchboard --target swload
fi

# start_gateway LOG: sets GW_PID, PORT and OPS once the gateway is listening.
start_gateway() {
  PORT="$(free_port)"
  OPS="$(free_port)"
  build/bin/switchboard --config "$CONFIG" --shards "$SHARDS" --listen "127.0.0.1:$PORT" \
    --ops-listen "127.0.0.1:$OPS" >"$1" 2>&1 &
  GW_PID=$!
  wait_listening "$1" "$GW_PID" && return 0
  cat "$1" >&2
  die "switchboard did not start"
}

# swload_run LIMIT_S ARGS...: swload against the current gateway, bounded.
swload_run() {
  local limit="$1" rc=0
  shift
  timeout "$((limit + 30))" build/bin/swload --port "$PORT" --secret "$SECRET" --timeout "$limit" "$@" &
  SW_PID=$!
  wait "$SW_PID" || rc=$?
  SW_PID=""
  return "$rc"
}

echo "reconnect.sh: N=$N RUNS=$RUNS, $SHARDS shards, $PROCS swload workers, drop $DROP, $MISSED missed," \
  "away ${AWAY}s, rate $RATE/s, inflight $INFLIGHT; output in $OUT"
results="$OUT/results.jsonl"
: >"$results"
for run in $(seq "$RUNS"); do
  log="$OUT/run$run"
  start_gateway "$log.gateway"
  swload_run 20 -n 1 --scenario idle --hold 0 --channel "$CHANNEL" >/dev/null 2>&1 || true
  sleep 0.5
  rc=0
  swload_run 180 -n "$N" --procs "$PROCS" --rate "$RATE" --inflight "$INFLIGHT" --scenario reconnect \
    --reconnect-rate "$RECONNECT_RATE" --reconnect-inflight "$RECONNECT_INFLIGHT" \
    --channel "$CHANNEL" --drop "$DROP" --missed "$MISSED" --away "$AWAY" --hold 2 --drain 10 \
    --api-port "$OPS" --api-key "$API_KEY" --server-pid "$GW_PID" >"$log.out" 2>"$log.err" || rc=$?
  peak_kib="$(awk '/^VmHWM:/ {print $2}' "/proc/$GW_PID/status" 2>/dev/null || echo -1)"
  stop_pid "$GW_PID"
  GW_PID=""
  line="$(grep '^{"swload":' "$log.out" || true)"
  if [[ -z "$line" ]]; then
    echo "  run $run: no result (exit $rc); see $log.err" >&2
    continue
  fi
  printf '%s\n' "${line%\}},\"run\":$run,\"exit\":$rc,\"gateway_peak_rss_kib\":${peak_kib:--1}}" >>"$results"
  python3 - "$line" "$run" "$rc" "${peak_kib:--1}" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
x = r["reconnect"]
rc = sys.argv[3]
print(f"  run {sys.argv[2]}: {x['back']}/{x['dropped']} back in {x['time_to_all_back_s']:.3f} s "
      f"({x['time_to_all_back_from_drop_s']:.3f} s from the drop), all recovered in {x['time_to_all_recovered_s']:.3f} s "
      f"({x['time_to_all_recovered_from_drop_s']:.3f} s), {x['clients_per_s']:.0f} clients/s; gateway cpu "
      f"{x['server_cpu_reconnect_s']:.2f} s = {x['server_cpu_us_per_client']:.1f} µs per client "
      f"(drop {x['server_cpu_drop_s']:.2f} s); recovered {x['recovered']}/{x['missed_owed']}, not recovered "
      f"{x['not_recovered']}, lost {r['lost']}, dup {r['dup']}, failed {r['failed']}; back µs p99 "
      f"{x['back_us']['p99']}, handshake µs p50 {x['handshake_us']['p50']} p99 {x['handshake_us']['p99']}, "
      f"refused (503) {r.get('refused', 0)}, gateway peak RSS {int(sys.argv[4]) / 1024:.0f} MiB"
      + (f"  ** exit {rc} **" if rc != "0" else ""), flush=True)
EOF
done

python3 - "$results" "$RUNS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not rows:
    sys.exit("reconnect.sh: no run produced a result")
metrics = [
    ("time to all back, from the reconnect (s)", "time_to_all_back_s"),
    ("time to all back, from the drop (s)", "time_to_all_back_from_drop_s"),
    ("time to all recovered, from the reconnect (s)", "time_to_all_recovered_s"),
    ("clients back per second", "clients_per_s"),
    ("gateway CPU in the reconnect (s)", "server_cpu_reconnect_s"),
    ("gateway CPU per client back (µs)", "server_cpu_us_per_client"),
    ("gateway CPU from the drop to the reconnect (s)", "server_cpu_drop_s"),
]
for r in rows:
    r["reconnect"]["back_p99_ms"] = r["reconnect"]["back_us"]["p99"] / 1000
    r["reconnect"]["handshake_p99_ms"] = r["reconnect"]["handshake_us"]["p99"] / 1000
    r["reconnect"]["refused"] = r.get("refused", 0)
    r["reconnect"]["peak_mib"] = r.get("gateway_peak_rss_kib", -1) / 1024
metrics += [("time to back, p99 (ms)", "back_p99_ms"), ("handshake admitted, p99 (ms)", "handshake_p99_ms"), ("upgrades refused by admission (503)", "refused"),
            ("gateway peak RSS (MiB)", "peak_mib")]
print()
print(f"{'median of ' + str(len(rows)) + ' runs':48} {'median':>10} {'min':>10} {'max':>10}")
for name, key in metrics:
    v = [r["reconnect"][key] for r in rows]
    print(f"{name:48} {statistics.median(v):>10.3f} {min(v):>10.3f} {max(v):>10.3f}")
bad = [r for r in rows if r["exit"] != 0]
missing = int(sys.argv[2]) - len(rows)
print(f"\n{len(rows)} runs, {len(bad)} with a client not back or not recovered, a lost message or a timeout"
      + (f", {missing} without a result" if missing else ""))
sys.exit(1 if bad or missing else 0)
EOF
