// Unit tests for session/ws_codec: one test per RFC 6455 rule the decoder
// enforces, plus encoder, unmask and split-stream tests.
#include "session/ws_codec.hpp"
#include "tests/session/ws_frames.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace sb::ws;
using sb::test_support::bytes;
using sb::test_support::client_frame;
using sb::test_support::frame_opts;
using sb::test_support::len_form;

bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
  std::string s;
  s.push_back(static_cast<char>(code >> 8));
  s.push_back(static_cast<char>(code & 0xFF));
  s.append(reason);
  return s;
}

/// Records every callback as a line of text, so sequences compare easily.
struct recorder {
  std::vector<std::string> events;
  int stop_after = -1;  // return false from the n-th event (0-based)
  bool next() { return static_cast<int>(events.size()) - 1 != stop_after; }
  static std::string str(std::span<std::uint8_t> p) { return {reinterpret_cast<const char*>(p.data()), p.size()}; }
  bool on_data(opcode op, std::span<std::uint8_t> p, bool first, bool last) {
    events.push_back((op == opcode::text ? "text " : "binary ") + std::string(first ? "F" : "-") +
                     (last ? "L " : "- ") + str(p));
    return next();
  }
  bool on_ping(std::span<std::uint8_t> p) {
    events.push_back("ping " + str(p));
    return next();
  }
  bool on_pong(std::span<std::uint8_t> p) {
    events.push_back("pong " + str(p));
    return next();
  }
  bool on_close(std::uint16_t code, std::string_view r) {
    events.push_back("close " + std::to_string(code) + " " + std::string(r));
    return next();
  }
};

struct run_result {
  decode_result r;
  std::vector<std::string> events;
};

run_result run(bytes in, decode_limits lim = {}, decoder_state* st_in = nullptr) {
  decoder_state local;
  decoder_state& st = st_in ? *st_in : local;
  recorder h;
  run_result out;
  out.r = decode(st, in.data(), in.size(), lim, h);
  out.events = h.events;
  return out;
}

void expect_error(const bytes& in, std::uint16_t code, decode_limits lim = {}) {
  auto res = run(in, lim);
  EXPECT_EQ(res.r.error, code);
  EXPECT_NE(res.r.reason, nullptr);
  EXPECT_EQ(res.r.consumed, 0u);
}

// ---- basic frames -------------------------------------------------------

TEST(ws_decode, single_text_frame) {
  auto res = run(client_frame(1, "hello"));
  EXPECT_EQ(res.r.error, 0);
  EXPECT_EQ(res.r.consumed, 11u);
  EXPECT_EQ(res.r.frame_bytes_needed, 0u);
  ASSERT_EQ(res.events.size(), 1u);
  EXPECT_EQ(res.events[0], "text FL hello");
}

TEST(ws_decode, binary_ping_pong_close) {
  auto in = cat({client_frame(2, std::string("\0\xff\x80", 3)), client_frame(9, "p"), client_frame(10, "q"),
                 client_frame(8, close_payload(1000, "bye"))});
  auto res = run(in);
  EXPECT_EQ(res.r.error, 0);
  EXPECT_EQ(res.r.consumed, in.size());
  EXPECT_EQ(res.events, (std::vector<std::string>{std::string("binary FL \0\xff\x80", 13), "ping p", "pong q",
                                                  "close 1000 bye"}));
}

TEST(ws_decode, empty_close_reports_1005) {
  auto res = run(client_frame(8, ""));
  EXPECT_EQ(res.r.error, 0);
  EXPECT_EQ(res.events, std::vector<std::string>{"close 1005 "});
}

TEST(ws_decode, empty_buffer_and_single_byte) {
  bytes one{0x81};
  auto res = run(one);
  EXPECT_EQ(res.r.consumed, 0u);
  EXPECT_EQ(res.r.error, 0);
  EXPECT_EQ(res.r.frame_bytes_needed, 0u);
  decoder_state st;
  recorder h;
  EXPECT_EQ(decode(st, nullptr, 0, decode_limits{}, h).consumed, 0u);
}

