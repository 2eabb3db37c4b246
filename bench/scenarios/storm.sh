#!/usr/bin/env bash
# A reconnect storm (issue 16, part 2): N clients subscribed to a channel
# with history are reset at once and all come back at once (no pacing on
# the client side: --reconnect-rate 1,000,000/s, --reconnect-inflight N),
# first against a gateway without admission, then with ADMISSION's keys
# (docs/config.md "Admission"). Both runs are bench/scenarios/reconnect.sh
# (its output explains the figures): time until all are back, the p99 of a
# client's time to back, the gateway's peak RSS and CPU per client back,
# upgrades refused with 503 (swload tries them again after Retry-After and a
# random fraction of a second), and 0 lost publications with recovery.
#
# usage: bench/scenarios/storm.sh [N=100000] [RUNS=1]
#   env: SHARDS=6 PROCS=6 (a process holds at most 20,000 fds: 100,000
#        connections need 6 shards and 6 swload workers; the machine has 2 cores)
#        ADMISSION="connect_rate_limit = 1500; max_handshakes_in_flight = 1000"
#        (per shard) and anything reconnect.sh reads (MISSED, AWAY, RATE...).
# Exit 1 when either mode lost a message, had a client not back or not
# recovered, or timed out.
set -euo pipefail
cd "$(dirname "$0")/../.."

N="${1:-100000}"
RUNS="${2:-1}"
export SHARDS="${SHARDS:-6}" PROCS="${PROCS:-6}"
export RECONNECT_RATE=1000000 RECONNECT_INFLIGHT="$N"
ADMISSION="${ADMISSION:-connect_rate_limit = 1500; max_handshakes_in_flight = 1000}"

rc=0
echo "storm.sh: $N clients, $SHARDS shards, $PROCS swload workers; without admission"
EXTRA_CONFIG="" bench/scenarios/reconnect.sh "$N" "$RUNS" || rc=1
echo
echo "storm.sh: with admission: $ADMISSION"
EXTRA_CONFIG="$ADMISSION" bench/scenarios/reconnect.sh "$N" "$RUNS" || rc=1
exit "$rc"
