// Tests of the verifier's reading of untrusted input (gateway/jwt_parse.cpp):
// base64, the JOSE header and the claims JSON, first through the verifier
// (what a client sees), then the detail:: functions directly.

#include "gateway/jwt_parse.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gateway/jwt.hpp"
#include "tests/gateway/jwt_tokens.hpp"

namespace sb::test {
namespace {

namespace detail = auth::detail;

// ---- through the verifier --------------------------------------------------

TEST(jwt_parse, bad_base64_is_malformed) {
  verifier v(full_config());
  const std::string t = hmac_token("HS256", secret, R"({"sub":"1"})");
  const auto dot1 = t.find('.');
  const auto dot2 = t.find('.', dot1 + 1);
  EXPECT_EQ(connect(v, t + "="), verify_error::malformed);  // padding
  EXPECT_EQ(connect(v, t.substr(0, dot2) + ".!" + t.substr(dot2 + 2)), verify_error::malformed);
  std::string plus = t;
  plus[dot1 + 2] = '+';  // standard alphabet, not url-safe
  EXPECT_EQ(connect(v, plus), verify_error::malformed);
  std::string space = t;
  space[1] = ' ';
  EXPECT_EQ(connect(v, space), verify_error::malformed);
  EXPECT_EQ(connect(v, t + "AA"), verify_error::malformed);  // 45 chars: length % 4 == 1
  // HS256 MAC is 32 bytes = 43 chars, last one carries 2 padding bits: set them.
  std::string bits = t;
  bits.back() = bits.back() == 'A' ? 'B' : static_cast<char>(bits.back() ^ 1);
  EXPECT_NE(connect(v, bits), verify_error::none);
  EXPECT_EQ(connect(v, t + ".x"), verify_error::malformed);  // four parts
  EXPECT_EQ(connect(v, std::string("\xff\xfe.") + t), verify_error::malformed);
}

TEST(jwt_parse, header_must_be_a_json_object) {
  verifier v(full_config());
  const std::string payload = b64url(R"({"sub":"1"})");
  for (const char* h : {"", "[]", R"("HS256")", R"({"alg":"HS256")", R"({"alg":"HS256","alg":"HS256"})"})
    EXPECT_EQ(connect(v, b64url(h) + "." + payload + ".sig"), verify_error::malformed) << h;
}

TEST(jwt_parse, claims_of_wrong_types_are_malformed) {
  for (const char* claims : {
           R"({"sub":123})",
           R"({"sub":["a"]})",
           R"({"exp":"1800000000"})",
           R"({"exp":true})",
           R"({"exp":18446744073709551615})",
           R"({"exp":1e300})",
           R"({"iat":"x"})",
           R"({"nbf":{}})",
           R"({"channels":"news"})",
           R"({"channels":[1]})",
           R"({"channels":["a",null]})",
           R"({"subs":["a"]})",
           R"({"subs":{"a":1}})",
           R"({"aud":5})",
           R"({"aud":["a",5]})",
           R"({"iss":1})",
           R"({"b64info":5})",
           R"({"b64info":"not base64!"})",
           R"({"expire_at":1.5})",
           R"({"expire_at":"1"})",
           R"({"channel":5})",
           R"({"sub":"1","sub":"2"})",  // duplicate claim
           R"([{"sub":"1"}])",
           R"("sub")",
           R"(42)",
           "",                        // not an object
           R"({"sub":"1","x":tru})",  // invalid JSON in an ignored claim
           R"({"sub":"1"} x)",
           R"({"sub":"1",})",
           "{\"sub\":\"\xff\"}",  // trailing junk, comma, bad UTF-8
       })
    EXPECT_EQ(hs(claims), verify_error::malformed) << claims;
  // Unknown claims of any type, and nulls, are fine.
  EXPECT_EQ(hs(R"({"sub":"1","custom":{"deep":[1,{"x":null}]},"client":5,"info":null,"meta":null})"),
            verify_error::none);
  EXPECT_EQ(hs(R"({"s\u0075b":"escaped-key"})"), verify_error::none);
}

TEST(jwt_parse, info_and_meta_are_raw_json_text) {
  verifier v(full_config());
  connect_claims c;
  ASSERT_EQ(connect(v, hmac_token("HS256", secret, R"({"info" : { "name" : "Alex" } , "meta":[1, "two"] })"), &c),
            verify_error::none);
  EXPECT_EQ(c.info_json, R"({ "name" : "Alex" })");
  EXPECT_EQ(c.meta_json, R"([1, "two"])");
  ASSERT_EQ(connect(v, hmac_token("HS256", secret, R"({"info":42,"meta":"m"})"), &c), verify_error::none);
  EXPECT_EQ(c.info_json, "42");
  EXPECT_EQ(c.meta_json, R"("m")");
  ASSERT_EQ(connect(v, hmac_token("HS256", secret, R"({"info":"a\"b","meta":true})"), &c), verify_error::none);
  EXPECT_EQ(c.info_json, R"("a\"b")");
  EXPECT_EQ(c.meta_json, "true");
  // b64info (standard base64, padded) wins over info; bytes passed on as decoded.
  ASSERT_EQ(connect(v, hmac_token("HS256", secret, R"({"info":{"x":1},"b64info":"eyJuYW1lIjoiQWxleCJ9"})"), &c),
            verify_error::none);
  EXPECT_EQ(c.info_json, R"({"name":"Alex"})");
}

TEST(jwt_parse, subs_map_keys_are_the_channels_and_win_over_channels) {
  verifier v(full_config());
  connect_claims c;
  ASSERT_EQ(
      connect(v, hmac_token("HS256", secret, R"({"channels":["a"],"subs":{"news":{"info":{"k":1}},"chat:1":{}}})"), &c),
      verify_error::none);
  EXPECT_EQ(c.channels, (std::vector<std::string>{"news", "chat:1"}));
  ASSERT_EQ(connect(v, hmac_token("HS256", secret, R"({"channels":["a"],"subs":{}})"), &c), verify_error::none);
  EXPECT_EQ(c.channels, (std::vector<std::string>{"a"}));
}

// ---- detail:: directly -----------------------------------------------------

TEST(jwt_parse, b64url_encode_is_what_the_strict_decoder_reads) {
  // Every length across a few 3-byte groups, with all byte values in play:
  // the encoder sign_hs256 uses must agree with the test's own encoder and
  // with the strict decoder.
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    const std::string enc = detail::b64url_encode(bytes);
    EXPECT_EQ(enc, b64url(bytes)) << n;
    std::string back;
    ASSERT_TRUE(detail::b64_decode(enc, true, back)) << n;
    EXPECT_EQ(back, bytes) << n;
    bytes.push_back(static_cast<char>(n * 37 + 11));
  }
}

TEST(jwt_parse, base64url_is_strict_and_b64info_base64_is_lenient) {
  std::string out;
  EXPECT_TRUE(detail::b64_decode("eA", true, out));
  EXPECT_EQ(out, "x");
  EXPECT_FALSE(detail::b64_decode("eB", true, out));    // non-zero leftover bits: a second spelling of "x"
  EXPECT_FALSE(detail::b64_decode("eA==", true, out));  // no padding in a JWS part
  EXPECT_FALSE(detail::b64_decode("e", true, out));     // length % 4 == 1
  EXPECT_TRUE(detail::b64_decode("-_8", true, out));
  EXPECT_EQ(out, "\xfb\xff");
  EXPECT_FALSE(detail::b64_decode("+/8", true, out));  // the standard alphabet's characters
  EXPECT_TRUE(detail::b64_decode("", true, out));
  EXPECT_EQ(out, "");

  EXPECT_TRUE(detail::b64_decode("eA==", false, out));
  EXPECT_EQ(out, "x");
  EXPECT_TRUE(detail::b64_decode("eB==", false, out));  // lenient about leftover bits, as Go's StdEncoding
  EXPECT_EQ(out, "x");
  EXPECT_FALSE(detail::b64_decode("eA", false, out));  // padding required
  EXPECT_FALSE(detail::b64_decode("eA=", false, out));
  EXPECT_TRUE(detail::b64_decode("+/8=", false, out));
  EXPECT_EQ(out, "\xfb\xff");
  EXPECT_FALSE(detail::b64_decode("-_8=", false, out));  // the url alphabet's characters
}

TEST(jwt_parse, header_gives_alg_as_written) {
  std::string alg;
  ASSERT_TRUE(detail::parse_header(R"({"typ":"JWT","kid":"k1","alg":"RS384"})", alg));
  EXPECT_EQ(alg, "RS384");
  // Names are the caller's check: "none" reads fine here and is refused later.
  ASSERT_TRUE(detail::parse_header(R"({"alg":"none"})", alg));
  EXPECT_EQ(alg, "none");
  ASSERT_TRUE(detail::parse_header(R"({"\u0061lg":"HS256"})", alg));  // escaped key
  EXPECT_EQ(alg, "HS256");
  for (const char* h : {R"({})", R"({"alg":null})", R"({"alg":"HS256","crit":[]})", R"({"crit":["b64"],"alg":"HS256"})",
                        R"({"alg":"HS256","alg":"HS512"})", R"({"alg":"HS256"} {})", R"(["alg"])"})
    EXPECT_FALSE(detail::parse_header(h, alg)) << h;
}

TEST(jwt_parse, claims_read_in_one_walk) {
  detail::claims c;
  ASSERT_TRUE(detail::parse_claims(R"({"sub":"7","exp":1700000100.9,"nbf":null,"iat":5,"aud":["a","b"],"iss":"i",)"
                                   R"("channel":"ch","channels":["x"],"subs":{"y":null},"meta":{"m":1},"extra":[]})",
                                   true, "b", c));
  EXPECT_EQ(c.sub, "7");
  EXPECT_TRUE(c.has_exp);
  EXPECT_EQ(c.exp, 1700000100);  // truncated
  EXPECT_FALSE(c.has_nbf);       // null = absent
  EXPECT_TRUE(c.has_aud);
  EXPECT_TRUE(c.aud_matched);
  EXPECT_TRUE(c.has_iss);
  EXPECT_EQ(c.iss, "i");
  EXPECT_EQ(c.channel, "ch");
  EXPECT_EQ(c.channels, (std::vector<std::string>{"x"}));
  EXPECT_TRUE(c.has_subs);
  EXPECT_EQ(c.subs, (std::vector<std::string>{"y"}));
  EXPECT_EQ(c.meta, R"({"m":1})");
  EXPECT_FALSE(c.has_expire_at);

  detail::claims other;
  ASSERT_TRUE(detail::parse_claims(R"({"aud":"a"})", true, "b", other));
  EXPECT_TRUE(other.has_aud);
  EXPECT_FALSE(other.aud_matched);
}

TEST(jwt_parse, connection_only_claims_are_unknown_in_a_subscription_token) {
  detail::claims c;
  EXPECT_FALSE(detail::parse_claims(R"({"channels":5})", true, "", c));
  detail::claims s;
  ASSERT_TRUE(detail::parse_claims(R"({"channels":5,"subs":[],"meta":{"x":1},"meta":2,"channel":"c"})", false, "", s));
  EXPECT_TRUE(s.channels.empty());
  EXPECT_FALSE(s.has_subs);
  EXPECT_EQ(s.meta, "");
  EXPECT_EQ(s.channel, "c");
}

TEST(jwt_parse, b64info_replaces_info_only_when_non_empty) {
  detail::claims c;
  c.info = R"({"x":1})";
  ASSERT_TRUE(detail::resolve_info(c));
  EXPECT_EQ(c.info, R"({"x":1})");
  c.b64info = "AAH/";  // binary bytes pass through as decoded
  ASSERT_TRUE(detail::resolve_info(c));
  EXPECT_EQ(c.info, std::string("\x00\x01\xff", 3));
  c.b64info = "AAH";
  EXPECT_FALSE(detail::resolve_info(c));
}

}  // namespace
}  // namespace sb::test
