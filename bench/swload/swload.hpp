// swload: a lean WebSocket client fleet for side-by-side benchmarks of
// Switchboard (Centrifuge protocol) and peer servers (a raw pub/sub
// protocol, bench/peers/bun_server.js). The parent process forks workers;
// each worker drives its share of the connections on one raw epoll loop and
// reports to the parent over a pipe; the parent coordinates the phases
// (all ready → go → published → final) and prints the figures. In the
// `api` scenario the parent itself publishes through the gateway's server
// API, in rounds (round → the workers' round reports → next round). In the
// `reconnect` scenario it tells the workers to drop a fraction of their
// clients, publishes what they miss through the server API while they are
// away, lets them reconnect and recover it (drop → dropped → reconnect →
// back), then publishes a few live publications (settle → final).
//
// This header holds what the parent and the workers share: the options,
// the counters and the fixed-size messages exchanged over the pipes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>
#include <sys/types.h>

#include "histogram.hpp"

namespace swload {

enum class scenario : std::uint8_t { idle, broadcast, chat, api, reconnect };
enum class protocol : std::uint8_t { centrifuge, raw };

struct options {
  std::string host = "127.0.0.1";
  int port = 0;
  long n = 1000;
  int procs = 0;                  // 0: ceil(n / 15000)
  std::uint32_t src_first = 0;    // source address range, host byte order
  std::uint32_t src_last = 0;
  double rate = 20000;            // connects per second, all workers together
  int inflight = 2000;            // handshakes outstanding, all workers together
  double reconnect_rate = 0;      // reconnect: connects per second once the dropped come back (0: --rate)
  int reconnect_inflight = 0;     // reconnect: handshakes outstanding then (0: --inflight)
  protocol proto = protocol::centrifuge;
  std::string path;               // upgrade path; default by protocol
  std::string secret;             // HS256 key for connection tokens (centrifuge)
  std::string user = "u{i}";      // `sub` claim template, {i} = global client index
  std::string personal;           // optional `channels` claim template
  int api_port = 0;               // api, reconnect: the gateway's ops port (server API), on --host
  std::string api_key;            // api, reconnect: X-API-Key
  long targets = 10000;           // api: clients the personal round publishes to
  scenario scen = scenario::idle;
  double hold = 5;                // idle, api, reconnect: seconds to hold once all are ready
  std::string channel;            // broadcast (and idle) channel; default by protocol and scenario
  double drop = 1;                // reconnect: fraction of the clients dropped at once
  long before = 1;                // reconnect: publications before the drop
  long missed = 10;               // reconnect: publications while they are away
  long live = 3;                  // reconnect: publications once all are back
  double away = 1;                // reconnect: seconds from the drop to the reconnect
  double pub_rate = 20;           // broadcast: publications per second
  double duration = 10;           // broadcast, chat: seconds of publishing
  double drain = 5;               // seconds to wait for deliveries after publishing (api: per round)
  long room_size = 10;            // chat: clients per room
  double msg_rate = 1;            // chat: publications per client per second
  double timeout = 120;           // hard bound on the whole run
  double handshake_timeout = 15;  // a connection not ready this long after its connect fails
  pid_t server_pid = 0;           // optional: server to sample RSS and CPU of
  std::vector<pid_t> also_pids;   // more processes of the same server (cluster nodes): their RSS and CPU add up
  std::vector<int> ports;         // --ports: worker w connects to ports[w % size] (nodes of a cluster)
  double settle = 1;              // seconds between all ready and the server RSS sample
  bool deflate = false;           // offer permessage-deflate; every upgrade must accept it
  std::size_t pad = 0;            // broadcast/chat: bytes of chat-like text added to each publication
};

// Why connections failed. unrecoverable: reconnect, a subscribe reply
// without "recoverable":true (the channel has no history with recovery).
enum reason : int {
  r_connect, r_upgrade, r_connect_error, r_subscribe_error, r_closed, r_timeout, r_protocol, r_unrecoverable, reasons
};
inline const char* reason_name(int r) {
  static const char* names[] = {"connect", "upgrade", "connect_error", "subscribe_error",
                                "closed",  "timeout", "protocol",      "unrecoverable"};
  return names[r];
}

// One worker's running totals; the parent adds them up.
struct counters {
  std::uint64_t started = 0;    // TCP connects issued
  std::uint64_t ready = 0;      // connections that completed the protocol handshake
  std::uint64_t refused = 0;    // upgrades answered 503 (admission) and tried again after their Retry-After
  std::uint64_t failed[reasons] = {};
  std::uint64_t pubs = 0;       // publications sent
  std::uint64_t pub_errors = 0; // publish replies carrying an error (centrifuge)
  std::uint64_t expected = 0;   // deliveries owed to this worker's clients (final)
  std::uint64_t delivered = 0;  // publications received (including duplicates)
  std::uint64_t compressed = 0; // frames received compressed (permessage-deflate), inflated here
  std::uint64_t wire_bytes = 0; // payload bytes of the data frames received, as on the wire
  std::uint64_t text_bytes = 0; // the same once inflated
  std::uint64_t dup = 0;        // received with a sequence number not above the last one
  std::int64_t first_connect_ns = 0;
  std::int64_t all_ready_ns = 0;     // when the worker's last connection became ready (or failed)
  std::int64_t last_delivery_ns = 0;
  std::int64_t rss_delta_kib = 0;    // worker VmRSS growth from start to all ready
  std::uint32_t last_close_code = 0; // close code of the last server close frame seen
  std::int32_t last_errno = 0;       // errno of the last failed socket call
  // reconnect: the clients track the channel's offset; a publication whose
  // offset is not the next one is a gap (lost) or a duplicate (dup, above).
  std::uint64_t dropped = 0;        // connections dropped
  std::uint64_t back = 0;           // dropped clients subscribed again
  std::uint64_t back_failed = 0;    // dropped clients that failed to come back (also in failed[])
  std::uint64_t missed = 0;         // publications the dropped clients missed (their offsets to the reconnect's)
  std::uint64_t recovered = 0;      // publications in the recovery replies
  std::uint64_t not_recovered = 0;  // recovery replies without "recovered":true
  std::uint64_t epoch_changes = 0;  // subscribe replies with another epoch than the worker's first
  std::uint64_t lost = 0;           // offsets skipped, and (final) offsets missing at the end
  std::int64_t all_back_ns = 0;      // when its last dropped client was subscribed again
  std::int64_t all_recovered_ns = 0; // when its last dropped client had every missed publication (0: not all)
  std::uint64_t failed_total() const {
    std::uint64_t s = 0;
    for (auto f : failed) s += f;
    return s;
  }
};

// Worker → parent.
enum class report_kind : std::uint32_t { progress, ready, published, round, final, dropped, back };
struct report {
  report_kind kind;
  std::uint32_t worker;
  counters c;
};
// A `round` or `final` report is followed by the worker's histogram (raw
// bytes). In the api scenario the counters of those two cover one round
// only: a worker resets them when a round starts. In the reconnect scenario
// the histogram holds the dropped clients' times from the reconnect command
// until subscribed again.

// Parent → worker.
enum class command_kind : std::uint32_t { go, expect, round, drop, reconnect, settle };
struct command {
  command_kind kind;
  std::int64_t value;  // go: start time (CLOCK_MONOTONIC ns); expect: publications of the broadcast;
                       // round: the api round about to be published (1: broadcast, 2: personal);
                       // reconnect: the offset of the last missed publication; settle: the
                       // offset of the last live publication (every client's final offset)
};

// reconnect: whether global client g is one of the dropped --drop fraction
// (spread evenly over the indices; all of them at 1).
inline bool dropped_client(double fraction, long g) {
  return static_cast<long>(static_cast<double>(g + 1) * fraction) > static_cast<long>(static_cast<double>(g) * fraction);
}

// api scenario: round 1 publishes once to --channel (every client), round 2
// once to the personal channels of `targets` clients; the payload's "s" is
// the round number. The last round's report is the `final` one.
constexpr int broadcast_round = 1, personal_round = 2;
inline int api_rounds(const options& o) { return o.targets > 0 ? personal_round : broadcast_round; }

// The personal round's clients: min(k, n) distinct global indices, sorted,
// the same in the parent (which publishes to them) and in every worker
// (which counts what its clients are owed).
std::vector<long> pick_targets(long n, long k);

// What a worker drives: global client indices [first, last), plus, in
// worker 0 of a broadcast, one publisher connection (global index n).
struct worker_plan {
  int index;
  int procs;
  long first;
  long last;
  bool publisher;
  int to_parent;    // pipe write end
  int from_parent;  // pipe read end
};

std::int64_t now_ns();
long vm_rss_kib(pid_t pid);
int run_worker(const options& o, const worker_plan& plan);

}  // namespace swload
