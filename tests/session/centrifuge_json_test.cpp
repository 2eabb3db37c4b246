// Centrifuge v2 JSON codec: every method parsed with all fields, batches,
// pongs, malformed input, and every encoder read back with simdjson.
#include "session/centrifuge_json.hpp"

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

TEST(centrifuge_json_parse, connect_all_fields) {
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

TEST(centrifuge_json_parse, subscribe_all_fields) {
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

TEST(centrifuge_json_parse, other_methods) {
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

TEST(centrifuge_json_parse, pong_and_blank_lines) {
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

TEST(centrifuge_json_parse, batch_in_order_and_stops_at_error) {
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

TEST(centrifuge_json_parse, callback_may_stop) {
  command_parser p;
  int n = 0;
  auto e = p.parse("{}\n{}\n{}", [&](const command&) { return ++n < 2; });
  EXPECT_EQ(e, parse_error::none);
  EXPECT_EQ(n, 2);
}

TEST(centrifuge_json_parse, unknown_fields_ignored) {
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

TEST(centrifuge_json_parse, escaped_keys_are_matched) {
  EXPECT_EQ(one(R"({"\u0069d":5,"p\u0069ng":{}})").id, 5u);
}

TEST(centrifuge_json_parse, bad_json) {
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

TEST(centrifuge_json_parse, bad_command) {
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

TEST(centrifuge_json_parse, too_deep) {
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

TEST(centrifuge_json_parse, random_bytes_never_crash) {
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

// ---- encoders, read back with simdjson ---------------------------------------

simdjson::dom::parser& checker() {
  static simdjson::dom::parser p;
  return p;
}
simdjson::dom::element read_back(const std::string& s) {
  simdjson::dom::element e;
  auto err = checker().parse(s).get(e);
  EXPECT_EQ(err, simdjson::SUCCESS) << s;
  return e;
}
std::string str(simdjson::dom::element e) { return std::string(std::string_view(e)); }

const std::string weird = std::string("a\"b\\c/\n\r\t\b\f\x01\x1f\x7f", 14) + "\xC3\xA9\xF0\x9F\x98\x80 #user";

TEST(centrifuge_json_encode, string_escaping_round_trips) {
  std::string out;
  append_json_string(out, weird);
  EXPECT_EQ(str(read_back(out)), weird);
  // Invalid UTF-8 becomes U+FFFD per bad byte; the result is valid JSON.
  out.clear();
  append_json_string(out, "x\xff\xC3y\xED\xA0\x80z");
  EXPECT_EQ(str(read_back(out)), "x\xEF\xBF\xBD\xEF\xBF\xBDy\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz");
  out.clear();
  append_json_string(out, std::string_view("\0", 1));
  EXPECT_EQ(out, "\"\\u0000\"");
}

TEST(centrifuge_json_encode, error_reply) {
  std::string out;
  encode_error_reply(out, 3, error_code::permission_denied, weird);
  auto e = read_back(out);
  EXPECT_EQ(uint64_t(e["id"]), 3u);
  EXPECT_EQ(uint64_t(e["error"]["code"]), 103u);
  EXPECT_EQ(str(e["error"]["message"]), weird);
  EXPECT_TRUE(e["error"]["temporary"].error());  // omitted when false
  out.clear();
  encode_error_reply(out, 4, error_code::internal);
  EXPECT_EQ(out, R"({"id":4,"error":{"code":100,"message":"internal server error","temporary":true}})");
}

TEST(centrifuge_json_encode, connect_reply) {
  std::string out;
  connect_result r;
  r.client = "c-1";
  r.version = "1.0";
  r.expires = true;
  r.ttl = 60;
  r.data_json = R"({"k":1})";
  r.ping = 25;
  r.pong = true;
  sub_position a, b;
  a.channel = weird, a.offset = 7;
  b.channel = "n", b.epoch = "ep", b.recoverable = true;
  r.subs = {a, b};
  encode_connect_reply(out, 1, r);
  auto e = read_back(out);
  auto c = e["connect"];
  EXPECT_EQ(str(c["client"]), "c-1");
  EXPECT_EQ(str(c["version"]), "1.0");
  EXPECT_TRUE(bool(c["expires"]));
  EXPECT_EQ(uint64_t(c["ttl"]), 60u);
  EXPECT_EQ(int64_t(c["data"]["k"]), 1);
  EXPECT_EQ(uint64_t(c["ping"]), 25u);
  EXPECT_TRUE(bool(c["pong"]));
  EXPECT_EQ(uint64_t(c["subs"][weird]["offset"]), 7u);
  EXPECT_EQ(str(c["subs"]["n"]["epoch"]), "ep");
  EXPECT_TRUE(bool(c["subs"]["n"]["recoverable"]));
  EXPECT_TRUE(c["session"].error());
  out.clear();
  encode_connect_reply(out, 2, connect_result{});
  EXPECT_EQ(out, R"({"id":2,"connect":{}})");
}

TEST(centrifuge_json_encode, subscribe_history_presence_rpc_refresh) {
  std::string out;
  client_info_view info{"u\"1", "c1", R"({"n":1})", R"([2])"};
  std::pair<std::string_view, std::string_view> tags[] = {{"k\n", "v\""}};
  publication_view pubs[2];
  pubs[0].data = R"({"a":1})";
  pubs[0].offset = 5;
  pubs[0].has_info = true;
  pubs[0].info = info;
  pubs[0].tags = tags;
  pubs[1].data = "2";
  pubs[1].offset = 6;
  subscribe_result s;
  s.expires = true, s.ttl = 9, s.recoverable = true, s.epoch = "E", s.offset = 6, s.recovered = true;
  s.was_recovering = true, s.positioned = true, s.data_json = "null", s.publications = pubs;
  encode_subscribe_reply(out, 2, s);
  auto e = read_back(out)["subscribe"];
  EXPECT_TRUE(bool(e["expires"]) && bool(e["recoverable"]) && bool(e["recovered"]) && bool(e["was_recovering"]) &&
              bool(e["positioned"]));
  EXPECT_EQ(uint64_t(e["ttl"]), 9u);
  EXPECT_EQ(str(e["epoch"]), "E");
  EXPECT_EQ(uint64_t(e["offset"]), 6u);
  EXPECT_TRUE(e["data"].is_null());
  EXPECT_EQ(int64_t(e["publications"].at(0)["data"]["a"]), 1);
  EXPECT_EQ(str(e["publications"].at(0)["info"]["user"]), "u\"1");
  EXPECT_EQ(int64_t(e["publications"].at(0)["info"]["conn_info"]["n"]), 1);
  EXPECT_EQ(int64_t(e["publications"].at(0)["info"]["chan_info"].at(0)), 2);
  EXPECT_EQ(str(e["publications"].at(0)["tags"]["k\n"]), "v\"");
  EXPECT_EQ(uint64_t(e["publications"].at(1)["offset"]), 6u);

  out.clear();
  encode_history_reply(out, 3, pubs, "E", 6);
  auto h = read_back(out)["history"];
  EXPECT_EQ(simdjson::dom::array(h["publications"]).size(), 2u);
  EXPECT_EQ(str(h["epoch"]), "E");
  EXPECT_EQ(uint64_t(h["offset"]), 6u);

  out.clear();
  client_info_view clients[] = {info, {"", "c2", "", ""}};
  encode_presence_reply(out, 4, clients);
  auto p = read_back(out)["presence"]["presence"];
  EXPECT_EQ(str(p["c1"]["user"]), "u\"1");
  EXPECT_EQ(str(p["c2"]["user"]), "");  // user always written
  out.clear();
  encode_presence_stats_reply(out, 5, 3, 2);
  EXPECT_EQ(out, R"({"id":5,"presence_stats":{"num_clients":3,"num_users":2}})");
  out.clear();
  encode_rpc_reply(out, 6, R"({"r":true})");
  EXPECT_EQ(out, R"({"id":6,"rpc":{"data":{"r":true}}})");
  out.clear();
  encode_refresh_reply(out, 7, {"c", "v", true, 30});
  EXPECT_EQ(out, R"({"id":7,"refresh":{"client":"c","version":"v","expires":true,"ttl":30}})");
  out.clear();
  encode_sub_refresh_reply(out, 8, true, 31);
  EXPECT_EQ(out, R"({"id":8,"sub_refresh":{"expires":true,"ttl":31}})");
  out.clear();
  encode_empty_reply(out, 9, method::publish);
  EXPECT_EQ(out, R"({"id":9,"publish":{}})");
}

TEST(centrifuge_json_encode, pushes) {
  std::string out;
  client_info_view info{"u", weird, "", ""};
  encode_publication_push(out, weird, R"({"t":"x"})", 18446744073709551615ull, &info);
  auto e = read_back(out);
  EXPECT_TRUE(e["id"].error());
  EXPECT_EQ(str(e["push"]["channel"]), weird);
  EXPECT_EQ(str(e["push"]["pub"]["data"]["t"]), "x");
  EXPECT_EQ(uint64_t(e["push"]["pub"]["offset"]), 18446744073709551615ull);
  EXPECT_EQ(str(e["push"]["pub"]["info"]["client"]), weird);

  out.clear();
  encode_join_push(out, "c", info);
  EXPECT_EQ(str(read_back(out)["push"]["join"]["info"]["client"]), weird);
  out.clear();
  encode_leave_push(out, "c", info);
  EXPECT_EQ(str(read_back(out)["push"]["leave"]["info"]["user"]), "u");
  out.clear();
  encode_unsubscribe_push(out, weird, unsubscribe_code::server, weird);
  e = read_back(out);
  EXPECT_EQ(uint64_t(e["push"]["unsubscribe"]["code"]), 2000u);
  EXPECT_EQ(str(e["push"]["unsubscribe"]["reason"]), weird);
  out.clear();
  encode_subscribe_push(out, "s", {true, true, "ep", 3, R"({"d":1})"});
  e = read_back(out)["push"];
  EXPECT_EQ(str(e["channel"]), "s");
  EXPECT_TRUE(bool(e["subscribe"]["recoverable"]) && bool(e["subscribe"]["positioned"]));
  EXPECT_EQ(str(e["subscribe"]["epoch"]), "ep");
  EXPECT_EQ(uint64_t(e["subscribe"]["offset"]), 3u);
  EXPECT_EQ(int64_t(e["subscribe"]["data"]["d"]), 1);
  out.clear();
  encode_disconnect_push(out, disconnect_code::bad_request, weird);
  e = read_back(out)["push"];
  EXPECT_TRUE(e["channel"].error());
  EXPECT_EQ(uint64_t(e["disconnect"]["code"]), 3501u);
  EXPECT_EQ(str(e["disconnect"]["reason"]), weird);
  out.clear();
  encode_message_push(out, "[1]");
  EXPECT_EQ(out, R"({"push":{"message":{"data":[1]}}})");
  out.clear();
  encode_refresh_push(out, true, 5);
  EXPECT_EQ(out, R"({"push":{"refresh":{"expires":true,"ttl":5}}})");
  out.clear();
  encode_ping(out);
  EXPECT_EQ(out, "{}");
}

TEST(centrifuge_json_encode, parsed_data_re_embeds) {
  command_parser p;
  std::string out;
  auto e = p.parse(R"({"id":1,"publish":{"channel":"a\u0000b","data":  {"x" : [1, 2.0e5, "\ud83d\ude00"]}  }})",
                   [&](const command& c) { encode_publication_push(out, c.publish.channel, c.publish.data_json, 1); });
  ASSERT_EQ(e, parse_error::none);
  EXPECT_EQ(out, R"({"push":{"channel":"a\u0000b","pub":{"data":{"x" : [1, 2.0e5, "\ud83d\ude00"]},"offset":1}}})");
  read_back(out);
}

TEST(centrifuge_json_codes, documented_values) {
  EXPECT_EQ(error_message(error_code::token_expired), "token expired");
  EXPECT_EQ(error_message(error_code::unrecoverable_position), "unrecoverable position");
  EXPECT_TRUE(error_temporary(error_code::too_many_requests));
  EXPECT_FALSE(error_temporary(error_code::bad_request));
  EXPECT_EQ(disconnect_reason(disconnect_code::expired), "connection expired");
  EXPECT_EQ(disconnect_reason(disconnect_code::slow), "slow");
  EXPECT_TRUE(disconnect_reconnects(disconnect_code::slow));
  EXPECT_TRUE(disconnect_reconnects(disconnect_code::shutdown));
  EXPECT_FALSE(disconnect_reconnects(disconnect_code::bad_request));
  EXPECT_FALSE(disconnect_reconnects(disconnect_code::invalid_token));
  EXPECT_TRUE(disconnect_reconnects(4000));
  EXPECT_FALSE(disconnect_reconnects(4500));
}

}  // namespace
}  // namespace sb::proto
