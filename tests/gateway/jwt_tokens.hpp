#pragma once
// Test-side token building for the JWT tests (jwt_test.cpp, jwt_parse_test.cpp,
// jwt_signature_test.cpp, jwt_keys_test.cpp): its own base64url encoder and
// OpenSSL signing, independent of the verifier's code, and keys generated once
// per run so that no key material lives in the repo. Test thread only.

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/jwt.hpp"

namespace sb::test {

using auth::connect_claims;
using auth::subscribe_claims;
using auth::verifier;
using auth::verifier_config;
using auth::verify_error;

inline constexpr std::int64_t now = 1'700'000'000;
inline const std::string secret = "test-secret";

/// Unpadded base64url, written apart from the verifier's own encoder.
inline std::string b64url(std::string_view in) {
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

inline const EVP_MD* md_for(std::string_view alg) {
  if (alg.ends_with("384")) return EVP_sha384();
  if (alg.ends_with("512")) return EVP_sha512();
  return EVP_sha256();
}

inline std::string header_for(std::string_view alg) {
  return std::string(R"({"alg":")") + std::string(alg) + R"(","typ":"JWT"})";
}

/// An HS* token signed with `key`; `header` replaces the usual {"alg":…,"typ":"JWT"}.
inline std::string hmac_token(std::string_view alg, std::string_view key, std::string_view claims,
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

// What `write` puts into a memory BIO, e.g. a PEM text.
template <class Write>
std::string bio_text(Write write) {
  BIO* bio = BIO_new(BIO_s_mem());
  write(bio);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return text;
}

inline std::string public_pem(EVP_PKEY* k) {
  return bio_text([k](BIO* bio) { PEM_write_bio_PUBKEY(bio, k); });
}

/// `data` signed by `k` as EVP_DigestSign gives it: PKCS#1 v1.5 for RSA, DER
/// ECDSA-Sig-Value for EC.
inline std::string digest_sign(std::string_view alg, EVP_PKEY* k, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, md_for(alg), nullptr, k);
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(data.data()), data.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

/// A DER ECDSA signature by `k` turned into the JOSE R||S form, each half
/// padded to the curve size.
inline std::string jose_from_der(EVP_PKEY* k, std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  const int half = (EVP_PKEY_get_bits(k) + 7) / 8;
  std::string raw(static_cast<std::size_t>(2 * half), '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), half);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + half, half);
  ECDSA_SIG_free(es);
  return raw;
}

/// The signature a JWS carries: RS* PKCS#1 v1.5 as is, ES* in JOSE form.
inline std::string jws_signature(std::string_view alg, EVP_PKEY* k, std::string_view data) {
  const std::string sig = digest_sign(alg, k, data);
  return alg[0] == 'E' ? jose_from_der(k, sig) : sig;
}

/// An RS* or ES* token signed by `k`.
inline std::string pkey_token(std::string_view alg, EVP_PKEY* k, std::string_view claims) {
  const std::string t = b64url(header_for(alg)) + "." + b64url(claims);
  return t + "." + b64url(jws_signature(alg, k, t));
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

/// The HMAC secret, the RSA key and the P-256 key all configured.
inline verifier_config full_config() {
  verifier_config c;
  c.hmac_secret = secret;
  c.rsa_public_key_pem = public_pem(keys::get().rsa.get());
  c.ecdsa_public_key_pem = public_pem(keys::get().ec.get());
  return c;
}

/// verify_connect at `now`, the claims into *out when given.
inline verify_error connect(const verifier& v, const std::string& token, connect_claims* out = nullptr) {
  connect_claims c;
  const auto e = v.verify_connect(token, now, c);
  if (out) *out = c;
  return e;
}

/// An HS256 connection token with these claims, checked by a full_config() verifier.
inline verify_error hs(const std::string& claims) {
  return connect(verifier(full_config()), hmac_token("HS256", secret, claims));
}

}  // namespace sb::test
