// The backend proxy's parts that need no backend: the circuit breaker with
// a clock the test moves (opens on the failure ratio past min_requests,
// fails fast while open, one probe when half-open, closes or opens again;
// old failures leave the window), the backend answer parser (every
// documented shape, and what is refused as bad_response), the request
// JSON, endpoint URLs, and the config keys. The HTTP side and the protocol
// are in tests/integration/centrifuge_js/proxy.test.mjs.

#include "gateway/circuit_breaker.hpp"
#include "gateway/config.hpp"
#include "gateway/proxy.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>
#include <string>

namespace {

using sb::circuit_breaker;
using state = circuit_breaker::state;
using o_t = sb::proxy_reply::outcome;
using namespace std::chrono_literals;

sb::breaker_options breaker(std::uint32_t min_requests = 4, double ratio = 0.5) {
  sb::breaker_options o;
  o.min_requests = min_requests;
  o.failure_ratio = ratio;
  o.window_ms = 10'000;
  o.open_ms = 1'000;
  o.half_open_probes = 1;
  return o;
}

TEST(circuit_breaker, opens_past_min_requests_at_the_ratio_and_fails_fast) {
  circuit_breaker b(breaker());
  auto t = circuit_breaker::clock::time_point(100s);
  // Three failures: under min_requests, it stays closed.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b.allow(t));
    b.record(false, t);
  }
  EXPECT_EQ(b.current(), state::closed);
  ASSERT_TRUE(b.allow(t));
  b.record(false, t);
  EXPECT_EQ(b.current(), state::open);
  EXPECT_EQ(b.opened_count(), 1u);
  EXPECT_FALSE(b.allow(t + 999ms));
}

TEST(circuit_breaker, successes_keep_it_closed_below_the_ratio) {
  circuit_breaker b(breaker(4, 0.5));
  auto t = circuit_breaker::clock::time_point(100s);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(b.allow(t));
    b.record(i % 3 == 0, t);  // a third succeed: 2/3 fail, opens
    if (b.current() == state::open) break;
  }
  EXPECT_EQ(b.current(), state::open);
  circuit_breaker c(breaker(4, 0.6));
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(c.allow(t));
    c.record(i % 3 != 0, t);  // a third fail: stays closed
  }
  EXPECT_EQ(c.current(), state::closed);
}

TEST(circuit_breaker, half_open_lets_one_probe_through_which_closes_or_reopens_it) {
  circuit_breaker b(breaker(1, 1.0));
  auto t = circuit_breaker::clock::time_point(100s);
  ASSERT_TRUE(b.allow(t));
  b.record(false, t);
  ASSERT_EQ(b.current(), state::open);
  auto later = t + 1000ms;
  EXPECT_TRUE(b.allow(later));   // the probe
  EXPECT_EQ(b.current(), state::half_open);
  EXPECT_FALSE(b.allow(later));  // only one
  b.record(false, later);        // it failed: open again, for open_ms from now
  EXPECT_EQ(b.current(), state::open);
  EXPECT_EQ(b.opened_count(), 2u);
  EXPECT_FALSE(b.allow(later + 999ms));
  EXPECT_TRUE(b.allow(later + 1000ms));
  b.release_probe();  // not sent after all (our own bound): may be taken again
  EXPECT_TRUE(b.allow(later + 1000ms));
  b.record(true, later + 1000ms);
  EXPECT_EQ(b.current(), state::closed);
  EXPECT_TRUE(b.allow(later + 1000ms));
}

TEST(circuit_breaker, failures_leave_the_window) {
  circuit_breaker b(breaker(4, 0.5));
  auto t = circuit_breaker::clock::time_point(100s);
  for (int i = 0; i < 3; ++i) b.record(false, t);
  // 11 s later the three are out of the 10 s window: one more does not open it.
  b.record(false, t + 11s);
  EXPECT_EQ(b.current(), state::closed);
  for (int i = 0; i < 3; ++i) b.record(false, t + 11s);
  EXPECT_EQ(b.current(), state::open);
}

