#!/usr/bin/env bash
# permessage-deflate (issue 15, part 2), on this machine with swload beside
# the gateway (centrifuge mode, bench/scenarios/bench.toml plus
# websocket_compression = true):
#  1. a broadcast of a 2 KiB JSON publication (swload --pad) to N
#     subscribers on SHARDS shards, PUB_RATE publications/s for DURATION s,
#     RUNS times each: every subscriber plain, then every subscriber
#     compressed. Printed: deliveries/s, latency, the gateway's CPU per
#     delivery, bytes the gateway wrote per delivery (its bytes_out over the
#     run / deliveries) and its compression counters;
#  2. user-space bytes per idle session at N connections (centrifuge mode,
#     personal channel): plain, then compressed (idle_memory.py, SB_DEFLATE=1).
#
# usage: bench/scenarios/deflate.sh [N=19000] [SHARDS=2]
#   env: PUB_RATE=5 DURATION=10 RUNS=2 PAD=1950
# Run from anywhere after `ops/build release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/scenarios/lib.sh

N="${1:-19000}"
SHARDS="${2:-2}"
PUB_RATE="${PUB_RATE:-5}"
DURATION="${DURATION:-10}"
RUNS="${RUNS:-2}"
PAD="${PAD:-1950}"
SECRET="switchboard-bench-secret"
BIN=build/bin
work=$(mktemp -d /tmp/sb-deflate-bench-XXXXXX)
gw_pid=""
cleanup() {
  stop_pid "$gw_pid"
  rm -rf "$work"
}
trap cleanup EXIT

{ cat bench/scenarios/bench.toml; } > "$work/sb.toml"
# Top-level keys must precede the first [[namespaces]] table.
sed -i '0,/^\[\[namespaces\]\]/s//websocket_compression = true\n\n[[namespaces]]/' "$work/sb.toml"

# bytes_out and the deflate counters of every shard, as one JSON object.
gateway_figures() {
  curl -s "http://127.0.0.1:$ops/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
out = {"wrote": sum(p["bytes_out"] for p in s["per_shard"])}
for k in s["per_shard"][0]["deflate"]:
    out[k] = sum(p["deflate"][k] for p in s["per_shard"])
print(json.dumps(out))'
}

echo "deflate.sh: broadcast of a $((PAD + 50))-byte JSON publication to N=$N on $SHARDS shards," \
  "$PUB_RATE/s for ${DURATION}s, $RUNS runs each; then idle memory at N"
for run in $(seq 1 "$RUNS"); do
  for deflate in 0 1; do
    port=$(free_port)
    ops=$(free_port)
    "$BIN/switchboard" --config "$work/sb.toml" --shards "$SHARDS" --listen "127.0.0.1:$port" \
      --ops-listen "127.0.0.1:$ops" > "$work/gw.log" 2>&1 &
    gw_pid=$!
    wait_listening "$work/gw.log" "$gw_pid" || { cat "$work/gw.log"; exit 1; }
    before=$(gateway_figures)
    out=$(timeout 300 "$BIN/swload" --port "$port" --proto centrifuge --secret "$SECRET" -n "$N" --inflight 500 \
      --server-pid "$gw_pid" --scenario broadcast --pub-rate "$PUB_RATE" --duration "$DURATION" --drain 5 \
      --pad "$PAD" --deflate "$deflate" --timeout 240)
    after=$(gateway_figures)
    stop_pid "$gw_pid"
    gw_pid=""
    line=$(grep '^{"swload":' <<< "$out")
    python3 - "$line" "$before" "$after" "$deflate" "$run" "$SHARDS" <<'EOF'
import json, sys
r, b, a = (json.loads(x) for x in sys.argv[1:4])
name = "compressed" if sys.argv[4] == "1" else "plain"
d = max(r["delivered"], 1)
wrote = a["wrote"] - b["wrote"]
print(f"run {sys.argv[5]} {name:10}: {r['delivered']} of {r['expected']} delivered, lost {r['lost']}; "
      f"{r['deliveries_per_s']:.0f}/s; p50 {r['lat_us']['p50']} µs p99 {r['lat_us']['p99']} µs; "
      f"gateway CPU {r['server_cpu_us_per_delivery']:.2f} µs/delivery; wrote {wrote / d:.0f} B/delivery (upgrades and connects included); "
      f"swload inflated {r['compressed']} frames, text {r['wire_bytes'] / d:.0f} B on the wire / "
      f"{r['text_bytes'] / d:.0f} B inflated per delivery")
if name == "compressed":
    m = a["messages"] - b["messages"]
    print(f"    gateway: {m} messages compressed for {r['pubs']} publications on {sys.argv[6]} shards, "
          f"{a['bytes_in'] - b['bytes_in']} -> {a['bytes_out'] - b['bytes_out']} payload bytes; "
          f"{a['sessions']} sessions negotiated permessage-deflate")
EOF
  done
done

echo "== idle memory at $N connections on $SHARDS shards (centrifuge mode, personal channel)"
echo "-- plain"
python3 bench/scenarios/idle_memory.py "$N" "$SHARDS" centrifuge
echo "-- permessage-deflate negotiated by every connection"
SB_DEFLATE=1 python3 bench/scenarios/idle_memory.py "$N" "$SHARDS" centrifuge
