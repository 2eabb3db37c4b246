// Unit tests for permessage-deflate: the shard's deflater and inflater
// (session/ws_deflate), the offer negotiation (http_upgrade) and the
// decoder's RSV1 rules (ws_codec). zlib itself plays the peer.
#include "session/http_upgrade.hpp"
#include "session/ws_codec.hpp"
#include "session/ws_deflate.hpp"
#include "tests/session/ws_frames.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

namespace {

using namespace sb::ws;
using sb::test_support::bytes;
using sb::test_support::client_frame;
using sb::test_support::frame_opts;

/// What a peer sends: raw deflate with a sync flush, the 00 00 FF FF tail
/// removed (RFC 7692 7.2.1). `final_block`: ends with BFINAL instead
/// (7.2.3.4), tail kept.
std::string peer_deflate(std::string_view in, bool final_block = false) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(in.size() + 64 + in.size() / 100, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_NE(deflate(&z, final_block ? Z_FINISH : Z_SYNC_FLUSH), Z_STREAM_ERROR);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  if (!final_block) {
    EXPECT_EQ(out.substr(out.size() - 4), std::string("\x00\x00\xff\xff", 4));
    out.resize(out.size() - 4);
  }
  return out;
}

/// What a peer reads: the payload of a compressed server message inflated.
std::string peer_inflate(std::string_view in) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, -15), Z_OK);
  std::string data(in);
  data.append("\x00\x00\xff\xff", 4);
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_SYNC_FLUSH);
  EXPECT_TRUE(rc == Z_OK || rc == Z_STREAM_END) << rc;
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  return out;
}

/// A server frame split into its header bits and payload.
struct server_frame {
  bool fin, rsv1;
  std::uint8_t op;
  std::string payload;
};

server_frame parse(const sb::frame_ref& f) {
  const std::uint8_t* d = f.data();
  server_frame s{(d[0] & 0x80) != 0, (d[0] & 0x40) != 0, static_cast<std::uint8_t>(d[0] & 0x0F), {}};
  std::size_t len = d[1] & 0x7F, at = 2;
  if (len == 126) {
    len = (std::size_t{d[2]} << 8) | d[3];
    at = 4;
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | d[2 + i];
    at = 10;
  }
  EXPECT_EQ(at + len, f.size());
  s.payload.assign(reinterpret_cast<const char*>(d + at), len);
  return s;
}

std::string chat_json(std::size_t n) {
  std::string s = R"({"channel":"room:lobby","pub":{"data":{"text":")";
  while (s.size() + 4 < n) s += "hello world, this is chat ";
  s.resize(n - 4);
  s += R"("}}})";
  return s;
}

TEST(ws_deflater, compresses_a_message_the_peer_inflates) {
  sb::frame_pool pool;
  deflate_options o;
  deflate_stats st;
  deflater d(o, st);
  for (std::size_t n : {128u, 1000u, 2048u, 70000u}) {
    const std::string msg = chat_json(n);
    auto f = parse(d.frame(pool, opcode::text, msg));
    EXPECT_TRUE(f.fin);
    EXPECT_TRUE(f.rsv1) << n;
    EXPECT_EQ(f.op, 1);
    EXPECT_LT(f.payload.size(), n < 1000 ? msg.size() : msg.size() / 4) << n;
    EXPECT_EQ(peer_inflate(f.payload), msg) << n;
  }
  EXPECT_EQ(st.messages.get(), 4u);
  EXPECT_GT(st.bytes_in.get(), st.bytes_out.get());
}

TEST(ws_deflater, each_message_stands_alone) {
  // No context takeover: a peer that resets its inflater per message (as
  // server_no_context_takeover tells it to) reads every frame on its own,
  // and the same message compresses to the same bytes every time.
  sb::frame_pool pool;
  deflate_options o;
  deflate_stats st;
  deflater d(o, st);
  const std::string msg = chat_json(600);
  auto a = parse(d.frame(pool, opcode::text, msg));
  auto b = parse(d.frame(pool, opcode::text, msg));
  EXPECT_EQ(a.payload, b.payload);
  EXPECT_EQ(peer_inflate(b.payload), msg);
}

