// Unit tests for the Protobuf format (session/protobuf_codec.hpp): commands
// as centrifuge-js's protobuf build writes them (hand-built bytes, field
// numbers from client.proto), the refusals, and replies and pushes read
// back field by field with pb::reader.
#include "session/pb_wire.hpp"
#include "session/protobuf_codec.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace {

using namespace sb::proto;
using sb::pb::wire;

// ---- building commands ----------------------------------------------------

std::string varint(std::uint64_t v) {
  std::string s;
  sb::pb::put_varint(s, v);
  return s;
}
std::string fld(std::uint32_t f, std::uint64_t v) { return varint(f << 3) + varint(v); }
std::string fld(std::uint32_t f, std::string_view bytes) { return varint((f << 3) | 2) + varint(bytes.size()) + std::string(bytes); }
std::string delimited(std::string_view m) { return varint(m.size()) + std::string(m); }

struct collect final : command_sink {
  std::vector<command> cmds;  // their views point into the test's frame, alive throughout
  bool on_command(const command& c) override {
    cmds.push_back(c);
    return true;
  }
};

parse_error decode(protobuf_decoder& d, const std::string& frame, collect& out) {
  return d.decode({reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size()}, out);
}

TEST(protobuf_decode, connect_with_subs_and_subscribe_with_every_field) {
  const std::string sub_req = fld(1, "news") + fld(3, 1) + fld(6, "ep") + fld(7, 42);
  const std::string entry = fld(1, "news") + fld(2, sub_req);
  const std::string conn_req = fld(1, "tok") + fld(2, "{\"a\":1}") + fld(3, entry) + fld(4, "js") + fld(5, "5.0");
  const std::string subscribe = fld(1, "chat:1") + fld(2, "stok") + fld(3, 1) + fld(6, "e1") + fld(7, 9) +
                                fld(8, std::string("\x00\x01", 2)) + fld(9, 1) + fld(10, 1) + fld(11, 1) + fld(12, "fossil");
  const std::string frame = delimited(fld(1, 1) + fld(4, conn_req)) + delimited(fld(1, 2) + fld(5, subscribe));
  protobuf_decoder d;
  collect out;
  ASSERT_EQ(decode(d, frame, out), parse_error::none);
  ASSERT_EQ(out.cmds.size(), 2u);
  const command& c = out.cmds[0];
  EXPECT_EQ(c.id, 1u);
  EXPECT_EQ(c.m, method::connect);
  EXPECT_EQ(c.connect.token, "tok");
  EXPECT_EQ(c.connect.data_json, "{\"a\":1}");
  EXPECT_EQ(c.connect.name, "js");
  EXPECT_EQ(c.connect.version, "5.0");
  ASSERT_EQ(c.connect.subs.size(), 1u);
  EXPECT_EQ(c.connect.subs[0].first, "news");
  EXPECT_TRUE(c.connect.subs[0].second.recover);
  EXPECT_EQ(c.connect.subs[0].second.epoch, "ep");
  EXPECT_EQ(c.connect.subs[0].second.offset, 42u);
  const subscribe_request& s = out.cmds[1].subscribe;
  EXPECT_EQ(out.cmds[1].m, method::subscribe);
  EXPECT_EQ(s.channel, "chat:1");
  EXPECT_EQ(s.token, "stok");
  EXPECT_TRUE(s.recover && s.positioned && s.recoverable && s.join_leave);
  EXPECT_EQ(s.epoch, "e1");
  EXPECT_EQ(s.offset, 9u);
  EXPECT_EQ(s.data_json, std::string("\x00\x01", 2));  // bytes, not JSON
  EXPECT_EQ(s.delta, "fossil");
}

