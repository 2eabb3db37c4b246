#pragma once
// The three JWS signature families (RFC 7518 §3.2-3.4), one function each,
// apart from picking which one a token gets (gateway/jwt.cpp: its alg table
// and configured keys). Internal to the verifier and its tests; the API for
// the rest of the gateway is gateway/jwt.hpp.
//
// Any thread, concurrently with one key: each call makes its own EVP_MD_CTX /
// ECDSA_SIG and only reads the EVP_PKEY. Every failure clears the thread's
// OpenSSL error queue, because a shard thread also runs TLS and
// SSL_get_error() reads that same queue.

#include <openssl/types.h>

#include <string_view>

namespace sb::auth::detail {

/// The HMAC of `data` under `key` with `md`, written to `mac`, which must
/// have room for EVP_MAX_MD_SIZE bytes; returns its length, 0 on failure. An
/// empty key is allowed. For verify_hmac and sign_hs256. Any thread.
unsigned hmac(const EVP_MD* md, std::string_view key, std::string_view data, unsigned char* mac);

/// HS256/384/512: true when `sig` is the HMAC of `data` under `secret`,
/// compared in constant time. Any thread.
bool verify_hmac(const EVP_MD* md, std::string_view secret, std::string_view data, std::string_view sig);

/// RS256/384/512 (RSASSA-PKCS1-v1_5): true when `sig`, exactly the key's
/// size, is a signature of `data` by the RSA `key`. Any thread.
bool verify_rsa(EVP_PKEY* key, const EVP_MD* md, std::string_view data, std::string_view sig);

/// ES256/384/512: true when `sig`, in the JOSE form R||S with each half
/// left-padded to (bits + 7) / 8 bytes, is a signature of `data` by the EC
/// `key`, whose curve has `bits` bits (256, 384 or 521). Any thread.
bool verify_ecdsa(EVP_PKEY* key, const EVP_MD* md, int bits, std::string_view data, std::string_view sig);

}  // namespace sb::auth::detail
