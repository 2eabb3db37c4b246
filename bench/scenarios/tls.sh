#!/usr/bin/env bash
# TLS on the client listener (issue 15, part 1), on this machine with the
# load generators beside the gateway:
#  1. wss sessions opened per second (a full handshake, no resumption, and
#     the WebSocket upgrade) on SHARDS shards with an ECDSA P-256
#     certificate, INFLIGHT at once for SECONDS_EACH: from Bun (BoringSSL,
#     bench/peers/tls_churn.js) and from bench/tls_handshake (OpenSSL 3.0,
#     TLS 1.3 and 1.2); the gateway's CPU per session; and OpenSSL's own
#     cost per handshake without sockets (bench/tls_floor), the floor;
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
"$BIN/switchboard" --mode echo --config "$work/sb.toml" --shards "$SHARDS" --listen "127.0.0.1:$port" \
  --ops-listen "127.0.0.1:$ops" > "$work/gw.log" 2>&1 &
gw_pid=$!
wait_listening "$work/gw.log" "$gw_pid" || { cat "$work/gw.log"; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
BUN=bench/peers/node_modules/.bin/bun
if [[ ! -x $BUN ]]; then
  (cd bench/peers && timeout 600 npm ci --no-audit --no-fund >/dev/null)
fi
# run_gen NAME CMD...: one generator run; prints its JSON line and the
# gateway's CPU per wss session opened (TLS handshake + upgrade).
run_gen() {
  local name="$1" out c0 c1 hs
  shift
  c0=$(cpu_ticks "$gw_pid")
  out=$("$@")
  c1=$(cpu_ticks "$gw_pid")
  hs=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['handshakes'])" "$out")
  echo "$out"
  python3 -c "import sys; c, h, t = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]); \
print(f'{sys.argv[4]}: gateway CPU {c / t:.2f} s for {h} sessions: {c / t * 1e6 / max(h, 1):.0f} us per full handshake + upgrade')" \
    "$((c1 - c0))" "$hs" "$tick" "$name"
}
echo "== OpenSSL's own cost per TLS 1.3 handshake here (no sockets, one thread)"
"$BIN/tls_floor" "$work/cert.pem" "$work/key.pem" 2000
echo "== wss sessions opened/s (full handshake + upgrade): $SHARDS shards, ECDSA P-256, $INFLIGHT at once, ${SECONDS_EACH}s each, the generator beside the gateway"
run_gen "TLS 1.3, Bun (BoringSSL) generator" "$BUN" bench/peers/tls_churn.js "$port" "$SECONDS_EACH" "$INFLIGHT"
for v in 1.3 1.2; do
  run_gen "TLS $v, OpenSSL 3.0 generator" "$BIN/tls_handshake" 127.0.0.1 "$port" --seconds "$SECONDS_EACH" --warmup 0 \
    --inflight "$INFLIGHT" --tls "$v"
done
stop_pid "$gw_pid"
gw_pid=""

echo "== idle memory at $N connections on $SHARDS shards (centrifuge mode, personal channel)"
echo "-- plain ws"
/usr/bin/python3 bench/scenarios/idle_memory.py "$N" "$SHARDS" centrifuge | grep -E "connections:|user-space|kernel"
echo "-- wss (TLS 1.3)"
SB_TLS_CERT="$work/cert.pem" SB_TLS_KEY="$work/key.pem" \
  /usr/bin/python3 bench/scenarios/idle_memory.py "$N" "$SHARDS" centrifuge | grep -E "connections:|user-space|kernel"
