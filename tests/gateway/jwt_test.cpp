#include "gateway/jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using sb::auth::connect_claims;
using sb::auth::subscribe_claims;
using sb::auth::verifier;
using sb::auth::verifier_config;
using sb::auth::verify_error;

constexpr std::int64_t now = 1'700'000'000;
const std::string secret = "test-secret";

// ---- test-side token building (independent of jwt.cpp's own encoder) ------

std::string b64url(std::string_view in) {
  static constexpr char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (in.size() - i == 1) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63]};
  } else if (in.size() - i == 2) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63]};
  }
  return out;
}

const EVP_MD* md_for(std::string_view alg) {
  if (alg.ends_with("384")) return EVP_sha384();
  if (alg.ends_with("512")) return EVP_sha512();
  return EVP_sha256();
}

std::string header_for(std::string_view alg) { return std::string(R"({"alg":")") + std::string(alg) + R"(","typ":"JWT"})"; }

std::string hmac_token(std::string_view alg, std::string_view key, std::string_view claims,
                       std::string header = {}) {
  if (header.empty()) header = header_for(alg);
  std::string t = b64url(header) + "." + b64url(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(md_for(alg), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(t.data()),
       t.size(), mac, &len);
  return t + "." + b64url(std::string_view(reinterpret_cast<char*>(mac), len));
}

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey = std::unique_ptr<EVP_PKEY, pkey_free>;

std::string public_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return pem;
}

// RS*: PKCS#1 v1.5 signature as is. ES*: DER from OpenSSL turned into the
// JOSE R||S form, each half padded to the curve size.
std::string pkey_token(std::string_view alg, EVP_PKEY* k, std::string_view claims) {
  std::string t = b64url(header_for(alg)) + "." + b64url(claims);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, md_for(alg), nullptr, k);
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(t.data()), t.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(t.data()), t.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (alg[0] == 'E') {
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    const int half = (EVP_PKEY_get_bits(k) + 7) / 8;
    std::string raw(static_cast<std::size_t>(2 * half), '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), half);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + half, half);
    ECDSA_SIG_free(es);
    sig = raw;
  }
  return t + "." + b64url(sig);
}

// Keys are generated once per run so no key material lives in the repo.
struct keys {
  pkey rsa{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048))};
  pkey rsa_other{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048))};
  pkey ec{EVP_EC_gen("P-256")};
  pkey ec_other{EVP_EC_gen("P-256")};
  pkey ec384{EVP_EC_gen("P-384")};
  pkey ec521{EVP_EC_gen("P-521")};
  static const keys& get() {
    static const keys k;
    return k;
  }
};

verifier_config full_config() {
  verifier_config c;
  c.hmac_secret = secret;
  c.rsa_public_key_pem = public_pem(keys::get().rsa.get());
  c.ecdsa_public_key_pem = public_pem(keys::get().ec.get());
  return c;
}

verify_error connect(const verifier& v, const std::string& token, connect_claims* out = nullptr) {
  connect_claims c;
  const auto e = v.verify_connect(token, now, c);
  if (out) *out = c;
  return e;
}

verify_error hs(const std::string& claims) { return connect(verifier(full_config()), hmac_token("HS256", secret, claims)); }

// ---- good tokens ------------------------------------------------------------

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

