// Tests of key loading (gateway/jwt_keys.cpp): which PEM texts the verifier
// accepts for token_rsa_public_key and token_ecdsa_public_key, and the
// startup messages for those it does not.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdexcept>
#include <string>

#include "gateway/jwt.hpp"
#include "tests/gateway/jwt_tokens.hpp"

namespace sb::test {
namespace {

TEST(jwt_keys, bad_key_config_throws_naming_the_key) {
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

// A self-signed certificate for `k`, as PEM.
std::string certificate_pem(EVP_PKEY* k) {
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, k);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("jwt test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, k, EVP_sha256());
  std::string pem = bio_text([x](BIO* bio) { PEM_write_bio_X509(bio, x); });
  X509_free(x);
  return pem;
}

TEST(jwt_keys, a_certificate_is_accepted_for_its_public_key) {
  // As Centrifugo: the PEM may be the certificate the key came in.
  verifier_config c;
  c.rsa_public_key_pem = certificate_pem(keys::get().rsa.get());
  c.ecdsa_public_key_pem = certificate_pem(keys::get().ec.get());
  ASSERT_NE(c.rsa_public_key_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  const verifier v(c);
  EXPECT_EQ(connect(v, pkey_token("RS256", keys::get().rsa.get(), R"({"sub":"1"})")), verify_error::none);
  EXPECT_EQ(connect(v, pkey_token("ES256", keys::get().ec.get(), R"({"sub":"1"})")), verify_error::none);
}

TEST(jwt_keys, each_curve_enables_exactly_its_es_alg) {
  const struct {
    EVP_PKEY* key;
    const char* alg;
  } curves[] = {
      {keys::get().ec.get(), "ES256"}, {keys::get().ec384.get(), "ES384"}, {keys::get().ec521.get(), "ES512"}};
  for (const auto& key : curves) {
    verifier_config c;
    c.ecdsa_public_key_pem = public_pem(key.key);
    const verifier v(c);
    for (const auto& token : curves) {
      const auto e = connect(v, pkey_token(token.alg, token.key, R"({"sub":"1"})"));
      EXPECT_EQ(e, key.alg == token.alg ? verify_error::none : verify_error::unsupported_alg)
          << "key for " << key.alg << ", token " << token.alg;
    }
  }
}

TEST(jwt_keys, other_curves_are_refused_at_startup) {
  const pkey k256k1{EVP_EC_gen("secp256k1")};  // ES256K (RFC 8812) is not one of ours
  ASSERT_NE(k256k1, nullptr);
  verifier_config c;
  c.ecdsa_public_key_pem = public_pem(k256k1.get());
  try {
    verifier v(c);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "token_ecdsa_public_key: curve must be P-256, P-384 or P-521");
  }
}

}  // namespace
}  // namespace sb::test