TEST(ws_decode, unmasks_in_place_in_callers_buffer) {
  auto in = client_frame(2, "abcdefghij");
  run(in);  // copies; check the in-place contract on our own buffer
  decoder_state st;
  recorder h;
  decode(st, in.data(), in.size(), decode_limits{}, h);
  EXPECT_EQ(std::string(in.begin() + 6, in.end()), "abcdefghij");
}

// ---- header rules --------------------------------------------------------

TEST(ws_decode, unmasked_frame_is_1002) {
  frame_opts o;
  o.masked = false;
  auto res = run(client_frame(1, "hi", o));
  EXPECT_EQ(res.r.error, close_code::protocol_error);
  EXPECT_STREQ(res.r.reason, "unmasked frame");
}

TEST(ws_decode, any_rsv_bit_is_1002) {
  for (std::uint8_t rsv = 1; rsv < 8; ++rsv) {
    frame_opts o;
    o.rsv = rsv;
    expect_error(client_frame(1, "hi", o), close_code::protocol_error);
    expect_error(client_frame(9, "", o), close_code::protocol_error);
  }
}

TEST(ws_decode, reserved_opcodes_are_1002) {
  for (std::uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    expect_error(client_frame(op, "x"), close_code::protocol_error);
    expect_error(client_frame(op, ""), close_code::protocol_error);
  }
}

TEST(ws_decode, header_errors_fail_from_two_bytes) {
  // No need to wait for the rest: the first two bytes decide.
  frame_opts o;
  o.masked = false;
  auto f = client_frame(1, "hello", o);
  auto res = run(bytes(f.begin(), f.begin() + 2));
  EXPECT_EQ(res.r.error, close_code::protocol_error);
}

TEST(ws_decode, payload_lengths_all_forms) {
  for (std::size_t len : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u}) {
    std::string p(len, 'a');
    auto in = client_frame(2, p);
    auto res = run(in);
    ASSERT_EQ(res.r.error, 0) << len;
    ASSERT_EQ(res.r.consumed, in.size()) << len;
    ASSERT_EQ(res.events.size(), 1u);
    EXPECT_EQ(res.events[0].size(), std::string("binary FL ").size() + len);
  }
}

TEST(ws_decode, non_minimal_lengths_are_accepted) {
  // Autobahn tolerates these; RFC says "minimal number of bytes MUST be used"
  // but rejecting them buys nothing.
  frame_opts o16;
  o16.form = len_form::w16;
  frame_opts o64;
  o64.form = len_form::w64;
  auto res = run(cat({client_frame(1, "ab", o16), client_frame(1, std::string(300, 'x'), o64)}));
  EXPECT_EQ(res.r.error, 0);
  EXPECT_EQ(res.events.size(), 2u);
}

TEST(ws_decode, length_with_msb_set_is_1002) {
  frame_opts o;
  o.form = len_form::w64;
  o.raw_len = (std::uint64_t{1} << 63) | 5;
  auto res = run(client_frame(2, "", o), decode_limits{UINT64_MAX});
  EXPECT_EQ(res.r.error, close_code::protocol_error);
  EXPECT_STREQ(res.r.reason, "invalid payload length");
}

// ---- control frames ------------------------------------------------------

TEST(ws_decode, control_payload_over_125_is_1002) {
  for (std::uint8_t op : {8, 9, 10}) {
    auto ok = run(client_frame(9, std::string(125, 'x')));
    EXPECT_EQ(ok.r.error, 0);
    std::string p = op == 8 ? close_payload(1000, std::string(124, 'x')) : std::string(126, 'x');
    expect_error(client_frame(op, p), close_code::protocol_error);
  }
}

TEST(ws_decode, fragmented_control_is_1002) {
  frame_opts o;
  o.fin = false;
  for (std::uint8_t op : {8, 9, 10}) expect_error(client_frame(op, "", o), close_code::protocol_error);
}

TEST(ws_decode, ping_between_fragments) {
  frame_opts nf;
  nf.fin = false;
  auto in = cat({client_frame(1, "Hel", nf), client_frame(9, "ping!"), client_frame(0, "lo ", nf),
                 client_frame(10, ""), client_frame(0, "world")});
  auto res = run(in);
  EXPECT_EQ(res.r.error, 0);
  EXPECT_EQ(res.r.consumed, in.size());
  EXPECT_EQ(res.events,
            (std::vector<std::string>{"text F- Hel", "ping ping!", "text -- lo ", "pong ", "text -L world"}));
}

