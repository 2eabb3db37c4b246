#!/usr/bin/env bash
# Issue 14's figures: a broadcast to N (19,000) subscribers through the Redis
# engine, spread over 2 nodes (1 shard each) on this machine, against the
# memory engine on one node (2 shards: the same number of threads), RUNS
# times each, alternating, in one sitting; build/bin/swload drives both
# (one client publishing PUB_RATE/s for DURATION s on chat:bcast, no history;
# with --channel hist:bcast the namespace keeps history, so each publication
# is the publish script instead of a PUBLISH).
#
# Prints per run and as medians: deliveries/s, p50/p99 latency, gateway CPU
# per delivery (both nodes' utime+stime over the publishing window /
# deliveries), and the Redis work per publication: commands the engines
# sent and bytes they wrote and read (their /stats counters, both nodes,
# before and after the run; the cluster bus's heartbeats are not in them),
# and redis-server's time executing EVALSHA and PUBLISH (INFO commandstats).
# 19,000 subscribers cost one SUBSCRIBE per node, not one per client.
#
# usage: bench/scenarios/cluster.sh [N=19000] [RUNS=2] [--pub-rate R] [--duration S] [--channel C]
# Every process started here is killed by PID on exit; every step is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/scenarios/lib.sh
source bench/scenarios/lib.sh

N=19000
RUNS=2
PUB_RATE=5
DURATION=10
CHANNEL=chat:bcast
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pub-rate) PUB_RATE="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --channel) CHANNEL="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set /p' "$0" | grep '^#'; exit 0 ;;
    -*) echo "cluster.sh: unknown flag $1" >&2; exit 2 ;;
    *) positional+=("$1"); shift ;;
  esac
