#pragma once
// RFC 6455 frame codec, server side: decodes client frames, encodes server
// frames. Pure functions over caller-owned bytes: no I/O, no allocation and
// no exceptions on the decode path.
//
// How a session uses it (DESIGN.md "Memory per connection"): it reads into
// the shard's scratch buffer, calls decode() on [leftover + new bytes], and
// keeps only data[consumed..n) -- an incomplete frame -- in a pooled chunk,
// sized with frame_bytes_needed. Incomplete frames are never unmasked or
// delivered, so re-feeding the same bytes later is always safe; the only
// state that survives between calls is decoder_state (12 bytes), because a
// million of them live in one process.
//
// Threading: everything here runs on the session's owner shard. decoder_state
// is plain data with no locks, on purpose: a session is never touched by
// another thread.
//
// Strictness follows Autobahn's fuzzingclient: masked client frames only, no
// RSV bits (but RSV1 on a data message's first frame once permessage-deflate
// is negotiated: decoder_state::deflate), no reserved opcodes, control frames
// <= 125 bytes and unfragmented, 64-bit lengths with the MSB clear (non-minimal
// length encodings are accepted, as Autobahn does), close codes per 7.4, text
// validated as UTF-8 across fragments and rejected as soon as a complete frame
// makes it undecidable (fail fast at frame granularity).

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "pool/frame_buffer.hpp"

