// swload worker: one process, one raw epoll loop (level-triggered,
// non-blocking sockets) driving a share of the fleet. Per connection it keeps
// a 48-byte struct in one vector; input is read into one scratch buffer
// shared by all connections, and only an incomplete frame (or HTTP head) is
// kept per connection, on the heap, until the rest arrives; likewise only
// output the socket did not take. That keeps swload's own memory per client
// far under the 1 KiB the gateway is held to, so one machine can hold both.
//
// Phases: connect (ramped at the worker's share of --rate, at most its share
// of --inflight handshakes outstanding) → report `ready` → wait for the
// parent's `go` (start time) → run the scenario → drain → report `final`
// with the latency histogram, then exit (the kernel closes the sockets).
// In the api scenario the clients only receive: after `go` the worker holds
// until the parent announces a round, counts that round's deliveries until
// its clients have them all (or --drain passes), reports the round, and
// after the last round exits as above. In the reconnect scenario each client
// also keeps the channel's last offset (8 bytes; the epoch, the same for all,
// once per worker): after `go` the worker holds until the parent says `drop`,
// resets the dropped clients' sockets (no close frame) and reports
// `dropped`; on `reconnect` it connects them again, ramped as at the start,
// and subscribes them with recover from their offset, reports `back` once
// all are subscribed again (or failed), and on `settle` drains until every
// client has the final offset.
//
// This header is private to the worker's files: worker.cpp (the loop and
// the scenario control), worker_io.cpp (sockets, WebSocket frames, buffers)
// and worker_protocol.cpp (the Centrifuge replies and deliveries, and the
// order and offset checks). The parent only calls run_worker (swload.hpp).
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <memory>
#include <vector>

#include "swload.hpp"
#include "wire.hpp"

// Its own namespace: these names are the worker's alone, and a same-named
// type in the parent's files must not be taken for them at link time.
struct z_stream_s;  // zlib's, for --deflate

namespace swload::in_worker {

constexpr std::int64_t ms_ns = 1'000'000;
constexpr std::int64_t s_ns = 1'000'000'000;
constexpr std::uint32_t parent_tag = 0xffffffff;  // epoll tag of the command pipe
constexpr std::size_t read_chunk = 64 * 1024;     // bytes read per readable event
constexpr std::size_t max_tail = 16 << 20;        // an incomplete frame larger than this is an error
constexpr int publish_batch = 512;                // publications per loop turn before polling again

/// Where one connection is in its handshake (and whether it is gone);
/// touched only by the worker process's one thread, like all below.
enum class state : std::uint8_t { idle, connecting, upgrading, connecting_cf, subscribing, ready, dead };

/// One connection. Kept to 48 bytes: swload holds up to 19,000 of them per
/// worker next to the gateway on one machine.
struct conn {
  std::int64_t started_ns = 0;  // connect() time, for the handshake timeout
  char* tail = nullptr;         // unparsed input (partial frame or HTTP head), malloc'd only when needed
  char* out = nullptr;          // output the socket did not take, malloc'd only when needed
  std::uint32_t tail_len = 0;
  std::uint32_t out_len = 0;
  std::uint32_t last_seq = 0;  // broadcast: last sequence number seen (one publisher)
  std::uint32_t pub_seq = 0;   // publications sent by this connection
  int fd = -1;
  state st = state::idle;
};
static_assert(sizeof(conn) <= 48);

/// A connection refused with 503 (admission), to start again at due_ns.
struct retry {
  std::int64_t due_ns;
  std::uint32_t i;
};

/// The worker's phase (see the top of this file).
enum class phase : std::uint8_t { connecting, waiting_go, running, draining, reconnecting };

/// One worker process's share of the fleet: its connections, its epoll loop
/// and its side of the pipes to the parent. Built and run by run_worker in
/// the forked child; single-threaded, so nothing here is locked.
class worker {
 public:
  worker(const options& o, const worker_plan& plan)
      : _o(o),
        _plan(plan),
        _clients(plan.last - plan.first),
        _total(_clients + (plan.publisher ? 1 : 0)),
        _chat(o.scen == scenario::chat),
        _reconnect(o.scen == scenario::reconnect),
        _upgrade(wire::upgrade_request(o.host, o.port, o.path, o.deflate)) {}

  /// Runs the worker's phases to the end; returns the process's exit code
  /// (it exits at once, with _exit, when the parent is gone).
  int run();

 private:
  long global(long i) const { return i < _clients ? _plan.first + i : _o.n; }
  bool subscribes(long i) const { return i < _clients; }
  std::string channel_for(long i) const {
    return _chat ? "chat:room" + std::to_string(global(i) / _o.room_size) : _o.channel;
  }
  long to_start() const { return _reconnecting ? static_cast<long>(_redo.size()) : _total; }
  long slot(long k) const { return _reconnecting ? static_cast<long>(_redo[static_cast<std::size_t>(k)]) : k; }

