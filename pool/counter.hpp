#pragma once
// Counters owned by one shard and read by the ops endpoint on another thread.
//
// The owner is the only writer, so an increment is a relaxed load + relaxed
// store (no lock prefix, no contention); a reader on another thread gets a
// value that is never torn and at most a moment old. That is the "relaxed
// reads, never a lock on the data path" rule of the ops endpoint.

#include <atomic>
#include <cstdint>

namespace sb {

/// Single-writer counter. Owner thread: add/inc/set. Any thread: get.
class counter {
 public:
  void inc() noexcept { add(1); }
  void add(std::uint64_t n) noexcept {
    // relaxed: single writer; readers only need an untorn recent value.
    _v.store(_v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::uint64_t n) noexcept {
    // relaxed: as add().
    _v.store(_v.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void dec() noexcept { sub(1); }
  void set(std::uint64_t n) noexcept { _v.store(n, std::memory_order_relaxed); }  // relaxed: as add()
  std::uint64_t get() const noexcept { return _v.load(std::memory_order_relaxed); }  // relaxed: a figure

 private:
  std::atomic<std::uint64_t> _v{0};
};

}  // namespace sb
