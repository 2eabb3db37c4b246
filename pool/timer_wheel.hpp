#pragma once
// Hashed timer wheel for per-session deadlines (handshake, ping, pong, idle).
//
// Why a wheel and not a steady_timer per session: a steady_timer is 120 bytes
// plus heap per connection and every arm/cancel is an O(log n) heap
// operation in asio's timer queue; a million sessions blow the 1 KiB budget.
// Here the deadline is an intrusive timer_node (40 bytes) embedded in the
// session, schedule/cancel are O(1) list splices with no allocation, and the
// shard drives the whole wheel from ONE steady_timer.
//
// Design: one level of `slots` buckets (power of two) of `tick` each. A node
// stores its absolute expiry tick and sits in bucket `expiry & (slots-1)`.
// advance() visits each bucket once per tick and fires the nodes whose expiry
// has come; a node more than one revolution away simply stays in its bucket
// and is skipped on earlier visits (the "hashed" wheel of Varghese & Lauck,
// as in Netty's HashedWheelTimer). We chose this over a second level because
// our deadlines (handshake ~10 s, ping ~25 s, idle ~minutes) nearly all fit
// in one revolution (4096 x 100 ms = 410 s), so the skipped-node cost is
// rare, and a single level has no cascading pass that would touch 100k nodes
// in one tick.
//
// Precision: a timer fires at the first advance() whose time is at least
// `delay` after the last advance() before schedule() (so never early relative
// to the wheel's clock), and at most one tick later.
//
// Buckets are singly-headed lists whose nodes point back at the pointer that
// points at them (Linux hlist), so a bucket costs 8 bytes and a node can
// unlink itself without knowing its bucket: that is what lets the node's
// destructor cancel it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace sb {

class timer_wheel;

/// An intrusive deadline, embedded in the object it times (a session).
/// Recover the owner in the callback by deriving from timer_node or, for a
/// standard-layout owner, with offsetof. Owner shard's thread only. Not
/// copyable or movable (the wheel points at it); destroying an armed node
/// cancels it.
class timer_node {
 public:
  /// Called by timer_wheel::advance() when the deadline passes; the node is
  /// already disarmed, and the callback may re-arm it, arm or cancel any other
  /// node, or destroy this node's owner.
  using callback = void (*)(timer_node&);

  explicit timer_node(callback cb = nullptr) noexcept : _cb(cb) {}
  timer_node(const timer_node&) = delete;
  timer_node& operator=(const timer_node&) = delete;
  ~timer_node();

  /// Owner thread. Sets what runs on expiry (may change while armed).
  void set_callback(callback cb) noexcept { _cb = cb; }
  /// Owner thread. Whether the node is scheduled on a wheel.
  bool armed() const noexcept { return _pprev != nullptr; }
  /// Owner thread. The expiry tick (meaningful while armed).
  std::uint64_t expiry_tick() const noexcept { return _expiry; }

 private:
  friend class timer_wheel;
  void unlink() noexcept {
    *_pprev = _next;
    if (_next) _next->_pprev = _pprev;
    _next = nullptr;
    _pprev = nullptr;
  }

  timer_node* _next = nullptr;
  timer_node** _pprev = nullptr;  // the pointer that points at us; null = not armed
  timer_wheel* _wheel = nullptr;
  std::uint64_t _expiry = 0;
  callback _cb;
};

/// The per-shard wheel. Owner shard's thread only, with no locks: nothing on
/// a shard is touched by another thread. No asio dependency; the shard calls
/// advance() from its one steady_timer at next_deadline().
class timer_wheel {
 public:
  using clock = std::chrono::steady_clock;

  /// tick: the granularity (e.g. 100 ms); slots: bucket count, rounded up to
  /// a power of two. start: time zero of the wheel (tests pass a fixed one).
  timer_wheel(std::chrono::milliseconds tick, std::size_t slots, clock::time_point start = clock::now());
  timer_wheel(const timer_wheel&) = delete;
  timer_wheel& operator=(const timer_wheel&) = delete;
  /// Disarms every node still scheduled (their owners may outlive the wheel).
  ~timer_wheel();

  /// Owner thread. Arms n to fire `delay` after the wheel's current time
  /// (the last advance()); re-arms it if already armed, here or on another
  /// wheel of the same thread. O(1), no allocation.
  void schedule(timer_node& n, std::chrono::milliseconds delay) noexcept;
  /// Owner thread. Disarms n; no-op when not armed. O(1).
  void cancel(timer_node& n) noexcept;
  /// Owner thread. Whether n is armed on this wheel.
  bool armed(const timer_node& n) const noexcept { return n.armed() && n._wheel == this; }

  /// Owner thread. Moves the wheel's clock to `now` and fires every node
  /// that is due, in expiry-tick order (catching up after a stall longer than
  /// a revolution fires all due nodes in bucket order). Returns how many
  /// fired. A time earlier than the wheel's clock is ignored. Not reentrant:
  /// callbacks must not call advance().
  std::size_t advance(clock::time_point now) noexcept;

  /// Owner thread. Armed nodes.
  std::size_t size() const noexcept { return _size; }
  bool empty() const noexcept { return _size == 0; }
  /// The tick length.
  std::chrono::milliseconds tick() const noexcept { return _tick; }
  std::size_t slots() const noexcept { return _mask + 1; }
  /// Owner thread. The wheel's clock (the time of the last advance()).
  clock::time_point now() const noexcept { return _start + std::chrono::nanoseconds(_now_ns); }
  /// Owner thread. When advance() should next be called: the start of the
  /// first tick with a non-empty bucket (a lower bound: that bucket may only
  /// hold later-round nodes, then the shard wakes early, harmlessly), or
  /// time_point::max() when nothing is armed. O(slots) worst case; call once
  /// per advance(), not per schedule().
  clock::time_point next_deadline() const noexcept;

 private:
  std::size_t fire_list(timer_node*& list) noexcept;
  // Moves the nodes of bucket b with expiry <= limit onto *tail's list.
  static timer_node** collect(timer_node*& bucket, std::uint64_t limit, timer_node** tail) noexcept;

  const std::chrono::milliseconds _tick;
  const std::int64_t _tick_ns;
  const std::size_t _mask;
  const clock::time_point _start;
  std::unique_ptr<timer_node*[]> _buckets;
  std::int64_t _now_ns = 0;      // the wheel's clock, since _start
  std::uint64_t _current = 0;    // last tick processed (= _now_ns / _tick_ns)
  std::size_t _size = 0;
  bool _in_advance = false;
};

}  // namespace sb
