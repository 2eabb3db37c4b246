// JWT verification: the order of checks (header, alg, signature, claims,
// audience and issuer, time, channel and user) and sign_hs256. The rest of
// the verifier: jwt_parse.cpp (base64, header and claims JSON),
// jwt_signature.cpp (HMAC, RSA, ECDSA), jwt_keys.cpp (key loading).
//
// Thread safety without locks rests on three facts:
//  - the verifier's members (secret, EVP_PKEYs, fetched EVP_MDs) are only
//    read after construction (jwt_keys.cpp); OpenSSL 3 allows concurrent
//    verify with one EVP_PKEY as long as nobody mutates it, and keys decoded
//    by PEM_read_bio_PUBKEY are already provider keys, so verify never has
//    to export (and cache into) them;
//  - every call makes its own EVP_MD_CTX / ECDSA_SIG (jwt_signature.cpp);
//  - simdjson parsers are thread_local (one per shard thread, reused, so a
//    connect storm does not allocate a parser per token; jwt_parse.cpp).
// Every OpenSSL failure on the verify path clears the thread's error queue:
// a shard thread also runs TLS, and SSL_get_error() reads that same queue.

#include "gateway/jwt.hpp"

#include <openssl/evp.h>

#include <array>
#include <utility>

#include "gateway/jwt_parse.hpp"
#include "gateway/jwt_signature.hpp"

