// The JSON format's reader: every method parsed with all fields, batches,
// pongs, malformed input.
#include "session/json_reader.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

namespace sb::proto {
namespace {

// The parser's views die with the callback: tests copy what they check.
struct owned_sub {
  std::string key, channel, token, epoch, data, delta;
  bool recover = false, positioned = false, recoverable = false, join_leave = false;
  std::uint64_t offset = 0;
};
owned_sub own(std::string_view key, const subscribe_request& s) {
  return {std::string(key), std::string(s.channel), std::string(s.token), std::string(s.epoch),
          std::string(s.data_json), std::string(s.delta), s.recover, s.positioned, s.recoverable, s.join_leave,
          s.offset};
}
struct owned {
  std::uint32_t id = 0;
  method m = method::none;
  std::string a, b, c, d;  // per method, see copy()
  owned_sub sub;
  std::vector<owned_sub> subs;
  std::int32_t limit = 0;
  bool has_since = false, reverse = false;
  std::uint64_t since_offset = 0;
};
owned copy(const command& c) {
  owned o;
  o.id = c.id;
  o.m = c.m;
  switch (c.m) {
    case method::connect:
      o.a = c.connect.token, o.b = c.connect.name, o.c = c.connect.version, o.d = c.connect.data_json;
      for (auto& [k, s] : c.connect.subs) o.subs.push_back(own(k, s));
      break;
    case method::subscribe: o.sub = own("", c.subscribe); break;
    case method::unsubscribe: o.a = c.unsubscribe.channel; break;
    case method::publish: o.a = c.publish.channel, o.d = c.publish.data_json; break;
    case method::presence: o.a = c.presence.channel; break;
    case method::presence_stats: o.a = c.presence_stats.channel; break;
    case method::history:
      o.a = c.history.channel, o.b = c.history.since_epoch, o.limit = c.history.limit;
      o.has_since = c.history.has_since, o.reverse = c.history.reverse, o.since_offset = c.history.since_offset;
      break;
    case method::rpc: o.a = c.rpc.method_name, o.d = c.rpc.data_json; break;
    case method::send: o.d = c.send.data_json; break;
    case method::refresh: o.a = c.refresh.token; break;
    case method::sub_refresh: o.a = c.sub_refresh.channel, o.b = c.sub_refresh.token; break;
    case method::ping:
    case method::none: break;
  }
  return o;
}

struct result {
  parse_error err;
  std::vector<owned> cmds;
};
result parse(command_parser& p, std::string_view frame) {
  result r;
  r.err = p.parse(frame, [&](const command& c) { r.cmds.push_back(copy(c)); });
  return r;
}
result parse(std::string_view frame) {
  command_parser p;
  return parse(p, frame);
}
owned one(std::string_view line) {
  auto r = parse(line);
  EXPECT_EQ(r.err, parse_error::none) << line;
  EXPECT_EQ(r.cmds.size(), 1u) << line;
  return r.cmds.empty() ? owned{} : r.cmds[0];
}
parse_error err(std::string_view frame) { return parse(frame).err; }

TEST(json_reader, connect_all_fields) {
  auto c = one(R"({"id":1,"connect":{"token":"t\u00e9k","name":"js","version":"5.0","data":{"a":[1,2.50,1e3]},)"
               R"("subs":{"news":{"recover":true,"offset":18446744073709551615,"epoch":"ep"},"b\"c":{}}}})");
  EXPECT_EQ(c.id, 1u);
  EXPECT_EQ(c.m, method::connect);
  EXPECT_EQ(c.a, "t\xC3\xA9k");
  EXPECT_EQ(c.b, "js");
  EXPECT_EQ(c.c, "5.0");
  EXPECT_EQ(c.d, R"({"a":[1,2.50,1e3]})");  // byte for byte: numbers not rewritten
  ASSERT_EQ(c.subs.size(), 2u);
  EXPECT_EQ(c.subs[0].key, "news");
  EXPECT_TRUE(c.subs[0].recover);
  EXPECT_EQ(c.subs[0].offset, 18446744073709551615ull);
  EXPECT_EQ(c.subs[0].epoch, "ep");
  EXPECT_EQ(c.subs[1].key, "b\"c");
}

TEST(json_reader, subscribe_all_fields) {
  auto c = one(R"({"id":7,"subscribe":{"channel":"chat:1","token":"tok","recover":true,"epoch":"xyz",)"
               R"("offset":42,"data":"str","positioned":true,"recoverable":true,"join_leave":true,"delta":"fossil"}})");
  EXPECT_EQ(c.m, method::subscribe);
  EXPECT_EQ(c.id, 7u);
  EXPECT_EQ(c.sub.channel, "chat:1");
  EXPECT_EQ(c.sub.token, "tok");
  EXPECT_TRUE(c.sub.recover && c.sub.positioned && c.sub.recoverable && c.sub.join_leave);
  EXPECT_EQ(c.sub.epoch, "xyz");
  EXPECT_EQ(c.sub.offset, 42u);
  EXPECT_EQ(c.sub.data, R"("str")");
  EXPECT_EQ(c.sub.delta, "fossil");
}