TEST(ws_decode, close_payload_of_one_byte_is_1002) { expect_error(client_frame(8, "\x03"), close_code::protocol_error); }

TEST(ws_decode, close_codes) {
  for (std::uint16_t c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
    auto res = run(client_frame(8, close_payload(c, "")));
    EXPECT_EQ(res.r.error, 0) << c;
    EXPECT_EQ(res.events, std::vector<std::string>{"close " + std::to_string(c) + " "});
  }
  for (std::uint16_t c : {0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    auto res = run(client_frame(8, close_payload(c, "")));
    EXPECT_EQ(res.r.error, close_code::protocol_error) << c;
    EXPECT_STREQ(res.r.reason, "invalid close code");
  }
}

TEST(ws_decode, close_reason_must_be_utf8) {
  auto ok = run(client_frame(8, close_payload(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")));
  EXPECT_EQ(ok.r.error, 0);
  auto res = run(client_frame(8, close_payload(1000, "bad \xce")));
  EXPECT_EQ(res.r.error, close_code::invalid_payload);
}

// ---- fragmentation order -------------------------------------------------

TEST(ws_decode, continuation_without_message_is_1002) {
  expect_error(client_frame(0, "x"), close_code::protocol_error);
  frame_opts nf;
  nf.fin = false;
  expect_error(client_frame(0, "x", nf), close_code::protocol_error);
  // After a complete message, a continuation is again unexpected.
  auto res = run(cat({client_frame(1, "a"), client_frame(0, "b")}));
  EXPECT_EQ(res.r.error, close_code::protocol_error);
  EXPECT_STREQ(res.r.reason, "unexpected continuation");
  EXPECT_EQ(res.r.consumed, 7u);  // the good frame before it was consumed
  EXPECT_EQ(res.events.size(), 1u);
}

TEST(ws_decode, new_message_inside_fragmented_is_1002) {
  frame_opts nf;
  nf.fin = false;
  for (std::uint8_t op : {1, 2}) {
    auto res = run(cat({client_frame(2, "a", nf), client_frame(op, "b")}));
    EXPECT_EQ(res.r.error, close_code::protocol_error);
    EXPECT_STREQ(res.r.reason, "expected continuation");
  }
}

TEST(ws_decode, state_survives_between_calls) {
  frame_opts nf;
  nf.fin = false;
  decoder_state st;
  auto a = run(client_frame(2, "ab", nf), {}, &st);
  EXPECT_EQ(st.message_op, 2);
  EXPECT_EQ(st.message_bytes, 2u);
  auto b = run(client_frame(0, "cd"), {}, &st);
  EXPECT_EQ(b.r.error, 0);
  EXPECT_EQ(b.events, std::vector<std::string>{"binary -L cd"});
  EXPECT_EQ(st.message_op, 0);
  EXPECT_EQ(st.message_bytes, 0u);
}

// ---- message size --------------------------------------------------------

TEST(ws_decode, size_limit_single_frame) {
  decode_limits lim{65536};
  auto ok = run(client_frame(2, std::string(65536, 'x')), lim);
  EXPECT_EQ(ok.r.error, 0);
  auto in = client_frame(2, std::string(65537, 'x'));
  auto res = run(in, lim);
  EXPECT_EQ(res.r.error, close_code::message_too_big);
  EXPECT_STREQ(res.r.reason, "message too big");
  // Decided from the header alone, before the payload arrives.
  auto hdr = run(bytes(in.begin(), in.begin() + 14), lim);
  EXPECT_EQ(hdr.r.error, close_code::message_too_big);
}

TEST(ws_decode, size_limit_across_fragments) {
  decode_limits lim{65536};
  frame_opts nf;
  nf.fin = false;
  auto ok = run(cat({client_frame(1, std::string(30000, 'x'), nf), client_frame(9, "p"),
                     client_frame(0, std::string(35536, 'y'))}),
                lim);
  EXPECT_EQ(ok.r.error, 0);
  EXPECT_EQ(ok.events.size(), 3u);
  auto in = cat({client_frame(1, std::string(30000, 'x'), nf), client_frame(0, std::string(30000, 'y'), nf),
                 client_frame(0, std::string(5537, 'z'))});
  auto res = run(in, lim);
  EXPECT_EQ(res.r.error, close_code::message_too_big);
  EXPECT_EQ(res.events.size(), 2u);
  // Control frames don't count toward a data message.
  auto ctl = run(cat({client_frame(2, std::string(65536, 'x'), nf), client_frame(9, "abc"), client_frame(0, "")}),
                 lim);
  EXPECT_EQ(ctl.r.error, 0);
}

// ---- partial frames ------------------------------------------------------

TEST(ws_decode, partial_header_and_payload) {
  auto f = client_frame(2, std::string(300, 'x'));  // 2 + 2 + 4 + 300
  for (std::size_t cut = 0; cut < f.size(); ++cut) {
    bytes part(f.begin(), f.begin() + cut);
    auto res = run(part);
    EXPECT_EQ(res.r.consumed, 0u);
    EXPECT_EQ(res.r.error, 0);
    EXPECT_TRUE(res.events.empty());
    EXPECT_EQ(res.r.frame_bytes_needed, cut >= 8 ? f.size() : 0u) << cut;
    // Partial payloads are left masked for the re-feed.
    EXPECT_TRUE(std::equal(part.begin(), part.end(), f.begin()));
  }
}

TEST(ws_decode, partial_after_complete_frames) {
  auto a = client_frame(1, "one");
  auto b = client_frame(2, "two-two");
  auto in = cat({a, b});
  in.pop_back();  // (not resize(size() - 1): g++ 12 -fsanitize warns on it, -Wstringop-overflow false positive)
  auto res = run(in);
  EXPECT_EQ(res.r.consumed, a.size());
  EXPECT_EQ(res.r.frame_bytes_needed, b.size());
  EXPECT_EQ(res.events.size(), 1u);
}

TEST(ws_decode, handler_stop) {
  auto in = cat({client_frame(1, "a"), client_frame(9, "b"), client_frame(1, "c")});
  decoder_state st;
  recorder h;
  h.stop_after = 1;
  auto r = decode(st, in.data(), in.size(), decode_limits{}, h);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.consumed, 14u);
  EXPECT_EQ(h.events.size(), 2u);
}

// Feeds `in` in two parts at every split point, keeping the unconsumed tail
// and appending the rest as a session does, and checks the events match the
// one-shot decode.
TEST(ws_decode, split_at_every_byte) {
  frame_opts nf;
  nf.fin = false;
  const std::string euro = "\xe2\x82\xac";
  // Built with append, not "literal" + std::string&&: g++ 12 warns
  // (-Wrestrict, a known false positive) on that operator.
  const std::string hello = std::string("hello ").append(euro);
  const std::string x_half_euro = std::string("x").append(euro.substr(0, 2));
  const bytes stream = cat({client_frame(1, hello), client_frame(2, std::string(130, 'b'), nf),
                            client_frame(9, "ping"), client_frame(0, std::string(200, 'c')),
                            client_frame(1, x_half_euro, nf), client_frame(10, ""),
                            client_frame(0, euro.substr(2) + "y"), client_frame(8, close_payload(1001, "done"))});
  const auto whole = run(stream);
  ASSERT_EQ(whole.r.error, 0);
  ASSERT_EQ(whole.r.consumed, stream.size());
  ASSERT_EQ(whole.events.size(), 8u);
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    decoder_state st;
    recorder h;
    bytes buf(stream.begin(), stream.begin() + split);
    auto r1 = decode(st, buf.data(), buf.size(), decode_limits{}, h);
    ASSERT_EQ(r1.error, 0) << split;
    if (r1.frame_bytes_needed) {
      ASSERT_GT(r1.frame_bytes_needed, buf.size() - r1.consumed);
    }
    bytes tail(buf.begin() + static_cast<std::ptrdiff_t>(r1.consumed), buf.end());
    tail.insert(tail.end(), stream.begin() + split, stream.end());
    auto r2 = decode(st, tail.data(), tail.size(), decode_limits{}, h);
    ASSERT_EQ(r2.error, 0) << split;
    ASSERT_EQ(r2.consumed, tail.size()) << split;
    ASSERT_EQ(h.events, whole.events) << split;
  }
}

// ---- UTF-8 ---------------------------------------------------------------

/// Sends `text` as fragments cut at the given offsets; returns the result.
run_result fragments(std::string_view text, std::vector<std::size_t> cuts) {
  frame_opts nf;
  nf.fin = false;
  bytes in;
  std::size_t at = 0;
  cuts.push_back(text.size());
  for (std::size_t i = 0; i < cuts.size(); ++i) {
    auto f = client_frame(i == 0 ? 1 : 0, text.substr(at, cuts[i] - at), i + 1 == cuts.size() ? frame_opts{} : nf);
    in.insert(in.end(), f.begin(), f.end());
    at = cuts[i];
  }
  return run(in);
}

TEST(ws_utf8, valid_sequences_split_everywhere) {
  // 2-, 3- and 4-byte sequences; every single cut and every pair of cuts.
  const std::string s = "a\xc3\xa9" "b\xe2\x82\xac" "c\xf0\x9f\x98\x80" "d\xf4\x8f\xbf\xbf";
  for (std::size_t i = 0; i <= s.size(); ++i) {
    for (std::size_t j = i; j <= s.size(); ++j) {
      auto res = fragments(s, {i, j});
      ASSERT_EQ(res.r.error, 0) << i << "," << j;
    }
  }
}

TEST(ws_utf8, invalid_sequences_split_everywhere) {
  const char* bad[] = {
      "ab\xc0\xaf",          // overlong
      "ab\xe0\x80\xaf",      // overlong 3-byte
      "ab\xed\xa0\x80",      // surrogate
      "ab\xf4\x90\x80\x80",  // > U+10FFFF
      "ab\xf8\x88\x80\x80",  // 5-byte lead
      "ab\x80",              // lone continuation
      "ab\xe2\x82",          // truncated at end of message
      "ab\xe2\x82xyz",       // truncated sequence followed by ASCII
  };
  for (const char* b : bad) {
    std::string s(b);
    for (std::size_t i = 0; i <= s.size(); ++i) {
      auto res = fragments(s, {i});
      ASSERT_EQ(res.r.error, close_code::invalid_payload) << s << " cut " << i;
      EXPECT_STREQ(res.r.reason, "invalid utf-8");
    }
  }
}

TEST(ws_utf8, fails_fast_before_message_end) {
  // The second fragment makes the message invalid; no need to see the third.
  frame_opts nf;
  nf.fin = false;
  auto in = cat({client_frame(1, "ok\xed", nf), client_frame(0, "\xa0", nf), client_frame(0, "\x80", nf)});
  auto res = run(in);
  EXPECT_EQ(res.r.error, close_code::invalid_payload);
  EXPECT_EQ(res.events.size(), 1u);
  // A bad byte with the message still open is also decided at once.
  auto res2 = run(cat({client_frame(1, "ok", nf), client_frame(0, "\xff", nf)}));
  EXPECT_EQ(res2.r.error, close_code::invalid_payload);
  EXPECT_EQ(res2.events.size(), 1u);
}

TEST(ws_utf8, binary_is_not_validated) {
  auto res = run(client_frame(2, "\xff\xfe"));
  EXPECT_EQ(res.r.error, 0);
}

TEST(ws_utf8, valid_utf8_function) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("\xce\xba\xe1\xbd\xb9"));
  EXPECT_FALSE(valid_utf8("\xce"));
}

