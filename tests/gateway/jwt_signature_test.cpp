// Tests of the signature families (gateway/jwt_signature.cpp): HMAC, RSA and
// ECDSA, first through the verifier, then the detail:: functions directly.

#include "gateway/jwt_signature.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "gateway/jwt.hpp"
#include "tests/gateway/jwt_tokens.hpp"

namespace sb::test {
namespace {

namespace detail = auth::detail;

// ---- through the verifier --------------------------------------------------

TEST(jwt_signature, good_hmac_rsa_and_ecdsa_all_sizes) {
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

TEST(jwt_signature, wrong_key_is_bad_signature) {
  verifier v(full_config());
  const std::string claims = R"({"sub":"1"})";
  EXPECT_EQ(connect(v, hmac_token("HS256", "other-secret", claims)), verify_error::bad_signature);
  EXPECT_EQ(connect(v, pkey_token("RS256", keys::get().rsa_other.get(), claims)), verify_error::bad_signature);
  EXPECT_EQ(connect(v, pkey_token("ES256", keys::get().ec_other.get(), claims)), verify_error::bad_signature);
}

TEST(jwt_signature, tampered_payload_and_signature) {
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

// ---- detail:: directly -----------------------------------------------------

const std::string data = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0";  // what a JWS signs: header.payload

std::string openssl_hmac(const EVP_MD* md, std::string_view key, std::string_view in) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(md, key.empty() ? "" : key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(in.data()), in.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

TEST(jwt_signature, hmac_matches_only_the_whole_mac) {
  for (const EVP_MD* md : {EVP_sha256(), EVP_sha384(), EVP_sha512()}) {
    const std::string mac = openssl_hmac(md, secret, data);
    EXPECT_TRUE(detail::verify_hmac(md, secret, data, mac));
    EXPECT_FALSE(detail::verify_hmac(md, secret, data, mac.substr(0, mac.size() - 1)));  // a prefix is not the MAC
    EXPECT_FALSE(detail::verify_hmac(md, secret, data, mac + "x"));
    EXPECT_FALSE(detail::verify_hmac(md, secret, data, ""));
    std::string flipped = mac;
    flipped.back() = static_cast<char>(flipped.back() ^ 1);
    EXPECT_FALSE(detail::verify_hmac(md, secret, data, flipped));
    EXPECT_FALSE(detail::verify_hmac(md, "other-secret", data, mac));
  }
  // sign_hs256 may be given an empty secret; hmac() computes that MAC too.
  unsigned char mac[EVP_MAX_MD_SIZE];
  const unsigned len = detail::hmac(EVP_sha256(), "", data, mac);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(mac), len), openssl_hmac(EVP_sha256(), "", data));
}

TEST(jwt_signature, rsa_signature_must_have_the_key_size) {
  EVP_PKEY* k = keys::get().rsa.get();
  const std::string sig = jws_signature("RS256", k, data);
  EXPECT_TRUE(detail::verify_rsa(k, EVP_sha256(), data, sig));
  // The same number with a leading zero byte is refused by length, before OpenSSL.
  EXPECT_FALSE(detail::verify_rsa(k, EVP_sha256(), data, std::string(1, '\0') + sig));
  EXPECT_FALSE(detail::verify_rsa(k, EVP_sha256(), data, sig.substr(1)));
  EXPECT_FALSE(detail::verify_rsa(k, EVP_sha384(), data, sig));  // another digest
  EXPECT_FALSE(detail::verify_rsa(k, EVP_sha256(), data + "x", sig));
  EXPECT_FALSE(detail::verify_rsa(keys::get().rsa_other.get(), EVP_sha256(), data, sig));
}

TEST(jwt_signature, ecdsa_takes_jose_r_s_not_der) {
  EVP_PKEY* k = keys::get().ec.get();
  const std::string der = digest_sign("ES256", k, data);
  const std::string raw = jose_from_der(k, der);
  ASSERT_EQ(raw.size(), 64u);
  EXPECT_TRUE(detail::verify_ecdsa(k, EVP_sha256(), 256, data, raw));
  EXPECT_FALSE(detail::verify_ecdsa(k, EVP_sha256(), 256, data, der));  // DER as sent by some libraries: refused
  EXPECT_FALSE(detail::verify_ecdsa(k, EVP_sha256(), 384, data, raw));  // halves of the wrong curve size
  EXPECT_FALSE(detail::verify_ecdsa(k, EVP_sha256(), 256, data, raw.substr(32) + raw.substr(0, 32)));  // S||R
  EXPECT_FALSE(detail::verify_ecdsa(k, EVP_sha256(), 256, data, std::string(64, '\0')));               // r = s = 0
  EXPECT_FALSE(detail::verify_ecdsa(k, EVP_sha256(), 256, data + "x", raw));
  // P-521: 66-byte halves (521 bits round up), the largest DER the buffer takes.
  EVP_PKEY* k521 = keys::get().ec521.get();
  const std::string raw521 = jws_signature("ES512", k521, data);
  ASSERT_EQ(raw521.size(), 132u);
  EXPECT_TRUE(detail::verify_ecdsa(k521, EVP_sha512(), 521, data, raw521));
  EXPECT_FALSE(detail::verify_ecdsa(k521, EVP_sha512(), 521, data, std::string(132, '\xff')));  // r, s >= n
}

TEST(jwt_signature, failures_leave_the_openssl_error_queue_empty) {
  // A shard thread also runs TLS, whose SSL_get_error() reads this queue.
  ERR_clear_error();
  EVP_PKEY* rsa = keys::get().rsa.get();
  EVP_PKEY* ec = keys::get().ec.get();
  const std::string rsa_sig = jws_signature("RS256", keys::get().rsa_other.get(), data);
  EXPECT_FALSE(detail::verify_rsa(rsa, EVP_sha256(), data, rsa_sig));
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_FALSE(detail::verify_rsa(rsa, EVP_sha256(), data, std::string(rsa_sig.size(), '\xff')));  // >= modulus
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_FALSE(
      detail::verify_ecdsa(ec, EVP_sha256(), 256, data, jws_signature("ES256", keys::get().ec_other.get(), data)));
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_FALSE(detail::verify_ecdsa(ec, EVP_sha256(), 256, data, std::string(64, '\0')));
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_FALSE(detail::verify_ecdsa(ec, EVP_sha256(), 256, data, std::string(64, '\xff')));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

}  // namespace
}  // namespace sb::test