namespace sb::ws {

/// Frame opcodes (RFC 6455 5.2). Values on the wire; 3-7 and 0xB-0xF are
/// reserved and rejected by decode().
enum class opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

/// RFC 6455 7.4.1 close codes we send or check.
namespace close_code {
inline constexpr std::uint16_t normal = 1000, going_away = 1001, protocol_error = 1002, unsupported_data = 1003,
                               no_status = 1005, abnormal = 1006, invalid_payload = 1007, policy_violation = 1008,
                               message_too_big = 1009, internal_error = 1011;
}  // namespace close_code

/// Decoder limits, usually one per shard from config; read-only on the owner
/// shard's thread.
struct decode_limits {
  /// Whole (reassembled) message payload. Values above 4 GiB - 1 act as
  /// 4 GiB - 1 (decoder_state counts in 32 bits to stay small).
  std::uint64_t max_message_size = 65536;
};

/// Per-session decoder state, kept inside the session between reads (owner
/// shard only). Small on purpose: a million sessions per process.
struct decoder_state {
  std::uint32_t message_bytes = 0;  ///< payload bytes so far of the data message in progress
  std::uint8_t message_op = 0;      ///< 0: no message in progress, 1 text, 2 binary
  std::uint8_t utf8_carry_len = 0;  ///< bytes of an incomplete UTF-8 sequence carried to the next fragment
  std::uint8_t utf8_carry[4] = {};  ///< those bytes (at most 3 are used)
  /// permessage-deflate was negotiated: RSV1 may mark a data message's
  /// first frame as compressed (RFC 7692 6).
  bool deflate = false;
  /// The current (or, after its last frame, the latest) data message is
  /// compressed: its payload bytes are deflate data, checked for UTF-8 and
  /// the size limit only once inflated (session/ws_deflate.hpp).
  bool compressed = false;
};
static_assert(sizeof(decoder_state) <= 16, "a million sessions: keep the decoder state small");

/// What one decode() call did; returned to the session on the owner shard.
struct decode_result {
  /// Bytes of complete frames consumed; the caller keeps data[consumed..n).
  /// On error: the start of the offending frame (frames before it were
  /// delivered). When stopped: includes the frame whose handler said stop.
  std::size_t consumed = 0;
  /// 0, or the close code to fail the connection with (1002, 1007, 1009).
  std::uint16_t error = 0;
  /// Short static text for the close reason and a metric label.
  const char* reason = nullptr;
  /// The handler returned false.
  bool stopped = false;
  /// When the tail is an incomplete frame whose header is parsed: the
  /// frame's total size (so the caller can size the leftover chunk); else 0.
  std::size_t frame_bytes_needed = 0;
};

/// What decode() calls for each complete frame, on the owner shard's thread.
/// Spans point into the caller's buffer (unmasked in place) and are valid
/// until the caller reuses that buffer. Returning false stops decoding after
/// that frame. on_data gets each frame of a data message as it arrives
/// (message_op is text or binary also for continuations); on_close gets 1005
/// when the frame had no code. A session should return false from on_close:
/// nothing a client sends after its close frame matters.
template <typename H>
concept frame_handler = requires(H& h, opcode op, std::span<std::uint8_t> p, std::uint16_t code, std::string_view r) {
  { h.on_data(op, p, true, true) } -> std::convertible_to<bool>;
  { h.on_ping(p) } -> std::convertible_to<bool>;
  { h.on_pong(p) } -> std::convertible_to<bool>;
  { h.on_close(code, r) } -> std::convertible_to<bool>;
};

/// Unmasks (or masks: XOR is its own inverse) n bytes in place, any thread.
/// `key` holds the 4 mask bytes as they appear on the wire (memcpy'd);
/// `phase` is the offset of data[0] within the frame payload (0 for whole
/// frames). The main loop works on 32-byte blocks of 64-bit words so that
/// g++ -O2 vectorizes it (SLP) without -O3.
void unmask(std::uint8_t* data, std::size_t n, std::uint32_t key, std::size_t phase = 0) noexcept;

/// Writes a server frame header (never masked) to out, which must have
/// max_header_size bytes; returns the count (2, 4 or 10). `compressed` sets
/// RSV1 (permessage-deflate, on a message's first frame). Any thread.
std::size_t encode_header(std::uint8_t* out, opcode op, std::uint64_t payload_len, bool fin = true,
                          bool compressed = false) noexcept;
inline constexpr std::size_t max_header_size = 10;

/// Builds a complete server frame (header + payload) in one pooled buffer.
/// Owner shard of `pool` only. Allocates only when the pool's free list for
/// that size class is empty.
sb::frame_ref make_frame(sb::frame_pool& pool, opcode op, std::string_view payload);

/// Builds a close frame with code and reason, the reason truncated at a UTF-8
/// boundary to fit the 125-byte control payload. Codes that must never be on
/// the wire (1005, 1006, 1015) produce an empty close payload instead.
/// Owner shard of `pool` only.
sb::frame_ref make_close_frame(sb::frame_pool& pool, std::uint16_t code, std::string_view reason);

/// True when s is valid UTF-8 (simdjson::validate_utf8). Any thread.
bool valid_utf8(std::string_view s) noexcept;

/// True when a close frame may carry `code` (RFC 6455 7.4.1/7.4.2:
/// 1000-1003, 1007-1011, 3000-4999). Any thread.
bool valid_close_code(std::uint16_t code) noexcept;

/// Validates one text fragment (already unmasked) given the incomplete
/// sequence carried in st, and carries the new incomplete tail. Fails as soon
/// as the bytes seen so far cannot start valid UTF-8, and on `last` when a
/// sequence is left incomplete. Owner shard; used by decode().
bool validate_text_fragment(decoder_state& st, const std::uint8_t* p, std::size_t n, bool last) noexcept;

/// The wire size a compressed message may reach under a message size limit
/// (the limit itself is checked on the inflated size). Incompressible data
/// grows when deflated: zlib's stored blocks add 5 bytes per block, and a
/// sender with a small memLevel makes blocks as short as 128 bytes (4%;
/// Python websockets at memLevel 5 adds 0.25%, 170 bytes on 64 KiB of
/// random bytes). Any thread.
inline std::uint64_t compressed_wire_limit(std::uint64_t limit) noexcept { return limit + limit / 16 + 64; }

namespace detail {
inline bool is_reserved(std::uint8_t op) noexcept { return (op >= 3 && op <= 7) || op >= 0xB; }
inline decode_result fail(std::size_t at, std::uint16_t code, const char* why) noexcept {
  decode_result r;
  r.consumed = at;
  r.error = code;
  r.reason = why;
  return r;
}
}  // namespace detail

/// Decodes the complete frames in data[0..n), unmasking them in place and
/// calling h for each. Owner shard only; no allocation, no exceptions.
/// Checks that need only the first two bytes (RSV, opcode, mask, control
/// rules, fragmentation order) and the message size limit (from the header,
/// before any payload is waited for) fail the frame as soon as those bytes
/// are here, so a client cannot make us buffer a frame we will reject.
template <typename Handler>
  requires frame_handler<Handler>
decode_result decode(decoder_state& st, std::uint8_t* data, std::size_t n, const decode_limits& lim, Handler& h) {
  using detail::fail;
  const std::uint64_t limit = lim.max_message_size < UINT32_MAX ? lim.max_message_size : UINT32_MAX;
  decode_result res;
  std::size_t pos = 0;
  while (n - pos >= 2) {
    const std::uint8_t b0 = data[pos], b1 = data[pos + 1];
    const bool fin = (b0 & 0x80) != 0;
    const std::uint8_t op = b0 & 0x0F;
    const std::uint8_t len7 = b1 & 0x7F;
    const bool control = (op & 0x08) != 0;
    const std::uint8_t rsv = b0 & 0x70;
    // RFC 7692 6.1: RSV1 ("compressed") only on the first frame of a data
    // message, and only when the extension was negotiated.
    if (rsv != 0 && (rsv != 0x40 || !st.deflate || control || op == 0)) {
      return fail(pos, close_code::protocol_error, "reserved bits set");
    }
    if (detail::is_reserved(op)) return fail(pos, close_code::protocol_error, "reserved opcode");
    if ((b1 & 0x80) == 0) return fail(pos, close_code::protocol_error, "unmasked frame");
    if (control) {
      if (len7 > 125) return fail(pos, close_code::protocol_error, "control frame too long");
      if (!fin) return fail(pos, close_code::protocol_error, "fragmented control frame");
    } else if (op == 0 && st.message_op == 0) {
      return fail(pos, close_code::protocol_error, "unexpected continuation");
    } else if (op != 0 && st.message_op != 0) {
      return fail(pos, close_code::protocol_error, "expected continuation");
    }

    const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    const std::size_t hdr = 2 + ext + 4;
    if (n - pos < hdr) break;  // header incomplete: frame_bytes_needed stays 0
    std::uint64_t len = len7;
    if (ext == 2) {
      len = (std::uint64_t{data[pos + 2]} << 8) | data[pos + 3];
    } else if (ext == 8) {
      len = 0;
      for (std::size_t i = 0; i < 8; ++i) len = (len << 8) | data[pos + 2 + i];
      // 5.2: "the most significant bit MUST be 0".
      if (len >> 63) return fail(pos, close_code::protocol_error, "invalid payload length");
    }
    if (!control) {
      // A compressed message is held to the limit once inflated; on the
      // wire it gets the slack deflate's framing may add.
      const bool deflated = op == 0 ? st.compressed : rsv != 0;
      const std::uint64_t cap = deflated ? std::min<std::uint64_t>(compressed_wire_limit(limit), UINT32_MAX) : limit;
      const std::uint64_t prior = op == 0 ? st.message_bytes : 0;
      if (len > cap - prior) return fail(pos, close_code::message_too_big, "message too big");
    }
    if (len > n - pos - hdr) {
      // Payload incomplete. len is bounded by the limit (data) or 125
      // (control) here, so the sum cannot overflow.
      res.frame_bytes_needed = hdr + static_cast<std::size_t>(len);
      break;
    }

    std::uint32_t key;
    std::memcpy(&key, data + pos + hdr - 4, 4);
    std::uint8_t* payload = data + pos + hdr;
    const std::size_t plen = static_cast<std::size_t>(len);
    unmask(payload, plen, key);
    const std::span<std::uint8_t> body(payload, plen);
    const std::size_t frame_end = pos + hdr + plen;

    bool go = true;
    if (!control) {
      if (op != 0) {
        st.message_op = op;
        st.message_bytes = 0;
        st.utf8_carry_len = 0;
        st.compressed = rsv != 0;
      }
      st.message_bytes += static_cast<std::uint32_t>(plen);
      if (st.message_op == static_cast<std::uint8_t>(opcode::text) && !st.compressed &&
          !validate_text_fragment(st, payload, plen, fin)) {
        return fail(pos, close_code::invalid_payload, "invalid utf-8");
      }
      const opcode mop = static_cast<opcode>(st.message_op);
      if (fin) {
        st.message_op = 0;
        st.message_bytes = 0;
      }
      go = h.on_data(mop, body, op != 0, fin);
    } else if (op == static_cast<std::uint8_t>(opcode::ping)) {
      go = h.on_ping(body);
    } else if (op == static_cast<std::uint8_t>(opcode::pong)) {
      go = h.on_pong(body);
    } else {  // close
      if (plen == 0) {
        go = h.on_close(close_code::no_status, std::string_view{});
      } else {
        if (plen == 1) return fail(pos, close_code::protocol_error, "invalid close payload");
        const auto code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
        if (!valid_close_code(code)) return fail(pos, close_code::protocol_error, "invalid close code");
        const std::string_view why(reinterpret_cast<const char*>(payload + 2), plen - 2);
        if (!valid_utf8(why)) return fail(pos, close_code::invalid_payload, "invalid utf-8 in close reason");
        go = h.on_close(code, why);
      }
    }
    pos = frame_end;
    if (!go) {
      res.stopped = true;
      break;
    }
  }
  res.consumed = pos;
  return res;
}

}  // namespace sb::ws
