// Tests of the verifier's check flow (gateway/jwt.cpp): which error a token
// gets, in which order the checks run, and what verify_connect and
// verify_subscribe hand back. Reading and crypto have their own files:
// jwt_parse_test.cpp, jwt_signature_test.cpp, jwt_keys_test.cpp.

#include "gateway/jwt.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/gateway/jwt_tokens.hpp"

namespace sb::test {
namespace {

// ---- good tokens -----------------------------------------------------------

TEST(jwt, good_hs256_with_claims_extracted) {
  verifier v(full_config());
  connect_claims c;
  const auto t = hmac_token("HS256", secret,
                            R"({"sub":"42","exp":1700000100,"iat":1699990000,"info":{"name":"Alex"},)"
                            R"("meta":{"plan":"pro","n":[1,2.50,1e3]},"channels":["news","chat#42"],"jti":"x"})");
  ASSERT_EQ(v.verify_connect(t, now, c), verify_error::none);
  EXPECT_EQ(c.user, "42");
  EXPECT_EQ(c.exp, 1700000100);
  EXPECT_EQ(c.info_json, R"({"name":"Alex"})");
  EXPECT_EQ(c.meta_json, R"({"plan":"pro","n":[1,2.50,1e3]})");  // byte-for-byte, numbers untouched
  EXPECT_EQ(c.channels, (std::vector<std::string>{"news", "chat#42"}));
  EXPECT_FALSE(c.has_expire_at);
  EXPECT_EQ(c.expires_at(), 1700000100);
}

TEST(jwt, sign_hs256_round_trips_and_anonymous_is_empty_user) {
  verifier v(full_config());
  connect_claims c;
  ASSERT_EQ(v.verify_connect(sb::auth::sign_hs256(secret, R"({"sub":""})"), now, c), verify_error::none);
  EXPECT_EQ(c.user, "");
  EXPECT_EQ(c.exp, 0);  // no exp: never expires
  EXPECT_EQ(c.expires_at(), 0);
  EXPECT_EQ(connect(v, sb::auth::sign_hs256(secret, "{}")), verify_error::none);
}

// ---- time ------------------------------------------------------------------

TEST(jwt, expired_and_not_yet_valid) {
  EXPECT_EQ(hs(R"({"sub":"1","exp":1700000000})"), verify_error::expired);  // exp == now
  EXPECT_EQ(hs(R"({"sub":"1","exp":1600000000})"), verify_error::expired);
  EXPECT_EQ(hs(R"({"sub":"1","exp":0})"), verify_error::expired);  // present 0 is 1970, as in Go
  EXPECT_EQ(hs(R"({"sub":"1","exp":1700000001})"), verify_error::none);
  EXPECT_EQ(hs(R"({"sub":"1","exp":1700000000.5})"), verify_error::expired);  // truncated
  EXPECT_EQ(hs(R"({"sub":"1","exp":null})"), verify_error::none);             // null = absent
  EXPECT_EQ(hs(R"({"sub":"1","nbf":1700000100})"), verify_error::expired);    // Centrifugo maps nbf to expired
  EXPECT_EQ(hs(R"({"sub":"1","nbf":1700000000})"), verify_error::none);
}

TEST(jwt, expire_at_overrides_exp_for_connection_lifetime) {
  verifier v(full_config());
  connect_claims c;
  ASSERT_EQ(connect(v, hmac_token("HS256", secret, R"({"exp":1700000100,"expire_at":1700009999})"), &c),
            verify_error::none);
  EXPECT_TRUE(c.has_expire_at);
  EXPECT_EQ(c.expires_at(), 1700009999);
  ASSERT_EQ(connect(v, hmac_token("HS256", secret, R"({"exp":1700000100,"expire_at":0})"), &c), verify_error::none);
  EXPECT_EQ(c.expires_at(), 0);  // 0 disables connection expiry; exp still checked
  EXPECT_EQ(connect(v, hmac_token("HS256", secret, R"({"exp":1,"expire_at":1800000000})")), verify_error::expired);
}

// ---- keys and algorithms ---------------------------------------------------

TEST(jwt, algorithm_must_match_a_configured_key_type) {
  verifier_config rsa_only;
  rsa_only.rsa_public_key_pem = public_pem(keys::get().rsa.get());
  verifier_config hs_only;
  hs_only.hmac_secret = secret;
  const std::string claims = R"({"sub":"1"})";
  EXPECT_EQ(connect(verifier(rsa_only), hmac_token("HS256", secret, claims)), verify_error::unsupported_alg);
  EXPECT_EQ(connect(verifier(hs_only), pkey_token("RS256", keys::get().rsa.get(), claims)),
            verify_error::unsupported_alg);
  EXPECT_EQ(connect(verifier(hs_only), pkey_token("ES256", keys::get().ec.get(), claims)),
            verify_error::unsupported_alg);
  // ES384 against a P-256 key: RFC 7518 ties each ES alg to one curve.
  EXPECT_EQ(connect(verifier(full_config()), pkey_token("ES384", keys::get().ec384.get(), claims)),
            verify_error::unsupported_alg);
  EXPECT_EQ(connect(verifier(verifier_config{}), hmac_token("HS256", secret, claims)), verify_error::unsupported_alg);
  EXPECT_FALSE(verifier(verifier_config{}).enabled());
  EXPECT_TRUE(verifier(hs_only).enabled());
  EXPECT_TRUE(verifier(rsa_only).enabled());
}

TEST(jwt, key_confusion_hs256_signed_with_the_rsa_public_key_fails) {
  const std::string pem = public_pem(keys::get().rsa.get());
  const std::string forged = hmac_token("HS256", pem, R"({"sub":"admin"})");
  verifier_config rsa_only;
  rsa_only.rsa_public_key_pem = pem;
  EXPECT_EQ(connect(verifier(rsa_only), forged), verify_error::unsupported_alg);
  verifier_config both = rsa_only;
  both.hmac_secret = secret;
  EXPECT_EQ(connect(verifier(both), forged), verify_error::bad_signature);
  // And the EC key as an HMAC secret, likewise.
  EXPECT_EQ(
      connect(verifier(full_config()), hmac_token("HS256", public_pem(keys::get().ec.get()), R"({"sub":"admin"})")),
      verify_error::bad_signature);
}

TEST(jwt, alg_none_is_always_unsupported) {
  verifier v(full_config());
  const std::string payload = b64url(R"({"sub":"admin"})");
  for (const char* h : {R"({"alg":"none"})", R"({"alg":"none","typ":"JWT"})", R"({"alg":"None"})", R"({"alg":"NONE"})",
                        R"({"alg":""})", R"({"alg":"HS256 "})", R"({"alg":"PS256"})"}) {
    const std::string head = b64url(h);
    EXPECT_EQ(connect(v, head + "." + payload + "."), verify_error::unsupported_alg) << h;
    EXPECT_EQ(connect(v, head + "." + payload), verify_error::unsupported_alg) << h;
    EXPECT_EQ(connect(v, head + "." + payload + "." + b64url("sig")), verify_error::unsupported_alg) << h;
    subscribe_claims s;
    EXPECT_EQ(v.verify_subscribe(head + "." + payload + ".", now, s), verify_error::unsupported_alg) << h;
  }
  EXPECT_EQ(connect(v, b64url(R"({"typ":"JWT"})") + "." + payload + "."), verify_error::malformed);
  EXPECT_EQ(connect(v, b64url(R"({"alg":256})") + "." + payload + "."), verify_error::malformed);
  EXPECT_EQ(connect(v, b64url(R"({"alg":"HS256","crit":["exp"]})") + "." + payload + "."), verify_error::malformed);
}

// ---- damaged tokens --------------------------------------------------------

TEST(jwt, truncated_and_empty_tokens) {
  verifier v(full_config());
  const std::string t = hmac_token("HS256", secret, R"({"sub":"1","info":{"a":1}})");
  for (std::size_t n = 0; n < t.size(); ++n) EXPECT_NE(connect(v, t.substr(0, n)), verify_error::none) << n;
  EXPECT_EQ(connect(v, ""), verify_error::malformed);
  EXPECT_EQ(connect(v, "."), verify_error::malformed);
  EXPECT_EQ(connect(v, ".."), verify_error::malformed);
  EXPECT_EQ(connect(v, t.substr(0, t.find('.'))), verify_error::malformed);
}

TEST(jwt, huge_token_is_malformed_and_the_limit_is_inclusive) {
  verifier v(full_config());
  // Grow a padding claim one byte at a time: the largest token within the
  // limit passes, the first one over it does not.
  const auto make = [](std::size_t n) {
    return hmac_token("HS256", secret, R"({"sub":"1","pad":")" + std::string(n, 'x') + R"("})");
  };
  std::size_t n = sb::auth::max_token_bytes * 3 / 4 - 100;
  while (make(n + 1).size() <= sb::auth::max_token_bytes) ++n;
  ASSERT_LE(make(n).size(), sb::auth::max_token_bytes);
  ASSERT_GE(make(n).size(), sb::auth::max_token_bytes - 1);
  EXPECT_EQ(connect(v, make(n)), verify_error::none);
  EXPECT_EQ(connect(v, make(n + 1)), verify_error::malformed);
  EXPECT_EQ(connect(v, std::string(1 << 20, 'a')), verify_error::malformed);
}

// ---- subscription tokens ---------------------------------------------------

TEST(jwt, subscription_token) {
  verifier v(full_config());
  subscribe_claims s;
  const auto t = hmac_token(
      "HS256", secret, R"({"sub":"42","channel":"$private","exp":1700000100,"info":{"role":"mod"},"expire_at":0})");
  ASSERT_EQ(v.verify_subscribe(t, now, s), verify_error::none);
  EXPECT_EQ(s.user, "42");
  EXPECT_EQ(s.channel, "$private");
  EXPECT_EQ(s.exp, 1700000100);
  EXPECT_EQ(s.info_json, R"({"role":"mod"})");
  EXPECT_EQ(s.expires_at(), 0);
  EXPECT_EQ(v.verify_subscribe(t, now, "42", "$private", s), verify_error::none);
  EXPECT_EQ(v.verify_subscribe(t, now, "42", "$other", s), verify_error::wrong_channel);
  EXPECT_EQ(v.verify_subscribe(t, now, "43", "$private", s), verify_error::wrong_user);
  EXPECT_EQ(v.verify_subscribe(t, now, "", "$private", s), verify_error::wrong_user);
  EXPECT_EQ(v.verify_subscribe(t, 1700000100, "42", "$private", s), verify_error::expired);
  // No channel claim: a connection token cannot be used to subscribe.
  EXPECT_EQ(v.verify_subscribe(hmac_token("HS256", secret, R"({"sub":"42"})"), now, s), verify_error::wrong_channel);
  // And a subscription token cannot be used to connect.
  EXPECT_EQ(connect(v, t), verify_error::wrong_channel);
  // Connection-only claims are not type-checked in a subscription token.
  EXPECT_EQ(v.verify_subscribe(hmac_token("HS256", secret, R"({"channel":"c","channels":5})"), now, s),
            verify_error::none);
}

// ---- audience and issuer ---------------------------------------------------

TEST(jwt, audience_and_issuer_checked_only_when_configured) {
  verifier_config cfg = full_config();
  cfg.audience = "chat-app";
  cfg.issuer = "https://auth.example";
  verifier v(cfg);
  const auto tok = [](const std::string& claims) { return hmac_token("HS256", secret, claims); };
  EXPECT_EQ(connect(v, tok(R"({"aud":"chat-app","iss":"https://auth.example"})")), verify_error::none);
  EXPECT_EQ(connect(v, tok(R"({"aud":["x","chat-app"],"iss":"https://auth.example"})")), verify_error::none);
  EXPECT_EQ(connect(v, tok(R"({"aud":"other","iss":"https://auth.example"})")), verify_error::wrong_audience);
  EXPECT_EQ(connect(v, tok(R"({"aud":[],"iss":"https://auth.example"})")), verify_error::wrong_audience);
  EXPECT_EQ(connect(v, tok(R"({"iss":"https://auth.example"})")), verify_error::wrong_audience);
  EXPECT_EQ(connect(v, tok(R"({"aud":"chat-app","iss":"https://evil.example"})")), verify_error::wrong_issuer);
  EXPECT_EQ(connect(v, tok(R"({"aud":"chat-app"})")), verify_error::wrong_issuer);
  // Wrong audience outranks expiry: refreshing could never fix it.
  EXPECT_EQ(connect(v, tok(R"({"aud":"other","iss":"https://auth.example","exp":1})")), verify_error::wrong_audience);
  EXPECT_EQ(connect(v, tok(R"({"aud":"chat-app","iss":"https://auth.example","exp":1})")), verify_error::expired);
  subscribe_claims s;
  EXPECT_EQ(v.verify_subscribe(tok(R"({"channel":"c","aud":"nope","iss":"https://auth.example"})"), now, s),
            verify_error::wrong_audience);
  // Not configured: anything goes.
  EXPECT_EQ(hs(R"({"aud":"whatever","iss":"whoever"})"), verify_error::none);
}

// ---- concurrency (run under TSan in the sanitizer suite) -------------------

TEST(jwt, one_verifier_shared_by_threads) {
  const verifier v(full_config());
  const std::string claims = R"({"sub":"u","info":{"a":[1,2]},"exp":1700000100})";
  const std::vector<std::string> good = {hmac_token("HS256", secret, claims),
                                         pkey_token("RS256", keys::get().rsa.get(), claims),
                                         pkey_token("ES256", keys::get().ec.get(), claims)};
  const std::string bad = pkey_token("ES256", keys::get().ec_other.get(), claims);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        connect_claims c;
        const auto& tok = good[static_cast<std::size_t>((i + t) % 3)];
        if (v.verify_connect(tok, now, c) != verify_error::none || c.info_json != R"({"a":[1,2]})") ++failures;
        if (v.verify_connect(bad, now, c) != verify_error::bad_signature) ++failures;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(jwt, error_names) {
  EXPECT_STREQ(sb::auth::to_string(verify_error::expired), "expired");
  EXPECT_STREQ(sb::auth::to_string(verify_error::unsupported_alg), "unsupported_alg");
  EXPECT_STREQ(sb::auth::to_string(verify_error::wrong_user), "wrong_user");
}

}  // namespace
}  // namespace sb::test
