#!/usr/bin/env bash
# TLS on the client listener (issue 15, part 1), on this machine with the
# load generators beside the gateway:
#  1. full handshakes per second on SHARDS shards (ECDSA P-256 certificate):
#     TLS 1.3 and TLS 1.2, bench/tls_handshake with INFLIGHT connections at
#     once for SECONDS each, and the gateway's CPU per handshake;
#  2. user-space bytes per idle session at N connections (centrifuge mode,
#     personal channel): plain ws, then wss (bench/scenarios/idle_memory.py).
#
# usage: bench/scenarios/tls.sh [N=19000] [SHARDS=2]
#   env: SECONDS_EACH=10 INFLIGHT=64
# Run from anywhere after `ops/build release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/scenarios/lib.sh

N="${1:-19000}"
SHARDS="${2:-2}"
SECONDS_EACH="${SECONDS_EACH:-10}"
INFLIGHT="${INFLIGHT:-64}"
BIN=build/bin
work=$(mktemp -d /tmp/sb-tls-bench-XXXXXX)
gw_pid=""
cleanup() {
  stop_pid "$gw_pid"
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 2 -subj /CN=localhost 2>/dev/null
cat > "$work/sb.toml" <<EOF
tls = true
tls_cert = "$work/cert.pem"
tls_key = "$work/key.pem"
EOF

port=$(free_port)
ops=$(free_port)
"$BIN/switchboard" --config "$work/sb.toml" --shards "$SHARDS" --listen "127.0.0.1:$port" \
  --ops-listen "127.0.0.1:$ops" > "$work/gw.log" 2>&1 &
gw_pid=$!
wait_listening "$work/gw.log" "$gw_pid" || { cat "$work/gw.log"; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
echo "== handshakes/s: $SHARDS shards, ECDSA P-256, $INFLIGHT at once, ${SECONDS_EACH}s each (generator beside the gateway)"
for v in 1.3 1.2; do
  c0=$(cpu_ticks "$gw_pid")
  out=$("$BIN/tls_handshake" 127.0.0.1 "$port" --seconds "$SECONDS_EACH" --warmup 0 --inflight "$INFLIGHT" --tls "$v")
  c1=$(cpu_ticks "$gw_pid")
  hs=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['handshakes'])" "$out")
  echo "$out"
  python3 -c "import sys; c, h, t = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]); \
print(f'TLS {sys.argv[4]}: gateway CPU {c / t:.2f} s for {h} handshakes: {c / t * 1e6 / max(h, 1):.0f} us per handshake')" \
    "$((c1 - c0))" "$hs" "$tick" "$v"
done
stop_pid "$gw_pid"
gw_pid=""

echo "== idle memory at $N connections on $SHARDS shards (centrifuge mode, personal channel)"
echo "-- plain ws"
/usr/bin/python3 bench/scenarios/idle_memory.py "$N" "$SHARDS" centrifuge | grep -E "connections:|user-space|kernel"
echo "-- wss (TLS 1.3)"
SB_TLS_CERT="$work/cert.pem" SB_TLS_KEY="$work/key.pem" \
  /usr/bin/python3 bench/scenarios/idle_memory.py "$N" "$SHARDS" centrifuge | grep -E "connections:|user-space|kernel"