TEST(protobuf_decode, the_other_requests) {
  const std::string since = fld(1, 5) + fld(2, "ep");
  const std::string frame =
      delimited(fld(1, 3) + fld(6, fld(1, "a"))) +                                  // unsubscribe
      delimited(fld(1, 4) + fld(7, fld(1, "b") + fld(2, "payload"))) +              // publish
      delimited(fld(1, 5) + fld(8, fld(1, "c"))) +                                  // presence
      delimited(fld(1, 6) + fld(9, fld(1, "d"))) +                                  // presence_stats
      delimited(fld(1, 7) + fld(10, fld(1, "e") + fld(7, 10) + fld(8, since) + fld(9, 1))) +  // history
      delimited(fld(1, 8) + fld(11, "")) +                                          // ping
      delimited(fld(12, fld(1, "async"))) +                                         // send: no id
      delimited(fld(1, 9) + fld(13, fld(1, "rpcdata") + fld(2, "getUser"))) +       // rpc
      delimited(fld(1, 10) + fld(14, fld(1, "newtok"))) +                           // refresh
      delimited(fld(1, 11) + fld(15, fld(1, "f") + fld(2, "subtok"))) +             // sub_refresh
      delimited("");                                                                // pong
  protobuf_decoder d;
  collect out;
  ASSERT_EQ(decode(d, frame, out), parse_error::none);
  ASSERT_EQ(out.cmds.size(), 11u);
  EXPECT_EQ(out.cmds[0].unsubscribe.channel, "a");
  EXPECT_EQ(out.cmds[1].publish.channel, "b");
  EXPECT_EQ(out.cmds[1].publish.data_json, "payload");
  EXPECT_EQ(out.cmds[2].presence.channel, "c");
  EXPECT_EQ(out.cmds[3].presence_stats.channel, "d");
  const history_request& h = out.cmds[4].history;
  EXPECT_EQ(h.channel, "e");
  EXPECT_EQ(h.limit, 10);
  EXPECT_TRUE(h.has_since);
  EXPECT_EQ(h.since_offset, 5u);
  EXPECT_EQ(h.since_epoch, "ep");
  EXPECT_TRUE(h.reverse);
  EXPECT_EQ(out.cmds[5].m, method::ping);
  EXPECT_EQ(out.cmds[6].m, method::send);
  EXPECT_EQ(out.cmds[6].id, 0u);
  EXPECT_EQ(out.cmds[6].send.data_json, "async");
  EXPECT_EQ(out.cmds[7].rpc.method_name, "getUser");
  EXPECT_EQ(out.cmds[7].rpc.data_json, "rpcdata");
  EXPECT_EQ(out.cmds[8].refresh.token, "newtok");
  EXPECT_EQ(out.cmds[9].sub_refresh.channel, "f");
  EXPECT_EQ(out.cmds[9].sub_refresh.token, "subtok");
  EXPECT_EQ(out.cmds[10].m, method::none);  // an empty command: the pong
}

TEST(protobuf_decode, unknown_fields_are_skipped_and_negative_limits_read) {
  // A field we do not know of each wire type, inside and around the request.
  std::string fixed64 = varint((30 << 3) | 1) + std::string(8, 'x');
  std::string fixed32 = varint((31 << 3) | 5) + std::string(4, 'y');
  const std::string history = fld(1, "h") + fixed64 + fld(7, 0xFFFFFFFFFFFFFFFFull) + fixed32 + fld(99, "?");
  const std::string frame = delimited(fld(1, 1) + fixed32 + fld(10, history) + fld(50, 7));
  protobuf_decoder d;
  collect out;
  ASSERT_EQ(decode(d, frame, out), parse_error::none);
  ASSERT_EQ(out.cmds.size(), 1u);
  EXPECT_EQ(out.cmds[0].history.channel, "h");
  EXPECT_EQ(out.cmds[0].history.limit, -1);  // int32 -1, sign-extended to 10 bytes
}