TEST(json_reader, other_methods) {
  auto u = one(R"({"id":2,"unsubscribe":{"channel":"a"}})");
  EXPECT_EQ(u.m, method::unsubscribe);
  EXPECT_EQ(u.a, "a");
  auto p = one(R"({"id":3,"publish":{"channel":"c","data":{"text":"hi \"x\""} }})");
  EXPECT_EQ(p.m, method::publish);
  EXPECT_EQ(p.a, "c");
  EXPECT_EQ(p.d, R"({"text":"hi \"x\""})");
  EXPECT_EQ(one(R"({"id":4,"presence":{"channel":"c"}})").a, "c");
  auto ps = one(R"({"id":5,"presence_stats":{"channel":"d"}})");
  EXPECT_EQ(ps.m, method::presence_stats);
  EXPECT_EQ(ps.a, "d");
  auto h = one(R"({"id":6,"history":{"channel":"c","limit":-1,"since":{"offset":9,"epoch":"e"},"reverse":true}})");
  EXPECT_EQ(h.m, method::history);
  EXPECT_EQ(h.limit, -1);
  EXPECT_TRUE(h.has_since);
  EXPECT_EQ(h.since_offset, 9u);
  EXPECT_EQ(h.b, "e");
  EXPECT_TRUE(h.reverse);
  EXPECT_FALSE(one(R"({"id":6,"history":{"channel":"c"}})").has_since);
  EXPECT_EQ(one(R"({"id":8,"ping":{}})").m, method::ping);
  auto s = one(R"({"send":{"data":[1,{"x":null}]}})");
  EXPECT_EQ(s.m, method::send);
  EXPECT_EQ(s.id, 0u);
  EXPECT_EQ(s.d, R"([1,{"x":null}])");
  auto r = one(R"({"id":9,"rpc":{"method":"m","data":12345678901234567890123}})");
  EXPECT_EQ(r.m, method::rpc);
  EXPECT_EQ(r.a, "m");
  EXPECT_EQ(r.d, "12345678901234567890123");
  EXPECT_EQ(one(R"({"id":10,"refresh":{"token":"nt"}})").a, "nt");
  auto sr = one(R"({"id":11,"sub_refresh":{"channel":"c","token":"st"}})");
  EXPECT_EQ(sr.m, method::sub_refresh);
  EXPECT_EQ(sr.a, "c");
  EXPECT_EQ(sr.b, "st");
}

TEST(json_reader, pong_and_blank_lines) {
  auto c = one("{}");
  EXPECT_EQ(c.m, method::none);
  EXPECT_EQ(c.id, 0u);
  EXPECT_EQ(one(R"({"id":0})").m, method::none);
  auto r = parse("\n  \r\n{}\r\n\n");
  EXPECT_EQ(r.err, parse_error::none);
  EXPECT_EQ(r.cmds.size(), 1u);
  EXPECT_EQ(parse("").cmds.size(), 0u);
  EXPECT_EQ(parse("").err, parse_error::none);
}

TEST(json_reader, batch_in_order_and_stops_at_error) {
  command_parser p;
  auto r = parse(p, "{\"id\":1,\"subscribe\":{\"channel\":\"a\"}}\n{\"id\":2,\"publish\":{\"channel\":\"a\",\"data\":1}}\n{}");
  ASSERT_EQ(r.err, parse_error::none);
  ASSERT_EQ(r.cmds.size(), 3u);
  EXPECT_EQ(r.cmds[0].m, method::subscribe);
  EXPECT_EQ(r.cmds[1].m, method::publish);
  EXPECT_EQ(r.cmds[2].m, method::none);
  r = parse(p, "{\"id\":1,\"ping\":{}}\n{\"id\":2,\n{\"id\":3,\"ping\":{}}");
  EXPECT_EQ(r.err, parse_error::bad_json);
  EXPECT_EQ(r.cmds.size(), 1u);
  // Reuse after an error, and a bigger frame than before.
  std::string big = "{\"id\":1,\"publish\":{\"channel\":\"a\",\"data\":\"" + std::string(100000, 'x') + "\"}}";
  r = parse(p, big + "\n" + big);
  EXPECT_EQ(r.err, parse_error::none);
  ASSERT_EQ(r.cmds.size(), 2u);
  EXPECT_EQ(r.cmds[1].d.size(), 100002u);
}