TEST(proxy_reply, results_of_each_kind) {
  auto r = sb::parse_proxy_reply(sb::proxy_kind::connect,
                                 R"({"result":{"user":"56","expire_at":1700000000,"info":{"a": [1, 2]},)"
                                 R"("data":{"w":true},"channels":["news","chat:1"]}})");
  ASSERT_EQ(r.what, o_t::result);
  EXPECT_EQ(r.user, "56");
  EXPECT_EQ(r.expire_at, 1700000000);
  EXPECT_EQ(r.info, R"({"a":[1,2]})");
  EXPECT_EQ(r.data, R"({"w":true})");
  ASSERT_EQ(r.channels.size(), 2u);
  EXPECT_EQ(r.channels[1], "chat:1");
  r = sb::parse_proxy_reply(sb::proxy_kind::refresh, R"({"result":{"expired":true}})");
  ASSERT_EQ(r.what, o_t::result);
  EXPECT_TRUE(r.expired);
  r = sb::parse_proxy_reply(sb::proxy_kind::rpc, R"({"result":{"data":"x"}})");
  ASSERT_EQ(r.what, o_t::result);
  EXPECT_EQ(r.data, R"("x")");
  // Subscribe, publish, rpc may answer {} (an empty result).
  EXPECT_EQ(sb::parse_proxy_reply(sb::proxy_kind::publish, "{}").what, o_t::result);
  EXPECT_EQ(sb::parse_proxy_reply(sb::proxy_kind::connect, "{}").what, o_t::bad_response);
  EXPECT_EQ(sb::parse_proxy_reply(sb::proxy_kind::connect, R"({"result":{}})").what, o_t::bad_response);  // no user
  EXPECT_EQ(sb::parse_proxy_reply(sb::proxy_kind::connect, R"({"result":{"user":""}})").what, o_t::result);
}

TEST(proxy_reply, errors_and_disconnects) {
  auto r = sb::parse_proxy_reply(sb::proxy_kind::subscribe, R"({"error":{"code":1000,"message":"no","temporary":true}})");
  ASSERT_EQ(r.what, o_t::error);
  EXPECT_EQ(r.code, 1000u);
  EXPECT_EQ(r.message, "no");
  EXPECT_TRUE(r.temporary);
  r = sb::parse_proxy_reply(sb::proxy_kind::connect, R"({"disconnect":{"code":4501,"reason":")" + std::string(300, 'x') + R"("}})");
  ASSERT_EQ(r.what, o_t::disconnect);
  EXPECT_EQ(r.code, 4501u);
  EXPECT_EQ(r.message.size(), 122u);  // fits a close frame
}

TEST(proxy_reply, what_is_not_a_documented_answer_is_bad_response) {
  for (const char* bad : {"", "garbage", "[1]", "42", R"({"result":42})", R"({"result":{"user":5}})",
                          R"({"result":{"user":"a","expire_at":-1}})", R"({"result":{"user":"a","expire_at":"soon"}})",
                          R"({"result":{"user":"a","channels":"news"}})", R"({"result":{"user":"a","channels":[1]}})",
                          R"({"result":{"user":"a","expired":"yes"}})", R"({"error":{"message":"no code"}})",
                          R"({"error":{"code":0}})", R"({"error":{"code":-5}})", R"({"error":{"code":1,"message":7}})",
                          R"({"error":{"code":99999999999}})", R"({"disconnect":{"code":1000}})",
                          R"({"disconnect":{"code":5000}})", R"({"disconnect":{"code":4000,"reason":1}})",
                          R"({"result":{"user":"a"})", "{\"result\":{\"user\":\"\xff\"}}"}) {
    EXPECT_EQ(sb::parse_proxy_reply(sb::proxy_kind::connect, bad).what, o_t::bad_response) << bad;
  }
}

TEST(proxy_request, body_is_centrifugo_proxy_json) {
  sb::proxy_request r;
  r.client = "c-1";
  r.user = "u\"1";
  r.channel = "chat:1";
  r.data = R"({"x":1})";
  std::string body = sb::proxy_request_body(r);
  EXPECT_EQ(body, R"({"client":"c-1","transport":"websocket","protocol":"json","encoding":"json","user":"u\"1",)"
                  R"("channel":"chat:1","data":{"x":1}})");
  simdjson::dom::parser p;
  EXPECT_EQ(p.parse(body).error(), simdjson::SUCCESS);
  sb::proxy_request anon;
  EXPECT_EQ(sb::proxy_request_body(anon),
            R"({"client":"","transport":"websocket","protocol":"json","encoding":"json","user":""})");
}

TEST(proxy_request, a_protobuf_clients_payload_goes_as_b64data) {
  sb::proxy_request r;
  r.client = "c-2";
  r.user = "u";
  r.binary = true;
  r.data = std::string_view("\x00\xff" "bin", 5);
  EXPECT_EQ(sb::proxy_request_body(r), R"({"client":"c-2","transport":"websocket","protocol":"protobuf",)"
                                       R"("encoding":"binary","user":"u","b64data":"AP9iaW4="})");
}