TEST(protobuf_decode, refusals) {
  struct bad {
    const char* what;
    std::string frame;
    parse_error want;
  };
  const std::vector<bad> cases = {
      {"empty frame", "", parse_error::bad_json},
      {"length past the end", varint(10) + "abc", parse_error::bad_json},
      {"truncated varint", std::string("\x02\x08\x80", 3), parse_error::bad_json},
      {"field number 0", delimited(std::string("\x00\x01", 2)), parse_error::bad_json},
      {"group", delimited(fld(1, 1) + varint((5 << 3) | 3)), parse_error::bad_json},
      {"wrong wire type for id", delimited(fld(1, "one") + fld(11, "")), parse_error::bad_json},
      {"request that is not a message", delimited(fld(1, 1) + fld(5, 3)), parse_error::bad_json},
      {"two requests", delimited(fld(1, 1) + fld(11, "") + fld(6, fld(1, "x"))), parse_error::bad_command},
      {"no id", delimited(fld(5, fld(1, "x"))), parse_error::bad_command},
      {"id without request", delimited(fld(1, 4)), parse_error::bad_command},
      {"id over uint32", delimited(fld(1, 0x100000000ull) + fld(11, "")), parse_error::bad_command},
      {"invalid UTF-8 channel", delimited(fld(1, 1) + fld(5, fld(1, "\xc3\x28"))), parse_error::bad_command},
      // A truncated varint (offset, field 7) in a connect's subs entry.
      {"bad bytes deep inside", delimited(fld(1, 1) + fld(4, fld(3, fld(2, std::string("\x38\x80", 2))))),
       parse_error::bad_json},
      {"invalid UTF-8 deep inside", delimited(fld(1, 1) + fld(4, fld(3, fld(2, fld(1, "\x80"))))),
       parse_error::bad_command},
  };
  for (const auto& c : cases) {
    protobuf_decoder d;
    collect out;
    EXPECT_EQ(decode(d, c.frame, out), c.want) << c.what;
  }
}

TEST(protobuf_decode, commands_before_a_bad_one_are_delivered) {
  const std::string frame = delimited(fld(1, 1) + fld(11, "")) + delimited(fld(5, ""));
  protobuf_decoder d;
  collect out;
  EXPECT_EQ(decode(d, frame, out), parse_error::bad_command);
  EXPECT_EQ(out.cmds.size(), 1u);
}

// ---- reading replies back ---------------------------------------------------

// A message's fields: number → every value (varints as decimal text).
using fields = std::multimap<std::uint32_t, std::string>;
fields read(std::string_view msg) {
  fields f;
  sb::pb::reader r(msg);
  std::uint32_t n;
  wire w;
  while (r.next(n, w)) {
    if (w == wire::varint) {
      std::uint64_t v;
      EXPECT_TRUE(r.varint(v));
      f.emplace(n, std::to_string(v));
    } else {
      std::string_view b;
      EXPECT_EQ(w, wire::bytes);
      EXPECT_TRUE(r.bytes(b));
      f.emplace(n, std::string(b));
    }
  }
  EXPECT_FALSE(r.bad);
  return f;
}
// The frame's varint-delimited messages.
std::vector<std::string> split(const std::string& frame) {
  std::vector<std::string> out;
  sb::pb::reader r(frame);
  while (!r.done()) {
    std::string_view m;
    EXPECT_TRUE(r.bytes(m));
    if (r.bad) break;
    out.emplace_back(m);
  }
  return out;
}
std::string one(const fields& f, std::uint32_t n) {
  auto it = f.find(n);
  return it == f.end() ? std::string("<absent>") : it->second;
}

TEST(protobuf_encode, replies_carry_id_and_result_and_delimit) {
  protobuf_encoder e;
  std::string out;
  e.error_reply(out, 3, error_code::permission_denied);
  e.empty_reply(out, 4, method::publish);
  e.ping(out);
  e.presence_stats_reply(out, 5, 7, 2);
  auto msgs = split(out);
  ASSERT_EQ(msgs.size(), 4u);
  auto err = read(msgs[0]);
  EXPECT_EQ(one(err, 1), "3");
  auto ef = read(one(err, 2));
  EXPECT_EQ(one(ef, 1), "103");
  EXPECT_EQ(one(ef, 2), "permission denied");
  EXPECT_EQ(one(ef, 3), "<absent>");  // not temporary: proto3 omits false
  auto pub = read(msgs[1]);
  EXPECT_EQ(one(pub, 1), "4");
  EXPECT_EQ(one(pub, 8), "");  // PublishResult present and empty
  EXPECT_TRUE(msgs[2].empty());  // ping: an empty Reply
  auto ps = read(one(read(msgs[3]), 10));
  EXPECT_EQ(one(ps, 1), "7");
  EXPECT_EQ(one(ps, 2), "2");
}