TEST(json_reader, callback_may_stop) {
  command_parser p;
  int n = 0;
  auto e = p.parse("{}\n{}\n{}", [&](const command&) { return ++n < 2; });
  EXPECT_EQ(e, parse_error::none);
  EXPECT_EQ(n, 2);
}

TEST(json_reader, unknown_fields_ignored) {
  auto c = one(R"({"id":1,"future":{"a":[1,2,{"b":null}]},"publish":{"channel":"c","data":1,"type":0,"x":"y"},"z":true})");
  EXPECT_EQ(c.m, method::publish);
  EXPECT_EQ(c.a, "c");
  EXPECT_EQ(c.d, "1");
  // Null known fields and a null request read as absent.
  auto n = one(R"({"id":1,"publish":{"channel":null,"data":null},"subscribe":null})");
  EXPECT_EQ(n.m, method::publish);
  EXPECT_EQ(n.a, "");
  EXPECT_EQ(n.d, "");
}

TEST(json_reader, escaped_keys_are_matched) {
  EXPECT_EQ(one(R"({"\u0069d":5,"p\u0069ng":{}})").id, 5u);
}

TEST(json_reader, bad_json) {
  EXPECT_EQ(err("{"), parse_error::bad_json);
  EXPECT_EQ(err(R"({"id":1,"publish":{"channel":"c")"), parse_error::bad_json);
  EXPECT_EQ(err(R"({"id":1,"publish":{"channel":"c"}}x)"), parse_error::bad_json);
  EXPECT_EQ(err("{}{}"), parse_error::bad_json);
  EXPECT_EQ(err("\x01\xff\xfe garbage"), parse_error::bad_json);
  EXPECT_EQ(err("{\"id\":1,\"ping\":{\"a\":\"\xff\"}}"), parse_error::bad_json);  // invalid UTF-8
  EXPECT_EQ(err(R"({"id":1,"publish":{"channel":"c","data":{"a":tru}}})"), parse_error::bad_json);
  EXPECT_EQ(err(R"({"id":1,"publish":{"channel":"c","data":[1,]}})"), parse_error::bad_json);
  EXPECT_EQ(err(R"({"id":1,"junk":[01],"ping":{}})"), parse_error::bad_json);  // skipped values are validated
  EXPECT_EQ(err(R"({"id":1,"ping":{},})"), parse_error::bad_json);
  EXPECT_EQ(err(R"({"id":1 "ping":{}})"), parse_error::bad_json);
  EXPECT_EQ(err(R"({"id":1,"publish":{"channel":"\x"}})"), parse_error::bad_json);
  EXPECT_EQ(err(R"({"id":01})"), parse_error::bad_json);
}

TEST(json_reader, bad_command) {
  EXPECT_EQ(err("[]"), parse_error::bad_command);
  EXPECT_EQ(err("42"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":4294967296,"ping":{}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":99999999999999999999999,"ping":{}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":-1,"ping":{}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1.5,"ping":{}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1e2,"ping":{}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":"1","ping":{}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1,"ping":{},"publish":{"channel":"c"}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1,"ping":{},"ping":{}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1,"publish":{"channel":5}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1,"publish":"c"})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1,"subscribe":{"channel":"c","recover":1}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1,"subscribe":{"channel":"c","offset":-3}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1,"history":{"channel":"c","limit":2147483648}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1,"history":{"channel":"c","since":5}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1,"connect":{"subs":[]}})"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"publish":{"channel":"c"}})"), parse_error::bad_command);  // id needed
  EXPECT_EQ(err(R"({"id":3})"), parse_error::bad_command);                    // id but no request
}

TEST(json_reader, too_deep) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  EXPECT_EQ(err(R"({"id":1,"publish":{"channel":"c","data":)" + deep + "}}"), parse_error::bad_command);
  EXPECT_EQ(err(R"({"id":1,"x":)" + deep + R"(,"ping":{}})"), parse_error::bad_command);
  std::string ok(60, '[');
  ok += std::string(60, ']');
  EXPECT_EQ(err(R"({"id":1,"publish":{"channel":"c","data":)" + ok + "}}"), parse_error::none);
  std::string huge(100000, '[');
  EXPECT_NE(err(R"({"id":1,"x":)" + huge), parse_error::none);
}

TEST(json_reader, random_bytes_never_crash) {
  command_parser p;
  std::uint32_t x = 12345;
  std::string frame;
  for (int round = 0; round < 2000; ++round) {
    frame.clear();
    int n = static_cast<int>(x % 64);
    for (int i = 0; i < n; ++i) {
      x = x * 1664525u + 1013904223u;
      static constexpr char alphabet[] = "{}[]\":,\n 01-.eE\\utrfnalsx\xff";
      frame.push_back(alphabet[(x >> 24) % (sizeof alphabet - 1)]);
    }
    (void)p.parse(frame, [](const command&) {});
  }
}

}  // namespace
}  // namespace sb::proto
