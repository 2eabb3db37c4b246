#pragma once
// Pooled, reference-counted byte buffers for encoded WebSocket frames.
//
// A publication is encoded once per shard (WebSocket header + Centrifuge
// JSON) and every local subscriber queues a reference to the same bytes
// (uWebSockets' TopicTree, Beast chat-multi's shared_ptr<string const>).
//
// The refcount is a plain uint32_t, not an atomic: a buffer and all its
// references belong to ONE shard (a frame going to another shard is
// re-encoded or copied there), so no two threads ever touch the count. An
// atomic increment/decrement per recipient per message is exactly the churn
// STYLE.md rules out (a lock-prefixed RMW costs ~20 cycles uncontended and
// far more when the line bounces).
//
// Memory: size classes of 256 B, 2 KiB and 16 KiB payload keep a small frame
// from pinning a big block; a released buffer goes to its class's free list
// unless the pool already caches max_cached_bytes, in which case it goes back
// to the allocator (so an idle shard does not sit on its burst peak).
// Frames above 16 KiB are allocated to size and freed when the count drops to
// zero. One allocation per buffer: header and bytes are contiguous.

#include <array>
#include <cassert>
#include <cstddef>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <utility>

#include "pool/counter.hpp"

namespace sb {

class frame_pool;

/// The clock of frame stamps: steady (monotonic, system-wide), in ns.
inline std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace detail {
/// Header in front of a frame's bytes. Internal to frame_pool/frame_ref.
struct frame_block {
  frame_pool* pool;
  union {
    frame_block* next_free;  // while on a free list
    std::int64_t stamp_ns;   // while in use: when the content entered the gateway (0: not stamped)
  };
  std::uint32_t refs;
  std::uint32_t size;
  std::uint32_t capacity;
  std::uint8_t size_class;  // index into frame_pool's classes, or large_class
  unsigned char* bytes() noexcept { return reinterpret_cast<unsigned char*>(this + 1); }
};
}  // namespace detail

/// A reference to a pooled frame buffer. Copying adds a reference, destroying
/// drops one; the last one returns the buffer to its pool. Owner shard's
/// thread only (the count is not atomic, see above). Mutators (resize,
/// append, reserve) are only for the single owner that is encoding the frame.
class frame_ref {
 public:
  frame_ref() noexcept = default;
  frame_ref(const frame_ref& o) noexcept : _b(o._b) {
    if (_b) ++_b->refs;
  }
  frame_ref(frame_ref&& o) noexcept : _b(std::exchange(o._b, nullptr)) {}
  frame_ref& operator=(const frame_ref& o) noexcept {
    frame_ref(o).swap(*this);
    return *this;
  }
  frame_ref& operator=(frame_ref&& o) noexcept {
    frame_ref(std::move(o)).swap(*this);
    return *this;
  }
  ~frame_ref() { reset(); }

  /// Drops this reference (the buffer is recycled when it was the last).
  void reset() noexcept {
    if (_b && --_b->refs == 0) recycle(_b);
    _b = nullptr;
  }
  void swap(frame_ref& o) noexcept { std::swap(_b, o._b); }