TEST(protobuf_encode, connect_reply_with_a_server_side_subscription) {
  protobuf_encoder e;
  connect_result r;
  r.client = "c1";
  r.version = "0.1";
  r.ping = 25;
  r.pong = true;
  sub_position sp;
  sp.channel = "personal:#u1";
  sp.offset = 300;  // a 2-byte varint
  sp.epoch = "ep";
  sp.recoverable = true;
  r.subs.push_back(sp);
  std::string out;
  e.connect_reply(out, 1, r);
  auto msgs = split(out);
  ASSERT_EQ(msgs.size(), 1u);
  auto c = read(one(read(msgs[0]), 5));
  EXPECT_EQ(one(c, 1), "c1");
  EXPECT_EQ(one(c, 2), "0.1");
  EXPECT_EQ(one(c, 7), "25");
  EXPECT_EQ(one(c, 8), "1");
  auto entry = read(one(c, 6));
  EXPECT_EQ(one(entry, 1), "personal:#u1");
  auto sr = read(one(entry, 2));
  EXPECT_EQ(one(sr, 3), "1");
  EXPECT_EQ(one(sr, 6), "ep");
  EXPECT_EQ(one(sr, 9), "300");
}

TEST(protobuf_encode, publication_push_over_127_bytes_has_a_two_byte_length) {
  protobuf_encoder e;
  publication_view p;
  p.channel = "chat:big";
  const std::string data(300, 'd');
  p.data = data;
  p.offset = 12;
  p.has_info = true;
  p.info.user = "u";
  p.info.client = "cid";
  p.info.conn_info = "{\"n\":1}";
  std::string out;
  e.publication_push(out, p);
  EXPECT_GT(static_cast<std::uint8_t>(out[0]), 0x7F);  // the frame's length needs 2 bytes
  auto msgs = split(out);
  ASSERT_EQ(msgs.size(), 1u);
  auto push = read(one(read(msgs[0]), 4));
  EXPECT_EQ(one(push, 2), "chat:big");
  auto pub = read(one(push, 4));
  EXPECT_EQ(one(pub, 4), data);
  EXPECT_EQ(one(pub, 6), "12");
  auto info = read(one(pub, 5));
  EXPECT_EQ(one(info, 1), "u");
  EXPECT_EQ(one(info, 2), "cid");
  EXPECT_EQ(one(info, 3), "{\"n\":1}");
}

TEST(protobuf_encode, pushes_without_a_channel_and_history) {
  protobuf_encoder e;
  std::string out;
  e.refresh_push(out, true, 60);
  e.unsubscribe_push(out, "ch", unsubscribe_code::server, "server unsubscribe");
  publication_view a, b;
  a.data = "1";
  a.offset = 1;
  b.data = "2";
  b.offset = 2;
  const publication_view pubs[] = {a, b};
  e.history_reply(out, 9, pubs, "ep", 2);
  auto msgs = split(out);
  ASSERT_EQ(msgs.size(), 3u);
  auto refresh = read(one(read(msgs[0]), 4));
  EXPECT_EQ(one(refresh, 2), "<absent>");  // no channel
  auto rf = read(one(refresh, 12));
  EXPECT_EQ(one(rf, 1), "1");
  EXPECT_EQ(one(rf, 2), "60");
  auto un = read(one(read(one(read(msgs[1]), 4)), 7));
  EXPECT_EQ(one(un, 2), "2000");
  EXPECT_EQ(one(un, 3), "server unsubscribe");
  auto h = read(one(read(msgs[2]), 11));
  EXPECT_EQ(h.count(1), 2u);
  EXPECT_EQ(one(h, 2), "ep");
  EXPECT_EQ(one(h, 3), "2");
}

}  // namespace
