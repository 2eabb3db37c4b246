#pragma once
// A move-only, type-erased callable with inline storage: the type of the
// cross-shard mesh's messages (sb::task, pool/task.hpp) and of the answers
// that routing's engine gives back (routing/engine.hpp). std::function needs
// copyable targets and allocates above ~16 bytes; these callables carry
// move-only payloads (frame references, unique_ptrs) and must not allocate
// on the steady path, so one whose captures fit in `InlineSize` bytes never
// touches the heap. Larger callables still work (one allocation) so that
// rare control messages need no special casing.

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace sb {

template <typename Signature, std::size_t InlineSize>
class inplace_function;

/// Move-only callable R(Args...); any thread may construct, move, call or
/// destroy it, but one instance is used by one thread at a time.
template <typename R, typename... Args, std::size_t InlineSize>
class inplace_function<R(Args...), InlineSize> {
 public:
  static constexpr std::size_t inline_size = InlineSize;

  inplace_function() noexcept = default;

  template <typename Fn, typename = std::enable_if_t<!std::is_same_v<std::decay_t<Fn>, inplace_function> &&
                                                     std::is_invocable_r_v<R, std::decay_t<Fn>&, Args...>>>
  inplace_function(Fn&& fn) {  // NOLINT(google-explicit-constructor): made from a lambda at every call site
    using F = std::decay_t<Fn>;
    if constexpr (fits<F>) {
      ::new (static_cast<void*>(_buf)) F(std::forward<Fn>(fn));
      _ops = &inline_ops<F>;
    } else {
      *reinterpret_cast<F**>(_buf) = new F(std::forward<Fn>(fn));
      _ops = &heap_ops<F>;
    }
  }

  inplace_function(inplace_function&& other) noexcept : _ops(other._ops) {
    if (_ops) {
      _ops->move(other._buf, _buf);
      other._ops = nullptr;
    }
  }

  inplace_function& operator=(inplace_function&& other) noexcept {
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

  inplace_function(const inplace_function&) = delete;
  inplace_function& operator=(const inplace_function&) = delete;
  ~inplace_function() { reset(); }

  explicit operator bool() const noexcept { return _ops != nullptr; }

  /// Runs the callable (it must be set). It stays valid: it may be run
  /// again or destroyed.
  R operator()(Args... args) { return _ops->call(_buf, std::forward<Args>(args)...); }

  void reset() noexcept {
    if (_ops) {
      _ops->destroy(_buf);
      _ops = nullptr;
    }
  }

 private:
  struct ops {
    R (*call)(void*, Args&&...);
    void (*move)(void* from, void* to) noexcept;
    void (*destroy)(void*) noexcept;
  };

  template <typename F>
  static constexpr bool fits = sizeof(F) <= InlineSize && alignof(F) <= alignof(std::max_align_t) &&
                               std::is_nothrow_move_constructible_v<F>;

  template <typename F>
  static constexpr ops inline_ops{
      [](void* p, Args&&... args) -> R { return (*std::launder(static_cast<F*>(p)))(std::forward<Args>(args)...); },
      [](void* from, void* to) noexcept {
        F* f = std::launder(static_cast<F*>(from));
        ::new (to) F(std::move(*f));
        f->~F();
      },
      [](void* p) noexcept { std::launder(static_cast<F*>(p))->~F(); },
  };

  template <typename F>
  static constexpr ops heap_ops{
      [](void* p, Args&&... args) -> R { return (**static_cast<F**>(p))(std::forward<Args>(args)...); },
      [](void* from, void* to) noexcept { *static_cast<F**>(to) = *static_cast<F**>(from); },
      [](void* p) noexcept { delete *static_cast<F**>(p); },
  };

  alignas(std::max_align_t) unsigned char _buf[InlineSize];
  const ops* _ops = nullptr;
};

}  // namespace sb
