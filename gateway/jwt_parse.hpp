#pragma once
// The JWT verifier's reading of untrusted input, apart from the checks it
// makes (gateway/jwt.cpp): the base64 under every part of a token, the JOSE
// header and the claims JSON. Internal to the verifier (and its tests); the
// API for the rest of the gateway is gateway/jwt.hpp. Plain functions: no
// shared state (simdjson parsers are thread_local), any thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sb::auth::detail {

/// Decodes base64 into `out`; false (out then unspecified) when `in` is not
/// valid. `url`: a JWS part, unpadded base64url (RFC 7515 §2), strict about
/// non-zero leftover bits so that each byte string has exactly one encoding
/// and a flipped last character can never still verify. Otherwise b64info,
/// Go's base64.StdEncoding: padded, and lenient about leftover bits. Any
/// thread.
bool b64_decode(std::string_view in, bool url, std::string& out);

/// Unpadded base64url of `in`, the form b64_decode(…, true, …) accepts. For
/// sign_hs256. Any thread.
std::string b64url_encode(std::string_view in);

/// Reads a decoded JOSE header and puts its alg into `alg`. False when the
/// header is malformed: not one valid JSON object, alg missing, not a string
/// or given twice, or a crit parameter present (RFC 7515 §4.1.11: extensions
/// we do not implement must be refused). Whether alg names a known algorithm
/// is the caller's check. Any thread.
bool parse_header(std::string_view json, std::string& alg);

/// Every claim either kind of token may carry, as parse_claims read them.
/// Plain data, owned by the caller's stack frame.
struct claims {
  std::string sub, channel, iss, info, b64info, meta;
  std::vector<std::string> channels, subs;
  std::int64_t exp = 0, nbf = 0, expire_at = 0;
  bool has_exp = false, has_nbf = false, has_expire_at = false, has_aud = false, aud_matched = false;
  bool has_iss = false, has_subs = false;
};

/// Reads a decoded claims payload into `c` in one walk; false when it is
/// malformed (invalid JSON anywhere, not an object, a known claim of the
/// wrong type or given twice). `connect`: a connection token; otherwise the
/// connection-only claims (channels, subs, meta) are unknown and ignored, as
/// Centrifugo's decoder ignores them. aud is compared with `audience` while
/// it is read (c.aud_matched). Any thread.
bool parse_claims(std::string_view json, bool connect, std::string_view audience, claims& c);

/// Decodes a non-empty b64info into c.info, where it wins over info
/// (Centrifugo: binary info for Protobuf clients); false when it is not
/// standard base64. Any thread.
bool resolve_info(claims& c);

}  // namespace sb::auth::detail
