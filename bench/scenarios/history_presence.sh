#!/usr/bin/env bash
# Issue 5's cost figures, on one Switchboard (2 shards) driven by
# build/bin/swload on the same machine:
#
#  1. history on vs off: a broadcast (10 subscribers, one client publishing
#     PUB_RATE/s for DURATION s) on a channel without history and on one
#     with history_size 100 / history_ttl 300s / force_recovery, RUNS times
#     each, alternating, a fresh gateway per run. Prints the gateway's CPU
#     per delivered publication (utime+stime / deliveries) and p50 latency
#     per run and their medians: what retaining a publication at the home
#     shard adds to its path.
#  2. presence_stats on a channel with N_PRESENCE (19,000) present clients:
#     swload holds them subscribed to room:big (namespace with presence);
#     once presence_stats counts them all, CALLS presence_stats calls and 20
#     full presence calls through the server API on one keep-alive
#     connection, one at a time. Prints p50/p99/max of each.
#
# usage: bench/scenarios/history_presence.sh [RUNS=4]
#   env: PUB_RATE=5000 DURATION=8 N_PRESENCE=19000 CALLS=300
# Every process started here is killed by PID on exit; every step is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/scenarios/lib.sh
source bench/scenarios/lib.sh

RUNS="${1:-4}"
PUB_RATE="${PUB_RATE:-5000}"
DURATION="${DURATION:-8}"
N_PRESENCE="${N_PRESENCE:-19000}"
CALLS="${CALLS:-300}"
SECRET="history-presence-bench-secret"
API_KEY="history-presence-bench-key"
OUT="$(mktemp -d /tmp/sb_histpres.XXXXXX)"
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ "$p" != "$1" ]] && keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

if [[ ! -x build/bin/switchboard || ! -x build/bin/swload ]]; then
  timeout 1800 ops/build release --target switchboard --target swload
fi

CONFIG="$OUT/switchboard.toml"
cat >"$CONFIG" <<EOF
token_hmac_secret_key = "$SECRET"
api_key = "$API_KEY"
client_queue_max_size = 16777216
ping_interval = "60s"

[[namespaces]]
name = "plain"
allow_subscribe_for_client = true
allow_publish_for_client = true

[[namespaces]]
name = "hist"
allow_subscribe_for_client = true
allow_publish_for_client = true
history_size = 100
history_ttl = "300s"
force_recovery = true

[[namespaces]]
name = "room"
allow_subscribe_for_client = true
presence = true
EOF

# start_gateway LOG: sets GW_PID, GW_PORT, GW_OPS once it listens.
start_gateway() {
  local log="$1"
  GW_PORT="$(free_port)"
  GW_OPS="$(free_port)"
  build/bin/switchboard --config "$CONFIG" --shards 2 --listen "127.0.0.1:$GW_PORT" \
    --ops-listen "127.0.0.1:$GW_OPS" >"$log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  wait_listening "$log" "$GW_PID" && return 0
  echo "history_presence.sh: the gateway did not start:" >&2
  cat "$log" >&2
  exit 1
}

stop_gateway() {
  stop_pid "$GW_PID"
  forget "$GW_PID"
}

echo "history_presence.sh: history on/off ${RUNS}× each (10 subscribers, ${PUB_RATE} pub/s for ${DURATION}s);" \
  "presence_stats with ${N_PRESENCE} present; output in $OUT"
results="$OUT/history.jsonl"
: >"$results"
for run in $(seq "$RUNS"); do
  for kind in plain hist; do
    log="$OUT/$kind.$run"
    start_gateway "$log.gw"
    rc=0
    timeout 120 build/bin/swload --port "$GW_PORT" --secret "$SECRET" -n 10 --scenario broadcast \
      --channel "$kind:b" --pub-rate "$PUB_RATE" --duration "$DURATION" --drain 5 --timeout 90 \
      --server-pid "$GW_PID" >"$log.out" 2>"$log.err" || rc=$?
    stop_gateway
    line="$(grep '^{"swload":' "$log.out" || true)"
    if [[ -z "$line" || "$rc" != 0 ]]; then
      echo "  $kind run $run: failed (exit $rc); see $log.err" >&2
      exit 1
    fi
    printf '%s\n' "${line%\}},\"kind\":\"$kind\",\"run\":$run}" >>"$results"
    python3 - "$line" "$kind" "$run" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
state = "on " if sys.argv[2] == "hist" else "off"
print(f"  history {state} run {sys.argv[3]}: {r['deliveries_per_s']:.0f} deliveries/s, lost {r['lost']}, "
      f"p50 {r['lat_us']['p50']} µs, server {r['server_cpu_us_per_delivery']:.2f} µs CPU/delivery", flush=True)
EOF
  done
done
python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(kind, f):
    return statistics.median(f(r) for r in rows if r["kind"] == kind)
cpu_off, cpu_on = med("plain", lambda r: r["server_cpu_us_per_delivery"]), med("hist", lambda r: r["server_cpu_us_per_delivery"])
p50_off, p50_on = med("plain", lambda r: r["lat_us"]["p50"]), med("hist", lambda r: r["lat_us"]["p50"])
print(f"history off/on medians: server CPU per delivery {cpu_off:.2f} / {cpu_on:.2f} µs (on/off {cpu_on / cpu_off:.2f}), "
      f"p50 {p50_off:.0f} / {p50_on:.0f} µs")
EOF

# presence_stats with N_PRESENCE present.
start_gateway "$OUT/presence.gw"
HOLD=$((60 + N_PRESENCE / 1000))
timeout "$((HOLD + 120))" build/bin/swload --port "$GW_PORT" --secret "$SECRET" -n "$N_PRESENCE" --scenario idle \
  --channel room:big --hold "$HOLD" --inflight 500 --timeout "$((HOLD + 90))" >"$OUT/presence.out" 2>"$OUT/presence.err" &
SW_PID=$!
PIDS+=("$SW_PID")
/usr/bin/python3 - "$GW_OPS" "$API_KEY" "$N_PRESENCE" "$CALLS" "$HOLD" <<'EOF'
import http.client, json, sys, time
port, key, n, calls, hold = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
def call(method, body):
    t = time.perf_counter()
    conn.request("POST", f"/api/{method}", body=json.dumps(body), headers={"X-API-Key": key})
    r = conn.getresponse()
    data = r.read()
    dt = time.perf_counter() - t
    assert r.status == 200, (r.status, data[:200])
    return json.loads(data), dt, len(data)
deadline = time.monotonic() + hold - 20
while True:
    res, _, _ = call("presence_stats", {"channel": "room:big"})
    if res["result"]["num_clients"] >= n:
        break
    if time.monotonic() > deadline:
        sys.exit(f"only {res['result']['num_clients']} of {n} present")
    time.sleep(0.5)
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]
lat = []
for _ in range(calls):
    res, dt, _ = call("presence_stats", {"channel": "room:big"})
    assert res["result"]["num_clients"] == n, res
    lat.append(dt * 1e3)
print(f"presence_stats, {n} present, {calls} calls: p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f} ms, max {max(lat):.2f} ms")
full, size = [], 0
for _ in range(20):
    res, dt, size = call("presence", {"channel": "room:big"})
    assert len(res["result"]["presence"]) == n
    full.append(dt * 1e3)
print(f"presence (full list, {size / 1e6:.2f} MB JSON), 20 calls: p50 {pct(full, .5):.2f} ms, max {max(full):.2f} ms")
EOF
kill "$SW_PID" 2>/dev/null || true
wait "$SW_PID" 2>/dev/null || true
forget "$SW_PID"
stop_gateway