TEST(ws_deflater, small_or_incompressible_payloads_go_plain) {
  sb::frame_pool pool;
  deflate_options o;
  o.min_size = 100;
  deflate_stats st;
  deflater d(o, st);
  auto small = parse(d.frame(pool, opcode::text, std::string(99, 'a')));
  EXPECT_FALSE(small.rsv1);
  EXPECT_EQ(small.payload, std::string(99, 'a'));
  std::mt19937 rng(7);
  std::string noise(4000, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  auto plain = parse(d.frame(pool, opcode::binary, noise));
  EXPECT_FALSE(plain.rsv1);
  EXPECT_EQ(plain.op, 2);
  EXPECT_EQ(plain.payload, noise);
  // Incompressible payloads of every size around the pool's large buffers
  // (exact-sized): deflate's output up to the payload + tail must fit in
  // the frame's buffer (ASan saw it write 3 bytes past at 65,535).
  for (std::size_t n : {1000u, 65535u, 65536u, 65537u, 100000u}) {
    std::string r(n, '\0');
    for (auto& c : r) c = static_cast<char>(rng());
    auto f = parse(d.frame(pool, opcode::binary, r));
    EXPECT_FALSE(f.rsv1) << n;
    EXPECT_EQ(f.payload, r) << n;
  }
  auto empty = parse(d.frame(pool, opcode::text, {}));
  EXPECT_FALSE(empty.rsv1);
  EXPECT_TRUE(empty.payload.empty());
}

TEST(ws_inflater, inflates_what_a_peer_compressed) {
  deflate_stats st;
  inflater in(st);
  for (std::size_t n : {0u, 1u, 300u, 65536u}) {
    const std::string msg = chat_json(std::max<std::size_t>(n, 40)).substr(0, n);
    const std::string c = peer_deflate(msg);
    std::span<const std::uint8_t> out;
    ASSERT_EQ(in.inflate({reinterpret_cast<const std::uint8_t*>(c.data()), c.size()}, 65536, out),
              inflate_status::ok)
        << n;
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(out.data()), out.size()), msg) << n;
  }
  // A final block instead of the sync flush (RFC 7692 7.2.3.4).
  const std::string fin = peer_deflate("final block", true);
  std::span<const std::uint8_t> out;
  ASSERT_EQ(in.inflate({reinterpret_cast<const std::uint8_t*>(fin.data()), fin.size()}, 100, out), inflate_status::ok);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(out.data()), out.size()), "final block");
}

TEST(ws_inflater, stops_at_the_limit_without_inflating_a_bomb) {
  // 64 MiB of zeros deflate to about 64 KiB: inflated in full it would be a
  // thousand times the limit. The inflater stops one byte past it, and its
  // buffer never grows beyond that.
  const std::string bomb = peer_deflate(std::string(16u << 20, '\0'));
  ASSERT_LT(bomb.size(), 100'000u);
  deflate_stats st;
  inflater in(st);
  std::span<const std::uint8_t> out;
  EXPECT_EQ(in.inflate({reinterpret_cast<const std::uint8_t*>(bomb.data()), bomb.size()}, 65536, out),
            inflate_status::too_big);
  EXPECT_LE(in.buffer_bytes(), 65537u);
  // Exactly at the limit is fine; one byte over is not.
  const std::string at = peer_deflate(std::string(65536, 'x'));
  const std::string over = peer_deflate(std::string(65537, 'x'));
  EXPECT_EQ(in.inflate({reinterpret_cast<const std::uint8_t*>(at.data()), at.size()}, 65536, out), inflate_status::ok);
  EXPECT_EQ(out.size(), 65536u);
  EXPECT_EQ(in.inflate({reinterpret_cast<const std::uint8_t*>(over.data()), over.size()}, 65536, out),
            inflate_status::too_big);
}

TEST(ws_inflater, garbage_is_bad_data_and_the_next_message_still_inflates) {
  deflate_stats st;
  inflater in(st);
  std::span<const std::uint8_t> out;
  const std::uint8_t junk[] = {0xFF, 0xFF, 0xFF, 0x12, 0x34};
  EXPECT_EQ(in.inflate(junk, 1000, out), inflate_status::bad_data);
  const std::string ok = peer_deflate("after the junk");
  ASSERT_EQ(in.inflate({reinterpret_cast<const std::uint8_t*>(ok.data()), ok.size()}, 1000, out), inflate_status::ok);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(out.data()), out.size()), "after the junk");
}

TEST(ws_deflate_offer, accepts_what_clients_offer) {
  const std::string both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
  // Chromium and node ws.
  EXPECT_EQ(accept_deflate_offer("permessage-deflate; client_max_window_bits"), both);
  EXPECT_EQ(accept_deflate_offer("permessage-deflate"), both);
  EXPECT_EQ(accept_deflate_offer("Permessage-Deflate ; client_max_window_bits=\"12\""), both);
  EXPECT_EQ(accept_deflate_offer("x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover"), both);
  EXPECT_EQ(accept_deflate_offer("permessage-deflate; server_max_window_bits=15"),
            both + "; server_max_window_bits=15");
}

