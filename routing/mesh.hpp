#pragma once
// The cross-shard mesh: one bounded SPSC ring per ordered (source,
// destination) pair, carrying small move-only tasks.
//
// Sources and destinations are the shards plus the main thread (which runs
// the server API and ops endpoint): the main thread pushes publications and
// API commands without a lock, and shards answer it the same way.
//
//   send()   stages a task in the (source, destination) ring and, once per
//            loop turn, schedules flush() on the source's own io_context.
//   flush()  publishes every ring the source staged into (one release store
//            per ring per turn) and wakes each destination that may sleep.
//   drain()  runs on the destination: takes a batch from every incoming ring.
//
// Wake-ups: a destination has one `wake_pending` flag. A producer that
// published posts a drain to the destination only when it flips the flag
// from false to true, so a destination that is already scheduled to drain
// (or draining) costs the producer one atomic exchange and no syscall; Asio
// itself only writes the eventfd when the destination thread is blocked in
// epoll. A full ring is never grown: the task waits in the source's bounded
// overflow queue (counted) and is retried shortly (200 µs) or on the
// source's next send, whichever comes first; beyond the overflow
// limit send() refuses it (counted) and the caller decides.

#include "pool/counter.hpp"
#include "pool/spsc_ring.hpp"
#include "pool/task.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <vector>

namespace sb {

inline constexpr unsigned not_a_shard = std::numeric_limits<unsigned>::max();

/// The shard id of the calling thread, or not_a_shard (main thread, tests).
unsigned this_shard_id() noexcept;

/// Called once at the start of a shard thread.
void set_this_shard_id(unsigned id) noexcept;

/// Figures for one source; written by the source thread, read anywhere.
struct alignas(cache_line) mesh_source_stats {
  counter sent;           // tasks accepted by send()
  counter deferred;       // tasks that found their ring full and waited in overflow
  counter shed;           // tasks refused because the overflow was at its limit
  counter flushes;        // flush() runs that published something
};

/// Figures for one destination; written by the destination thread.
struct alignas(cache_line) mesh_dest_stats {
  counter received;  // tasks run
  counter drains;    // drain() runs
};

/// The ring mesh. Built on the main thread before shards start (after the
/// io_contexts exist, see DESIGN.md on fd tables); destroyed after they end.
class mesh {
 public:
  /// shard_ctxs[i] is shard i's io_context; main_ctx is the extra source's.
  mesh(std::vector<boost::asio::io_context*> shard_ctxs, boost::asio::io_context* main_ctx,
       std::uint32_t ring_capacity, std::uint32_t overflow_limit);
  ~mesh();

  mesh(const mesh&) = delete;
  mesh& operator=(const mesh&) = delete;

  unsigned shards() const noexcept { return _shards; }
  /// The source index of the main thread.
  unsigned main_source() const noexcept { return _shards; }
  /// The destination index of the main thread (answers to the server API).
  unsigned main_dest() const noexcept { return _shards; }

  /// Source thread only: queues `t` to run on shard `to`. False when the
  /// task was shed (ring full and overflow at its limit); `t` is then dropped.
  [[nodiscard]] bool send(unsigned from, unsigned to, task t);

  /// Calling shard (or main thread) → `to` (a shard or main_dest()). See send().
  [[nodiscard]] bool invoke_on(unsigned to, task t);

  /// Source thread, at its shutdown: no more retries for rings that stay
  /// full, and what waits in its overflow is dropped. A destination that
  /// has stopped (the main thread once a drain ends) would otherwise keep
  /// the retry timer, and so the source's io_context, alive for ever.
  void stop_source(unsigned from);

  /// Figures, any thread.
  const mesh_source_stats& source_stats(unsigned src) const { return _src[src].stats; }
  const mesh_dest_stats& dest_stats(unsigned dst) const { return _dst[dst].stats; }
  /// Items published and not yet consumed in (src, dst); any thread, approximate.
  std::size_t ring_depth(unsigned src, unsigned dst) const { return ring(src, dst).size_approx(); }
  /// Tasks waiting in src's overflow for dst; src thread only (exact) or a figure elsewhere.
  std::size_t overflow_depth(unsigned src) const { return _src[src].overflow_total.get(); }

 private:
  struct source {
    boost::asio::io_context* ctx = nullptr;
    std::unique_ptr<boost::asio::steady_timer> retry_timer;  // for rings that stay full
    bool flush_scheduled = false;
    bool retry_armed = false;
    bool stopped = false;                    // stop_source(): no retries
    std::vector<std::deque<task>> overflow;  // per destination; empty in the steady state
    std::vector<unsigned> touched;           // destinations staged into this turn
    std::vector<bool> is_touched;
    counter overflow_total;
    mesh_source_stats stats;
  };
  struct alignas(cache_line) dest {
    boost::asio::io_context* ctx = nullptr;
    std::atomic<bool> wake_pending{false};
    mesh_dest_stats stats;
  };

  spsc_ring<task>& ring(unsigned src, unsigned dst) { return *_rings[src * _dests + dst]; }
  const spsc_ring<task>& ring(unsigned src, unsigned dst) const { return *_rings[src * _dests + dst]; }
  void flush(unsigned from);
  void wake(unsigned to);
  void drain(unsigned to);

  const unsigned _shards;
  const unsigned _sources;
  const unsigned _dests;
  const std::uint32_t _overflow_limit;
  static constexpr std::size_t drain_batch = 256;
  // A ring still full after a flush means its destination is behind: wait a
  // moment instead of re-posting every turn (which would spin the source).
  static constexpr std::chrono::microseconds retry_delay{200};  // per ring per drain: keeps I/O fair under a flood
  std::vector<std::unique_ptr<spsc_ring<task>>> _rings;
  std::unique_ptr<source[]> _src;
  std::unique_ptr<dest[]> _dst;
};

}  // namespace sb
