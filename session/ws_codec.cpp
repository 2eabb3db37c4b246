#include "session/ws_codec.hpp"

#include <simdjson.h>

#include <algorithm>
#include <bit>

namespace sb::ws {

namespace {

/// Length of the UTF-8 sequence a lead byte starts; 1 for ASCII and for
/// bytes that cannot lead (those are left to the full validator to reject).
inline std::size_t utf8_seq_len(std::uint8_t b) noexcept {
  if (b >= 0xC0 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF7) return 4;
  return 1;
}

/// True when s[0..k) (k < the lead's sequence length) can still become a
/// valid sequence. This is what makes the check fail fast: an overlong lead,
/// a surrogate or a code point past U+10FFFF is decidable from its first two
/// bytes (Unicode table 3-7), so we don't carry it to the next fragment.
bool utf8_prefix_ok(const std::uint8_t* s, std::size_t k) noexcept {
  const std::uint8_t b0 = s[0];
  if (b0 < 0xC2 || b0 > 0xF4) return false;
  if (k >= 2) {
    std::uint8_t lo = 0x80, hi = 0xBF;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
    if (s[1] < lo || s[1] > hi) return false;
  }
  if (k >= 3 && (s[2] < 0x80 || s[2] > 0xBF)) return false;
  return true;
}

/// True when all n bytes are ASCII. Chat messages are mostly short ASCII,
/// and simdjson::validate_utf8 has a fixed cost per call (runtime dispatch,
/// 64-byte blocks): measured 11.8 ns on 16 ASCII bytes and 5.8 ns on 64,
/// against 1.7 and 3.0 ns for this loop (bench/RESULTS.md, issue 3). Past 64
/// bytes simdjson wins, so it gets everything else.
inline bool all_ascii(const std::uint8_t* p, std::size_t n) noexcept {
  std::uint64_t acc = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    acc |= w;
  }
  for (; i < n; ++i) acc |= p[i];
  return (acc & 0x8080808080808080ull) == 0;
}

/// Validates complete UTF-8 (no carry), with the short-ASCII shortcut.
inline bool validate_complete(const std::uint8_t* p, std::size_t n) noexcept {
  if (n <= 64 && all_ascii(p, n)) return true;
  return simdjson::validate_utf8(reinterpret_cast<const char*>(p), n);
}

}  // namespace

