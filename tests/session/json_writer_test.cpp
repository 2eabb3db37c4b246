// The JSON format's writer: every encoder read back with simdjson.
#include "session/json_reader.hpp"
#include "session/json_writer.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

namespace sb::proto {
namespace {

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

TEST(json_writer, string_escaping_round_trips) {
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

TEST(json_writer, error_reply) {
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

TEST(json_writer, connect_reply) {
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

TEST(json_writer, subscribe_history_presence_rpc_refresh) {
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

TEST(json_writer, pushes) {
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

TEST(json_writer, parsed_data_re_embeds) {
  command_parser p;
  std::string out;
  auto e = p.parse(R"({"id":1,"publish":{"channel":"a\u0000b","data":  {"x" : [1, 2.0e5, "\ud83d\ude00"]}  }})",
                   [&](const command& c) { encode_publication_push(out, c.publish.channel, c.publish.data_json, 1); });
  ASSERT_EQ(e, parse_error::none);
  EXPECT_EQ(out, R"({"push":{"channel":"a\u0000b","pub":{"data":{"x" : [1, 2.0e5, "\ud83d\ude00"]},"offset":1}}})");
  read_back(out);
}

}  // namespace
}  // namespace sb::proto
