// Key loading: the verifier's construction from the token_* config keys
// (PEM public keys for RS* and ES*, the HMAC secret, the digests) and its
// lifetime. Runs on the main thread at startup, where an exception ends the
// process with a one-line message that names the config key; after that the
// members are only read (jwt.cpp says why that needs no lock).

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <climits>
#include <stdexcept>
#include <string>
#include <string_view>

#include "gateway/jwt.hpp"

namespace sb::auth {

namespace {

EVP_PKEY* load_public_key(const std::string& pem) {
  // A certificate is accepted too, as Centrifugo does.
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return nullptr;
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  if (key == nullptr) {
    (void)BIO_reset(bio);
    if (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      key = X509_get_pubkey(cert);
      X509_free(cert);
    }
  }
  BIO_free(bio);
  ERR_clear_error();
  return key;
}

[[noreturn]] void config_fail(const char* key, const char* what) {
  throw std::runtime_error(std::string(key) + ": " + what);
}

}  // namespace

void verifier::pkey_free::operator()(evp_pkey_st* k) const noexcept { EVP_PKEY_free(k); }
void verifier::md_free::operator()(evp_md_st* m) const noexcept { EVP_MD_free(m); }

verifier::verifier(const verifier_config& cfg)
    : _hmac_secret(cfg.hmac_secret), _audience(cfg.audience), _issuer(cfg.issuer) {
  if (_hmac_secret.size() > INT_MAX) config_fail("token_hmac_secret_key", "too long");
  if (!cfg.rsa_public_key_pem.empty()) {
    _rsa.reset(load_public_key(cfg.rsa_public_key_pem));
    if (!_rsa) config_fail("token_rsa_public_key", "not a PEM public key");
    if (EVP_PKEY_get_base_id(_rsa.get()) != EVP_PKEY_RSA) config_fail("token_rsa_public_key", "not an RSA key");
  }
  if (!cfg.ecdsa_public_key_pem.empty()) {
    _ecdsa.reset(load_public_key(cfg.ecdsa_public_key_pem));
    if (!_ecdsa) config_fail("token_ecdsa_public_key", "not a PEM public key");
    if (EVP_PKEY_get_base_id(_ecdsa.get()) != EVP_PKEY_EC) config_fail("token_ecdsa_public_key", "not an EC key");
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(_ecdsa.get(), group, sizeof group, &len) != 1) len = 0;
    const std::string_view g(group, len);
    _ecdsa_bits = g == "prime256v1" ? 256 : g == "secp384r1" ? 384 : g == "secp521r1" ? 521 : 0;
    ERR_clear_error();
    if (_ecdsa_bits == 0) config_fail("token_ecdsa_public_key", "curve must be P-256, P-384 or P-521");
  }
  // In the order of alg_info::md in jwt.cpp: 0 SHA-256, 1 SHA-384, 2 SHA-512.
  static constexpr const char* md_names[3] = {"SHA256", "SHA384", "SHA512"};
  for (int i = 0; i < 3; ++i) {
    _md[i].reset(EVP_MD_fetch(nullptr, md_names[i], nullptr));
    if (!_md[i]) throw std::runtime_error(std::string("token verifier: OpenSSL has no ") + md_names[i]);
  }
}

verifier::~verifier() = default;
verifier::verifier(verifier&&) noexcept = default;
verifier& verifier::operator=(verifier&&) noexcept = default;

bool verifier::enabled() const noexcept { return !_hmac_secret.empty() || _rsa || _ecdsa; }

}  // namespace sb::auth
