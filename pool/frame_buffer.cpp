#include "pool/frame_buffer.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace sb {

using detail::frame_block;

frame_pool::~frame_pool() {
  // A frame_ref outliving its pool would later write into freed memory; the
  // shard tears down sessions (and their queues) before its pools.
  assert(_live.get() == 0 && "frame_pool destroyed while frame_refs are alive");
#ifdef SB_POOL_CHECKS
  if (_live.get() != 0) {
    std::fprintf(stderr, "sb::frame_pool: destroyed with %llu live buffers\n",
                 static_cast<unsigned long long>(_live.get()));
    std::abort();
  }
#endif
  trim(0);
}

frame_ref frame_pool::make(std::size_t capacity) {
  std::uint8_t cls = large_class;
  for (std::uint8_t i = 0; i < class_sizes.size(); ++i) {
    if (capacity <= class_sizes[i]) {
      cls = i;
      break;
    }
  }
  frame_block* b;
  if (cls != large_class && _free[cls] != nullptr) {
    // Steady path: a cached buffer of the right class, no allocation.
    b = _free[cls];
    _free[cls] = b->next_free;
    _cached.sub(block_bytes(b));
  } else {
    if (capacity > UINT32_MAX - sizeof(frame_block)) throw std::bad_alloc();
    const std::uint32_t cap = cls == large_class ? static_cast<std::uint32_t>(capacity) : class_sizes[cls];
    b = static_cast<frame_block*>(::operator new(sizeof(frame_block) + cap));
    b->pool = this;
    b->capacity = cap;
    b->size_class = cls;
  }
  b->stamp_ns = 0;  // in use from here: the union's stamp, not next_free
  b->refs = 1;
  b->size = 0;
  _live.inc();
  _in_use.add(block_bytes(b));
  return frame_ref(b);
}

frame_ref frame_pool::make_copy(const void* p, std::size_t n) {
  frame_ref f = make(n);
  if (n) std::memcpy(f.data(), p, n);
  f.resize(n);
  return f;
}

void frame_pool::recycle(frame_block* b) noexcept {
  const std::size_t bytes = block_bytes(b);
  _live.dec();
  _in_use.sub(bytes);
  if (b->size_class == large_class || _cached.get() + bytes > _max_cached) {
    free_block(b);
    return;
  }
  b->next_free = _free[b->size_class];
  _free[b->size_class] = b;
  _cached.add(bytes);
}

void frame_pool::trim(std::size_t keep_bytes) noexcept {
  // Largest class first: the fewest frees give back the most memory.
  for (std::size_t i = _free.size(); i-- > 0 && _cached.get() > keep_bytes;) {
    while (_free[i] != nullptr && _cached.get() > keep_bytes) {
      frame_block* b = _free[i];
      _free[i] = b->next_free;
      _cached.sub(block_bytes(b));
      free_block(b);
    }
  }
}

std::size_t frame_pool::cached_buffers() const noexcept {
  std::size_t n = 0;
  for (const frame_block* b : _free) {
    for (; b != nullptr; b = b->next_free) ++n;
  }
  return n;
}

void frame_pool::free_block(frame_block* b) noexcept { ::operator delete(static_cast<void*>(b)); }

void frame_ref::reserve(std::size_t n) {
  assert(unique() && "frame_ref: reserve on a shared buffer");
  if (n <= _b->capacity) return;
  // Grow geometrically so a sequence of appends stays amortised O(1).
  const std::size_t want = n < 2 * std::size_t{_b->capacity} ? 2 * std::size_t{_b->capacity} : n;
  frame_ref bigger = _b->pool->make(want);
  std::memcpy(bigger.data(), data(), _b->size);
  bigger._b->size = _b->size;
  swap(bigger);
}

void frame_ref::append(const void* p, std::size_t n) {
  assert(unique() && "frame_ref: append to a shared buffer");
  reserve(std::size_t{_b->size} + n);
  if (n) std::memcpy(_b->bytes() + _b->size, p, n);
  _b->size += static_cast<std::uint32_t>(n);
}

}  // namespace sb
