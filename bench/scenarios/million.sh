#!/usr/bin/env bash
# The million-connection run on one machine (issue 7): N Centrifuge clients
# (build/bin/swload --scenario api) against one switchboard, both on this
# host over loopback. Every client connects with a token whose `channels`
# claim subscribes it to its personal channel personal:#u<i>, and subscribes
# to bcast:all itself. After all are connected and held HOLD s, swload
# publishes through the server API (ops port, X-API-Key) once to bcast:all,
# then once to the personal channels of TARGETS random clients (one
# `broadcast` call); the payload carries a CLOCK_MONOTONIC stamp, so each
# client measures publish → receive.
#
# Prints: connected clients, time to connect all and the handshake rate,
# gateway RSS and jemalloc allocated once all are connected and the bytes per
# session (growth / N), kernel Slab per socket (growth / 2N: both loopback
# ends are on this host), per round the time until every client had it,
# deliveries/s, p50/p99/max latency and lost messages; then one JSON line
# starting with {"million":.
#
# usage: bench/scenarios/million.sh [N=1000000]
#   env: HOLD=60 TARGETS=10000 RATE=60000 (connects/s asked for) INFLIGHT=4000
#        (handshakes outstanding) LIMIT=900 (s, bound on the whole run)
#        MIN_FREE_MB=1536 (abort when MemAvailable falls below it)
#        SB_BIN_DIR=DIR: switchboard from DIR (a build from before a change,
#        for before/after figures in one sitting); swload always from build/bin
#
# Needs root: the kernel settings below are set with sysctl -w and restored
# on exit. Limits: a process holds at most 20,000 fds, so the gateway runs
# ceil(N / 19000) + 1 shards (each has a private fd table) and swload
# ceil(N / 15000) workers; clients rotate over 250 source addresses
# 127.1.0.1-250 (one destination port, ~64k source ports per address).
# Every process started here is killed by PID on exit. Exit 1 when a client
# failed, a message was lost or a step timed out.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/scenarios/lib.sh
source bench/scenarios/lib.sh

N="${1:-1000000}"
HOLD="${HOLD:-60}"
TARGETS="${TARGETS:-10000}"
RATE="${RATE:-60000}"
INFLIGHT="${INFLIGHT:-4000}"
LIMIT="${LIMIT:-900}"
MIN_FREE_MB="${MIN_FREE_MB:-1536}"
SHARDS=$(((N + 18999) / 19000 + 1))
PROCS=$(((N + 14999) / 15000))
SECRET="million-bench-secret"
API_KEY="million-bench-api-key"
# Measured per connection: kernel ~9-10 KB per loopback pair, gateway
# ~1 KB, swload ~0.1 KB; with headroom.
NEED_MB=$((N * 12 / 1000 + 1024))

START=$SECONDS
DEADLINE=$((SECONDS + LIMIT))
OUT="$(mktemp -d /tmp/sb_million.XXXXXX)"
CONFIG="$OUT/switchboard.toml"
GW_PID=""
SW_PID=""
RESTORE=()  # "key=old value" for every sysctl changed

log() { printf '[%5ds] %s\n' "$((SECONDS - START))" "$*"; }

cleanup() {
  local kv
  stop_pid "$SW_PID"
  stop_pid "$GW_PID"
  for kv in "${RESTORE[@]+"${RESTORE[@]}"}"; do
    sysctl -q -w "$kv" >/dev/null && echo "million.sh: restored $kv" || echo "million.sh: could not restore $kv" >&2
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  echo "million.sh: $*" >&2
  exit 1
}

mem_kib() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }

# set_sysctl KEY VALUE: sets it unless it already is VALUE, remembers the old one.
set_sysctl() {
  local key="$1" value="$2" old
  [[ -e "/proc/sys/${key//.//}" ]] || { log "sysctl $key: not present, skipped"; return 0; }
  old="$(sysctl -n "$key" | tr -s '\t ' ' ')"
  [[ "$old" == "$value" ]] && return 0
  sysctl -q -w "$key=$value" >/dev/null
  RESTORE+=("$key=$old")
  log "sysctl $key: $old -> $value"
}