  // worker.cpp: the loop and the scenario control.
  int next_timeout_ms(std::int64_t now) const;
  void on_command();
  void begin_run(std::int64_t t0);
  void begin_round(int round, std::int64_t now);
  void end_round();
  void publish_due(std::int64_t now);
  void publish(long i);
  void end_publishing();
  void drop_clients();
  void begin_reconnect(std::uint64_t missed_offset, std::int64_t now);
  void end_reconnect();
  void send_report(report_kind kind);

  // worker_io.cpp: connects, reads, writes, WebSocket frames, failures.
  void start_due(std::int64_t now);
  void start(long i, std::int64_t now);
  void check_timeouts(std::int64_t now);
  void on_event(long i, std::uint32_t events);
  void on_readable(long i);
  bool on_frame(long i, const wire::frame& f, const char* payload, std::int64_t now);
  bool inflate(const char* payload, std::size_t n, std::string_view& out);
  void mark_ready(long i);
  void retry_later(long i, std::string_view head, std::int64_t now);
  void start_retries(std::int64_t now);
  std::int64_t retry_due() const { return _retries.empty() ? -1 : _retries.front().due_ns; }
  void fail(long i, reason why, int err = 0);
  void send_text(long i, std::string_view text);
  void send_raw(long i, const char* data, std::size_t len);
  void flush(long i);
  void keep_tail(long i, const char* p, std::size_t n);
  void watch(long i, std::uint32_t events);

  // worker_protocol.cpp: what the server says, and what it is owed.
  void on_upgraded(long i);
  void on_text(long i, std::string_view text, std::int64_t now);
  void on_reply(long i, std::string_view line, std::int64_t now);
  bool on_subscribed(long i, std::string_view line, std::int64_t now);
  void on_delivery(long i, std::string_view text, std::int64_t now);
  void on_offset(long i, std::uint64_t offset, bool delivery, std::int64_t now);
  void set_target(std::uint64_t offset, bool dropped_only, std::int64_t now);

  const options& _o;
  const worker_plan& _plan;
  const long _clients;  // local indices [0, _clients) are clients; _clients is the publisher, if any
  const long _total;
  const bool _chat;
  const bool _reconnect;
  const std::string _upgrade;

  std::vector<conn> _conns;
  std::vector<std::uint32_t> _room_seq;  // chat: last sequence per (client, publisher's slot in the room)
  std::vector<char> _scratch = std::vector<char>(2 * read_chunk);
  std::vector<char> _frame;  // outgoing frame being built
  // --deflate: one zlib inflater for the worker (the gateway asks for no
  // context takeover, so every message inflates on its own) and its output.
  std::unique_ptr<z_stream_s, void (*)(z_stream_s*)> _z{nullptr, nullptr};
  std::vector<char> _inflated;
  int _ep = -1;
  counters _c;
  histogram _hist;
  histogram _attempt_hist;  // reconnect: connect() to subscribed, of the attempt that got in

  phase _phase = phase::connecting;
  long _next_start = 0;
  long _inflight = 0;  // connections between connect() and ready
  long _pending = 0;   // connections neither ready nor failed
  double _rate = 0;    // connects per second for this worker
  long _inflight_max = 0;
  std::int64_t _ramp_start = 0;
  std::uint32_t _src_first = 0, _src_count = 1, _src_start = 0;
  sockaddr_in _dst{};

  std::int64_t _t0 = 0, _run_end = 0, _drain_end = 0;
  std::vector<long> _order;  // publishers in publication order (chat: shuffled ready clients)
  std::uint64_t _pub_next = 0, _pub_total = 0;
  double _pub_interval_ns = 0;
  bool _expected_known = false;
  std::vector<std::uint32_t> _room_ready;  // chat: ready members per local room at `go`
  int _round = 0;                          // api: the round being received (0: none)

  // reconnect
  std::vector<std::uint64_t> _offsets;  // per client: the channel's last offset it has
  std::string _epoch;                   // the channel's epoch, from the first subscribe reply
  std::vector<std::uint32_t> _redo;     // the dropped clients (local indices)
  // Connections refused with 503, each started again at its Retry-After:
  // a min-heap on the time (retry_due), still counted in _pending.
  std::vector<retry> _retries;
  std::uint64_t _retry_jitter = 0x9e3779b97f4a7c15ull;  // LCG state for the retries' fractions
  bool _reconnecting = false;           // starting the dropped clients again (slot() maps into _redo)
  std::int64_t _reconnect_ns = 0;
  // Clients whose offset reached _target (dropped ones only, or all): when
  // all _relevant have, the missed publications are all recovered / the
  // live ones all delivered.
  std::uint64_t _target = 0;
  bool _target_dropped_only = false;
  long _reached = 0, _relevant = 0;
};

}  // namespace swload::in_worker