namespace sb::auth {

namespace {

enum class family { hmac, rsa, ecdsa };

struct alg_info {
  std::string_view name;
  family fam;
  int md;       // index into verifier::_md (filled by jwt_keys.cpp): 0 SHA-256, 1 SHA-384, 2 SHA-512
  int ec_bits;  // ES*: the only curve RFC 7518 allows with this alg
};

constexpr std::array<alg_info, 9> algs{{
    {"HS256", family::hmac, 0, 0},
    {"HS384", family::hmac, 1, 0},
    {"HS512", family::hmac, 2, 0},
    {"RS256", family::rsa, 0, 0},
    {"RS384", family::rsa, 1, 0},
    {"RS512", family::rsa, 2, 0},
    {"ES256", family::ecdsa, 0, 256},
    {"ES384", family::ecdsa, 1, 384},
    {"ES512", family::ecdsa, 2, 521},
}};

}  // namespace

// ---- verifier ---------------------------------------------------------------

struct verifier::checked {
  std::string payload;  // decoded claims JSON, signature already verified
};

bool verifier::check_signature(int alg_index, std::string_view signed_part, std::string_view sig) const {
  const alg_info& a = algs[static_cast<std::size_t>(alg_index)];
  const EVP_MD* md = _md[a.md].get();
  switch (a.fam) {
    case family::hmac:
      return detail::verify_hmac(md, _hmac_secret, signed_part, sig);
    case family::rsa:
      return detail::verify_rsa(_rsa.get(), md, signed_part, sig);
    case family::ecdsa:
      return detail::verify_ecdsa(_ecdsa.get(), md, _ecdsa_bits, signed_part, sig);
  }
  return false;
}

verify_error verifier::check(std::string_view token, checked& out) const {
  if (token.size() > max_token_bytes) return verify_error::malformed;
  const std::size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return verify_error::malformed;

  // The header first, so that alg "none" is unsupported_alg whatever
  // follows it (with or without a signature part).
  std::string header;
  if (!detail::b64_decode(token.substr(0, dot1), true, header)) return verify_error::malformed;
  std::string alg;
  if (!detail::parse_header(header, alg)) return verify_error::malformed;
  int alg_index = -1;
  for (std::size_t i = 0; i < algs.size(); ++i)
    if (algs[i].name == alg) alg_index = static_cast<int>(i);
  if (alg_index < 0) return verify_error::unsupported_alg;  // includes "none", always
  // The alg picks the key *type*: an HS token is checked only against the
  // HMAC secret, never with an RSA/EC public key as the HMAC key (the
  // classic key-confusion attack), and vice versa.
  const alg_info& a = algs[static_cast<std::size_t>(alg_index)];
  const bool have_key = a.fam == family::hmac  ? !_hmac_secret.empty()
                        : a.fam == family::rsa ? _rsa != nullptr
                                               : _ecdsa != nullptr && _ecdsa_bits == a.ec_bits;
  if (!have_key) return verify_error::unsupported_alg;

  const std::size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return verify_error::malformed;
  // Decode both remaining parts before checking the signature, so that
  // undecodable input is malformed whichever part is broken.
  std::string sig;
  if (!detail::b64_decode(token.substr(dot2 + 1), true, sig)) return verify_error::malformed;
  if (!detail::b64_decode(token.substr(dot1 + 1, dot2 - dot1 - 1), true, out.payload)) return verify_error::malformed;
  if (!check_signature(alg_index, token.substr(0, dot2), sig)) return verify_error::bad_signature;
  return verify_error::none;
}

namespace {

// The same order of checks as Centrifugo, so a token that is both expired
// and for another audience gets "invalid token", not a refresh attempt that
// can never succeed: audience and issuer first, then time.
verify_error check_audience_issuer(const detail::claims& c, std::string_view audience, std::string_view issuer) {
  if (!audience.empty() && !(c.has_aud && c.aud_matched)) return verify_error::wrong_audience;
  if (!issuer.empty() && !(c.has_iss && c.iss == issuer)) return verify_error::wrong_issuer;
  return verify_error::none;
}

verify_error check_time(const detail::claims& c, std::int64_t now) {
  if ((c.has_exp && c.exp <= now) || (c.has_nbf && c.nbf > now)) return verify_error::expired;
  return verify_error::none;
}

}  // namespace

verify_error verifier::verify_connect(std::string_view token, std::int64_t now_unix, connect_claims& out) const {
  checked chk;
  if (auto e = check(token, chk); e != verify_error::none) return e;
  detail::claims c;
  if (!detail::parse_claims(chk.payload, true, _audience, c) || !detail::resolve_info(c))
    return verify_error::malformed;
  if (auto e = check_audience_issuer(c, _audience, _issuer); e != verify_error::none) return e;
  // Centrifugo refuses a subscription token offered as a connection token.
  if (!c.channel.empty()) return verify_error::wrong_channel;
  if (auto e = check_time(c, now_unix); e != verify_error::none) return e;
  out.user = std::move(c.sub);
  out.exp = c.has_exp ? c.exp : 0;
  out.info_json = std::move(c.info);
  out.meta_json = std::move(c.meta);
  // As Centrifugo: subs, when present and non-empty, replaces channels.
  out.channels = c.subs.empty() ? std::move(c.channels) : std::move(c.subs);
  out.has_expire_at = c.has_expire_at;
  out.expire_at = c.has_expire_at && c.expire_at > 0 ? c.expire_at : 0;
  return verify_error::none;
}

verify_error verifier::verify_subscribe(std::string_view token, std::int64_t now_unix, subscribe_claims& out) const {
  checked chk;
  if (auto e = check(token, chk); e != verify_error::none) return e;
  detail::claims c;
  if (!detail::parse_claims(chk.payload, false, _audience, c) || !detail::resolve_info(c))
    return verify_error::malformed;
  if (auto e = check_audience_issuer(c, _audience, _issuer); e != verify_error::none) return e;
  if (auto e = check_time(c, now_unix); e != verify_error::none) return e;
  if (c.channel.empty()) return verify_error::wrong_channel;
  out.user = std::move(c.sub);
  out.channel = std::move(c.channel);
  out.exp = c.has_exp ? c.exp : 0;
  out.info_json = std::move(c.info);
  out.has_expire_at = c.has_expire_at;
  out.expire_at = c.has_expire_at && c.expire_at > 0 ? c.expire_at : 0;
  return verify_error::none;
}

verify_error verifier::verify_subscribe(std::string_view token, std::int64_t now_unix, std::string_view user,
                                        std::string_view channel, subscribe_claims& out) const {
  subscribe_claims tmp;
  if (auto e = verify_subscribe(token, now_unix, tmp); e != verify_error::none) return e;
  if (tmp.channel != channel) return verify_error::wrong_channel;
  if (tmp.user != user) return verify_error::wrong_user;
  out = std::move(tmp);
  return verify_error::none;
}

std::string sign_hs256(std::string_view secret, std::string_view claims_json) {
  std::string token = detail::b64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  token += '.';
  token += detail::b64url_encode(claims_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  const unsigned mac_len = detail::hmac(EVP_sha256(), secret, token, mac);
  if (mac_len == 0) return {};
  token += '.';
  token += detail::b64url_encode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
  return token;
}

const char* to_string(verify_error e) noexcept {
  // clang-format would split each case in two; as a table it reads at a glance.
  // clang-format off
  switch (e) {
    case verify_error::none: return "none";
    case verify_error::malformed: return "malformed";
    case verify_error::bad_signature: return "bad_signature";
    case verify_error::unsupported_alg: return "unsupported_alg";
    case verify_error::expired: return "expired";
    case verify_error::wrong_audience: return "wrong_audience";
    case verify_error::wrong_issuer: return "wrong_issuer";
    case verify_error::wrong_channel: return "wrong_channel";
    case verify_error::wrong_user: return "wrong_user";
  }
  // clang-format on
  return "unknown";
}

}  // namespace sb::auth
