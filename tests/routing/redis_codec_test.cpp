// The bytes the Redis engine keeps in Redis (routing/redis_codec.cpp):
// bodies, presence values and pub/sub messages round-trip exactly, the
// layout is pinned (every node of a cluster must read what the others
// wrote), and every malformed input — another node's bug, or anyone's with
// access to Redis — is refused with false, never read past its end.

#include "routing/redis_codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace sb::routing;
namespace codec = sb::routing::redis_codec;
using namespace std::string_literals;

client_info who(std::string user, std::string client, std::string conn = {}, std::string chan = {}) {
  return client_info{std::move(user), std::move(client), std::move(conn), std::move(chan)};
}

bool same(const client_info& a, const client_info& b) {
  return a.user == b.user && a.client == b.client && a.conn_info == b.conn_info && a.chan_info == b.chan_info;
}

publication pub(std::string data, bool has_info = false, client_info info = {}) {
  publication p;
  p.data = std::move(data);
  p.has_info = has_info;
  p.info = std::move(info);
  return p;
}

// Encodes, decodes, and expects what went in.
void round_trip(const publication& in) {
  std::string body = "prefix";  // encode appends
  codec::encode_body(in, body);
  ASSERT_EQ(body.substr(0, 6), "prefix");
  publication out;
  out.data = "stale";  // decode overwrites
  ASSERT_TRUE(codec::decode_body(std::string_view(body).substr(6), out));
  EXPECT_EQ(out.data, in.data);
  EXPECT_EQ(out.has_info, in.has_info);
  EXPECT_TRUE(same(out.info, in.has_info ? in.info : client_info{}));
}

const std::string binary = "a\0b:c::\xff\x80\r\n"s;

TEST(redis_codec, bodies_round_trip) {
  round_trip(pub(R"({"text":"hi"})"));
  round_trip(pub(R"({"text":"hi"})", true, who("u1", "c1", R"({"n":1})", R"({"r":2})")));
  round_trip(pub(""));
  round_trip(pub("", true, who("", "")));
  round_trip(pub(binary, true, who(binary, binary + "x", binary + "y", binary + "z")));
  // Lengths of one, two and three varint bytes, and one of megabytes.
  for (std::size_t n : {127u, 128u, 16'383u, 16'384u, 3u << 20}) {
    round_trip(pub(std::string(n, 'd'), true, who(std::string(n % 1000, 'u'), "c")));
  }
  // Info set on a publication without has_info is not written.
  std::string body;
  codec::encode_body(pub("x", false, who("u", "c")), body);
  publication out;
  ASSERT_TRUE(codec::decode_body(body, out));
  EXPECT_FALSE(out.has_info);
  EXPECT_TRUE(out.info.user.empty() && out.info.client.empty());
}

TEST(redis_codec, the_layout_is_pinned) {
  // flags, then data, user, client, conn_info, chan_info as varint length + bytes.
  std::string body;
  codec::encode_body(pub("ab", true, who("u", "cc", "", "{}")), body);
  EXPECT_EQ(body, "\x01\x02" "ab" "\x01u" "\x02" "cc" "\x00" "\x02{}"s);
  body.clear();
  codec::encode_body(pub(std::string(300, 'z')), body);
  EXPECT_EQ(body.substr(0, 3), "\x00\xac\x02"s);  // 300 = 0b10'0101100
  EXPECT_EQ(body.size(), 3u + 300u + 4u);
  std::string info;
  codec::encode_info(who("u", "c"), info);
  EXPECT_EQ(info, "\x01u\x01" "c\x00\x00"s);
  EXPECT_EQ(codec::encode_plain_message(pub("d")), "p0::\x00\x01" "d\x00\x00\x00\x00"s);
  EXPECT_EQ(codec::encode_presence_message(publication::kind::join, who("u", "c")),
            "j\x01\x00\x01u\x01" "c\x00\x00"s);
}