# raise_sysctl KEY VALUE: like set_sysctl, only when VALUE is larger (last field).
raise_sysctl() {
  local cur
  [[ -e "/proc/sys/${1//.//}" ]] || return 0
  cur="$(sysctl -n "$1" | awk '{ print $NF }')"
  ((${2##* } > cur)) && set_sysctl "$1" "$2"
  return 0
}

[[ "$(id -u)" == 0 ]] || die "needs root (sysctl)"
((N >= 1)) || die "N must be positive"
((HOLD >= 10)) || die "HOLD must be at least 10 s (the gateway and the kernel are sampled 5 s into it)"
if [[ ! -x build/bin/switchboard || ! -x build/bin/swload ]]; then
  timeout 1800 ops/build release --target switchboard --target swload
fi
avail_mb=$(($(mem_kib MemAvailable) / 1024))
log "N=$N: $SHARDS shards, $PROCS swload workers, hold ${HOLD}s, $TARGETS personal targets; output in $OUT"
log "memory: ${avail_mb} MiB available, ~${NEED_MB} MiB needed"
((avail_mb - NEED_MB >= MIN_FREE_MB)) || die "not enough memory for N=$N (${avail_mb} MiB available, ~${NEED_MB} MiB needed + ${MIN_FREE_MB} MiB kept free)"

# Kernel settings: ephemeral ports per (source, destination) pair, accept
# and SYN backlogs for the ramp, the loopback input backlog, conntrack
# entries (it tracks loopback here; one entry per connection), socket
# buffer memory for a broadcast to every client at once, and system-wide files.
set_sysctl net.ipv4.ip_local_port_range "1024 65535"
raise_sysctl net.core.somaxconn 65535
raise_sysctl net.ipv4.tcp_max_syn_backlog 65535
raise_sysctl net.core.netdev_max_backlog 65536
raise_sysctl net.netfilter.nf_conntrack_max $((N * 22 / 10 + 65536))
raise_sysctl net.ipv4.tcp_mem "1048576 1572864 2097152"
raise_sysctl fs.file-max $((2 * N + 262144))

PORT="$(free_port)"
OPS="$(free_port)"
# Protocol pings every 300 s instead of 25 s: at 1M clients 25 s would be
# 40k pings/s through the whole run; swload answers them either way. Mesh
# rings of 64 slots instead of the default 256 at 54 shards: (shards + 1)²
# rings hold 12 MiB instead of 48; the run's bursts (a register per
# connection, the personal round's publications) wait in the sources'
# overflow queues when a ring is full.
cat >"$CONFIG" <<EOF
listen = "127.0.0.1:$PORT"
ops_listen = "127.0.0.1:$OPS"
shards = $SHARDS
mesh_ring_capacity = 64
listen_backlog = 65535
token_hmac_secret_key = "$SECRET"
api_key = "$API_KEY"
ping_interval = "300s"

[[namespaces]]
name = "personal"
allow_user_limited_channels = true

[[namespaces]]
name = "bcast"
allow_subscribe_for_client = true
EOF

stats() { curl -sf --max-time 10 "http://127.0.0.1:$OPS/stats"; }
# stat_field JSON PATH: one number from /stats (PATH like memory.rss_bytes).
stat_field() { python3 -c 'import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."): v = v.get(k, {}) if isinstance(v, dict) else {}
print(v if isinstance(v, (int, float)) else -1)' "$1" "$2"; }

"${SB_BIN_DIR:-build/bin}/switchboard" --config "$CONFIG" >"$OUT/switchboard.log" 2>&1 &
GW_PID=$!
wait_listening "$OUT/switchboard.log" "$GW_PID" 300 || { cat "$OUT/switchboard.log" >&2; die "switchboard did not start"; }
log "switchboard pid $GW_PID: clients 127.0.0.1:$PORT, ops 127.0.0.1:$OPS"

# Warm-up: one client in and out, so one-off allocations are not charged to N.
timeout 60 build/bin/swload --port "$PORT" --secret "$SECRET" -n 1 --personal 'personal:#u{i}' --scenario idle \
  --hold 0 --channel bcast:all --timeout 30 >/dev/null 2>&1 || die "warm-up client failed"
sleep 1
s0="$(stats)" || die "/stats did not answer"
rss0=$(stat_field "$s0" memory.rss_bytes)
jem0=$(stat_field "$s0" memory.jemalloc.allocated)
slab0=$(mem_kib Slab)
log "before: gateway rss $((rss0 / 1048576)) MiB, jemalloc allocated $((jem0 / 1048576)) MiB; kernel Slab $((slab0 / 1024)) MiB"

SW_LIMIT=$((DEADLINE - SECONDS - 60))
((SW_LIMIT > HOLD + 60)) || die "LIMIT too small"
log "swload: $N clients, asking ${RATE}/s with ${INFLIGHT} handshakes outstanding"
timeout $((SW_LIMIT + 30)) build/bin/swload --port "$PORT" --secret "$SECRET" -n "$N" --procs "$PROCS" \
  --src 127.1.0.1-127.1.0.250 --rate "$RATE" --inflight "$INFLIGHT" --handshake-timeout 30 \
  --personal 'personal:#u{i}' --scenario api --channel bcast:all --api-port "$OPS" --api-key "$API_KEY" \
  --targets "$TARGETS" --hold "$HOLD" --drain 60 --timeout "$SW_LIMIT" --server-pid "$GW_PID" --settle 2 \
  >"$OUT/swload.out" 2>"$OUT/swload.err" &
SW_PID=$!

# While swload runs: watch free memory, and sample the gateway and the
# kernel 5 s after swload says all clients are in (during the hold).
sampled=0
progress_at=$SECONDS
while kill -0 "$SW_PID" 2>/dev/null; do
  ((SECONDS < DEADLINE)) || die "global timeout (${LIMIT}s)"
  avail_mb=$(($(mem_kib MemAvailable) / 1024))
  if ((avail_mb < MIN_FREE_MB)); then
    tail -n 3 "$OUT/swload.err" >&2
    die "MemAvailable ${avail_mb} MiB < ${MIN_FREE_MB} MiB: aborting before the OOM killer does"
  fi
  if ((SECONDS - progress_at >= 10)); then
    log "$(tail -n 1 "$OUT/swload.err" 2>/dev/null); MemAvailable ${avail_mb} MiB"
    progress_at=$SECONDS
  fi
  if ((!sampled)) && grep -qs "swload: all ready" "$OUT/swload.out"; then
    log "$(grep "swload: all ready" "$OUT/swload.out")"
    sleep 5
    s1="$(stats)" || die "/stats did not answer"
    slab1=$(mem_kib Slab)
    sampled=1
    conns=$(stat_field "$s1" connections)
    rss1=$(stat_field "$s1" memory.rss_bytes)
    jem1=$(stat_field "$s1" memory.jemalloc.allocated)
    log "all connected: gateway $conns connections, rss $((rss1 / 1048576)) MiB, jemalloc allocated" \
      "$((jem1 / 1048576)) MiB; kernel Slab $((slab1 / 1024)) MiB; MemAvailable ${avail_mb} MiB"
  fi
  sleep 1
done
rc=0
wait "$SW_PID" || rc=$?
SW_PID=""
s2="$(stats || echo '{}')"
cat "$OUT/swload.out"
((sampled)) || die "swload ended (exit $rc) before all clients were ready; see $OUT/swload.err"
line="$(grep '^{"swload":' "$OUT/swload.out" || true)"
[[ -n "$line" ]] || die "swload printed no result (exit $rc); see $OUT/swload.err"

python3 - "$line" "$N" "$SHARDS" "$rss0" "$rss1" "$jem0" "$jem1" "$slab0" "$slab1" "$conns" "$s2" "$rc" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
n, shards, rss0, rss1, jem0, jem1, slab0, slab1, conns = map(int, sys.argv[2:11])
s2 = json.loads(sys.argv[11])
rc = int(sys.argv[12])
rounds = {x["round"]: x for x in r["rounds"]}
b, p = rounds.get("broadcast", {}), rounds.get("personal", {})
gw = s2.get("publish_to_write_us", {})
out = {
    "million": 1, "n": n, "shards": shards, "ready": r["ready"], "failed": r["failed"],
    "gateway_connections": conns, "connect_s": r["connect_s"], "handshake_rate": r["handshake_rate"],
    "gateway_rss_mib": round(rss1 / 2**20, 1), "gateway_jemalloc_allocated_mib": round(jem1 / 2**20, 1),
    "gateway_rss_per_session_b": round((rss1 - rss0) / n), "gateway_jemalloc_per_session_b": round((jem1 - jem0) / n),
    "kernel_slab_per_socket_b": round((slab1 - slab0) * 1024 / (2 * n)),
    "broadcast": b, "personal": p, "lost": r["lost"], "gateway_publish_to_write_us": {
        k: gw.get(k) for k in ("count", "p50", "p99", "p999")},
    "swload_exit": rc,
}
print(f"connected: {r['ready']} of {n} ({r['failed']} failed) in {r['connect_s']:.1f} s, "
      f"{r['handshake_rate']:.0f} handshakes/s; gateway counts {conns}")
print(f"gateway: rss {out['gateway_rss_mib']} MiB, jemalloc allocated {out['gateway_jemalloc_allocated_mib']} MiB; "
      f"per session {out['gateway_rss_per_session_b']} B rss, {out['gateway_jemalloc_per_session_b']} B allocated")
print(f"kernel: Slab +{(slab1 - slab0) / 1024:.0f} MiB, {out['kernel_slab_per_socket_b']} B per socket")
for name, x in (("broadcast", b), ("personal", p)):
    if x:
        print(f"{name}: {x['delivered']} of {x['expected']} in {x['time_to_all_s']:.3f} s to all, "
              f"{x['deliveries_per_s']:.0f} deliveries/s, latency p50 {x['lat_us']['p50']} µs, "
              f"p99 {x['lat_us']['p99']} µs, max {x['lat_us']['max']} µs; lost {x['lost']}")
print(f"lost messages: {r['lost']}")
print(json.dumps(out, separators=(",", ":")))
sys.exit(0 if rc == 0 and r["lost"] == 0 and r["failed"] == 0 else 1)
EOF
