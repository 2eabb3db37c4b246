#include "session/ws_deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace sb::ws {

namespace {

// RFC 7692 7.2.1: a message's compressed bytes end with an empty stored
// block, whose last four bytes the sender removes and the receiver adds back.
constexpr std::uint8_t deflate_tail[4] = {0x00, 0x00, 0xFF, 0xFF};

// Raw deflate (no zlib header), a 32 KiB window: what a peer that did not
// ask for server_max_window_bits can take (http_upgrade.cpp declines offers
// that ask for less). memLevel 8 is zlib's default.
constexpr int window_bits = 15;
constexpr int mem_level = 8;

frame_ref plain(opcode op, std::string_view payload, frame_ref f) {
  const std::size_t h = encode_header(f.data(), op, payload.size());
  if (!payload.empty()) std::memcpy(f.data() + h, payload.data(), payload.size());
  f.resize(h + payload.size());
  return f;
}

}  // namespace

deflater::~deflater() {
  if (_z) deflateEnd(_z);
  delete _z;
}

frame_ref deflater::frame(frame_pool& pool, opcode op, std::string_view payload) {
  // One buffer for the plain frame plus the 4-byte tail deflate writes
  // before it is dropped: the compressed frame is only used when smaller,
  // and falling back costs no second allocation.
  frame_ref f = pool.make(max_header_size + payload.size() + sizeof(deflate_tail));
  if (payload.size() < _opts.min_size || payload.size() < 8) return plain(op, payload, std::move(f));
  if (!_z) {
    auto z = std::make_unique<z_stream_s>();
    if (deflateInit2(z.get(), _opts.level, Z_DEFLATED, -window_bits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::bad_alloc();
    }
    _z = z.release();
  } else {
    // No context takeover: every message starts from an empty window.
    deflateReset(_z);
  }
  z_stream& z = *_z;
  std::uint8_t* body = f.data() + max_header_size;
  // Room for strictly fewer bytes than the payload plus the 4-byte tail
  // that is dropped: output that does not fit would not be smaller.
  const std::size_t room = payload.size() + sizeof(deflate_tail) - 1;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(payload.data()));
  z.avail_in = static_cast<uInt>(payload.size());
  z.next_out = body;
  z.avail_out = static_cast<uInt>(room);
  // Z_SYNC_FLUSH ends the output with the empty stored block (00 00 FF FF).
  const int rc = ::deflate(&z, Z_SYNC_FLUSH);
  const std::size_t produced = room - z.avail_out;
  if (rc != Z_OK || z.avail_in != 0 || z.avail_out == 0 || produced < sizeof(deflate_tail) ||
      std::memcmp(body + produced - sizeof(deflate_tail), deflate_tail, sizeof(deflate_tail)) != 0) {
    // Incompressible: it did not fit in fewer bytes than the payload.
    _stats.skipped.inc();
    return plain(op, payload, std::move(f));
  }
  const std::size_t clen = produced - sizeof(deflate_tail);
  std::uint8_t hdr[max_header_size];
  const std::size_t h = encode_header(hdr, op, clen, true, true);
  // The header is as long as the compressed length needs (often shorter
  // than the plain one's): move the body up behind it.
  std::memmove(f.data() + h, body, clen);
  std::memcpy(f.data(), hdr, h);
  f.resize(h + clen);
  _stats.messages.inc();
  _stats.bytes_in.add(payload.size());
  _stats.bytes_out.add(clen);
  return f;
}

inflater::~inflater() {
  if (_z) inflateEnd(_z);
  delete _z;
}

inflate_status inflater::inflate(std::span<const std::uint8_t> in, std::size_t limit,
                                 std::span<const std::uint8_t>& out) {
  if (!_z) {
    auto z = std::make_unique<z_stream_s>();
    // Window 15 inflates anything a client may send (its window is at most
    // 15 bits whatever it negotiated).
    if (inflateInit2(z.get(), -window_bits) != Z_OK) throw std::bad_alloc();
    _z = z.release();
  } else {
    inflateReset(_z);
  }
  z_stream& z = *_z;
  // The output may pass the limit by one byte: that byte is how a message
  // over the limit is told from one exactly at it, without inflating more.
  const std::size_t cap = limit + 1;
  // reserve() first: resize() alone may allocate twice what was asked.
  auto grow = [this](std::size_t n) {
    _out.reserve(n);
    _out.resize(n);
  };
  if (_out.size() < std::min<std::size_t>(cap, 16 * 1024)) grow(std::min<std::size_t>(cap, 16 * 1024));
  std::size_t produced = 0;
  // Feeds one input; true when the stream ended there (a final block, which
  // RFC 7692 7.2.3.4 allows: anything after it is not part of the message).
  auto feed = [&](const std::uint8_t* p, std::size_t n, inflate_status& st) {
    z.next_in = const_cast<Bytef*>(p);
    z.avail_in = static_cast<uInt>(n);
    for (;;) {
      if (produced == _out.size()) {
        if (_out.size() >= cap) return st = inflate_status::too_big, true;  // more than the limit allows
        grow(std::min(cap, _out.size() * 2));
      }
      z.next_out = _out.data() + produced;
      z.avail_out = static_cast<uInt>(_out.size() - produced);
      const int rc = ::inflate(&z, Z_SYNC_FLUSH);
      produced = _out.size() - z.avail_out;
      if (produced > limit) return st = inflate_status::too_big, true;
      if (rc == Z_STREAM_END) return true;
      if (rc == Z_MEM_ERROR) throw std::bad_alloc();
      if (rc != Z_OK && rc != Z_BUF_ERROR) return st = inflate_status::bad_data, true;
      // Go on while input is left, or while the output filled (zlib may
      // hold more).
      if (z.avail_in == 0 && z.avail_out != 0) return false;
    }
  };
  // The message, then the tail the sender removed.
  inflate_status st = inflate_status::ok;
  if (!feed(in.data(), in.size(), st)) feed(deflate_tail, sizeof(deflate_tail), st);
  if (st != inflate_status::ok) return st;
  _stats.inflated.inc();
  _stats.inflated_in.add(in.size());
  _stats.inflated_out.add(produced);
  out = std::span<const std::uint8_t>(_out.data(), produced);
  return inflate_status::ok;
}

}  // namespace sb::ws
