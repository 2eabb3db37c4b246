#pragma once
// Centrifugo-compatible JWT verification for connection and subscription
// tokens (HS*/RS*/ES*). One verifier is built from config on the main thread
// and then shared read-only by every shard: nothing in it changes after
// construction, so verification takes no lock (see jwt.cpp for the OpenSSL
// and simdjson details that make that true). Claims and error mapping:
// docs/auth.md.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

// OpenSSL's EVP_PKEY and EVP_MD, forward-declared so that including this
// header does not drag OpenSSL into every file of the gateway.
struct evp_pkey_st;
struct evp_md_st;

namespace sb::auth {

/// Why a token was refused. The caller maps `expired` to Centrifuge error
/// 109 "token expired" (the client refreshes its token and retries) and
/// everything else to disconnect 3500 "invalid token".
enum class verify_error {
  none,
  malformed,        ///< not three base64url parts, bad JSON, claim of the wrong type, > 16 KiB
  bad_signature,    ///< signature does not match the configured key
  unsupported_alg,  ///< alg unknown, "none", or no key of that type is configured
  expired,          ///< exp <= now, or nbf > now (Centrifugo reports both as expired)
  wrong_audience,   ///< token_audience configured and aud does not contain it
  wrong_issuer,     ///< token_issuer configured and iss differs
  wrong_channel,    ///< subscription token for another channel (or without one); connection token with a channel claim
  wrong_user,       ///< subscription token whose sub is not the connection's user
};

/// Claims of a verified connection token. Plain data: the caller moves what
/// it keeps into the session.
struct connect_claims {
  std::string user;          ///< sub; "" = anonymous
  std::int64_t exp = 0;      ///< exp in Unix seconds; 0 = the token has none
  std::string info_json;     ///< info as raw JSON text, or the decoded b64info bytes; "" = none
  std::string meta_json;     ///< meta as raw JSON text; "" = none (server side only, never sent to clients)
  std::vector<std::string> channels;  ///< server-side subscriptions: the keys of subs when present, else channels
  std::int64_t expire_at = 0;  ///< expire_at claim (0 also when absent; see has_expire_at)
  bool has_expire_at = false;  ///< expire_at was present: it, not exp, decides connection expiry

  /// When the connection must refresh (Unix seconds, 0 = never), as
  /// Centrifugo decides it: expire_at if present (0 there disables expiry),
  /// else exp. Any thread.
  std::int64_t expires_at() const noexcept { return has_expire_at ? expire_at : exp; }
};

/// Claims of a verified subscription token.
struct subscribe_claims {
  std::string user;          ///< sub; must equal the connection's user ("" = anonymous)
  std::string channel;       ///< channel; never empty after a successful verify
  std::int64_t exp = 0;      ///< 0 = the token has none
  std::string info_json;     ///< channel info as raw JSON text, or decoded b64info bytes; "" = none
  std::int64_t expire_at = 0;
  bool has_expire_at = false;

  /// When the subscription must refresh (Unix seconds, 0 = never): expire_at
  /// if present, else exp. Any thread.
  std::int64_t expires_at() const noexcept { return has_expire_at ? expire_at : exp; }
};

/// The token_* config keys. Key values are the PEM text itself.
struct verifier_config {
  std::string hmac_secret;           ///< token_hmac_secret_key (HS256/HS384/HS512)
  std::string rsa_public_key_pem;    ///< token_rsa_public_key (RS256/RS384/RS512)
  std::string ecdsa_public_key_pem;  ///< token_ecdsa_public_key (ES256/ES384/ES512 on P-256/P-384/P-521)
  std::string audience;              ///< token_audience; empty: aud not checked
  std::string issuer;                ///< token_issuer; empty: iss not checked
};

/// Verifies connection and subscription JWTs. Built once on the main thread
/// (may throw std::runtime_error naming the config key), then immutable and
/// shared read-only by all shards: every const member is safe to call from
/// any shard thread concurrently, without locks, and never throws.
class verifier {
 public:
  /// Loads the keys. Throws std::runtime_error with a one-line message that
  /// names the config key, e.g. "token_rsa_public_key: not a PEM public key".
  /// Main thread, at startup.
  explicit verifier(const verifier_config& cfg);
  ~verifier();
  verifier(verifier&&) noexcept;
  verifier& operator=(verifier&&) noexcept;
  verifier(const verifier&) = delete;
  verifier& operator=(const verifier&) = delete;

  /// True when any key is configured (otherwise every token is
  /// unsupported_alg and the gateway should not ask for one). Any thread.
  bool enabled() const noexcept;

  /// Checks a connection token at time `now_unix` and fills `out` (only on
  /// success). Any shard thread.
  verify_error verify_connect(std::string_view token, std::int64_t now_unix, connect_claims& out) const;

  /// Checks a subscription token and fills `out` (only on success); the
  /// caller must still compare out.user and out.channel with the connection
  /// and the subscribe request, or use the overload below. A token without
  /// a channel claim is wrong_channel. Any shard thread.
  verify_error verify_subscribe(std::string_view token, std::int64_t now_unix, subscribe_claims& out) const;

  /// As above, and also requires sub == `user` (else wrong_user) and
  /// channel == `channel` (else wrong_channel). Any shard thread.
  verify_error verify_subscribe(std::string_view token, std::int64_t now_unix, std::string_view user,
                                std::string_view channel, subscribe_claims& out) const;

 private:
  struct pkey_free {
    void operator()(evp_pkey_st* k) const noexcept;
  };
  struct md_free {
    void operator()(evp_md_st* m) const noexcept;
  };
  using pkey_ptr = std::unique_ptr<evp_pkey_st, pkey_free>;
  using md_ptr = std::unique_ptr<evp_md_st, md_free>;
  struct checked;  // jwt.cpp: what the signature check hands to the claims parser

  verify_error check(std::string_view token, checked& out) const;
  bool check_signature(int alg_index, std::string_view signed_part, std::string_view sig) const;

  std::string _hmac_secret;
  pkey_ptr _rsa;
  pkey_ptr _ecdsa;
  int _ecdsa_bits = 0;  // 256, 384 or 521: the one ES* alg the key may verify
  // SHA-256/384/512 fetched once: an implicit fetch per call would look the
  // algorithm up in the provider store (under its lock) on every verify.
  md_ptr _md[3];
  std::string _audience;
  std::string _issuer;
};

/// Builds an HS256 token whose payload is `claims_json` (used as given, not
/// validated). For tests and the load generator (swload). Any thread.
std::string sign_hs256(std::string_view secret, std::string_view claims_json);

/// A short stable name for logs and metrics ("expired", ...). Any thread.
const char* to_string(verify_error e) noexcept;

/// Largest token accepted; longer ones are malformed without being decoded.
inline constexpr std::size_t max_token_bytes = 16 * 1024;

}  // namespace sb::auth
