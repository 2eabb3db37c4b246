#include "session/http_upgrade.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using namespace sb::ws;

const std::string good =
    "GET /connection/websocket HTTP/1.1\r\nHost: example.com:8000\r\nUpgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

std::string with(std::string req, const std::string& from, const std::string& to) {
  auto pos = req.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return pos == std::string::npos ? req : req.replace(pos, from.size(), to);
}

// Adds header lines just before the blank line that ends `good`.
std::string plus(const std::string& lines) { return with(good, "\r\n\r\n", "\r\n" + lines + "\r\n\r\n"); }

unsigned status_of(const upgrade_result& r) {
  return r.response.size() < 12 ? 0u : static_cast<unsigned>(std::stoul(r.response.substr(9, 3)));
}

// Every error answer: status line, text/plain, Content-Length that matches a
// one-line body, Connection: close.
void expect_well_formed_error(const upgrade_result& r) {
  ASSERT_EQ(r.status, upgrade_status::rejected);
  ASSERT_EQ(r.response.rfind("HTTP/1.1 ", 0), 0u) << r.response;
  auto end = r.response.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << r.response;
  std::string head = r.response.substr(0, end + 2);
  std::string body = r.response.substr(end + 4);
  EXPECT_NE(head.find("\r\nContent-Type: text/plain"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nConnection: close\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos) << head;
  ASSERT_FALSE(body.empty());
  EXPECT_EQ(body.find('\n'), body.size() - 1) << body;
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_NE(std::string(r.reason), "");
}

TEST(http_upgrade, rfc6455_sample_key) {
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(http_upgrade, accepts_a_good_request) {
  auto r = parse_upgrade(good, {});
  ASSERT_EQ(r.status, upgrade_status::accepted) << r.response;
  EXPECT_EQ(r.consumed, good.size());
  EXPECT_EQ(r.response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  EXPECT_TRUE(r.subprotocol.empty());
  EXPECT_STREQ(r.reason, "");
}

TEST(http_upgrade, empty_input_needs_more) {
  auto r = parse_upgrade("", {});
  EXPECT_EQ(r.status, upgrade_status::need_more);
  EXPECT_TRUE(r.response.empty());
}

TEST(http_upgrade, every_prefix_needs_more_and_trailing_bytes_are_not_consumed) {
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = parse_upgrade(std::string_view(good).substr(0, n), {});
    ASSERT_EQ(r.status, upgrade_status::need_more) << n;
    ASSERT_TRUE(r.response.empty());
    ASSERT_EQ(r.consumed, 0u);
  }
  std::string more = good +
                     "\x81\x85"
                     "abcd";  // the client's first frame already
  for (std::size_t n = good.size(); n <= more.size(); ++n) {
    auto r = parse_upgrade(std::string_view(more).substr(0, n), {});
    ASSERT_EQ(r.status, upgrade_status::accepted) << n;
    EXPECT_EQ(r.consumed, good.size());
  }
}

struct bad_case {
  std::string what;
  std::string request;
  unsigned status;
  std::string reason;
};

TEST(http_upgrade, rejections_have_status_and_reason) {
  const std::string plain_get = "GET /connection/websocket HTTP/1.1\r\nHost: example.com\r\n\r\n";
  std::vector<bad_case> cases = {
      {"TLS on the plain port", "\x16\x03\x01 not http at all\r\n\r\n", 400, "not_http"},
      {"bad field line", with(good, "Upgrade: websocket", "no colon here"), 400, "not_http"},
      {"POST", with(good, "GET", "POST"), 405, "bad_method"},
      {"POST to an unknown path", with(with(good, "GET", "POST"), "/connection/websocket", "/x"), 404, "not_found"},
      {"unknown path", with(good, "/connection/websocket", "/other"), 404, "not_found"},
      {"path prefix", with(good, "/connection/websocket", "/connection/websocketx"), 404, "not_found"},
      {"plain GET of an unknown path", "GET /favicon.ico HTTP/1.1\r\nHost: example.com\r\n\r\n", 404, "not_found"},
      {"HTTP/1.0", with(good, "HTTP/1.1", "HTTP/1.0"), 400, "http_version"},
      {"plain GET of the endpoint", plain_get, 426, "not_upgrade"},
      {"no Upgrade", with(good, "Upgrade: websocket\r\n", ""), 426, "not_upgrade"},
      {"Upgrade: h2c", with(good, "Upgrade: websocket", "Upgrade: h2c"), 426, "not_upgrade"},
      {"Connection: keep-alive", with(good, "Connection: keep-alive, Upgrade", "Connection: keep-alive"), 426,
       "not_upgrade"},
      {"no Connection", with(good, "Connection: keep-alive, Upgrade\r\n", ""), 426, "not_upgrade"},
      {"version 12", with(good, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12"), 426, "bad_version"},
      {"no version", with(good, "Sec-WebSocket-Version: 13\r\n", ""), 426, "bad_version"},
      {"version list", with(good, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13, 8"), 426, "bad_version"},
      {"no key", with(good, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""), 400, "bad_key"},
      {"short key", with(good, "dGhlIHNhbXBsZSBub25jZQ==", "short=="), 400, "bad_key"},
      {"17-byte key", with(good, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQA="), 400, "bad_key"},
      {"non-base64 key", with(good, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j*Q=="), 400, "bad_key"},
      {"non-canonical key", with(good, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR=="), 400, "bad_key"},
      {"two keys", plus("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="), 400, "bad_key"},
      {"no Host", with(good, "Host: example.com:8000\r\n", ""), 400, "no_host"},
      {"two Hosts", plus("Host: other.example"), 400, "no_host"},
      {"body", with(good, "\r\n\r\n", "\r\nContent-Length: 3\r\n\r\nabc"), 400, "body"},
      {"chunked body", plus("Transfer-Encoding: chunked"), 400, "body"},
      {"cross origin", plus("Origin: https://evil.example"), 403, "origin"},
      {"null origin", plus("Origin: null"), 403, "origin"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = parse_upgrade(c.request, {});
    expect_well_formed_error(r);
    EXPECT_EQ(status_of(r), c.status) << r.response;
    EXPECT_EQ(std::string(r.reason), c.reason);
  }
}

TEST(http_upgrade, rejections_carry_the_headers_that_help_the_client) {
  auto r405 = parse_upgrade(with(good, "GET", "PUT"), {});
  EXPECT_NE(r405.response.find("\r\nAllow: GET\r\n"), std::string::npos) << r405.response;
  auto r426 = parse_upgrade(with(good, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"), {});
  EXPECT_NE(r426.response.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos) << r426.response;
  auto plain = parse_upgrade("GET /connection/websocket?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", {});
  EXPECT_EQ(status_of(plain), 426u);
  EXPECT_NE(plain.response.find("\r\nUpgrade: websocket\r\n"), std::string::npos) << plain.response;
  EXPECT_NE(plain.response.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos) << plain.response;
}

TEST(http_upgrade, garbage_is_refused_before_the_header_ends) {
  auto r = parse_upgrade("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", {});
  expect_well_formed_error(r);
  EXPECT_EQ(status_of(r), 400u);
  EXPECT_STREQ(r.reason, "not_http");
  auto bad_line = parse_upgrade("GET /connection/websocket HTTP/1.1x\r\nHost", {});
  EXPECT_EQ(bad_line.status, upgrade_status::rejected);
  // A bad field line in an unfinished header waits for the header's end.
  EXPECT_EQ(parse_upgrade("GET / HTTP/1.1\r\nno colon\r\n", {}).status, upgrade_status::need_more);
  EXPECT_EQ(status_of(parse_upgrade("GET / HTTP/1.1\r\nno colon\r\n\r\n", {})), 400u);
}

TEST(http_upgrade, empty_body_and_query_are_fine) {
  EXPECT_EQ(parse_upgrade(plus("Content-Length: 0"), {}).status, upgrade_status::accepted);
  auto q = with(good, "/connection/websocket", "/connection/websocket?format=json&x=/y");
  EXPECT_EQ(parse_upgrade(q, {}).status, upgrade_status::accepted);
}

// A request whose header (through the blank line) is exactly `size` bytes.
std::string request_of_size(std::size_t size) {
  std::string base = good.substr(0, good.size() - 2);  // without the final CRLF
  std::string pad = "X-Pad: ";
  std::size_t fixed = base.size() + pad.size() + 2 + 2;
  EXPECT_GE(size, fixed);
  return base + pad + std::string(size - fixed, 'a') + "\r\n\r\n";
}

TEST(http_upgrade, header_exactly_at_the_limit_passes_one_over_is_431) {
  for (std::size_t limit : {std::size_t{512}, std::size_t{8192}}) {
    SCOPED_TRACE(limit);
    upgrade_options o;
    o.header_limit = limit;
    std::string at = request_of_size(limit);
    ASSERT_EQ(at.size(), limit);
    auto r = parse_upgrade(at, o);
    ASSERT_EQ(r.status, upgrade_status::accepted) << r.response;
    EXPECT_EQ(r.consumed, limit);
    // Every unfinished prefix is need_more: it fits in the buffer.
    EXPECT_EQ(parse_upgrade(std::string_view(at).substr(0, limit - 1), o).status, upgrade_status::need_more);

    std::string over = request_of_size(limit + 1);
    auto r2 = parse_upgrade(over, o);
    expect_well_formed_error(r2);
    EXPECT_EQ(status_of(r2), 431u);
    EXPECT_STREQ(r2.reason, "headers_too_large");
    // Unfinished and already filling the session's buffer: no room to finish.
    auto r3 = parse_upgrade(std::string_view(over).substr(0, limit), o);
    expect_well_formed_error(r3);
    EXPECT_EQ(status_of(r3), 431u);
  }
}

TEST(http_upgrade, huge_limit_and_huge_field_is_431_not_an_exception) {
  // Beast's fields throw length_error above 64 KiB per value.
  upgrade_options o;
  o.header_limit = 1 << 20;
  auto r = parse_upgrade(plus("X-Big: " + std::string(70000, 'a')), o);
  expect_well_formed_error(r);
  EXPECT_EQ(status_of(r), 431u);
}

TEST(http_upgrade, origin_rules) {
  EXPECT_TRUE(check_origin("", "h:1", {}));
  EXPECT_TRUE(check_origin("http://h:1", "h:1", {}));
  EXPECT_TRUE(check_origin("https://H:1", "h:1", {}));
  EXPECT_TRUE(check_origin("https://h:1/", "h:1", {}));
  EXPECT_FALSE(check_origin("http://h:2", "h:1", {}));
  EXPECT_FALSE(check_origin("http://h", "h:1", {}));
  EXPECT_FALSE(check_origin("http://other:1", "h:1", {}));
  EXPECT_FALSE(check_origin("null", "null", {}));
  EXPECT_FALSE(check_origin("h:1", "h:1", {}));
  EXPECT_TRUE(check_origin("https://a.example.com", "x", {"https://*.example.com"}));
  EXPECT_TRUE(check_origin("https://A.B.Example.COM", "x", {"https://*.example.com"}));
  EXPECT_TRUE(check_origin("https://a.example.com", "x", {"HTTPS://*.EXAMPLE.COM"}));
  EXPECT_FALSE(check_origin("https://example.com", "x", {"https://*.example.com"}));
  EXPECT_FALSE(check_origin("https://example.org", "x", {"https://*.example.com"}));
  EXPECT_FALSE(check_origin("http://a.example.com", "x", {"https://*.example.com"}));
  EXPECT_FALSE(check_origin("https://a.example.com.evil", "x", {"https://*.example.com"}));
  EXPECT_TRUE(check_origin("null", "x", {"*"}));
  EXPECT_TRUE(check_origin("http://127.0.0.1:5555", "x", {"http://127.0.0.1:*"}));
  EXPECT_TRUE(check_origin("https://b.org", "x", {"https://a.org", "https://b.org"}));
  EXPECT_FALSE(check_origin("https://c.org", "x", {"https://a.org", "https://b.org"}));
  // An allowed list replaces the same-origin rule.
  EXPECT_FALSE(check_origin("http://h:1", "h:1", {"https://a.org"}));
}

TEST(http_upgrade, origin_through_the_parser) {
  EXPECT_EQ(parse_upgrade(plus("Origin: http://example.com:8000"), {}).status, upgrade_status::accepted);
  upgrade_options o;
  o.allowed_origins = {"https://*.example.com"};
  EXPECT_EQ(parse_upgrade(plus("Origin: https://app.example.com"), o).status, upgrade_status::accepted);
  auto r = parse_upgrade(plus("Origin: http://example.com:8000"), o);
  EXPECT_EQ(status_of(r), 403u);
  EXPECT_STREQ(r.reason, "origin");
  o.allowed_origins = {"*"};
  EXPECT_EQ(parse_upgrade(plus("Origin: https://anything.test"), o).status, upgrade_status::accepted);
}

TEST(http_upgrade, subprotocol_choice_is_ours) {
  upgrade_options o;
  o.subprotocols = {"centrifuge-json"};
  auto r = parse_upgrade(plus("Sec-WebSocket-Protocol: centrifuge-protobuf, centrifuge-json"), o);
  ASSERT_EQ(r.status, upgrade_status::accepted);
  EXPECT_EQ(r.subprotocol, "centrifuge-json");
  EXPECT_NE(r.response.find("\r\nSec-WebSocket-Protocol: centrifuge-json\r\n"), std::string::npos);
  EXPECT_EQ(r.response.substr(r.response.size() - 4), "\r\n\r\n");

  // Offered only what we do not speak: accepted without the header.
  auto r2 = parse_upgrade(plus("Sec-WebSocket-Protocol: centrifuge-protobuf"), o);
  ASSERT_EQ(r2.status, upgrade_status::accepted);
  EXPECT_TRUE(r2.subprotocol.empty());
  EXPECT_EQ(r2.response.find("Sec-WebSocket-Protocol"), std::string::npos);

  // Our order wins over the client's, across repeated header lines.
  o.subprotocols = {"b", "a"};
  auto r3 = parse_upgrade(plus("Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: x, b"), o);
  EXPECT_EQ(r3.subprotocol, "b");
  // Names compare exactly: a browser fails unless we echo what it sent.
  o.subprotocols = {"centrifuge-json"};
  EXPECT_EQ(parse_upgrade(plus("Sec-WebSocket-Protocol: Centrifuge-JSON"), o).subprotocol, "");
  // The client offered nothing: no header even though we speak some.
  auto r4 = parse_upgrade(good, o);
  EXPECT_TRUE(r4.subprotocol.empty());
  EXPECT_EQ(r4.response.find("Sec-WebSocket-Protocol"), std::string::npos);
}

TEST(http_upgrade, extensions_are_not_echoed) {
  auto r = parse_upgrade(plus("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"), {});
  ASSERT_EQ(r.status, upgrade_status::accepted);
  EXPECT_EQ(r.response.find("Extensions"), std::string::npos);
}

TEST(http_upgrade, tokens_are_case_insensitive_lists) {
  EXPECT_TRUE(has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(has_token("  WebSocket ", "websocket"));
  EXPECT_TRUE(has_token("a,,websocket", "websocket"));
  EXPECT_FALSE(has_token("upgrades", "upgrade"));
  EXPECT_FALSE(has_token("", "upgrade"));
  auto lower = "get /connection/websocket HTTP/1.1";  // methods are case-sensitive: not GET
  EXPECT_EQ(status_of(parse_upgrade(with(good, "GET /connection/websocket HTTP/1.1", lower), {})), 405u);
  std::string mixed =
      "GET /connection/websocket HTTP/1.1\r\nhost: example.com:8000\r\nUPGRADE: WebSocket\r\n"
      "connection: UPGRADE\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "SEC-WEBSOCKET-VERSION: 13\r\n\r\n";
  EXPECT_EQ(parse_upgrade(mixed, {}).status, upgrade_status::accepted);
  // Upgrade may hold a list, Connection may repeat.
  EXPECT_EQ(parse_upgrade(with(good, "Upgrade: websocket", "Upgrade: h2c, WebSocket"), {}).status,
            upgrade_status::accepted);
  auto two_lines = with(good, "Connection: keep-alive, Upgrade", "Connection: keep-alive\r\nConnection: upgrade");
  EXPECT_EQ(parse_upgrade(two_lines, {}).status, upgrade_status::accepted);
}

TEST(http_upgrade, query_is_kept_and_read_by_name) {
  auto r = parse_upgrade(with(good, "GET /connection/websocket HTTP/1.1",
                              "GET /connection/websocket?cf_protocol=protobuf&x=a%20b+c HTTP/1.1"),
                         {});
  ASSERT_EQ(r.status, upgrade_status::accepted);
  EXPECT_EQ(r.query, "cf_protocol=protobuf&x=a%20b+c");
  EXPECT_EQ(query_param(r.query, "cf_protocol"), "protobuf");
  EXPECT_EQ(query_param(r.query, "x"), "a b c");
  EXPECT_EQ(query_param(r.query, "cf"), "");
  EXPECT_EQ(query_param("a&b=1&a=2", "a"), "");  // the first occurrence wins, here valueless
  EXPECT_EQ(query_param("p=%zz%4", "p"), "%zz%4");  // malformed escapes are kept as they are
  EXPECT_EQ(parse_upgrade(good, {}).query, "");
}

}  // namespace