TEST(ws_deflate_offer, declines_what_it_cannot_honour) {
  // A server window under 15 bits: the next offer (the plain one) wins.
  EXPECT_EQ(accept_deflate_offer("permessage-deflate; server_max_window_bits=10"), "");
  EXPECT_EQ(accept_deflate_offer("permessage-deflate; server_max_window_bits=10, permessage-deflate"),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  EXPECT_EQ(accept_deflate_offer("permessage-deflate; server_max_window_bits"), "");        // needs a value
  EXPECT_EQ(accept_deflate_offer("permessage-deflate; client_max_window_bits=16"), "");     // out of range
  EXPECT_EQ(accept_deflate_offer("permessage-deflate; client_max_window_bits=08"), "");     // not canonical
  EXPECT_EQ(accept_deflate_offer("permessage-deflate; server_no_context_takeover=1"), "");  // takes no value
  EXPECT_EQ(accept_deflate_offer("permessage-deflate; client_no_context_takeover; client_no_context_takeover"), "");
  EXPECT_EQ(accept_deflate_offer("permessage-deflate; foo"), "");
  EXPECT_EQ(accept_deflate_offer("deflate-frame"), "");
  EXPECT_EQ(accept_deflate_offer(""), "");
}

TEST(ws_deflate_offer, upgrade_answers_with_the_extension_only_when_configured) {
  const std::string req =
      "GET /connection/websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
  upgrade_options o;
  auto off = parse_upgrade(req, o);
  ASSERT_EQ(off.status, upgrade_status::accepted);
  EXPECT_FALSE(off.deflate);
  EXPECT_EQ(off.response.find("Sec-WebSocket-Extensions"), std::string::npos);
  o.permessage_deflate = true;
  auto on = parse_upgrade(req, o);
  ASSERT_EQ(on.status, upgrade_status::accepted);
  EXPECT_TRUE(on.deflate);
  EXPECT_NE(on.response.find("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover\r\n"),
            std::string::npos);
}

// ---- the decoder's RSV1 rules (RFC 7692 6.1) -----------------------------

struct data_recorder {
  std::vector<std::string> payloads;
  std::vector<bool> compressed;
  decoder_state* st = nullptr;
  bool on_data(opcode, std::span<std::uint8_t> p, bool, bool) {
    payloads.emplace_back(reinterpret_cast<const char*>(p.data()), p.size());
    compressed.push_back(st->compressed);
    return true;
  }
  bool on_ping(std::span<std::uint8_t>) { return true; }
  bool on_pong(std::span<std::uint8_t>) { return true; }
  bool on_close(std::uint16_t, std::string_view) { return false; }
};

decode_result decode_with(decoder_state& st, bytes in, data_recorder& h, std::uint64_t limit = 65536) {
  h.st = &st;
  return decode(st, in.data(), in.size(), decode_limits{limit}, h);
}

TEST(ws_decode_deflate, rsv1_marks_a_compressed_message_once_negotiated) {
  decoder_state st;
  st.deflate = true;
  frame_opts c;
  c.rsv = 4;  // RSV1
  // Compressed bytes are not UTF-8: a compressed text frame must not be
  // checked as text before it is inflated.
  const std::string z = peer_deflate("héllo");
  data_recorder h;
  auto r = decode_with(st, client_frame(1, z, c), h);
  EXPECT_EQ(r.error, 0);
  ASSERT_EQ(h.payloads.size(), 1u);
  EXPECT_EQ(h.payloads[0], z);
  EXPECT_TRUE(h.compressed[0]);
  // Then a plain message.
  r = decode_with(st, client_frame(1, "plain"), h);
  EXPECT_EQ(r.error, 0);
  EXPECT_FALSE(h.compressed[1]);
}

TEST(ws_decode_deflate, rsv1_is_1002_where_it_may_not_be) {
  frame_opts c;
  c.rsv = 4;
  data_recorder h;
  // Not negotiated.
  decoder_state off;
  EXPECT_EQ(decode_with(off, client_frame(1, "x", c), h).error, close_code::protocol_error);
  // On a control frame, on a continuation, or with RSV2/RSV3.
  decoder_state st;
  st.deflate = true;
  EXPECT_EQ(decode_with(st, client_frame(9, "", c), h).error, close_code::protocol_error);
  decoder_state st2;
  st2.deflate = true;
  frame_opts first;
  first.fin = false;
  first.rsv = 4;
  frame_opts cont = c;
  EXPECT_EQ(decode_with(st2, client_frame(1, "a", first), h).error, 0);
  EXPECT_EQ(decode_with(st2, client_frame(0, "b", cont), h).error, close_code::protocol_error);
  decoder_state st3;
  st3.deflate = true;
  frame_opts rsv2;
  rsv2.rsv = 6;
  EXPECT_EQ(decode_with(st3, client_frame(1, "x", rsv2), h).error, close_code::protocol_error);
}

TEST(ws_decode_deflate, compressed_messages_get_wire_slack_over_the_limit) {
  // Incompressible data grows a little when deflated: a compressed message
  // may pass the limit on the wire by the slack; its inflated size is what
  // the session holds to the limit.
  decoder_state st;
  st.deflate = true;
  frame_opts c;
  c.rsv = 4;
  data_recorder h;
  EXPECT_EQ(decode_with(st, client_frame(2, std::string(1010, 'x'), c), h, 1000).error, 0);
  EXPECT_EQ(decode_with(st, client_frame(2, std::string(1010, 'x')), h, 1000).error, close_code::message_too_big);
  EXPECT_EQ(decode_with(st, client_frame(2, std::string(compressed_wire_limit(1000) + 1, 'x'), c), h, 1000).error,
            close_code::message_too_big);
}

}  // namespace
