#pragma once
// One client connection: HTTP upgrade, then RFC 6455 frames, on the shard
// that accepted it.
//
// Memory is the design constraint (DESIGN.md "Memory per connection"): a
// million of these live in one process, so an idle session holds no read
// buffer, no per-session Asio timer or socket object and no container that
// allocates when empty. Its socket is a bare fd in the shard's
// edge-triggered epoll set (session/poller.hpp); it reads until the socket
// is dry into the shard's scratch buffer,
// and keeps only a partial frame (or a fragmented message) in a pooled
// chunk. Deadlines live in the shard's timer wheel; the outbound queue is an
// intrusive list of pooled nodes holding shared frame references.
//
// Threading: everything here belongs to one shard and runs on its thread.
// There are no locks and no strands, on purpose; nothing else may touch a
// session. A session never includes routing: it reports to a
// session_handler that gateway/ wires to the application.

#include "pool/counter.hpp"
#include "pool/frame_buffer.hpp"
#include "pool/object_pool.hpp"
#include "pool/histogram.hpp"
#include "pool/timer_wheel.hpp"
#include "session/admission.hpp"
#include "session/http_upgrade.hpp"
#include "session/poller.hpp"
#include "session/tls.hpp"
#include "session/ws_codec.hpp"
#include "session/ws_deflate.hpp"

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace sb {

/// The acceptor type bound to io_context's executor (one pointer)
/// rather than any_io_executor (several words per socket, a million times).
using shard_executor = boost::asio::io_context::executor_type;
using tcp_acceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, shard_executor>;

/// Limits and deadlines of sessions; read-only after start.
struct session_options {
  ws::upgrade_options upgrade;
  std::uint64_t max_message_size = 65536;         // → close 1009
  std::uint64_t max_queued_bytes = 1 << 20;       // outbound; above → closed as a slow consumer
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds ping_interval{25'000};  // WebSocket ping when the peer was silent this long; 0: off
  std::chrono::milliseconds pong_timeout{10'000};   // no frame within this after a ping → dead peer
  std::chrono::milliseconds close_timeout{3'000};   // wait for the peer's close frame after ours
  std::uint16_t slow_close_code = 1008;             // close code for slow consumers (Centrifuge: 3008)
  const char* slow_close_reason = "slow consumer";  // (Centrifuge: "slow")
  admission_options admission;                      // who is taken on at the upgrade (session/admission.hpp)
  std::uint16_t shutdown_close_code = 1001;         // close code when the server stops (Centrifuge: 3001)
  const char* shutdown_close_reason = "server shutting down";  // (Centrifuge: "shutdown")
  ws::deflate_options deflate;  // permessage-deflate, when upgrade.permessage_deflate negotiates it
  // Free frame buffers a shard keeps for reuse. Bursts (a connect storm's
  // replies) would otherwise stay cached: 4 MiB x 50 shards is 200 MiB.
  std::size_t frame_cache_bytes = 512 * 1024;
};

/// Why sessions ended or were refused; indexes session_stats::ended.
enum class end_reason : std::uint8_t {
  peer_closed,        // close handshake started by the peer
  server_closed,      // close handshake started by us (shutdown, application)
  eof,                // TCP closed without a close frame
  io_error,           // reset and other socket errors
  handshake_timeout,  // no complete upgrade request in time
  handshake_rejected, // answered with an HTTP error
  protocol_error,     // 1002
  invalid_payload,    // 1007
  message_too_big,    // 1009
  no_pong,            // dead peer: silent after a ping
  slow_consumer,      // outbound queue over max_queued_bytes
  close_timeout,      // peer never answered our close frame
  tls_error,          // TLS handshake or record failure (plain HTTP to the TLS port, bad ClientHello, alert)
  count
};

/// Label of a reason for metrics.
const char* to_string(end_reason r) noexcept;

/// Per-shard session figures; written by the shard, read anywhere.
/// Bucket bounds shared by every shard (so buckets add up across shards).
/// Publish→write: microseconds from a publication entering the gateway to
/// the write that finished its frame on a subscriber's socket. Up to a
/// minute: a broadcast to a million takes seconds (issue 17).
inline constexpr std::array<std::uint64_t, 19> latency_bounds_us = {
    50, 100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000,
    2'500'000, 5'000'000, 10'000'000, 30'000'000, 60'000'000};
/// Outbound queue bytes of a session when it starts a write.
inline constexpr std::array<std::uint64_t, 9> queue_bounds_bytes = {
    256, 1'024, 4'096, 16'384, 65'536, 262'144, 1'048'576, 4'194'304, 16'777'216};

struct session_stats {
  bucket_histogram<latency_bounds_us.size()> publish_to_write_us{latency_bounds_us};
  bucket_histogram<queue_bounds_bytes.size()> queue_at_write_bytes{queue_bounds_bytes};
  counter open;                 // sessions past the upgrade, now
  counter handshaking;          // connections still in the upgrade, now
  counter connecting;           // open, the application's handshake not done yet (admission's in-flight), now
  counter upgrades;             // successful upgrades since start
  counter messages_in;          // complete data messages received
  counter frames_out;           // frames queued for writing
  counter bytes_out;            // bytes written
  counter bytes_in;             // bytes read
  counter writes;               // writev calls (SSL_write calls on TLS sessions)
  counter tls_handshakes;       // TLS handshakes completed, full and resumed
  counter tls_resumed;          // of which resumed from a session ticket
  counter queued_bytes;         // bytes waiting in outbound queues now
  ws::deflate_stats deflate;    // permessage-deflate: sessions that negotiated it, what was compressed
  std::array<counter, static_cast<std::size_t>(end_reason::count)> ended;  // by reason
  /// HTTP rejections by the parser's reason label ("origin", "bad_version", ...).
  struct rejection {
    // Written once by the shard (release), read by the ops endpoint
    // (acquire): a reader sees the label before its count.
    std::atomic<const char*> reason{nullptr};
    counter n;
    const char* label() const noexcept { return reason.load(std::memory_order_acquire); }
  };
  std::array<rejection, 16> rejected{};
  void count_rejection(const char* reason) noexcept;
};

class session;
class session_context;

/// What a session reports upward. One instance per shard, wired by gateway/;
/// called on the shard thread.
class session_handler {
 public:
  virtual ~session_handler() = default;
  /// The upgrade succeeded; the session may send. `req` (what the upgrade
  /// accepted: query, subprotocol) is valid during the call only.
  virtual void on_open(session& s, const ws::upgrade_result& req) = 0;
  /// A complete data message (text already validated as UTF-8). The bytes
  /// are valid only during the call.
  virtual void on_message(session& s, ws::opcode op, std::span<const std::uint8_t> payload) = 0;
  /// The session ended (after on_open); it is freed at the end of the loop turn.
  virtual void on_close(session& s) = 0;
  /// The deadline set with session::set_timer passed (the session is open).
  virtual void on_timer(session& s) { (void)s; }
};

/// Diagnostic handler (`--mode echo`): sends every message back as it came.
class echo_handler final : public session_handler {
 public:
  void on_open(session&, const ws::upgrade_result&) override {}
  void on_message(session& s, ws::opcode op, std::span<const std::uint8_t> payload) override;
  void on_close(session&) override {}
};

/// Outcome of queueing a frame (uWebSockets' SendStatus shape).
enum class send_status : std::uint8_t { queued, dropped_closed, slow_consumer };

/// One client connection. Created by session_context::accept; owned by the
/// context's pool; destroyed at the end of a loop turn after it ended.
class session : public boost::intrusive::list_base_hook<>, private timer_node {
 public:
  enum class phase : std::uint8_t { handshake, open, closing, dead };

  /// `fd`: the accepted, non-blocking socket, owned from now on (closed when
  /// the session ends). `ssl`: its TLS state (owned too), or null for plain.
  session(session_context& ctx, int fd, ssl_st* ssl = nullptr);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// Queues a complete encoded frame (shared, not copied). Over the byte
  /// limit the session is closed as a slow consumer.
  send_status send(frame_ref frame);
  /// Queues one data message of this session's own (a reply): compressed
  /// by the shard's deflater when the session negotiated permessage-deflate.
  send_status send_message(ws::opcode op, std::string_view payload);
  /// permessage-deflate was negotiated: frames with RSV1 may be sent to it
  /// (shared compressed publication frames included).
  bool deflate() const noexcept { return _decoder.deflate; }
  /// Starts the close handshake with a code and reason.
  void close(std::uint16_t code, std::string_view reason);
  /// Ends the connection at once (no close frame).
  void abort(end_reason why);

  /// The application's deadline, kept on the session's own timer node so a
  /// connection carries one node, not two: the handler's on_timer runs when
  /// it passes. Replaces an earlier deadline. Only while open and with the
  /// session's WebSocket ping off (options().ping_interval == 0, as in
  /// centrifuge mode); closing takes the node back for the close timeout.
  void set_timer(std::chrono::milliseconds delay);
  void cancel_timer();

  /// The application's own handshake is done (Centrifuge: the connect was
  /// answered): the session no longer counts as in flight for admission.
  /// Needed only when options().admission.established_on_open is false.
  void established() noexcept;

  phase state() const noexcept { return _phase; }
  session_context& context() noexcept { return _ctx; }
  std::uint64_t queued_bytes() const noexcept { return _queued_bytes; }

  /// A slot for the application handler (issue 4 keeps its client state here).
  void* user = nullptr;

 private:
  friend class session_context;
  // One queued outbound frame; pooled per shard, 16 bytes.
  struct out_node {
    explicit out_node(frame_ref f) : frame(std::move(f)) {}
    frame_ref frame;
    out_node* next = nullptr;
  };

  void start();
  void wait_readable() noexcept { _reading = true; }
  void on_io(std::uint32_t events);
  void on_readable();
  void on_writable();
  bool handle_handshake(std::uint8_t* data, std::size_t n);
  bool handle_frames(std::uint8_t* data, std::size_t n);
  bool keep_leftover(const std::uint8_t* data, std::size_t n, std::size_t need);
  void enqueue(frame_ref frame);
  void drop_unsent();
  void mark_dirty();
  void flush();
  void flush_tls();
  void flush_own();
  std::size_t gather_record(std::uint8_t* dst) const noexcept;
  void advance(std::size_t written, std::int64_t& now_ns);
  bool read_some(std::uint8_t* buf, std::size_t space, std::size_t& n);
  bool read_records(std::uint8_t* buf, std::size_t space, std::size_t& n);
  bool tls_established();
  void end_tls(end_reason why);
  void wait_writable() noexcept { _writing = true; }
  enum class io : std::uint8_t { done, blocked, eof, failed };
  io recv_some(std::uint8_t* buf, std::size_t space, std::size_t& n) noexcept;
  io send_some(const struct iovec* iov, std::size_t count, std::size_t& n) noexcept;
  void fail(std::uint16_t code, const char* reason, end_reason why);
  void end(end_reason why);
  static void on_deadline(timer_node& n);

  struct frame_events;
  friend struct frame_events;

  session_context& _ctx;
  frame_ref _leftover;  // handshake bytes, or a partial frame, or nothing
  frame_ref _message;   // a fragmented message being assembled
  out_node* _out_head = nullptr;
  out_node* _out_tail = nullptr;
  std::uint32_t _out_offset = 0;  // bytes of the head frame already written
  std::uint32_t _queued_bytes = 0;
  int _fd;  // the socket, in the shard's epoll set (session/poller.hpp)
  // TLS (session_tls.cpp): OpenSSL's connection while it handshakes (and
  // for good on TLS 1.2), or, once a TLS 1.3 connection is handed off
  // (_tls_own), our record layer's keys. Both null: plain ws.
  struct tls_own;
  union {
    ssl_st* _ssl = nullptr;
    tls_own* _own;
  };
  ws::decoder_state _decoder;
  // TLS: plaintext bytes from the head (past _out_offset) that OpenSSL has
  // taken in a record not yet on the wire; they must stay queued (the retry
  // passes them again) even when the rest is dropped. At most max_record.
  std::uint16_t _tls_committed = 0;
  phase _phase = phase::handshake;
  end_reason _why = end_reason::server_closed;  // recorded when a close starts, counted at the end
  // Flags as bits: a million sessions (13 bools would cost 8 more bytes each).
  bool _opened : 1 = false;        // on_open was called (so on_close will be)
  bool _reading : 1 = false;       // wants the poller's input events (it reads until the socket is dry, then waits)
  bool _writing : 1 = false;       // the socket refused bytes: flushing waits for the poller's output event
  bool _dirty : 1 = false;         // in the context's flush list this turn
  bool _awaiting_pong : 1 = false; // a ping went out and nothing came back yet
  bool _received : 1 = false;      // something arrived since the last ping check
  bool _close_sent : 1 = false;
  bool _established : 1 = false;   // counted out of session_stats::connecting
  bool _shutdown_after_write : 1 = false;
  bool _tls_read_wants_write : 1 = false;  // SSL_read needs the socket writable (handshake flight)
  bool _tls_write_wants_read : 1 = false;  // SSL_write needs the socket readable
  bool _tls_up : 1 = false;                // the TLS handshake completed (counted)
  bool _tls_own : 1 = false;               // _own is set, not _ssl
};

/// A shard's sessions and everything they share: pools, the timer wheel,
/// the scratch buffer, the cork list, the figures. Shard thread only.
class session_context {
 public:
  /// The handler may be set later (set_handler), before the first accept.
  session_context(boost::asio::io_context& io, const session_options& opts, session_handler* handler = nullptr);
  ~session_context();

  /// Takes a freshly accepted non-blocking socket (its fd, owned from now
  /// on) and starts its upgrade.
  void accept(int fd);
  /// Shutdown: closes every session (a 1001 close frame where possible,
  /// then the socket), stops the wheel.
  void close_all();
  /// Graceful drain: no new sessions; the open ones are closed with the
  /// shutdown close code after what is queued for them, spread evenly over
  /// `period` (clients told to reconnect do not all come back at once);
  /// at its end the rest are closed and handshakes still running end.
  void drain(std::chrono::milliseconds period);
  bool draining() const noexcept { return _draining; }
  /// New admission limits (a config reload); established_on_open stays as
  /// the session options say.
  void set_admission(const admission_options& o) noexcept { _admission = admission_gate(o); }
  /// TLS for the connections accepted from now on (null: plain). Open
  /// connections keep the context they started with (a reload swaps it).
  void set_tls(std::shared_ptr<const tls::context> t) noexcept { _tls = std::move(t); }
  bool tls() const noexcept { return _tls != nullptr; }

  std::size_t live() const noexcept { return _sessions.live(); }
  const session_stats& stats() const noexcept { return _stats; }
  session_stats& stats() noexcept { return _stats; }
  frame_pool& frames() noexcept { return _frames; }
  /// The shard's compressor (publication frames for compressed subscribers).
  ws::deflater& deflater() noexcept { return _deflater; }
  const session_options& options() const noexcept { return _opts; }
  boost::asio::io_context& io() noexcept { return _io; }
  timer_wheel& wheel() noexcept { return _wheel; }
  void set_handler(session_handler& h) noexcept { _handler = &h; }
  session_handler* handler() const noexcept { return _handler; }
  /// Schedules any timer node (a session's or the application's) on the
  /// shard's wheel, counting from now, and keeps the wheel's Asio timer armed.
  void schedule_timer(timer_node& n, std::chrono::milliseconds delay);

 private:
  friend class session;
  void schedule(session& s, std::chrono::milliseconds delay);
  void arm_wheel();
  void add_dirty(session& s);
  void flush_dirty();
  void bury(session& s);
  void reap_later();
  void reap();
  void drain_tick();
  static void on_io(void* target, std::uint32_t events);

  boost::asio::io_context& _io;
  const session_options& _opts;
  session_handler* _handler;
  session_stats _stats;
  frame_pool _frames;
  object_pool<session> _sessions;
  object_pool<session::out_node> _out_nodes;
  timer_wheel _wheel;
  boost::asio::steady_timer _wheel_timer;
  bool _wheel_armed = false;
  boost::intrusive::list<session, boost::intrusive::constant_time_size<false>> _live;
  std::vector<session*> _dirty;
  std::vector<session*> _graveyard;
  bool _flush_posted = false;
  bool _reap_posted = false;
  bool _closing_all = false;
  bool _draining = false;
  admission_gate _admission;
  boost::asio::steady_timer _drain_timer;
  std::chrono::steady_clock::time_point _drain_end{};
  std::uint64_t _drain_left = 0;  // open sessions the drain has still to close
  double _drain_credit = 0;       // of a session, carried to the next tick
  ws::deflater _deflater;
  ws::inflater _inflater;
  std::shared_ptr<const tls::context> _tls;
  // One set per shard, made at the first TLS session: a record's plaintext
  // gathered from a queue, records sealed for one write, records read.
  std::unique_ptr<std::uint8_t[]> _tls_plain, _tls_out, _tls_in;
  std::size_t _scratch_size;
  std::unique_ptr<std::uint8_t[]> _scratch;  // one per shard: where every read lands
  poller _poller;  // the sessions' sockets; last, so it is made after what its events reach
};

}  // namespace sb