TEST(jwt, good_hmac_rsa_and_ecdsa_all_sizes) {
  verifier v(full_config());
  const std::string claims = R"({"sub":"u1","exp":1700000100})";
  for (const char* alg : {"HS256", "HS384", "HS512"})
    EXPECT_EQ(connect(v, hmac_token(alg, secret, claims)), verify_error::none) << alg;
  for (const char* alg : {"RS256", "RS384", "RS512"})
    EXPECT_EQ(connect(v, pkey_token(alg, keys::get().rsa.get(), claims)), verify_error::none) << alg;
  EXPECT_EQ(connect(v, pkey_token("ES256", keys::get().ec.get(), claims)), verify_error::none);

  verifier_config c384;
  c384.ecdsa_public_key_pem = public_pem(keys::get().ec384.get());
  EXPECT_EQ(connect(verifier(c384), pkey_token("ES384", keys::get().ec384.get(), claims)), verify_error::none);
  verifier_config c521;
  c521.ecdsa_public_key_pem = public_pem(keys::get().ec521.get());
  EXPECT_EQ(connect(verifier(c521), pkey_token("ES512", keys::get().ec521.get(), claims)), verify_error::none);
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

// ---- time -------------------------------------------------------------------

TEST(jwt, expired_and_not_yet_valid) {
  EXPECT_EQ(hs(R"({"sub":"1","exp":1700000000})"), verify_error::expired);  // exp == now
  EXPECT_EQ(hs(R"({"sub":"1","exp":1600000000})"), verify_error::expired);
  EXPECT_EQ(hs(R"({"sub":"1","exp":0})"), verify_error::expired);  // present 0 is 1970, as in Go
  EXPECT_EQ(hs(R"({"sub":"1","exp":1700000001})"), verify_error::none);
  EXPECT_EQ(hs(R"({"sub":"1","exp":1700000000.5})"), verify_error::expired);  // truncated
  EXPECT_EQ(hs(R"({"sub":"1","exp":null})"), verify_error::none);             // null = absent
  EXPECT_EQ(hs(R"({"sub":"1","nbf":1700000100})"), verify_error::expired);     // Centrifugo maps nbf to expired
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

// ---- keys and algorithms ----------------------------------------------------

TEST(jwt, wrong_key_is_bad_signature) {
  verifier v(full_config());
  const std::string claims = R"({"sub":"1"})";
  EXPECT_EQ(connect(v, hmac_token("HS256", "other-secret", claims)), verify_error::bad_signature);
  EXPECT_EQ(connect(v, pkey_token("RS256", keys::get().rsa_other.get(), claims)), verify_error::bad_signature);
  EXPECT_EQ(connect(v, pkey_token("ES256", keys::get().ec_other.get(), claims)), verify_error::bad_signature);
}

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
  EXPECT_EQ(connect(verifier(verifier_config{}), hmac_token("HS256", secret, claims)),
            verify_error::unsupported_alg);
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
  EXPECT_EQ(connect(verifier(full_config()),
                    hmac_token("HS256", public_pem(keys::get().ec.get()), R"({"sub":"admin"})")),
            verify_error::bad_signature);
}

TEST(jwt, alg_none_is_always_unsupported) {
  verifier v(full_config());
  const std::string payload = b64url(R"({"sub":"admin"})");
  for (const char* h : {R"({"alg":"none"})", R"({"alg":"none","typ":"JWT"})", R"({"alg":"None"})",
                        R"({"alg":"NONE"})", R"({"alg":""})", R"({"alg":"HS256 "})", R"({"alg":"PS256"})"}) {
    const std::string head = b64url(h);
    EXPECT_EQ(connect(v, head + "." + payload + "."), verify_error::unsupported_alg) << h;
    EXPECT_EQ(connect(v, head + "." + payload), verify_error::unsupported_alg) << h;
    EXPECT_EQ(connect(v, head + "." + payload + "." + b64url("sig")), verify_error::unsupported_alg) << h;
    subscribe_claims s;
    EXPECT_EQ(v.verify_subscribe(head + "." + payload + ".", now, s), verify_error::unsupported_alg) << h;
  }
  EXPECT_EQ(connect(v, b64url(R"({"typ":"JWT"})") + "." + payload + "."), verify_error::malformed);
  EXPECT_EQ(connect(v, b64url(R"({"alg":256})") + "." + payload + "."), verify_error::malformed);
  EXPECT_EQ(connect(v, b64url(R"({"alg":"HS256","crit":["exp"]})") + "." + payload + "."),
            verify_error::malformed);
}

// ---- damaged tokens ---------------------------------------------------------

TEST(jwt, tampered_payload_and_signature) {
  verifier v(full_config());
  const std::string claims = R"({"sub":"1"})";
  for (const std::string& t : {hmac_token("HS256", secret, claims), pkey_token("RS256", keys::get().rsa.get(), claims),
                               pkey_token("ES256", keys::get().ec.get(), claims)}) {
    const auto dot1 = t.find('.');
    const auto dot2 = t.find('.', dot1 + 1);
    // Another payload under the original signature.
    const std::string swapped = t.substr(0, dot1 + 1) + b64url(R"({"sub":"2"})") + t.substr(dot2);
    EXPECT_EQ(connect(v, swapped), verify_error::bad_signature);
    // One signature character changed (the first: no padding-bit effects).
    std::string sig_flip = t;
    sig_flip[dot2 + 1] = sig_flip[dot2 + 1] == 'A' ? 'B' : 'A';
    EXPECT_EQ(connect(v, sig_flip), verify_error::bad_signature);
    // Signature shortened (the new last character may then carry non-zero
    // padding bits, which strict base64url calls malformed).
    EXPECT_NE(connect(v, t.substr(0, t.size() - 4)), verify_error::none);
    EXPECT_NE(connect(v, t.substr(0, t.size() - 1)), verify_error::none);
    // Empty signature.
    EXPECT_EQ(connect(v, t.substr(0, dot2 + 1)), verify_error::bad_signature);
  }
}

TEST(jwt, bad_base64_is_malformed) {
  verifier v(full_config());
  const std::string t = hmac_token("HS256", secret, R"({"sub":"1"})");
  const auto dot1 = t.find('.');
  const auto dot2 = t.find('.', dot1 + 1);
  EXPECT_EQ(connect(v, t + "="), verify_error::malformed);              // padding
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

TEST(jwt, claims_of_wrong_types_are_malformed) {
  for (const char* claims : {
           R"({"sub":123})", R"({"sub":["a"]})", R"({"exp":"1800000000"})", R"({"exp":true})",
           R"({"exp":18446744073709551615})", R"({"exp":1e300})", R"({"iat":"x"})", R"({"nbf":{}})",
           R"({"channels":"news"})", R"({"channels":[1]})", R"({"channels":["a",null]})", R"({"subs":["a"]})",
           R"({"subs":{"a":1}})", R"({"aud":5})", R"({"aud":["a",5]})", R"({"iss":1})", R"({"b64info":5})",
           R"({"b64info":"not base64!"})", R"({"expire_at":1.5})", R"({"expire_at":"1"})", R"({"channel":5})",
           R"({"sub":"1","sub":"2"})",                      // duplicate claim
           R"([{"sub":"1"}])", R"("sub")", R"(42)", "",    // not an object
           R"({"sub":"1","x":tru})",                         // invalid JSON in an ignored claim
           R"({"sub":"1"} x)", R"({"sub":"1",})", "{\"sub\":\"\xff\"}",  // trailing junk, comma, bad UTF-8
       })
    EXPECT_EQ(hs(claims), verify_error::malformed) << claims;
  // Unknown claims of any type, and nulls, are fine.
  EXPECT_EQ(hs(R"({"sub":"1","custom":{"deep":[1,{"x":null}]},"client":5,"info":null,"meta":null})"),
            verify_error::none);
  EXPECT_EQ(hs(R"({"s\u0075b":"escaped-key"})"), verify_error::none);
}

TEST(jwt, header_must_be_a_json_object) {
  verifier v(full_config());
  const std::string payload = b64url(R"({"sub":"1"})");
  for (const char* h : {"", "[]", R"("HS256")", R"({"alg":"HS256")", R"({"alg":"HS256","alg":"HS256"})"})
    EXPECT_EQ(connect(v, b64url(h) + "." + payload + ".sig"), verify_error::malformed) << h;
}

// ---- claims extraction ------------------------------------------------------

TEST(jwt, info_and_meta_are_raw_json_text) {
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

TEST(jwt, subs_map_keys_are_the_channels_and_win_over_channels) {
  verifier v(full_config());
  connect_claims c;
  ASSERT_EQ(connect(v, hmac_token("HS256", secret,
                                  R"({"channels":["a"],"subs":{"news":{"info":{"k":1}},"chat:1":{}}})"), &c),
            verify_error::none);
  EXPECT_EQ(c.channels, (std::vector<std::string>{"news", "chat:1"}));
  ASSERT_EQ(connect(v, hmac_token("HS256", secret, R"({"channels":["a"],"subs":{}})"), &c), verify_error::none);
  EXPECT_EQ(c.channels, (std::vector<std::string>{"a"}));
}

// ---- subscription tokens ----------------------------------------------------

TEST(jwt, subscription_token) {
  verifier v(full_config());
  subscribe_claims s;
  const auto t = hmac_token("HS256", secret,
                            R"({"sub":"42","channel":"$private","exp":1700000100,"info":{"role":"mod"},"expire_at":0})");
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

// ---- audience and issuer ----------------------------------------------------

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

// ---- configuration ----------------------------------------------------------

TEST(jwt, bad_key_config_throws_naming_the_key) {
  const auto message = [](const verifier_config& c) -> std::string {
    try {
      verifier v(c);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no exception";
  };
  verifier_config c;
  c.rsa_public_key_pem = "-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n";
  EXPECT_EQ(message(c), "token_rsa_public_key: not a PEM public key");
  c = {};
  c.ecdsa_public_key_pem = "not pem at all";
  EXPECT_EQ(message(c), "token_ecdsa_public_key: not a PEM public key");
  c = {};
  c.ecdsa_public_key_pem = public_pem(keys::get().rsa.get());
  EXPECT_EQ(message(c), "token_ecdsa_public_key: not an EC key");
  c = {};
  c.rsa_public_key_pem = public_pem(keys::get().ec.get());
  EXPECT_EQ(message(c), "token_rsa_public_key: not an RSA key");
}

// ---- concurrency (run under TSan in the sanitizer suite) --------------------

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
