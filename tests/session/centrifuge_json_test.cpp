#include "session/centrifuge_json.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <deque>
#include <string>
#include <vector>

namespace {

using namespace sb::proto;

std::vector<command> parse_all(std::string_view frame, parse_error* err = nullptr) {
  static command_parser p;
  std::vector<command> out;
  // Copy what the views point at: they die with the next line.
  auto e = p.parse(frame, [&](const command& c) {
    out.push_back(c);
    static std::deque<std::string> keep;  // stable addresses: views point into it
    keep.emplace_back(c.subscribe.channel);
    out.back().subscribe.channel = keep.back();
    keep.emplace_back(c.publish.channel);
    out.back().publish.channel = keep.back();
    keep.emplace_back(c.connect.token);
    out.back().connect.token = keep.back();
  });
  if (err) *err = e;
  return out;
}

simdjson::dom::element json(const std::string& s) {
  static simdjson::dom::parser p;
  simdjson::dom::element e;
  EXPECT_EQ(p.parse(s).get(e), simdjson::SUCCESS) << s;
  return e;
}

TEST(centrifuge_json, parses_every_method) {
  parse_error err;
  auto cmds = parse_all(
      R"({"id":1,"connect":{"token":"t","name":"js","version":"5","data":{"a":[1,2]}}})"
      "\n"
      R"({"id":2,"subscribe":{"channel":"chat:1","recover":true,"offset":7,"epoch":"e","token":"s"}})"
      "\n"
      R"({"id":3,"publish":{"channel":"chat:1","data":{"text":"hi \"x\""}}})"
      "\n"
      R"({"id":4,"unsubscribe":{"channel":"chat:1"}})"
      "\n{}\n"
      R"({"id":5,"history":{"channel":"c","limit":10,"since":{"offset":3,"epoch":"x"},"reverse":true}})"
      "\n"
      R"({"id":6,"refresh":{"token":"r"}})"
      "\n"
      R"({"id":7,"sub_refresh":{"channel":"c","token":"s"}})"
      "\n"
      R"({"id":8,"presence":{"channel":"c"}})"
      "\n"
      R"({"id":9,"ping":{}})"
      "\n"
      R"({"send":{"data":1}})",
      &err);
  ASSERT_EQ(err, parse_error::none);
  ASSERT_EQ(cmds.size(), 11u);
  EXPECT_EQ(cmds[0].m, method::connect);
  EXPECT_EQ(cmds[0].connect.token, "t");
  EXPECT_EQ(cmds[0].connect.data_json, R"({"a":[1,2]})");
  EXPECT_EQ(cmds[1].m, method::subscribe);
  EXPECT_EQ(cmds[1].subscribe.channel, "chat:1");
  EXPECT_TRUE(cmds[1].subscribe.recover);
  EXPECT_EQ(cmds[1].subscribe.offset, 7u);
  EXPECT_EQ(cmds[2].m, method::publish);
  EXPECT_EQ(cmds[2].publish.data_json, R"({"text":"hi \"x\""})");
  EXPECT_EQ(cmds[3].m, method::unsubscribe);
  EXPECT_EQ(cmds[4].m, method::none);
  EXPECT_EQ(cmds[5].m, method::history);
  EXPECT_EQ(cmds[5].history.limit, 10);
  EXPECT_TRUE(cmds[5].history.has_since);
  EXPECT_EQ(cmds[5].history.since_offset, 3u);
  EXPECT_EQ(cmds[6].m, method::refresh);
  EXPECT_EQ(cmds[7].m, method::sub_refresh);
  EXPECT_EQ(cmds[8].m, method::presence);
  EXPECT_EQ(cmds[9].m, method::ping);
  EXPECT_EQ(cmds[10].m, method::send);
  EXPECT_EQ(cmds[10].id, 0u);
}

TEST(centrifuge_json, unknown_fields_are_ignored) {
  parse_error err;
  auto cmds = parse_all(R"({"id":1,"future":{"x":1},"subscribe":{"channel":"a","later":[1]}})", &err);
  ASSERT_EQ(err, parse_error::none);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].subscribe.channel, "a");
}

