#pragma once
// An immutable string of 32 bytes that keeps up to 31 characters inline.
//
// Why not std::string: libstdc++'s std::string is also 32 bytes but keeps
// only 15 characters inline, and the names a gateway stores once per channel
// per shard ("personal:#u1234567", "dialogs:#1001,1002") are mostly 16-31
// characters long: each would cost a second, 32-byte heap block. Two such
// records per personal channel (the subscriber shard's and the home shard's)
// at a million sessions are ~64 MB (bench/RESULTS.md, "Idle memory").
//
// Longer strings go to one exact-size heap block. No mutation after
// construction (assign a new one); moves steal the heap block.
//
// Threading: plain value type; the owner's thread.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sb {

class compact_string {
 public:
  static constexpr std::size_t inline_capacity = 31;

  compact_string() noexcept { _raw[tag_at] = 0; }
  explicit compact_string(std::string_view s) { init(s); }
  compact_string(const compact_string& o) { init(o.view()); }
  compact_string(compact_string&& o) noexcept { steal(o); }
  compact_string& operator=(const compact_string& o) {
    if (this != &o) {
      compact_string copy(o);
      *this = std::move(copy);
    }
    return *this;
  }
  compact_string& operator=(compact_string&& o) noexcept {
    if (this != &o) {
      release();
      steal(o);
    }
    return *this;
  }
  ~compact_string() { release(); }

  std::string_view view() const noexcept {
    return is_heap() ? std::string_view(heap_ptr(), heap_len()) : std::string_view(_raw, tag());
  }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: a name is read as a view everywhere
  std::size_t size() const noexcept { return is_heap() ? heap_len() : tag(); }
  bool empty() const noexcept { return size() == 0; }

  friend bool operator==(const compact_string& a, std::string_view b) noexcept { return a.view() == b; }

 private:
  // Bytes 0-30: the characters, or (heap) the pointer at 0 and the length
  // at 8; byte 31: the inline length, or heap_tag.
  static constexpr std::size_t tag_at = 31;
  static constexpr std::uint8_t heap_tag = 0xff;
  std::uint8_t tag() const noexcept { return static_cast<std::uint8_t>(_raw[tag_at]); }
  bool is_heap() const noexcept { return tag() == heap_tag; }
  const char* heap_ptr() const noexcept {
    const char* p;
    std::memcpy(&p, _raw, sizeof(p));
    return p;
  }
  std::size_t heap_len() const noexcept {
    std::size_t n;
    std::memcpy(&n, _raw + 8, sizeof(n));
    return n;
  }

  void init(std::string_view s) {
    if (s.size() <= inline_capacity) {
      std::memcpy(_raw, s.data(), s.size());
      _raw[tag_at] = static_cast<char>(s.size());
    } else {
      char* p = new char[s.size()];
      std::memcpy(p, s.data(), s.size());
      std::size_t n = s.size();
      std::memcpy(_raw, &p, sizeof(p));
      std::memcpy(_raw + 8, &n, sizeof(n));
      _raw[tag_at] = static_cast<char>(heap_tag);
    }
  }
  void steal(compact_string& o) noexcept {
    std::memcpy(_raw, o._raw, sizeof(_raw));
    o._raw[tag_at] = 0;
  }
  void release() noexcept {
    if (is_heap()) delete[] heap_ptr();
    _raw[tag_at] = 0;
  }

  alignas(8) char _raw[32];
};

static_assert(sizeof(compact_string) == 32);

}  // namespace sb