done
[[ ${#positional[@]} -ge 1 ]] && N="${positional[0]}"
[[ ${#positional[@]} -ge 2 ]] && RUNS="${positional[1]}"

SECRET="switchboard-bench-secret"  # = token_hmac_secret_key in bench.toml
OUT="$(mktemp -d /tmp/sb_cluster.XXXXXX)"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ! -x build/bin/switchboard || ! -x build/bin/swload ]]; then
  timeout 1800 ops/build release --target switchboard --target swload
fi
# bench.toml plus a namespace with history for --channel hist:bcast.
CONF="$OUT/cluster.toml"
cat bench/scenarios/bench.toml >"$CONF"
cat >>"$CONF" <<'TOML'

[[namespaces]]
name = "hist"
allow_subscribe_for_client = true
allow_publish_for_client = true
history_size = 100
history_ttl = "60s"
TOML

start_node() {  # start_node LOG ARGS...: sets NODE_PID, NODE_PORT
  local log="$1"
  shift
  NODE_PORT="$(free_port)"
  NODE_OPS_PORT="$(free_port)"
  build/bin/switchboard --config "$CONF" --listen "127.0.0.1:$NODE_PORT" --ops-listen "127.0.0.1:$NODE_OPS_PORT" "$@" \
    >"$log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  wait_listening "$log" "$NODE_PID" || { echo "cluster.sh: node did not start:" >&2; cat "$log" >&2; exit 1; }
}

NODE_OPS=()
start_node_ops() {  # as start_node, remembering the ops port
  start_node "$@"
  NODE_OPS+=("$NODE_OPS_PORT")
}

redis_stats() {  # engine commands, bytes written, bytes read (all nodes); Redis µs in EVALSHA + PUBLISH
  local stats=() p
  for p in "${NODE_OPS[@]}"; do stats+=("$(curl -s "http://127.0.0.1:$p/stats")"); done
  redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' >"$OUT/commandstats"
  python3 - "$OUT/commandstats" "${stats[@]}" <<'PY'
import json, re, sys
c = o = i = 0
for text in sys.argv[2:]:
    for srv in json.loads(text)["redis"]["servers"]:
        c += srv["commands"]; o += srv["bytes_out"]; i += srv["bytes_in"]
usec = 0
for line in open(sys.argv[1]):
    m = re.match(r"cmdstat_(evalsha|publish):calls=\d+,usec=(\d+)", line)
    if m: usec += int(m.group(2))
print(c, o, i, usec)
PY
}

results="$OUT/results.jsonl"
: >"$results"
echo "cluster.sh: N=$N RUNS=$RUNS broadcast $PUB_RATE/s for ${DURATION}s on $CHANNEL; output in $OUT"
for run in $(seq "$RUNS"); do
  for KIND in memory redis; do
    log="$OUT/$KIND.$run"
    pids=()
    extra=()
    if [[ "$KIND" == memory ]]; then
      start_node "$log.node1" --shards 2
      ports="$NODE_PORT"
      pids=("$NODE_PID")
    else
      REDIS_PORT="$(free_port)"
      /usr/bin/redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$log.redis" 2>&1 &
      REDIS_PID=$!
      PIDS+=("$REDIS_PID")
      for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
      NODE_OPS=()
      start_node_ops "$log.node1" --shards 1 --engine redis --redis-address "redis://127.0.0.1:$REDIS_PORT"
      ports="$NODE_PORT"
      pids=("$NODE_PID")
      start_node_ops "$log.node2" --shards 1 --engine redis --redis-address "redis://127.0.0.1:$REDIS_PORT"
      ports="$ports,$NODE_PORT"
      pids+=("$NODE_PID")
      extra=(--also-pid "${pids[1]}")
    fi
    # Warm-up: one client in and out on each node.
    for p in ${ports//,/ }; do
      timeout 30 build/bin/swload --port "$p" --secret "$SECRET" -n 1 --scenario idle --hold 0 >/dev/null 2>&1 || true
    done
    # Clients on both nodes: 2 workers, one per node (--ports), the publisher on node 1.
    rc=0
    [[ "$KIND" == redis ]] && before="$(redis_stats)"
    timeout 200 build/bin/swload --ports "$ports" --procs 2 --secret "$SECRET" -n "$N" --inflight 500 \
      --timeout 150 --server-pid "${pids[0]}" "${extra[@]+"${extra[@]}"}" --scenario broadcast --channel "$CHANNEL" \
      --pub-rate "$PUB_RATE" --duration "$DURATION" --drain 5 >"$log.out" 2>"$log.err" || rc=$?
    redis_line='null'
    if [[ "$KIND" == redis ]]; then
      after="$(redis_stats)"
      redis_line="$(python3 -c 'import sys
b, a = (list(map(float, x.split())) for x in sys.argv[1:3])
print("[%s]" % ",".join("%.1f" % (a[k] - b[k]) for k in range(4)))' "$before" "$after")"
      stop_pid "$REDIS_PID"
    fi
    for p in "${pids[@]}"; do stop_pid "$p"; done
    line="$(grep '^{"swload":' "$log.out" || true)"
    if [[ -z "$line" ]]; then
      echo "  $KIND run $run: no result (exit $rc); see $log.err" >&2
      continue
    fi
    printf '%s\n' "${line%\}},\"engine\":\"$KIND\",\"run\":$run,\"exit\":$rc,\"redis\":$redis_line}" >>"$results"
    python3 - "$(tail -1 "$results")" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
l = r["lat_us"]
s = (f"  {r['engine']:6} run {r['run']}: ready {r['ready']}/{r['n']}, {r['deliveries_per_s']:.0f} deliveries/s, "
     f"lost {r['lost']}, p50 {l['p50']} µs, p99 {l['p99']} µs, gateway {r['server_cpu_us_per_delivery']:.2f} µs CPU/delivery")
if r["redis"]:
    pubs = max(1, r["pubs"])
    c, bi, bo, cpu = r["redis"]
    s += (f"; Redis per publication: {c / pubs:.2f} commands, {bi / pubs:.0f} B written, {bo / pubs:.0f} B read "
          f"(both nodes), {cpu / pubs:.1f} µs in redis-server")
print(s + (f"  ** exit {r['exit']} **" if r["exit"] else ""), flush=True)
PY
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(kind, get):
    vals = [get(r) for r in rows if r["engine"] == kind]
    return statistics.median(vals) if vals else None
metrics = [
    ("deliveries/s", lambda r: r["deliveries_per_s"]),
    ("p50 latency µs", lambda r: r["lat_us"]["p50"]),
    ("p99 latency µs", lambda r: r["lat_us"]["p99"]),
    ("gateway CPU µs/delivery (all nodes)", lambda r: r["server_cpu_us_per_delivery"]),
]
fmt = lambda v: "—" if v is None else (f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}")
print()
print(f"{'median of runs':38} {'memory':>10} {'redis':>10} {'redis/mem':>10}")
for name, get in metrics:
    m, r = med("memory", get), med("redis", get)
    ratio = f"{r / m:.2f}" if m not in (None, 0) and r is not None else "—"
    print(f"{name:38} {fmt(m):>10} {fmt(r):>10} {ratio:>10}")
red = [r for r in rows if r["engine"] == "redis" and r["redis"]]
if red:
    per = lambda i: statistics.median(r["redis"][i] / max(1, r["pubs"]) for r in red)
    print(f"Redis per publication (median): {per(0):.2f} commands, {per(1):.0f} B written, {per(2):.0f} B read "
          f"(both nodes), {per(3):.1f} µs executing in redis-server")
bad = [r for r in rows if r["exit"] != 0]
print(f"{len(rows)} runs, {len(bad)} with failed connections, lost messages or timeouts")
sys.exit(1 if bad else 0)
PY
