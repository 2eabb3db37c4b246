#pragma once
// Per-shard object pool: slabs of fixed-size slots plus an intrusive free list.
//
// Why not new/delete (jemalloc): sessions and connection records are created
// and destroyed at connection rate on one shard; a pool keeps them in a few
// contiguous slabs (fewer TLB misses when a broadcast walks them), never takes
// an allocator lock, and gives a debug build a place to catch double release
// and use after release. bench/pool_bench.cpp has the figures.
//
// Memory: a slab is allocated when the free list is empty and is kept until
// the pool dies (a shard's session count swings back up; handing slabs back
// would only buy fragmentation). A free slot's storage holds the free-list
// pointer, so in release a slot is exactly sizeof(T) rounded up to a pointer.
//
// Checks (debug builds, or SB_POOL_CHECKS defined): each slot carries a state
// tag and a free slot is filled with a poison pattern. release() aborts on a
// slot that is not live (double release) or not from this pool; acquire()
// aborts when a free slot's poison was overwritten (a write after release).
// All translation units of one program must agree on NDEBUG/SB_POOL_CHECKS,
// since the slot layout depends on it.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#if !defined(NDEBUG) || defined(SB_POOL_CHECKS)
#define SB_POOL_CHECKS_ENABLED 1
#else
#define SB_POOL_CHECKS_ENABLED 0
#endif

namespace sb {

namespace detail {
/// Prints why the pool gave up and aborts: a pool invariant broken is memory
/// corruption in the making, so there is nothing sensible to continue with.
[[noreturn]] inline void pool_fail(const char* what, const void* p) noexcept {
  std::fprintf(stderr, "sb::object_pool: %s (slot %p)\n", what, p);
  std::abort();
}
}  // namespace detail

/// Pool of T for one owner thread (a shard). acquire() constructs, release()
/// destroys; pointers stay valid until released. Not thread-safe by design:
/// everything on a shard is touched only by its thread, so there is no lock.
template <typename T, std::size_t SlabObjects = 128>
class object_pool {
  static_assert(SlabObjects >= 1, "a slab holds at least one object");

 public:
  /// True when this build carries the double-release / use-after-release checks.
  static constexpr bool checks = SB_POOL_CHECKS_ENABLED != 0;

  object_pool() = default;
  object_pool(const object_pool&) = delete;
  object_pool& operator=(const object_pool&) = delete;

  /// Owner thread. Frees every slab. Objects still live are a bug (their
  /// destructors would never run): checked builds abort, release builds free
  /// the memory without destroying them.
  ~object_pool() {
#if SB_POOL_CHECKS_ENABLED
    if (_live != 0) {
      std::fprintf(stderr, "sb::object_pool: destroyed with %zu live objects\n", _live);
      std::abort();
    }
#endif
    for (slot* s : _slabs) ::operator delete(static_cast<void*>(s), std::align_val_t{alignof(slot)});
  }

  /// Owner thread. Constructs a T from args in a free slot (allocating a slab
  /// when none is free). If T's constructor throws the slot goes back.
  template <typename... A>
  [[nodiscard]] T* acquire(A&&... args) {
    if (_free == nullptr) grow();
    slot* s = _free;
#if SB_POOL_CHECKS_ENABLED
    if (s->state != state_free) detail::pool_fail("free list holds a slot that is not free (corrupted)", s);
    check_poison(s);
#endif
    _free = s->u.next;
    T* obj;
    try {
      obj = ::new (static_cast<void*>(s->u.storage)) T(std::forward<A>(args)...);
    } catch (...) {
      put_back(s);
      throw;
    }
#if SB_POOL_CHECKS_ENABLED
    s->state = state_live;
#endif
    ++_live;
    return obj;
  }

  /// Owner thread. Destroys *p and returns its slot; p must come from
  /// acquire() of this pool and not be released yet. nullptr is a no-op.
  void release(T* p) noexcept {
    if (p == nullptr) return;
    // The object sits at offset 0 of its slot (first member of a union that
    // is the slot's first member), so the slot's address is the object's.
    slot* s = reinterpret_cast<slot*>(p);
#if SB_POOL_CHECKS_ENABLED
    if (!owns(s)) detail::pool_fail("release of a pointer that is not from this pool", p);
    if (s->state == state_free) detail::pool_fail("double release", p);
    if (s->state != state_live) detail::pool_fail("release of a corrupted slot", p);
#endif
    std::destroy_at(std::launder(p));
    --_live;
    put_back(s);
  }

  /// Owner thread (or tests). Objects acquired and not released.
  std::size_t live() const noexcept { return _live; }
  /// Owner thread. Slots allocated (live + free).
  std::size_t capacity() const noexcept { return _slabs.size() * SlabObjects; }
  /// Owner thread. Bytes held in slabs (what the pool costs the process).
  std::size_t bytes_reserved() const noexcept { return _slabs.size() * slab_bytes; }
  /// Bytes one object costs in a slab (sizeof(T) padded; plus the tag in checked builds).
  static constexpr std::size_t slot_size() noexcept { return sizeof(slot); }

 private:
  struct slot;
  union slot_body {
    slot_body() noexcept {}
    ~slot_body() {}
    // Free slot: the next free slot. Live slot: the object.
    slot* next;
    alignas(T) unsigned char storage[sizeof(T)];
  };
  struct slot {
    slot_body u;
#if SB_POOL_CHECKS_ENABLED
    std::uint32_t state;
#endif
  };
  static_assert(offsetof(slot, u) == 0, "object at offset 0 of its slot");

  static constexpr std::size_t slab_bytes = sizeof(slot) * SlabObjects;
  static constexpr std::uint32_t state_free = 0xF7EEF7EEu;
  static constexpr std::uint32_t state_live = 0x11FE11FEu;
  static constexpr unsigned char poison = 0xDD;

  // Cold: at most once per SlabObjects acquisitions. Slots are threaded so the
  // lowest address comes out first (sequential use of a fresh slab).
  void grow() {
    void* mem = ::operator new(slab_bytes, std::align_val_t{alignof(slot)});
    slot* slab = static_cast<slot*>(mem);
    _slabs.reserve(_slabs.size() + 1);  // may throw: before we own anything
    for (std::size_t i = SlabObjects; i-- > 0;) {
      ::new (static_cast<void*>(&slab[i])) slot;
      put_back(&slab[i]);
    }
    _slabs.push_back(slab);
  }

  void put_back(slot* s) noexcept {
#if SB_POOL_CHECKS_ENABLED
    std::memset(s->u.storage, poison, sizeof(s->u.storage));
    s->state = state_free;
#endif
    s->u.next = _free;
    _free = s;
  }

#if SB_POOL_CHECKS_ENABLED
  // Everything past the free-list pointer must still be poison.
  static void check_poison(const slot* s) noexcept {
    for (std::size_t i = sizeof(slot*); i < sizeof(s->u.storage); ++i) {
      if (s->u.storage[i] != poison) detail::pool_fail("free slot was written to (use after release)", s);
    }
  }
  bool owns(const slot* s) const noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(s);
    for (const slot* slab : _slabs) {
      const auto b = reinterpret_cast<std::uintptr_t>(slab);
      if (a >= b && a < b + slab_bytes) return (a - b) % sizeof(slot) == 0;
    }
    return false;
  }
#endif

  slot* _free = nullptr;
  std::size_t _live = 0;
  std::vector<slot*> _slabs;
};

}  // namespace sb
