#pragma once
// Protocol Buffers wire format, the little of it the Centrifuge protocol
// needs (https://protobuf.dev/programming-guides/encoding/): varints,
// length-delimited fields, and skipping the fields a reader does not know.
// Hand-written rather than libprotobuf's generated classes: the protocol's
// messages are read into the same views the JSON format fills (no message
// objects, no allocation per command) and written straight into the
// frame's string (bench/RESULTS.md "Protobuf" has the comparison).
//
// Pure functions over caller-owned bytes; any thread.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sb::pb {

enum class wire : std::uint8_t { varint = 0, fixed64 = 1, bytes = 2, group_start = 3, group_end = 4, fixed32 = 5 };

// ---- writing --------------------------------------------------------------

inline void put_varint(std::string& out, std::uint64_t v) {
  char buf[10];
  std::size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}
inline std::size_t varint_size(std::uint64_t v) noexcept {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
inline void put_tag(std::string& out, std::uint32_t field, wire w) {
  put_varint(out, (std::uint64_t{field} << 3) | static_cast<std::uint8_t>(w));
}
/// Scalars and strings, omitted at their default (proto3).
inline void put_uint(std::string& out, std::uint32_t field, std::uint64_t v) {
  if (v == 0) return;
  put_tag(out, field, wire::varint);
  put_varint(out, v);
}
inline void put_bool(std::string& out, std::uint32_t field, bool v) {
  if (!v) return;
  put_tag(out, field, wire::varint);
  out.push_back('\1');
}
inline void put_bytes(std::string& out, std::uint32_t field, std::string_view v) {
  if (v.empty()) return;
  put_tag(out, field, wire::bytes);
  put_varint(out, v.size());
  out.append(v);
}

/// A length-delimited part being written: a sub-message (with its field
/// tag) or, with field 0, a top-level message with only its length in front
/// (varint-delimited, as Centrifuge frames replies). The length is written
/// when it ends: one byte is reserved, and the body moves when its length
/// needs more than one.
class nested {
 public:
  nested(std::string& out, std::uint32_t field) : _out(out) {
    if (field) put_tag(out, field, wire::bytes);
    _at = out.size();
    out.push_back('\0');
  }
  ~nested() {
    const std::size_t len = _out.size() - _at - 1;
    if (len < 0x80) {
      _out[_at] = static_cast<char>(len);
      return;
    }
    std::string prefix;
    put_varint(prefix, len);
    _out.replace(_at, 1, prefix);
  }
  nested(const nested&) = delete;
  nested& operator=(const nested&) = delete;
  std::string& out() noexcept { return _out; }

 private:
  std::string& _out;
  std::size_t _at;
};

// ---- reading --------------------------------------------------------------

/// Reads fields from a message's bytes. Every read checks the bounds; a
/// failed read sets `bad` and reads nothing more.
class reader {
 public:
  explicit reader(std::string_view bytes) noexcept : _p(bytes.data()), _end(bytes.data() + bytes.size()) {}

  bool done() const noexcept { return bad || _p == _end; }
  bool bad = false;

  /// The next field's number and wire type; false at the end or on bad bytes.
  bool next(std::uint32_t& field, wire& w) noexcept {
    if (done()) return false;
    std::uint64_t key;
    if (!varint(key) || (key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) return fail();
    field = static_cast<std::uint32_t>(key >> 3);
    w = static_cast<wire>(key & 7);
    return true;
  }
  bool varint(std::uint64_t& v) noexcept {
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (_p == _end) return fail();
      const auto b = static_cast<std::uint8_t>(*_p++);
      if (shift == 63 && b > 1) return fail();  // more than 64 bits
      v |= std::uint64_t{b & 0x7Fu} << shift;
      if (b < 0x80) return true;
    }
    return fail();
  }
  bool bytes(std::string_view& v) noexcept {
    std::uint64_t n;
    if (!varint(n)) return false;
    if (n > static_cast<std::uint64_t>(_end - _p)) return fail();
    v = std::string_view(_p, static_cast<std::size_t>(n));
    _p += n;
    return true;
  }
  /// Skips a field of an unknown number (proto3 keeps going); groups, long
  /// deprecated, are refused.
  bool skip(wire w) noexcept {
    std::uint64_t v;
    std::string_view s;
    switch (w) {
      case wire::varint: return varint(v);
      case wire::bytes: return bytes(s);
      case wire::fixed64: return advance(8);
      case wire::fixed32: return advance(4);
      default: return fail();
    }
  }

 private:
  bool fail() noexcept {
    bad = true;
    return false;
  }
  bool advance(std::size_t n) noexcept {
    if (static_cast<std::size_t>(_end - _p) < n) return fail();
    _p += n;
    return true;
  }
  const char* _p;
  const char* _end;
};

}  // namespace sb::pb
