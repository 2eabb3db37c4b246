#include "session/http_upgrade.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace sb::ws;

const std::string good =
    "GET /connection/websocket HTTP/1.1\r\nHost: example.com:8000\r\nUpgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

std::string with(std::string req, const std::string& from, const std::string& to) {
  auto pos = req.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return req.replace(pos, from.size(), to);
}

unsigned status_of(const upgrade_result& r) { return static_cast<unsigned>(std::stoul(r.response.substr(9, 3))); }

TEST(http_upgrade, rfc6455_sample_key) { EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); }

TEST(http_upgrade, accepts_a_good_request) {
  auto r = parse_upgrade(good, {});
  ASSERT_EQ(r.status, upgrade_status::accepted) << r.response;
  EXPECT_EQ(r.consumed, good.size());
  EXPECT_NE(r.response.find("101 Switching Protocols"), std::string::npos);
  EXPECT_NE(r.response.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos);
  EXPECT_EQ(r.response.find("Sec-WebSocket-Protocol"), std::string::npos);
}

TEST(http_upgrade, every_prefix_needs_more_and_trailing_bytes_are_not_consumed) {
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = parse_upgrade(std::string_view(good).substr(0, n), {});
    ASSERT_EQ(r.status, upgrade_status::need_more) << n;
    ASSERT_TRUE(r.response.empty());
  }
  std::string more = good + "\x81\x85";  // the client's first frame already
  auto r = parse_upgrade(more, {});
  ASSERT_EQ(r.status, upgrade_status::accepted);
  EXPECT_EQ(r.consumed, good.size());
}

struct bad_case {
  std::string request;
  unsigned status;
  std::string reason;
};

TEST(http_upgrade, rejections_have_status_and_reason) {
  std::vector<bad_case> cases = {
      {"\x16\x03\x01 not http at all\r\n\r\n", 400, "not_http"},
      {with(good, "GET", "POST"), 405, "bad_method"},
      {with(good, "/connection/websocket", "/other"), 404, "not_found"},
      {with(good, "HTTP/1.1", "HTTP/1.0"), 400, "http_version"},
      {with(good, "Upgrade: websocket\r\n", ""), 426, "not_upgrade"},
      {with(good, "Connection: keep-alive, Upgrade", "Connection: keep-alive"), 426, "not_upgrade"},
      {with(good, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12"), 426, "bad_version"},
      {with(good, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""), 400, "bad_key"},
      {with(good, "dGhlIHNhbXBsZSBub25jZQ==", "short=="), 400, "bad_key"},
      {with(good, "Host: example.com:8000\r\n", ""), 400, "no_host"},
      {with(good, "\r\n\r\n", "\r\nContent-Length: 3\r\n\r\nabc"), 400, "body"},
      {with(good, "\r\n\r\n", "\r\nOrigin: https://evil.example\r\n\r\n"), 403, "origin"},
  };
  for (const auto& c : cases) {
    auto r = parse_upgrade(c.request, {});
    ASSERT_EQ(r.status, upgrade_status::rejected) << c.request;
    EXPECT_EQ(status_of(r), c.status) << c.request;
    EXPECT_EQ(std::string(r.reason), c.reason) << c.request;
    EXPECT_NE(r.response.find("Connection: close\r\n"), std::string::npos);
  }
  auto r405 = parse_upgrade(with(good, "GET", "PUT"), {});
  EXPECT_NE(r405.response.find("Allow: GET\r\n"), std::string::npos);
  auto r426 = parse_upgrade(with(good, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"), {});
  EXPECT_NE(r426.response.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos);
}

TEST(http_upgrade, header_limit_gives_431) {
  upgrade_options o;
  o.header_limit = 8192;
  std::string big = with(good, "\r\n\r\n", "\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n");
  auto r = parse_upgrade(big, o);
  ASSERT_EQ(r.status, upgrade_status::rejected);
  EXPECT_EQ(status_of(r), 431u);
  // An unfinished header that already fills the limit is refused too.
  std::string unfinished = "GET /connection/websocket HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a');
  auto r2 = parse_upgrade(unfinished, o);
  ASSERT_EQ(r2.status, upgrade_status::rejected);
  EXPECT_EQ(status_of(r2), 431u);
}

TEST(http_upgrade, origin_rules) {
  EXPECT_TRUE(check_origin("", "h:1", {}));
  EXPECT_TRUE(check_origin("http://h:1", "h:1", {}));
  EXPECT_TRUE(check_origin("https://H:1", "h:1", {}));
  EXPECT_FALSE(check_origin("http://other:1", "h:1", {}));
  EXPECT_TRUE(check_origin("https://a.example.com", "x", {"https://*.example.com"}));
  EXPECT_FALSE(check_origin("https://example.org", "x", {"https://*.example.com"}));
  EXPECT_TRUE(check_origin("null", "x", {"*"}));
  EXPECT_TRUE(check_origin("http://127.0.0.1:5555", "x", {"http://127.0.0.1:*"}));
}

TEST(http_upgrade, subprotocol_choice_is_ours) {
  upgrade_options o;
  o.subprotocols = {"centrifuge-json"};
  auto offered = with(good, "\r\n\r\n", "\r\nSec-WebSocket-Protocol: centrifuge-protobuf, centrifuge-json\r\n\r\n");
  auto r = parse_upgrade(offered, o);
  ASSERT_EQ(r.status, upgrade_status::accepted);
  EXPECT_EQ(r.subprotocol, "centrifuge-json");
  EXPECT_NE(r.response.find("Sec-WebSocket-Protocol: centrifuge-json\r\n"), std::string::npos);
  // Offered only what we do not speak: accepted without the header.
  auto only_pb = with(good, "\r\n\r\n", "\r\nSec-WebSocket-Protocol: centrifuge-protobuf\r\n\r\n");
  auto r2 = parse_upgrade(only_pb, o);
  ASSERT_EQ(r2.status, upgrade_status::accepted);
  EXPECT_TRUE(r2.subprotocol.empty());
  EXPECT_EQ(r2.response.find("Sec-WebSocket-Protocol"), std::string::npos);
}

TEST(http_upgrade, tokens_are_case_insensitive_lists) {
  EXPECT_TRUE(has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(has_token("  WebSocket ", "websocket"));
  EXPECT_FALSE(has_token("upgrades", "upgrade"));
  auto r = parse_upgrade(with(with(good, "Upgrade: websocket", "upgrade: WebSocket"), "keep-alive, Upgrade", "UPGRADE"), {});
  EXPECT_EQ(r.status, upgrade_status::accepted);
}

}  // namespace
