// HMAC, RSA and ECDSA signature checks for the JWT verifier; see
// jwt_signature.hpp.

#include "gateway/jwt_signature.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>

namespace sb::auth::detail {

namespace {

bool verify_digest(EVP_PKEY* key, const EVP_MD* md, std::string_view data, const unsigned char* sig,
                   std::size_t sig_len) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, sig, sig_len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) ERR_clear_error();
  return ok;
}

}  // namespace

unsigned hmac(const EVP_MD* md, std::string_view key, std::string_view data, unsigned char* mac) {
  unsigned int mac_len = 0;
  // HMAC() wants a non-null key pointer even for an empty key. The verifier
  // refuses secrets over INT_MAX bytes at startup, so the int cast is safe on
  // the verify path.
  static const char empty_key = 0;
  if (HMAC(md, key.empty() ? &empty_key : key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &mac_len) == nullptr) {
    ERR_clear_error();
    return 0;
  }
  return mac_len;
}

bool verify_hmac(const EVP_MD* md, std::string_view secret, std::string_view data, std::string_view sig) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  const unsigned mac_len = hmac(md, secret, data, mac);
  if (mac_len == 0) return false;
  // Constant time: a byte-by-byte early exit would let a client find
  // a valid MAC one byte at a time by timing.
  return sig.size() == mac_len && CRYPTO_memcmp(sig.data(), mac, mac_len) == 0;
}

bool verify_rsa(EVP_PKEY* key, const EVP_MD* md, std::string_view data, std::string_view sig) {
  if (sig.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key))) return false;
  return verify_digest(key, md, data, reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

// JOSE ES* signatures are R||S, each left-padded to the curve size (RFC 7518
// §3.4); EVP_DigestVerify wants the DER ECDSA-Sig-Value.
bool verify_ecdsa(EVP_PKEY* key, const EVP_MD* md, int bits, std::string_view data, std::string_view sig) {
  const std::size_t half = static_cast<std::size_t>((bits + 7) / 8);
  if (sig.size() != 2 * half) return false;
  const auto* raw = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(raw, static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(raw + half, static_cast<int>(half), nullptr);
  if (es == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(es, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    ERR_clear_error();
    return false;
  }
  // ECDSA_SIG owns r and s now. DER of two ≤ 66-byte integers fits easily.
  unsigned char der[160];
  unsigned char* p = der;
  bool ok = false;
  if (i2d_ECDSA_SIG(es, nullptr) <= static_cast<int>(sizeof der)) {
    const int len = i2d_ECDSA_SIG(es, &p);
    ok = len > 0 && verify_digest(key, md, data, der, static_cast<std::size_t>(len));
  }
  ECDSA_SIG_free(es);
  if (!ok) ERR_clear_error();
  return ok;
}

}  // namespace sb::auth::detail