// ---- encoder -------------------------------------------------------------

TEST(ws_encode, header_lengths) {
  std::uint8_t h[max_header_size];
  EXPECT_EQ(encode_header(h, opcode::text, 0), 2u);
  EXPECT_EQ(h[0], 0x81);
  EXPECT_EQ(h[1], 0);
  EXPECT_EQ(encode_header(h, opcode::binary, 125, false), 2u);
  EXPECT_EQ(h[0], 0x02);
  EXPECT_EQ(h[1], 125);
  EXPECT_EQ(encode_header(h, opcode::text, 126), 4u);
  EXPECT_EQ(h[1], 126);
  EXPECT_EQ(h[2], 0);
  EXPECT_EQ(h[3], 126);
  EXPECT_EQ(encode_header(h, opcode::text, 65535), 4u);
  EXPECT_EQ(h[2], 0xff);
  EXPECT_EQ(h[3], 0xff);
  EXPECT_EQ(encode_header(h, opcode::close, 65536), 10u);
  EXPECT_EQ(h[0], 0x88);
  EXPECT_EQ(h[1], 127);
  const std::uint8_t want[8] = {0, 0, 0, 0, 0, 1, 0, 0};
  EXPECT_EQ(std::memcmp(h + 2, want, 8), 0);
  EXPECT_EQ(encode_header(h, opcode::ping, 0x0102030405060708ull), 10u);
  const std::uint8_t want2[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(std::memcmp(h + 2, want2, 8), 0);
}

TEST(ws_encode, make_frame_round_trips_through_a_client_view) {
  sb::frame_pool pool;
  for (std::size_t len : {0u, 5u, 125u, 126u, 70000u}) {
    std::string p(len, 'q');
    auto f = make_frame(pool, opcode::text, p);
    std::uint8_t h[max_header_size];
    const std::size_t hl = encode_header(h, opcode::text, len);
    ASSERT_EQ(f.size(), hl + len);
    EXPECT_EQ(std::memcmp(f.data(), h, hl), 0);
    EXPECT_EQ(f.view().substr(hl), p);
  }
}

TEST(ws_encode, close_frame) {
  sb::frame_pool pool;
  auto f = make_close_frame(pool, 1001, "bye");
  EXPECT_EQ(f.view(), std::string("\x88\x05\x03\xe9" "bye", 7));
  auto none = make_close_frame(pool, close_code::no_status, "ignored");
  EXPECT_EQ(none.view(), std::string("\x88\x00", 2));
}

TEST(ws_encode, close_frame_truncates_at_utf8_boundary) {
  sb::frame_pool pool;
  // 122 ASCII bytes then a 3-byte char: 125 bytes of reason, only 123 fit,
  // and the cut would land inside the euro sign, so it is dropped whole.
  std::string reason(122, 'r');
  reason += "\xe2\x82\xac";
  auto f = make_close_frame(pool, 1008, reason);
  ASSERT_EQ(f.size(), 2u + 2 + 122);
  EXPECT_EQ(f.data()[1], 124);
  EXPECT_TRUE(valid_utf8(f.view().substr(4)));
  // ASCII truncates to exactly 123.
  auto g = make_close_frame(pool, 1000, std::string(500, 'a'));
  EXPECT_EQ(g.size(), 2u + 125);
  // Two-byte chars: 61 of them = 122 bytes fit, the 62nd would not.
  std::string two;
  for (int i = 0; i < 80; ++i) two += "\xc3\xa9";
  auto k = make_close_frame(pool, 1000, two);
  EXPECT_EQ(k.size(), 2u + 2 + 122);
  EXPECT_TRUE(valid_utf8(k.view().substr(4)));
}

// ---- unmask --------------------------------------------------------------

TEST(ws_unmask, matches_bytewise_reference_every_phase_and_length) {
  const std::uint8_t key_bytes[4] = {0xa1, 0x5b, 0x07, 0xe3};
  std::uint32_t key;
  std::memcpy(&key, key_bytes, 4);
  for (std::size_t phase = 0; phase < 8; ++phase) {
    for (std::size_t len = 0; len <= 100; ++len) {
      bytes buf(len + 2), ref;
      for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<std::uint8_t>(i * 31 + 7);
      ref = buf;
      // Offset by 1 so the main loop also runs unaligned.
      unmask(buf.data() + 1, len, key, phase);
      for (std::size_t i = 0; i < len; ++i) ref[1 + i] ^= key_bytes[(phase + i) % 4];
      ASSERT_EQ(buf, ref) << "phase " << phase << " len " << len;
    }
  }
}

TEST(ws_unmask, split_with_phase_equals_whole) {
  std::uint32_t key = 0x12345678;
  bytes a(77), b;
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::uint8_t>(i);
  b = a;
  unmask(a.data(), a.size(), key);
  unmask(b.data(), 13, key, 0);
  unmask(b.data() + 13, b.size() - 13, key, 13);
  EXPECT_EQ(a, b);
}

TEST(ws_state, is_small) { EXPECT_LE(sizeof(decoder_state), 16u); }

}  // namespace
