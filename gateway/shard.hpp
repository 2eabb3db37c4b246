#pragma once
// A shard: one thread, one io_context (concurrency hint 1), its own
// SO_REUSEPORT listener and its own file-descriptor table.
//
// Nothing a shard owns is touched by another thread: there are no strands
// and no mutexes on its data path, on purpose. Other threads reach it only
// through the mesh (routing/mesh.hpp) or, for rare control actions from the
// main thread, asio::post to its io_context. Its counters are single-writer
// relaxed atomics that the ops endpoint may read from the main thread.

#include "gateway/config.hpp"
#include "pool/counter.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <future>
#include <thread>
#include <vector>

namespace sb {

class mesh;
struct session_options;
struct session_stats;
struct protocol_options;
class centrifuge_handler;
struct engine_setup;
struct reloadable;
namespace tls {
class context;
}
namespace routing {
class router;
class redis_engine;
}

/// What every shard shares, read-only (or, for `routers`, written once per
/// shard before it reports itself started). Owned by the wiring function.
struct shard_services {
  mesh* router_mesh = nullptr;
  const session_options* sessions = nullptr;
  const protocol_options* protocol = nullptr;
  std::vector<routing::router*>* routers = nullptr;  // index = shard id
  std::vector<centrifuge_handler*>* handlers = nullptr;  // index = shard id; null in echo mode
  const engine_setup* engines = nullptr;  // which engine each shard makes
  std::shared_ptr<const tls::context> tls;  // the client listener's TLS at start; null: plain ws
};

/// Per-shard figures; written by the shard, read by anyone.
struct shard_stats {
  counter accepted;            // accepted since start
  counter closed;              // closed since start
  counter rejected_over_limit; // accepted and closed at once: max_connections reached
  counter accept_errors;       // accept() failures (EMFILE, ENFILE, ENOBUFS...)
  counter bytes_in;            // bytes read from clients
  counter fd_capacity;         // fds this shard's table can hold for clients
  counter config_generation;   // of the config this shard runs with (gateway/reload.hpp)
};

/// One shard. Constructed, started, stopped and joined by the main thread;
/// everything else runs on the shard's own thread.
class shard {
 public:
  /// Main thread, before any shard thread starts: creates the io_context and
  /// forces its epoll reactor (epoll fd, eventfd, timerfd) into existence so
  /// those fds are in the table every shard copies when it unshares.
  shard(unsigned id, const config& cfg);
  ~shard();

  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  /// Main thread: starts the thread, which pins itself, unshares its fd
  /// table and runs the loop. Returns once the thread is running; throws if
  /// the thread could not set itself up.
  void start(const shard_services& svc, std::uint64_t fd_capacity);

  /// Main thread: binds this shard's listener (SO_REUSEPORT) and starts
  /// accepting; returns the bound port. Throws std::system_error on failure.
  std::uint16_t listen(const host_port& where, std::uint16_t port);

  /// Main thread: stops accepting, closes every connection, lets the loop end.
  void stop();
  /// Any thread: graceful drain (gateway/app.cpp) — stop accepting, then
  /// close the sessions spread over `period` (session_context::drain).
  void drain(std::chrono::milliseconds period);

  /// Any thread: runs with the reloaded settings from its next event on
  /// (namespaces, token keys, limits, admission); nothing is dropped.
  void reload(std::shared_ptr<const reloadable> r);

  /// Main thread: waits for the thread to end.
  void join();

  unsigned id() const noexcept { return _id; }
  boost::asio::io_context& context() noexcept { return _ctx; }
  const shard_stats& stats() const noexcept { return _stats; }
  /// The shard's session figures (relaxed counters); null before the shard
  /// runs and after it ended. Any thread, while the shard runs.
  const session_stats* sessions() const noexcept { return _sessions.load(std::memory_order_acquire); }
  /// Likewise for the router and (centrifuge mode) the protocol handler.
  const routing::router* router() const noexcept { return _router.load(std::memory_order_acquire); }
  const centrifuge_handler* protocol() const noexcept { return _protocol.load(std::memory_order_acquire); }
  /// The Redis engine (its connections' figures); null with the memory engine.
  const routing::redis_engine* redis() const noexcept { return _redis.load(std::memory_order_acquire); }

  struct local;  // the state that lives on the shard thread

 private:
  void run(const shard_services& svc, std::uint64_t fd_capacity, std::promise<void>& started);

  const unsigned _id;
  const config& _cfg;
  boost::asio::io_context _ctx;
  std::thread _thread;
  local* _local = nullptr;  // owned by the thread's stack; touched only on the shard thread
  shard_stats _stats;
  // Published by the shard thread before it accepts; read by the ops
  // endpoint. The pointee outlives every read: the ops server stops before
  // the shards do.
  // acquire/release: the counters' construction is visible to the reader.
  std::atomic<const session_stats*> _sessions{nullptr};
  std::atomic<const routing::router*> _router{nullptr};
  std::atomic<const centrifuge_handler*> _protocol{nullptr};
  std::atomic<const routing::redis_engine*> _redis{nullptr};
};

}  // namespace sb