TEST(redis_codec, presence_values_round_trip) {
  for (const client_info& in : {who("u", "c"), who("", ""), who(binary, "", binary, std::string(20'000, 'i'))}) {
    std::string v;
    codec::encode_info(in, v);
    client_info out = who("stale", "stale", "stale", "stale");
    ASSERT_TRUE(codec::decode_info(v, out));
    EXPECT_TRUE(same(out, in));
  }
}

TEST(redis_codec, messages_split_into_their_parts) {
  codec::message m;
  std::string body;
  codec::encode_body(pub("x:y"), body);
  // As the publish script writes it: 'p' OFFSET ':' EPOCH ':' body.
  std::string stamped = "p42:epoch-1:" + body;
  ASSERT_TRUE(codec::decode_message(stamped, m));
  EXPECT_EQ(m.what, publication::kind::publication);
  EXPECT_EQ(m.offset, 42u);
  EXPECT_EQ(m.epoch, "epoch-1");
  EXPECT_EQ(m.body, body);  // a ':' inside the body is the body's
  EXPECT_EQ(m.body.data(), stamped.data() + 12);  // a view into the payload, not a copy

  ASSERT_TRUE(codec::decode_message("p18446744073709551615:" + std::string(64, 'e') + ":", m));  // the limits
  EXPECT_EQ(m.offset, 18446744073709551615u);
  EXPECT_EQ(m.epoch.size(), 64u);
  EXPECT_TRUE(m.body.empty());

  // Without history: offset 0, no epoch.
  auto p = pub(binary, true, who("u", "c"));
  std::string plain = codec::encode_plain_message(p);
  ASSERT_TRUE(codec::decode_message(plain, m));
  EXPECT_EQ(m.what, publication::kind::publication);
  EXPECT_EQ(m.offset, 0u);
  EXPECT_TRUE(m.epoch.empty());
  publication out;
  ASSERT_TRUE(codec::decode_body(m.body, out));
  EXPECT_EQ(out.data, binary);
  EXPECT_TRUE(out.has_info && same(out.info, p.info));

  // Joins and leaves carry who, no data.
  for (auto what : {publication::kind::join, publication::kind::leave}) {
    m.offset = 9;
    m.epoch = "left over";
    std::string msg = codec::encode_presence_message(what, who("u2", binary));
    ASSERT_TRUE(codec::decode_message(msg, m));
    EXPECT_EQ(m.what, what);
    EXPECT_EQ(m.offset, 0u);
    EXPECT_TRUE(m.epoch.empty());
    publication ev;
    ASSERT_TRUE(codec::decode_body(m.body, ev));
    EXPECT_TRUE(ev.has_info);
    EXPECT_TRUE(ev.data.empty());
    EXPECT_TRUE(same(ev.info, who("u2", binary)));
  }
}

TEST(redis_codec, malformed_bodies_and_values_are_refused) {
  std::string good;
  codec::encode_body(pub("ab", true, who("u", "c")), good);
  std::vector<std::string> bad = {
      "",                             // nothing, not even flags
      "\x02\x00\x00\x00\x00\x00"s,    // an unknown flag
      "\x81\x00\x00\x00\x00\x00"s,    // an unknown flag with has_info
      "\xff"s,                        //
      "\x00"s,                        // flags only
      "\x00\x00\x00\x00\x00"s,        // one field short
      "\x00\x80"s,                    // a varint cut in its middle
      "\x00\x00\x00\x00\x00\x80"s,    // the last one cut
      "\x00\x05" "ab\x00\x00\x00\x00"s,  // a length past the end
      "\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s,  // a 64-bit length
      "\x00" + std::string(11, '\x80') + "\x00\x00\x00\x00\x00"s,  // a varint longer than 64 bits
      good + "x",                     // trailing bytes
      good + "\x00"s,
  };
  for (std::size_t cut = 0; cut < good.size(); ++cut) bad.push_back(good.substr(0, cut));  // every truncation
  for (const auto& in : bad) {
    publication p;
    EXPECT_FALSE(codec::decode_body(in, p)) << testing::PrintToString(in);
  }

  std::string value;
  codec::encode_info(who("user", "client", "{}", "{}"), value);
  std::vector<std::string> bad_values = {value + "x", "\x01"s, "\x05u\x00\x00\x00"s, "\x80"s,
                                         std::string(12, '\xff')};
  for (std::size_t cut = 0; cut < value.size(); ++cut) bad_values.push_back(value.substr(0, cut));
  bad_values.erase(bad_values.begin() + 5);  // the empty cut (none: "" has no fields, also refused below)
  for (const auto& in : bad_values) {
    client_info c;
    EXPECT_FALSE(codec::decode_info(in, c)) << testing::PrintToString(in);
  }
  client_info c;
  EXPECT_FALSE(codec::decode_info("", c));
}

TEST(redis_codec, malformed_messages_are_refused) {
  for (std::string in : {
           ""s, "x"s, "P1:e:"s, "J"s,   // no or unknown tag
           "p"s, "p1"s, "p1:e"s,         // a separator missing
           "p:e:"s, "p::"s,              // no offset
           "p0:e:"s,                     // offset 0 with an epoch
           "p1::"s, "p7::body"s,         // an offset without an epoch
           "p-1:e:"s, "p+1:e:"s, "p 1:e:"s, "p1 :e:"s, "p1x:e:"s, "p0x1:e:"s, "p\x00:e:"s,  // not digits
           "p18446744073709551616:e:"s,                               // past 64 bits
           "p000000000000000000001:e:"s,                               // longer than any offset
           "p99999999999999999999999999:e:"s,                          //
           "p1:" + std::string(65, 'e') + ":",                        // an epoch too long
       }) {
    codec::message m;
    EXPECT_FALSE(codec::decode_message(in, m)) << testing::PrintToString(in);
  }
  // A join or leave with no body is a message; its body is what is refused.
  codec::message m;
  ASSERT_TRUE(codec::decode_message("j", m));
  publication p;
  EXPECT_FALSE(codec::decode_body(m.body, p));
}

}  // namespace
