// libFuzzer target for session/ws_deflate: the shard's inflater on client
// bytes, and the deflater/inflater round trip.
//
// Input layout: byte 0 picks the message size limit (small ones reach the
// too_big path with short inputs) and the compression level; the rest is,
// first, a compressed client message (as sent, the 00 00 FF FF tail
// removed) and, second, a payload the deflater compresses.
//
// Checks: inflate() never returns more than the limit, reports too_big only
// when the message would pass it, and leaves the inflater usable (the next
// message inflates as if it were the first: no context takeover). What the
// deflater makes, compressed or not, inflates (or reads) back to the
// payload and is never larger than the plain frame.
#include "session/ws_deflate.hpp"

#include "tests/fuzz/fuzz_check.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace {

using namespace sb::ws;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t limit = (data[0] & 0x0F) == 0x0F ? 65536 : static_cast<std::size_t>(data[0] & 0x0F) * 97;
  static sb::frame_pool pool;
  static deflate_stats stats;
  static inflater in(stats);
  static deflate_options opts[3] = {{0, 1}, {0, 6}, {0, 9}};
  static deflater def[3] = {deflater(opts[0], stats), deflater(opts[1], stats), deflater(opts[2], stats)};
  const std::span<const std::uint8_t> body(data + 1, size - 1);

  // Client bytes, as they come.
  // The inflater is kept across inputs (as a shard's is across messages):
  // its buffer may only grow to this input's limit + 1 (or its first 16 KiB).
  const std::size_t had = in.buffer_bytes();
  std::span<const std::uint8_t> out;
  const inflate_status st = in.inflate(body, limit, out);
  if (st == inflate_status::ok) FUZZ_CHECK(out.size() <= limit);
  FUZZ_CHECK(in.buffer_bytes() <= std::max({had, limit + 1, std::size_t{16 * 1024}}));

  // The round trip: our frame for these bytes reads back as them.
  const std::string_view payload(reinterpret_cast<const char*>(body.data()), body.size());
  deflater& d = def[(data[0] >> 4) % 3];
  const sb::frame_ref f = d.frame(pool, opcode::binary, payload);
  const std::uint8_t* p = f.data();
  FUZZ_CHECK((p[0] & 0x0F) == 2 && (p[0] & 0x80) != 0 && (p[0] & 0x30) == 0);
  std::size_t len = p[1] & 0x7F, at = 2;
  if (len == 126) {
    len = (std::size_t{p[2]} << 8) | p[3];
    at = 4;
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
    at = 10;
  }
  FUZZ_CHECK(at + len == f.size());
  FUZZ_CHECK(len <= payload.size());
  if (p[0] & 0x40) {
    FUZZ_CHECK(len < payload.size());
    std::span<const std::uint8_t> back;
    FUZZ_CHECK(in.inflate({p + at, len}, payload.size(), back) == inflate_status::ok);
    FUZZ_CHECK(back.size() == payload.size() && std::memcmp(back.data(), payload.data(), payload.size()) == 0);
    // One byte less of room is too_big, never a wrong message.
    if (!payload.empty()) FUZZ_CHECK(in.inflate({p + at, len}, payload.size() - 1, back) == inflate_status::too_big);
  } else {
    FUZZ_CHECK(len == payload.size() && std::memcmp(p + at, payload.data(), len) == 0);
  }
  return 0;
}
