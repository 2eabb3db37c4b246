// libFuzzer target for gateway/jwt.cpp. The first input byte picks a mode:
//   0: the rest is a token, verified as connection and subscription token;
//   1: the rest is the claims JSON of a validly signed HS256 token, so the
//      claims parser (reached only after the signature) gets fuzzed;
//   2: the rest is "header JSON \0 claims JSON", both base64url-encoded and
//      HS-signed with the alg the fuzzer wrote (header parser + alg table).
// Configured: an HMAC secret and a fixed P-256 public key (no private key
// exists for it in the repo, so ES tokens always reach the verify and fail).

#include "gateway/jwt.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view secret = "fuzz-secret";
constexpr std::int64_t now = 1'700'000'000;

constexpr const char* ec_pem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnw4tspJUFaxRVVFaKk9jk3gwdq4S\n"
    "Y/OfBdVOsoB2HGYdXknvBLZhfRpFTo/v5CXaF46VgAIYwqfDDJRLpKLf+A==\n"
    "-----END PUBLIC KEY-----\n";

const sb::auth::verifier& plain() {
  static const sb::auth::verifier v({std::string(secret), "", ec_pem, "", ""});
  return v;
}
const sb::auth::verifier& strict() {
  static const sb::auth::verifier v({std::string(secret), "", ec_pem, "aud1", "iss1"});
  return v;
}

std::string b64url(std::string_view in) {
  static constexpr char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(a[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(a[(acc << (6 - bits)) & 63]);
  return out;
}

// Signs with HMAC-SHA256/384/512 as the header's alg suggests (by a cheap
// substring look), so HS384/HS512 tokens can verify too.
std::string sign(std::string_view header, std::string_view claims) {
  const EVP_MD* md = header.find("384") != std::string_view::npos   ? EVP_sha384()
                     : header.find("512") != std::string_view::npos ? EVP_sha512()
                                                                    : EVP_sha256();
  std::string t = b64url(header) + "." + b64url(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(md, secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(t.data()),
       t.size(), mac, &len);
  return t + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

// Invariants on a successful verify: meta has no base64 form, so it must be
// a complete JSON value (catches a wrong raw-text slice); a subscription
// always names its channel.
void check(const sb::auth::connect_claims& c) {
  if (c.meta_json.empty()) return;
  simdjson::dom::parser p;
  simdjson::dom::element e;
  if (p.parse(simdjson::padded_string(c.meta_json)).get(e) != simdjson::SUCCESS) std::abort();
}

void verify_all(const std::string& token) {
  for (const sb::auth::verifier* v : {&plain(), &strict()}) {
    sb::auth::connect_claims c;
    if (v->verify_connect(token, now, c) == sb::auth::verify_error::none) check(c);
    sb::auth::subscribe_claims s;
    if (v->verify_subscribe(token, now, s) == sb::auth::verify_error::none && s.channel.empty()) std::abort();
    (void)v->verify_subscribe(token, now, "u", "ch", s);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      verify_all(std::string(rest));
      break;
    case 1:
      verify_all(sb::auth::sign_hs256(secret, rest));
      break;
    default: {
      const auto split = rest.find('\0');
      if (split == std::string_view::npos) return 0;
      verify_all(sign(rest.substr(0, split), rest.substr(split + 1)));
      break;
    }
  }
  return 0;
}