TEST(proxy_reply, b64data_is_decoded_for_binary_clients) {
  using o_t = sb::proxy_reply::outcome;
  for (auto [b64, bytes] : {std::pair<const char*, std::string>{"AP9iaW4=", std::string("\x00\xff" "bin", 5)},
                            {"YWJj", "abc"}, {"YQ==", "a"}, {"", ""}}) {
    auto r = sb::parse_proxy_reply(sb::proxy_kind::rpc, std::string(R"({"result":{"b64data":")") + b64 + "\"}}");
    ASSERT_EQ(r.what, o_t::result) << b64;
    EXPECT_EQ(r.data, bytes) << b64;
  }
  for (const char* bad : {R"({"result":{"b64data":"abc"}})", R"({"result":{"b64data":"!!!!"}})",
                          R"({"result":{"b64data":1}})"}) {
    EXPECT_EQ(sb::parse_proxy_reply(sb::proxy_kind::rpc, bad).what, o_t::bad_response) << bad;
  }
}

TEST(proxy_url, parsed_and_refused) {
  auto u = sb::parse_http_url("http://127.0.0.1:8080/centrifugo/connect", "k");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/centrifugo/connect");
  u = sb::parse_http_url("http://backend", "k");
  EXPECT_EQ(u.host, "backend");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.target, "/");
  u = sb::parse_http_url("http://[::1]:81/x", "k");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 81);
  for (const char* bad : {"https://a/x", "ftp://a", "a:80/x", "http://", "http://:80/x", "http://a:0/", "http://a:70000/",
                          "http://a:x/", "http://[::1/x", "http://user:pw@a/"}) {
    EXPECT_THROW(sb::parse_http_url(bad, "k"), sb::config_error) << bad;
  }
}

std::string write_temp(const std::string& text) {
  std::string path = testing::TempDir() + "sb_proxy_config_test.toml";
  std::ofstream(path) << text;
  return path;
}

TEST(proxy_config, keys_defaults_and_errors) {
  sb::config c;
  EXPECT_FALSE(c.proxy.any());
  EXPECT_EQ(c.proxy.max_connections, 16u);
  sb::load_config_file(write_temp("connect_proxy_endpoint = \"http://127.0.0.1:9/c\"\nconnect_proxy_timeout = \"2s\"\n"
                                  "rpc_proxy_endpoint = \"http://127.0.0.1:9/r\"\nproxy_max_connections = 4\n"
                                  "proxy_max_pending = 0\nproxy_breaker_failure_ratio = 0.25\n"
                                  "proxy_breaker_min_requests = 7\nproxy_breaker_window = \"5s\"\n"
                                  "proxy_breaker_open_time = \"750ms\"\nproxy_breaker_half_open_probes = 2\n"
                                  "subscribe_proxy_endpoint = \"http://127.0.0.1:9/s\"\n"
                                  "[[namespaces]]\nname = \"g\"\nproxy_subscribe = true\n"),
                       c);
  EXPECT_TRUE(c.proxy.enabled(sb::proxy_kind::connect));
  EXPECT_TRUE(c.proxy.enabled(sb::proxy_kind::rpc));
  EXPECT_FALSE(c.proxy.enabled(sb::proxy_kind::publish));
  EXPECT_EQ(c.proxy[sb::proxy_kind::connect].timeout_ms, 2000u);
  EXPECT_EQ(c.proxy[sb::proxy_kind::connect].where.target, "/c");
  EXPECT_EQ(c.proxy[sb::proxy_kind::rpc].timeout_ms, 1000u);
  EXPECT_EQ(c.proxy.max_connections, 4u);
  EXPECT_EQ(c.proxy.max_pending, 0u);
  EXPECT_DOUBLE_EQ(c.proxy.breaker.failure_ratio, 0.25);
  EXPECT_EQ(c.proxy.breaker.min_requests, 7u);
  EXPECT_EQ(c.proxy.breaker.window_ms, 5000u);
  EXPECT_EQ(c.proxy.breaker.open_ms, 750u);
  EXPECT_EQ(c.proxy.breaker.half_open_probes, 2u);
  ASSERT_EQ(c.namespaces.size(), 1u);
  EXPECT_TRUE(c.namespaces[0].options.proxy_subscribe);
  for (const char* bad : {"connect_proxy_endpoint = \"https://x/\"\n", "rpc_proxy_timeout = \"0s\"\n",
                          "proxy_max_connections = 0\n", "proxy_breaker_failure_ratio = 0\n",
                          "proxy_breaker_failure_ratio = 1.5\n", "proxy_breaker_window = \"10ms\"\n",
                          "proxy_publish = true\n", "[[namespaces]]\nname = \"n\"\nproxy_subscribe = true\n"}) {
    sb::config d;
    EXPECT_THROW(sb::load_config_file(write_temp(bad), d), sb::config_error) << bad;
  }
}

}  // namespace
