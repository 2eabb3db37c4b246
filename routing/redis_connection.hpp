#pragma once
// One connection to a Redis server, on the io_context of the thread that
// owns it (a shard, or the main thread): commands are pipelined — queued
// while a loop turn runs and written together once per turn — and their
// replies come back in order to per-command callbacks. A connection in
// pub/sub mode carries SUBSCRIBE/UNSUBSCRIBE only, and hands every message
// and subscription acknowledgement to its pubsub_handler.
//
// RESP is read with hiredis's reply reader (libhiredis-dev); commands are
// written as RESP arrays directly (no allocation beyond the output buffer).
// Faults never block or grow without bound: while the connection is down a
// command fails at once (its callback gets null), the queue of commands
// waiting for replies is bounded, and the connection comes back by itself
// with exponential backoff. DESIGN.md "Scaling past one machine".
//
// Threading: everything runs on the owning io_context's thread; no locks.

#include "pool/counter.hpp"
#include "pool/histogram.hpp"
#include "pool/inplace_function.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>

struct redisReader;

namespace sb::redis {

/// Where a Redis server is: "redis://[:password@]host[:port][/db]" (or
/// "host:port").
struct endpoint {
  std::string url;       // as configured, password masked (for logs)
  std::string host;
  std::uint16_t port = 6379;
  std::string password;  // AUTH when not empty
  unsigned db = 0;       // SELECT when not 0
  boost::asio::ip::tcp::endpoint resolved;  // filled by resolve()
};

/// Parses an address; throws std::invalid_argument naming what is wrong.
endpoint parse_endpoint(std::string_view url);
/// Resolves host (startup, main thread: it may block on DNS); throws
/// std::runtime_error when the name does not resolve.
void resolve(endpoint& ep);

/// A view of one RESP value; valid only during the callback that got it.
class reply {
 public:
  enum class kind : std::uint8_t { string, array, integer, nil, status, error };
  explicit reply(const void* r) noexcept : _r(r) {}
  kind type() const noexcept;
  bool is_error() const noexcept { return type() == kind::error; }
  /// The bytes of a string, status or error reply ("" otherwise).
  std::string_view str() const noexcept;
  /// An integer reply, or a string holding one (0 otherwise).
  long long integer() const noexcept;
  /// Elements of an array (0 otherwise).
  std::size_t size() const noexcept;
  reply at(std::size_t i) const noexcept;

 private:
  const void* _r;  // redisReply
};

/// A command's answer: its reply, or null when it failed without one (the
/// connection was down, was lost before the reply, or its queue was full).
using reply_fn = inplace_function<void(const reply* r), 40>;

/// What a pub/sub connection reports. Owner thread.
class pubsub_handler {
 public:
  virtual void on_message(std::string_view channel, std::string_view payload) = 0;
  /// The server confirmed a SUBSCRIBE of `channel`: messages published
  /// after this point reach on_message.
  virtual void on_subscribed(std::string_view channel) = 0;
  /// The server confirmed an UNSUBSCRIBE of `channel` (one per channel).
  virtual void on_unsubscribed(std::string_view channel) = 0;

 protected:
  ~pubsub_handler() = default;
};

struct connection_options {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
  std::size_t max_pending = 1u << 16;  // commands waiting for replies; past it a command fails at once
  std::string name;  // CLIENT SETNAME at connect (who is who in CLIENT LIST); empty: none
};

/// Round-trip bucket bounds (µs), shared by every connection so the ops
/// endpoint can add them up.
inline constexpr std::array<std::uint64_t, 12> rtt_bounds_us = {100,    250,    500,     1'000,   2'500,   5'000,
                                                               10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};

/// Figures of one connection; written by its owner, read anywhere.
struct connection_stats {
  counter up;          // 1 while connected and ready
  counter connects;    // connections made (the first included)
  counter failures;    // connection attempts that failed or connections lost
  counter commands;    // commands sent
  counter failed;      // commands failed without a reply (down, lost, queue full)
  counter errors;      // error replies
  counter pending;     // commands waiting for their reply now
  counter messages;    // pub/sub messages received
  counter bytes_out;   // bytes written to the server
  counter bytes_in;    // bytes read from it
  bucket_histogram<rtt_bounds_us.size()> rtt_us{rtt_bounds_us};  // queued → reply
};

class connection {
 public:
  /// `pubsub`: the connection carries subscriptions only.
  connection(boost::asio::io_context& io, endpoint ep, connection_options o, bool pubsub);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Connects (and keeps reconnecting until stop()).
  void start();
  /// Closes for good: pending commands fail, no reconnect.
  void stop();
  bool up() const noexcept { return _state == state::up; }
  /// Why the connection last failed ("" before any failure).
  const char* last_error() const noexcept { return _last_error; }
  const endpoint& where() const noexcept { return _ep; }
  const connection_stats& stats() const noexcept { return _stats; }

  /// Called with true when the connection becomes ready, false when it is
  /// lost (after the pending commands failed). Set before start().
  void on_state(std::function<void(bool up)> fn) { _on_state = std::move(fn); }
  void set_pubsub_handler(pubsub_handler* h) noexcept { _pubsub = h; }

  /// Queues a command; `done` (may be empty) gets its reply. When the
  /// connection is down or too many commands wait, `done(nullptr)` runs at
  /// once, inside this call.
  void command(std::span<const std::string_view> args, reply_fn done);
  void command(std::initializer_list<std::string_view> args, reply_fn done) {
    command(std::span<const std::string_view>(args.begin(), args.size()), std::move(done));
  }
  /// Pub/sub connection: (UN)SUBSCRIBE of channels, acknowledged through the
  /// handler. Ignored while down (the owner subscribes again on_state(true)).
  void subscribe(std::span<const std::string> channels, bool on = true);

 private:
  enum class state : std::uint8_t { idle, connecting, handshake, up, stopped };
  struct pending {
    reply_fn done;
    std::int64_t sent_ns;
    bool internal;  // AUTH/SELECT: not the user's
  };
  void connect();
  void on_connected();
  void append(std::span<const std::string_view> args);
  void schedule_flush();
  void flush();
  void read();
  void on_reply(const void* r);
  void fail(const char* what);
  void fail_pending();

  boost::asio::io_context& _io;
  endpoint _ep;
  connection_options _opts;
  const bool _pubsub_mode;
  boost::asio::ip::tcp::socket _sock;
  boost::asio::steady_timer _timer;  // connect timeout and reconnect backoff
  state _state = state::idle;
  std::chrono::milliseconds _backoff;
  std::string _out;     // commands queued this turn
  std::string _flight;  // being written
  bool _writing = false;
  bool _flush_posted = false;
  std::deque<pending> _pending;
  std::unique_ptr<std::array<char, 16384>> _rbuf;
  redisReader* _reader = nullptr;
  pubsub_handler* _pubsub = nullptr;
  std::function<void(bool)> _on_state;
  std::shared_ptr<bool> _alive;  // handlers check it: the connection may be gone when they run
  std::uint32_t _gen = 0;        // bumped per connect: handlers of an older socket do nothing
  const char* _last_error = "";
  connection_stats _stats;
};

}  // namespace sb::redis