TEST(centrifuge_json, malformed_input_is_an_error) {
  std::string deep(200, '[');
  const std::vector<std::pair<std::string, parse_error>> cases = {
      {"\x01\x02garbage", parse_error::bad_json},
      {R"({"id":1,"publish":{"channel":"a")", parse_error::bad_json},
      {"{\"id\":1,\"publish\":{\"channel\":\"a\",\"data\":" + deep + "}}", parse_error::bad_json},
      {R"({"id":99999999999,"ping":{}})", parse_error::bad_command},
      {R"({"id":-1,"ping":{}})", parse_error::bad_command},
      {R"({"id":1.5,"ping":{}})", parse_error::bad_command},
      {R"({"id":1,"ping":{},"publish":{"channel":"a"}})", parse_error::bad_command},
      {R"({"id":1,"subscribe":{"channel":5}})", parse_error::bad_command},
      {R"({"id":1,"subscribe":"x"})", parse_error::bad_command},
      {R"({"id":1})", parse_error::bad_command},
      {R"([1,2])", parse_error::bad_command},
  };
  for (const auto& [input, want] : cases) {
    parse_error err;
    parse_all(input, &err);
    EXPECT_EQ(err, want) << input;
  }
}

TEST(centrifuge_json, encoders_produce_valid_json) {
  std::string weird = "ch\"\\\n\x01:ü";
  std::string out;
  encode_error_reply(out, 3, error_code::permission_denied, "permission \"denied\"");
  auto e = json(out);
  EXPECT_EQ(uint64_t(e["id"]), 3u);
  EXPECT_EQ(uint64_t(e["error"]["code"]), 103u);
  EXPECT_EQ(std::string_view(e["error"]["message"]), "permission \"denied\"");

  out.clear();
  connect_result cr;
  cr.client = "c-1";
  cr.version = "0.1";
  cr.expires = true;
  cr.ttl = 60;
  cr.ping = 25;
  cr.pong = true;
  cr.subs = {{weird, 5}};
  encode_connect_reply(out, 1, cr);
  e = json(out);
  EXPECT_EQ(std::string_view(e["connect"]["client"]), "c-1");
  EXPECT_EQ(uint64_t(e["connect"]["ping"]), 25u);
  EXPECT_TRUE(bool(e["connect"]["pong"]));
  EXPECT_EQ(uint64_t(e["connect"]["subs"][weird]["offset"]), 5u);

  out.clear();
  publication_view p;
  p.channel = weird;
  p.data = R"({"text":"hi"})";
  p.offset = 9;
  p.has_info = true;
  p.info.user = "42";
  p.info.client = "c";
  p.info.conn_info = R"({"name":"A"})";
  encode_publication_push(out, p);
  e = json(out);
  EXPECT_EQ(std::string_view(e["push"]["channel"]), weird);
  EXPECT_EQ(std::string_view(e["push"]["pub"]["data"]["text"]), "hi");
  EXPECT_EQ(uint64_t(e["push"]["pub"]["offset"]), 9u);
  EXPECT_EQ(std::string_view(e["push"]["pub"]["info"]["conn_info"]["name"]), "A");

  for (auto m : {method::publish, method::unsubscribe, method::ping}) {
    out.clear();
    encode_empty_reply(out, 7, m);
    e = json(out);
    EXPECT_TRUE(e[to_string(m)].is_object());
  }
  out.clear();
  subscribe_result sr;
  sr.offset = 4;
  sr.epoch = "ep";
  encode_subscribe_reply(out, 2, sr);
  e = json(out);
  EXPECT_EQ(uint64_t(e["subscribe"]["offset"]), 4u);
  out.clear();
  encode_disconnect_push(out, disconnect_code::bad_request, "bad request");
  e = json(out);
  EXPECT_EQ(uint64_t(e["push"]["disconnect"]["code"]), 3501u);
  out.clear();
  encode_ping(out);
  EXPECT_EQ(out, "{}");
}

}  // namespace