  explicit operator bool() const noexcept { return _b != nullptr; }
  unsigned char* data() noexcept { return _b->bytes(); }
  const unsigned char* data() const noexcept { return _b->bytes(); }
  std::size_t size() const noexcept { return _b->size; }
  std::size_t capacity() const noexcept { return _b->capacity; }
  /// The bytes as text, for tests and logs.
  /// When what this frame carries entered the gateway (steady clock, ns;
  /// 0: not stamped). The session records publish→write latency from it.
  void set_stamp(std::int64_t ns) noexcept { _b->stamp_ns = ns; }
  std::int64_t stamp() const noexcept { return _b->stamp_ns; }

  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(_b->bytes()), _b->size};
  }
  /// How many references share the buffer (1 = this one only).
  std::uint32_t use_count() const noexcept { return _b ? _b->refs : 0; }
  bool unique() const noexcept { return use_count() == 1; }

  /// Single owner: sets the size; n must not exceed capacity() (bytes past
  /// the old size are left uninitialised).
  void resize(std::size_t n) noexcept {
    assert(unique() && "frame_ref: resize of a shared buffer");
    assert(n <= _b->capacity && "frame_ref: resize past capacity");
    _b->size = static_cast<std::uint32_t>(n);
  }
  /// Single owner: makes capacity() >= n, moving the bytes to a bigger
  /// buffer of the same pool when needed (cold path; the encoder usually
  /// asks the pool for the right size up front).
  void reserve(std::size_t n);
  /// Single owner: appends n bytes, growing as reserve() does.
  void append(const void* p, std::size_t n);
  void append(std::string_view s) { append(s.data(), s.size()); }

 private:
  friend class frame_pool;
  explicit frame_ref(detail::frame_block* b) noexcept : _b(b) {}
  static void recycle(detail::frame_block* b) noexcept;

  detail::frame_block* _b = nullptr;
};

/// Per-shard source of frame buffers. Owner shard's thread only, except the
/// counters, which any thread may read (relaxed, for the ops endpoint). Must
/// outlive every frame_ref it handed out (checked builds abort otherwise).
class frame_pool {
 public:
  /// Payload sizes of the cached classes; anything larger is exact-size.
  static constexpr std::array<std::uint32_t, 3> class_sizes{256, 2048, 16384};
  static constexpr std::uint8_t large_class = 0xFF;

  /// max_cached_bytes bounds the memory kept on the free lists (all classes
  /// together, counting header + payload).
  explicit frame_pool(std::size_t max_cached_bytes = std::size_t{4} << 20) noexcept
      : _max_cached(max_cached_bytes) {}
  frame_pool(const frame_pool&) = delete;
  frame_pool& operator=(const frame_pool&) = delete;
  ~frame_pool();

  /// Owner thread. An empty buffer (size 0) with capacity() >= capacity, the
  /// smallest class that fits. Throws std::bad_alloc only when the allocator
  /// does (then the process is out of memory anyway).
  frame_ref make(std::size_t capacity);
  /// Owner thread. A buffer holding a copy of [p, p+n).
  frame_ref make_copy(const void* p, std::size_t n);
  frame_ref make_copy(std::string_view s) { return make_copy(s.data(), s.size()); }

  /// Owner thread. Frees cached buffers until at most keep_bytes stay cached
  /// (call on an idle shard, or 0 at shutdown).
  void trim(std::size_t keep_bytes = 0) noexcept;
  /// Owner thread. Changes the cache bound (trimming down to it).
  void set_max_cached_bytes(std::size_t n) noexcept {
    _max_cached = n;
    trim(n);
  }
  std::size_t max_cached_bytes() const noexcept { return _max_cached; }

  /// Any thread: buffers with at least one reference.
  std::uint64_t live_buffers() const noexcept { return _live.get(); }
  /// Any thread: bytes (header + capacity) of live buffers.
  std::uint64_t bytes_in_use() const noexcept { return _in_use.get(); }
  /// Any thread: bytes (header + capacity) on the free lists.
  std::uint64_t bytes_cached() const noexcept { return _cached.get(); }
  /// Owner thread: buffers on the free lists.
  std::size_t cached_buffers() const noexcept;

  /// The payload capacity a request for n bytes gets.
  static std::size_t capacity_for(std::size_t n) noexcept {
    for (std::uint32_t c : class_sizes) {
      if (n <= c) return c;
    }
    return n;
  }

 private:
  friend class frame_ref;
  void recycle(detail::frame_block* b) noexcept;
  static std::size_t block_bytes(const detail::frame_block* b) noexcept {
    return sizeof(detail::frame_block) + b->capacity;
  }
  static void free_block(detail::frame_block* b) noexcept;

  std::array<detail::frame_block*, class_sizes.size()> _free{};
  std::size_t _max_cached;
  counter _live;
  counter _in_use;
  counter _cached;
};

inline void frame_ref::recycle(detail::frame_block* b) noexcept { b->pool->recycle(b); }

}  // namespace sb
