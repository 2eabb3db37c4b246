#pragma once
// A move-only, type-erased `void()` callable with inline storage, the item
// type of the cross-shard mesh. std::function needs copyable targets and
// allocates above ~16 bytes; cross-shard messages carry move-only payloads
// (frame references, unique_ptrs) and must not allocate on the steady path,
// so a message whose captures fit in `inline_size` bytes never touches the
// heap. Larger callables still work (one allocation) so that rare control
// messages need no special casing.

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace sb {

/// Move-only `void()` callable; any thread may construct, move, call or
/// destroy it, but one instance is used by one thread at a time.
class task {
 public:
  static constexpr std::size_t inline_size = 56;

  task() noexcept = default;

  template <typename Fn, typename = std::enable_if_t<!std::is_same_v<std::decay_t<Fn>, task>>>
  task(Fn&& fn) {  // NOLINT(google-explicit-constructor): a task is made from a lambda at every call site
    using F = std::decay_t<Fn>;
    if constexpr (fits<F>) {
      ::new (static_cast<void*>(_buf)) F(std::forward<Fn>(fn));
      _ops = &inline_ops<F>;
    } else {
      *reinterpret_cast<F**>(_buf) = new F(std::forward<Fn>(fn));
      _ops = &heap_ops<F>;
    }
  }

  task(task&& other) noexcept : _ops(other._ops) {
    if (_ops) {
      _ops->move(other._buf, _buf);
      other._ops = nullptr;
    }
  }

  task& operator=(task&& other) noexcept {
    if (this != &other) {
      reset();
      _ops = other._ops;
      if (_ops) {
        _ops->move(other._buf, _buf);
        other._ops = nullptr;
      }
    }
    return *this;
  }

  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() { reset(); }

  explicit operator bool() const noexcept { return _ops != nullptr; }

  /// Runs the callable. It stays valid (it may be run again or destroyed).
  void operator()() { _ops->call(_buf); }

  void reset() noexcept {
    if (_ops) {
      _ops->destroy(_buf);
      _ops = nullptr;
    }
  }

 private:
  struct ops {
    void (*call)(void*);
    void (*move)(void* from, void* to) noexcept;
    void (*destroy)(void*) noexcept;
  };

  template <typename F>
  static constexpr bool fits = sizeof(F) <= inline_size && alignof(F) <= alignof(std::max_align_t) &&
                               std::is_nothrow_move_constructible_v<F>;

  template <typename F>
  static constexpr ops inline_ops{
      [](void* p) { (*std::launder(static_cast<F*>(p)))(); },
      [](void* from, void* to) noexcept {
        F* f = std::launder(static_cast<F*>(from));
        ::new (to) F(std::move(*f));
        f->~F();
      },
      [](void* p) noexcept { std::launder(static_cast<F*>(p))->~F(); },
  };

  template <typename F>
  static constexpr ops heap_ops{
      [](void* p) { (**static_cast<F**>(p))(); },
      [](void* from, void* to) noexcept { *static_cast<F**>(to) = *static_cast<F**>(from); },
      [](void* p) noexcept { delete *static_cast<F**>(p); },
  };

  alignas(std::max_align_t) unsigned char _buf[inline_size];
  const ops* _ops = nullptr;
};

static_assert(sizeof(task) == 64, "a mesh message fills one cache line");

}  // namespace sb