bool valid_utf8(std::string_view s) noexcept {
  return validate_complete(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

bool valid_close_code(std::uint16_t code) noexcept {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

bool validate_text_fragment(decoder_state& st, const std::uint8_t* p, std::size_t n, bool last) noexcept {
  // simdjson::validate_utf8 is not incremental, so the sequence split across
  // the fragment boundary is finished here by hand (at most 4 bytes) and the
  // rest goes to simdjson in one call.
  if (st.utf8_carry_len != 0) {
    const std::size_t want = utf8_seq_len(st.utf8_carry[0]);
    const std::size_t need = want - st.utf8_carry_len;
    if (n < need) {
      // Still incomplete: extend the carry, but only if it can still be valid.
      std::memcpy(st.utf8_carry + st.utf8_carry_len, p, n);
      st.utf8_carry_len = static_cast<std::uint8_t>(st.utf8_carry_len + n);
      if (!utf8_prefix_ok(st.utf8_carry, st.utf8_carry_len)) return false;
      return !last;
    }
    char seq[4];
    std::memcpy(seq, st.utf8_carry, st.utf8_carry_len);
    std::memcpy(seq + st.utf8_carry_len, p, need);
    if (!simdjson::validate_utf8(seq, want)) return false;
    st.utf8_carry_len = 0;
    p += need;
    n -= need;
  }
  // Find a trailing incomplete sequence: its lead is among the last 3 bytes.
  std::size_t body = n;
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const std::uint8_t b = p[n - back];
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    if (utf8_seq_len(b) > back) body = n - back;
    break;
  }
  if (!validate_complete(p, body)) return false;
  const std::size_t tail = n - body;
  if (tail != 0) {
    if (last || !utf8_prefix_ok(p + body, tail)) return false;
    std::memcpy(st.utf8_carry, p + body, tail);
    st.utf8_carry_len = static_cast<std::uint8_t>(tail);
  }
  return true;
}

void unmask(std::uint8_t* data, std::size_t n, std::uint32_t key, std::size_t phase) noexcept {
  // Rotate the key so that its first byte in memory is the one for data[0].
  const unsigned shift = static_cast<unsigned>(phase & 3) * 8;
  if constexpr (std::endian::native == std::endian::little) {
    key = std::rotr(key, static_cast<int>(shift));
  } else {
    key = std::rotl(key, static_cast<int>(shift));
  }
  const std::uint64_t k64 = (std::uint64_t{key} << 32) | key;
  std::size_t i = 0;
  // Fixed-size 32-byte blocks: g++ -O2 (very-cheap vectorizer cost model)
  // will not vectorize a loop whose trip count needs an epilogue, but it
  // SLP-vectorizes this straight-line block into two 16-byte XORs. memcpy
  // keeps it free of alignment and aliasing UB; four scalars rather than an
  // array, because with an array g++ 12 also spills each block to the stack.
  for (; i + 32 <= n; i += 32) {
    std::uint8_t* p = data + i;
    std::uint64_t w0, w1, w2, w3;
    std::memcpy(&w0, p, 8);
    std::memcpy(&w1, p + 8, 8);
    std::memcpy(&w2, p + 16, 8);
    std::memcpy(&w3, p + 24, 8);
    w0 ^= k64;
    w1 ^= k64;
    w2 ^= k64;
    w3 ^= k64;
    std::memcpy(p, &w0, 8);
    std::memcpy(p + 8, &w1, 8);
    std::memcpy(p + 16, &w2, 8);
    std::memcpy(p + 24, &w3, 8);
  }
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, data + i, 8);
    w ^= k64;
    std::memcpy(data + i, &w, 8);
  }
  std::uint8_t kb[4];
  std::memcpy(kb, &key, 4);
  for (std::size_t j = 0; i < n; ++i, ++j) data[i] ^= kb[j & 3];
}

std::size_t encode_header(std::uint8_t* out, opcode op, std::uint64_t payload_len, bool fin,
                          bool compressed) noexcept {
  out[0] = static_cast<std::uint8_t>((fin ? 0x80 : 0) | (compressed ? 0x40 : 0) | static_cast<std::uint8_t>(op));
  if (payload_len < 126) {
    out[1] = static_cast<std::uint8_t>(payload_len);
    return 2;
  }
  if (payload_len <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<std::uint8_t>(payload_len >> 8);
    out[3] = static_cast<std::uint8_t>(payload_len);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<std::uint8_t>(payload_len >> (56 - 8 * i));
  return 10;
}

sb::frame_ref make_frame(sb::frame_pool& pool, opcode op, std::string_view payload) {
  sb::frame_ref f = pool.make(max_header_size + payload.size());
  const std::size_t h = encode_header(f.data(), op, payload.size());
  if (!payload.empty()) std::memcpy(f.data() + h, payload.data(), payload.size());
  f.resize(h + payload.size());
  return f;
}

sb::frame_ref make_close_frame(sb::frame_pool& pool, std::uint16_t code, std::string_view reason) {
  // 7.4.1: 1005, 1006 and 1015 are for reporting only and MUST NOT be sent.
  if (code == close_code::no_status || code == close_code::abnormal || code == 1015) {
    return make_frame(pool, opcode::close, {});
  }
  constexpr std::size_t max_reason = 125 - 2;
  std::size_t len = std::min(reason.size(), max_reason);
  if (len < reason.size()) {
    // Back up to a sequence start so the peer's UTF-8 check passes.
    while (len > 0 && (static_cast<std::uint8_t>(reason[len]) & 0xC0) == 0x80) --len;
  }
  char payload[125];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code & 0xFF);
  if (len) std::memcpy(payload + 2, reason.data(), len);
  return make_frame(pool, opcode::close, std::string_view(payload, 2 + len));
}

}  // namespace sb::ws
