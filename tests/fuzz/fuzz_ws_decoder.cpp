// libFuzzer target for session/ws_codec decode().
//
// Input layout: byte 0 picks the chunk size of the re-feed loop (1..64, or
// "all at once" for 0; its top bit: permessage-deflate negotiated, so RSV1
// may mark compressed messages), byte 1 the message size limit and after
// how many events the handler says stop; the rest is the client byte stream.
//
// The stream is decoded twice: in one call, and in chunks with the tail
// re-fed the way a session does (keep data[consumed..n), append the next
// read). Both must produce the same events and the same final error -- a
// partial frame must never change what the decoder does. The handler checks
// the invariants: payload spans inside the buffer, data frames ordered
// first..last, whole text messages and close reasons valid UTF-8, close
// codes valid, frame_bytes_needed larger than what is buffered.
#include "session/ws_codec.hpp"

#include "tests/fuzz/fuzz_check.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace sb::ws;

struct checker {
  const std::uint8_t* buf_begin = nullptr;
  const std::uint8_t* buf_end = nullptr;
  std::uint64_t limit = 0;
  std::size_t stop_after = SIZE_MAX;
  std::vector<std::uint64_t> events;  // a fingerprint per event, compared between runs
  std::string text;                   // the text message being reassembled
  bool in_message = false;
  opcode msg_op = opcode::text;
  std::uint64_t msg_bytes = 0;
  const decoder_state* st = nullptr;

  void in_buffer(std::span<std::uint8_t> p) {
    FUZZ_CHECK(p.size() == 0 || (p.data() >= buf_begin && p.data() + p.size() <= buf_end));
  }
  static std::uint64_t fp(std::uint64_t kind, std::span<const std::uint8_t> p) {
    std::uint64_t h = 1469598103934665603ull ^ kind;
    for (std::uint8_t b : p) h = (h ^ b) * 1099511628211ull;
    return h ^ (p.size() << 8);
  }
  bool next() { return events.size() != stop_after; }

  bool on_data(opcode op, std::span<std::uint8_t> p, bool first, bool last) {
    in_buffer(p);
    FUZZ_CHECK(op == opcode::text || op == opcode::binary);
    FUZZ_CHECK(first != in_message);
    if (first) {
      msg_op = op;
      msg_bytes = 0;
      text.clear();
    }
    FUZZ_CHECK(op == msg_op);
    FUZZ_CHECK(!st->compressed || st->deflate);
    msg_bytes += p.size();
    // A compressed message is deflate data: its size is held to the limit
    // once inflated (by the session), its text checked then.
    FUZZ_CHECK(msg_bytes <= (st->compressed ? compressed_wire_limit(limit) : limit));
    if (op == opcode::text) text.append(reinterpret_cast<const char*>(p.data()), p.size());
    if (last && op == opcode::text && !st->compressed) FUZZ_CHECK(valid_utf8(text));
    in_message = !last;
    events.push_back(fp(static_cast<std::uint64_t>(op) * 4 + first * 2 + last, p));
    return next();
  }
  bool on_ping(std::span<std::uint8_t> p) {
    in_buffer(p);
    FUZZ_CHECK(p.size() <= 125);
    events.push_back(fp(100, p));
    return next();
  }
  bool on_pong(std::span<std::uint8_t> p) {
    in_buffer(p);
    FUZZ_CHECK(p.size() <= 125);
    events.push_back(fp(101, p));
    return next();
  }
  bool on_close(std::uint16_t code, std::string_view r) {
    FUZZ_CHECK(code == close_code::no_status || valid_close_code(code));
    FUZZ_CHECK(r.size() <= 123);
    FUZZ_CHECK(valid_utf8(r));
    events.push_back(fp(200 + code, {reinterpret_cast<const std::uint8_t*>(r.data()), r.size()}));
    return next();
  }
};

struct outcome {
  std::vector<std::uint64_t> events;
  std::uint16_t error = 0;
  bool stopped = false;
};

outcome run(const std::uint8_t* data, std::size_t size, std::size_t chunk, std::uint64_t limit,
            std::size_t stop_after, bool deflate) {
  decoder_state st;
  st.deflate = deflate;
  checker h;
  h.st = &st;
  h.limit = limit;
  h.stop_after = stop_after;
  decode_limits lim{limit};
  std::vector<std::uint8_t> pending;
  outcome out;
  std::size_t fed = 0;
  while (fed < size) {
    const std::size_t take = std::min(chunk, size - fed);
    pending.insert(pending.end(), data + fed, data + fed + take);
    fed += take;
    h.buf_begin = pending.data();
    h.buf_end = pending.data() + pending.size();
    const std::vector<std::uint8_t> before = pending;
    const decode_result r = decode(st, pending.data(), pending.size(), lim, h);
    FUZZ_CHECK(r.consumed <= pending.size());
    FUZZ_CHECK(st.utf8_carry_len <= 3);
    FUZZ_CHECK(st.message_op <= 2);
    if (r.error) {
      FUZZ_CHECK(r.reason != nullptr);
      FUZZ_CHECK(r.error == close_code::protocol_error || r.error == close_code::invalid_payload ||
                 r.error == close_code::message_too_big);
      out.error = r.error;
      break;
    }
    if (r.stopped) {
      out.stopped = true;
      break;
    }
    // The unconsumed tail must be untouched (still masked) for the re-feed.
    FUZZ_CHECK(std::memcmp(pending.data() + r.consumed, before.data() + r.consumed, pending.size() - r.consumed) ==
               0);
    if (r.frame_bytes_needed) FUZZ_CHECK(r.frame_bytes_needed > pending.size() - r.consumed);
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(r.consumed));
  }
  out.events = std::move(h.events);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const bool deflate = (data[0] & 0x80) != 0;
  const std::size_t chunk = (data[0] & 0x7F) == 0 ? SIZE_MAX : (data[0] % 64) + 1;
  // Small limits reach the 1009 paths with short inputs; 0xF0+ means the default.
  const std::uint64_t limit = (data[1] & 0xF0) == 0xF0 ? 65536 : (data[1] & 0x0F) * 37;
  const std::size_t stop_after = (data[1] >> 4) == 0xE ? 3 : SIZE_MAX;
  data += 2;
  size -= 2;
  const outcome whole = run(data, size, SIZE_MAX, limit, stop_after, deflate);
  const outcome parts = run(data, size, chunk, limit, stop_after, deflate);
  FUZZ_CHECK(whole.events == parts.events);
  FUZZ_CHECK(whole.error == parts.error);
  FUZZ_CHECK(whole.stopped == parts.stopped);
  return 0;
}
