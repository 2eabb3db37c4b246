#!/usr/bin/env bash
# Three Switchboard nodes on one Redis, on this host, without containers:
#   ops/deploy/cluster.sh start    builds if needed, starts redis-server on
#                                  127.0.0.1:6390 and nodes on client ports
#                                  8001-8003 (ops 9001-9003)
#   ops/deploy/cluster.sh status   what runs, and the cluster as node 1 sees it
#   ops/deploy/cluster.sh stop     ends what start started (by its PIDs)
# State (PIDs, logs) in ${SB_CLUSTER_DIR:-/tmp/switchboard-cluster}. Put a TCP
# load balancer in front of 8001-8003 (any: clients need no stickiness).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${SB_CLUSTER_DIR:-/tmp/switchboard-cluster}"
redis_port=6390
mkdir -p "$dir"

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  [[ -x build/bin/switchboard ]] || { ops/install-deps; ops/build release --target switchboard; }
  if ! alive "$dir/redis.pid"; then
    /usr/bin/redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
      --daemonize no >"$dir/redis.log" 2>&1 &
    echo $! >"$dir/redis.pid"
    for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  for n in 1 2 3; do
    alive "$dir/node$n.pid" && continue
    build/bin/switchboard --config ops/deploy/cluster.toml --name "node$n" \
      --listen "127.0.0.1:800$n" --ops-listen "127.0.0.1:900$n" >"$dir/node$n.log" 2>&1 &
    echo $! >"$dir/node$n.pid"
  done
  sleep 1
  status
}

status() {
  for p in redis node1 node2 node3; do
    if alive "$dir/$p.pid"; then echo "$p: running (pid $(cat "$dir/$p.pid"))"; else echo "$p: not running"; fi
  done
  curl -s -X POST -H "X-API-Key: switchboard-dev-api-key-change-me" http://127.0.0.1:9001/api/info -d '{}' \
    | python3 -c 'import json,sys; [print(" ", n["name"], n["num_clients"], "clients") for n in json.load(sys.stdin)["result"]["nodes"]]' \
    2>/dev/null || true
}

stop() {
  for p in node1 node2 node3 redis; do
    if alive "$dir/$p.pid"; then kill "$(cat "$dir/$p.pid")"; fi
    rm -f "$dir/$p.pid"
  done
}

case "${1:-}" in
  start) start ;;
  status) status ;;
  stop) stop ;;
  *) echo "usage: $0 start|status|stop" >&2; exit 2 ;;
esac
