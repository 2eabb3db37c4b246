#pragma once
// Bounded single-producer single-consumer ring for cross-shard messages.
//
// Shape after rigtorp's SPSCQueue: the two indices live on their own cache
// lines, and each side keeps a cached copy of the other side's index so that
// the shared line is only read when the cached copy says "full" or "empty".
// On top of that the ring is batched on both ends, the way the shard mesh
// uses it (Seastar's smp_message_queue batches 16):
//   - the producer stage()s items and publish()es them once per loop turn,
//     so the consumer's cache line is written once per batch, not per item;
//   - the consumer consume()s everything visible and releases the slots with
//     one store.
// bench/ring_bench.cpp measures this against boost::lockfree::spsc_queue in
// the same batched use; bench/RESULTS.md has the figures and the verdict.

#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace sb {

inline constexpr std::size_t cache_line = 64;

/// Bounded SPSC ring of T. One producer thread calls the producer half
/// (try_push, try_stage, publish), one consumer thread calls the consumer half
/// (front, pop, consume). Capacity is rounded up to a power of two. Items that
/// are still in the ring (published or staged) are destroyed with the ring.
template <typename T>
class spsc_ring {
  static_assert(std::is_nothrow_move_constructible_v<T>, "ring items move without throwing");

 public:
  explicit spsc_ring(std::size_t capacity)
      : _mask(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity) - 1),
        _slots(static_cast<T*>(::operator new[]((_mask + 1) * sizeof(T), std::align_val_t{alignof(T)}))) {}

  spsc_ring(const spsc_ring&) = delete;
  spsc_ring& operator=(const spsc_ring&) = delete;

  /// Destroys whatever is left, staged items included. Called when neither
  /// side runs any more.
  ~spsc_ring() {
    for (std::size_t i = _read.load(std::memory_order_relaxed); i != _prod.staged; ++i) {
      std::destroy_at(&_slots[i & _mask]);
    }
    ::operator delete[](_slots, std::align_val_t{alignof(T)});
  }

  std::size_t capacity() const noexcept { return _mask + 1; }

  // ---- producer side -------------------------------------------------------

  /// Producer: constructs an item in the next slot without making it visible
  /// to the consumer; publish() does that. False when the ring is full.
  template <typename... Args>
  [[nodiscard]] bool try_stage(Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args&&...>) {
    const std::size_t w = _prod.staged;
    if (w - _prod.read_cache == capacity()) {
      // acquire: the consumer's release store of _read means it has finished
      // with (moved out of and destroyed) every slot below the new index.
      _prod.read_cache = _read.load(std::memory_order_acquire);
      if (w - _prod.read_cache == capacity()) return false;
    }
    std::construct_at(&_slots[w & _mask], std::forward<Args>(args)...);
    _prod.staged = w + 1;
    return true;
  }

  /// Producer: makes every staged item visible. Returns true when something
  /// was published (the caller may then need to wake the consumer).
  bool publish() noexcept {
    if (_prod.staged == _prod.published) return false;
    _prod.published = _prod.staged;
    // release: the constructions of the staged slots happen-before the
    // consumer's acquire load that observes this index.
    _write.store(_prod.published, std::memory_order_release);
    return true;
  }

  /// Producer: try_stage + publish for unbatched use.
  template <typename... Args>
  [[nodiscard]] bool try_push(Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args&&...>) {
    if (!try_stage(std::forward<Args>(args)...)) return false;
    publish();
    return true;
  }

  /// Producer: items staged but not yet published.
  std::size_t staged() const noexcept { return _prod.staged - _prod.published; }

  // ---- consumer side -------------------------------------------------------

  /// Consumer: the oldest published item, or nullptr when none is visible.
  T* front() noexcept {
    const std::size_t r = _cons.read;
    if (r == _cons.write_cache) {
      // acquire: pairs with publish()'s release, so the slot is constructed.
      _cons.write_cache = _write.load(std::memory_order_acquire);
      if (r == _cons.write_cache) return nullptr;
    }
    return &_slots[r & _mask];
  }

  /// Consumer: destroys the front item and releases its slot. front() must
  /// have returned non-null.
  void pop() noexcept {
    assert(_cons.read != _cons.write_cache);
    std::destroy_at(&_slots[_cons.read & _mask]);
    ++_cons.read;
    // release: our reads of the slot happen-before the producer reuses it.
    _read.store(_cons.read, std::memory_order_release);
  }

  /// Consumer: calls fn(T&&) for up to max visible items, oldest first, and
  /// releases all their slots with one store. Returns how many it consumed.
  template <typename Fn>
  std::size_t consume(Fn&& fn, std::size_t max = SIZE_MAX) {
    // acquire: pairs with publish()'s release.
    _cons.write_cache = _write.load(std::memory_order_acquire);
    std::size_t r = _cons.read;
    std::size_t n = _cons.write_cache - r;
    if (n > max) n = max;
    const std::size_t end = r + n;
    for (; r != end; ++r) {
      T* item = &_slots[r & _mask];
      fn(std::move(*item));
      std::destroy_at(item);
    }
    _cons.read = end;
    // release: every slot below `end` is destroyed before the producer may
    // overwrite it.
    if (n) _read.store(end, std::memory_order_release);
    return n;
  }

  /// Either side: items published and not yet consumed. Exact only on the
  /// consumer; approximate (but never torn) elsewhere, for metrics.
  std::size_t size_approx() const noexcept {
    // relaxed: a figure for metrics and wake-up hints, not a synchronisation.
    const std::size_t w = _write.load(std::memory_order_relaxed);
    const std::size_t r = _read.load(std::memory_order_relaxed);
    return w >= r ? w - r : 0;
  }

 private:
  // Indices grow without wrapping (2^64 items is centuries) and are masked.
  const std::size_t _mask;
  T* const _slots;

  // Written by the consumer, read by the producer when its cache says full.
  alignas(cache_line) std::atomic<std::size_t> _read{0};
  // Written by the producer (publish), read by the consumer when its cache says empty.
  alignas(cache_line) std::atomic<std::size_t> _write{0};

  // Producer-private line.
  struct alignas(cache_line) producer_state {
    std::size_t staged = 0;      // next slot to construct
    std::size_t published = 0;   // last value stored to _write
    std::size_t read_cache = 0;  // last seen _read
  } _prod;

  // Consumer-private line.
  struct alignas(cache_line) consumer_state {
    std::size_t read = 0;         // next slot to consume
    std::size_t write_cache = 0;  // last seen _write
  } _cons;

  static_assert(sizeof(producer_state) == cache_line && sizeof(consumer_state) == cache_line,
                "each side's private state fills exactly one cache line");
};

}  // namespace sb
