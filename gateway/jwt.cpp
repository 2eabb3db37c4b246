// JWT verification. Thread safety without locks rests on three facts:
//  - the verifier's members (secret, EVP_PKEYs, fetched EVP_MDs) are only
//    read after construction; OpenSSL 3 allows concurrent verify with one
//    EVP_PKEY as long as nobody mutates it, and keys decoded by
//    PEM_read_bio_PUBKEY are already provider keys, so verify never has to
//    export (and cache into) them;
//  - every call makes its own EVP_MD_CTX / ECDSA_SIG;
//  - simdjson parsers are thread_local (one per shard thread, reused, so a
//    connect storm does not allocate a parser per token).
// Every OpenSSL failure on the verify path clears the thread's error queue:
// a shard thread also runs TLS, and SSL_get_error() reads that same queue.

#include "gateway/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <simdjson.h>

#include <array>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace sb::auth {

namespace {

namespace od = simdjson::ondemand;

enum class family { hmac, rsa, ecdsa };

struct alg_info {
  std::string_view name;
  family fam;
  int md;       // index into verifier::_md: 0 SHA-256, 1 SHA-384, 2 SHA-512
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

// ---- base64 ---------------------------------------------------------------

constexpr char url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char std_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<signed char, 256> make_table(const char* alphabet) {
  std::array<signed char, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<signed char>(i);
  return t;
}
constexpr auto url_table = make_table(url_alphabet);
constexpr auto std_table = make_table(std_alphabet);

// JWS parts are unpadded base64url (RFC 7515 §2). `strict` also refuses
// non-zero leftover bits, so each byte string has exactly one encoding and a
// flipped last character can never still verify. b64info is Go's
// base64.StdEncoding: padded, and lenient about leftover bits.
bool b64_decode(std::string_view in, bool url, std::string& out) {
  const auto& table = url ? url_table : std_table;
  if (!url) {
    if (in.size() % 4 != 0) return false;
    if (!in.empty() && in.back() == '=') in.remove_suffix(1);
    if (!in.empty() && in.back() == '=') in.remove_suffix(1);
  }
  if (in.size() % 4 == 1) return false;
  out.clear();
  out.reserve(in.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = table[static_cast<unsigned char>(c)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (url && (acc & ((1u << bits) - 1)) != 0) return false;
  return true;
}

std::string b64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(url_alphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(url_alphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

// ---- JSON -----------------------------------------------------------------

// Parses `json` as one JSON object. The DOM pass validates the whole text
// (on-demand skips unread values without checking them, and we do not want
// to accept a payload with `tru` in a claim we ignore); the on-demand pass
// then walks the fields, because only it can hand back a value's raw text
// (info and meta go to clients byte-for-byte, as Centrifugo's RawMessage).
class json_object {
 public:
  bool open(std::string_view json) {
    thread_local simdjson::dom::parser dom;
    thread_local od::parser ond;
    _text = simdjson::padded_string(json);
    simdjson::dom::element root;
    if (dom.parse(_text).get(root) != simdjson::SUCCESS || !root.is_object()) return false;
    if (ond.iterate(_text).get(_doc) != simdjson::SUCCESS) return false;
    return _doc.get_object().get(_obj) == simdjson::SUCCESS;
  }
  od::object& object() { return _obj; }

 private:
  simdjson::padded_string _text;
  od::document _doc;
  od::object _obj;
};

bool is_null(od::value& v) {
  od::json_type t;
  return v.type().get(t) == simdjson::SUCCESS && t == od::json_type::null;
}

bool read_string(od::value& v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return false;
  out.assign(s);
  return true;
}

// NumericDate: Go's JWT library parses it as a float and truncates, so
// 1700000000.5 is valid; values outside int64 are refused.
bool read_time(od::value& v, std::int64_t& out, bool integer_only) {
  od::number n;
  if (v.get_number().get(n) != simdjson::SUCCESS) return false;
  switch (n.get_number_type()) {
    case od::number_type::signed_integer:
      out = n.get_int64();
      return true;
    case od::number_type::floating_point_number: {
      if (integer_only) return false;
      const double d = std::trunc(n.get_double());
      if (!(d >= -9.2e18 && d <= 9.2e18)) return false;
      out = static_cast<std::int64_t>(d);
      return true;
    }
    default:  // an unsigned integer above INT64_MAX
      return false;
  }
}

// Raw JSON text of any value, trimmed of the whitespace on-demand leaves
// after it. "null" counts as absent, like an omitted claim.
bool read_raw(od::value& v, std::string& out) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return false;
  std::string_view raw;
  simdjson::error_code ec;
  switch (t) {
    case od::json_type::null:
      out.clear();
      return true;
    case od::json_type::object: {
      od::object o;
      ec = v.get_object().get(o);
      if (!ec) ec = o.raw_json().get(raw);
      break;
    }
    case od::json_type::array: {
      od::array a;
      ec = v.get_array().get(a);
      if (!ec) ec = a.raw_json().get(raw);
      break;
    }
    default:
      raw = v.raw_json_token();
      ec = simdjson::SUCCESS;
      break;
  }
  if (ec) return false;
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r'))
    raw.remove_suffix(1);
  if (raw.empty()) return false;
  out.assign(raw);
  return true;
}

bool read_string_array(od::value& v, std::vector<std::string>& out) {
  od::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) return false;
  out.clear();
  for (auto item : arr) {
    std::string_view s;
    if (item.get_string().get(s) != simdjson::SUCCESS) return false;
    out.emplace_back(s);
  }
  return true;
}

// subs: {"channel": {options...}, ...}; we keep the channel names only.
bool read_subs_keys(od::value& v, std::vector<std::string>& out) {
  od::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return false;
  out.clear();
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
    od::value opts;
    if (field.value().get(opts) != simdjson::SUCCESS) return false;
    od::json_type t;
    if (opts.type().get(t) != simdjson::SUCCESS) return false;
    if (t != od::json_type::object && t != od::json_type::null) return false;
    out.emplace_back(key);
  }
  return true;
}

// aud is a string or an array of strings (RFC 7519 §4.1.3).
bool read_audience(od::value& v, std::string_view want, bool& matched) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return false;
  matched = false;
  if (t == od::json_type::string) {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS) return false;
    matched = s == want;
    return true;
  }
  od::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) return false;
  for (auto item : arr) {
    std::string_view s;
    if (item.get_string().get(s) != simdjson::SUCCESS) return false;
    matched = matched || s == want;
  }
  return true;
}

// Every claim either kind of token may carry, parsed in one walk.
struct claims {
  std::string sub, channel, iss, info, b64info, meta;
  std::vector<std::string> channels, subs;
  std::int64_t exp = 0, nbf = 0, expire_at = 0;
  bool has_exp = false, has_nbf = false, has_expire_at = false, has_aud = false, aud_matched = false;
  bool has_iss = false, has_subs = false;
};

enum claim_bit : unsigned {
  c_sub = 1u << 0, c_exp = 1u << 1, c_nbf = 1u << 2, c_iat = 1u << 3, c_aud = 1u << 4,
  c_iss = 1u << 5, c_info = 1u << 6, c_b64info = 1u << 7, c_expire_at = 1u << 8,
  c_channel = 1u << 9, c_channels = 1u << 10, c_subs = 1u << 11, c_meta = 1u << 12,
};

// Claims that only a connection token knows: in a subscription token they
// are unknown and ignored, as Centrifugo's decoder ignores them.
constexpr unsigned connect_only = c_channels | c_subs | c_meta;

unsigned claim_of(std::string_view k) {
  static constexpr std::pair<std::string_view, unsigned> names[] = {
      {"sub", c_sub}, {"exp", c_exp}, {"nbf", c_nbf}, {"iat", c_iat}, {"aud", c_aud},
      {"iss", c_iss}, {"info", c_info}, {"b64info", c_b64info}, {"expire_at", c_expire_at},
      {"channel", c_channel}, {"channels", c_channels}, {"subs", c_subs}, {"meta", c_meta}};
  for (const auto& [name, bit] : names)
    if (name == k) return bit;
  return 0;
}

bool parse_claims(std::string_view json, bool connect, std::string_view audience, claims& c) {
  json_object doc;
  if (!doc.open(json)) return false;
  unsigned seen = 0;
  for (auto field : doc.object()) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
    const unsigned bit = claim_of(key);
    if (bit == 0 || (!connect && (bit & connect_only))) continue;
    // A repeated claim is refused rather than resolved: first-wins here and
    // last-wins in Go would let two implementations read different users.
    if (seen & bit) return false;
    seen |= bit;
    od::value v;
    if (field.value().get(v) != simdjson::SUCCESS) return false;
    if (bit != c_info && bit != c_meta && is_null(v)) continue;  // null = absent, as in Go
    bool ok = true;
    switch (bit) {
      case c_sub: ok = read_string(v, c.sub); break;
      case c_channel: ok = read_string(v, c.channel); break;
      case c_iss: ok = read_string(v, c.iss); c.has_iss = ok; break;
      case c_b64info: ok = read_string(v, c.b64info); break;
      case c_exp: ok = read_time(v, c.exp, false); c.has_exp = ok; break;
      case c_nbf: ok = read_time(v, c.nbf, false); c.has_nbf = ok; break;
      case c_iat: { std::int64_t iat; ok = read_time(v, iat, false); break; }
      case c_expire_at: ok = read_time(v, c.expire_at, true); c.has_expire_at = ok; break;
      case c_aud: ok = read_audience(v, audience, c.aud_matched); c.has_aud = ok; break;
      case c_info: ok = read_raw(v, c.info); break;
      case c_meta: ok = read_raw(v, c.meta); break;
      case c_channels: ok = read_string_array(v, c.channels); break;
      case c_subs: ok = read_subs_keys(v, c.subs); c.has_subs = ok; break;
    }
    if (!ok) return false;
  }
  return true;
}

// info: b64info wins when non-empty (Centrifugo: binary info for Protobuf
// clients); the bytes are handed on as they decode.
bool resolve_info(claims& c) {
  if (c.b64info.empty()) return true;
  std::string decoded;
  if (!b64_decode(c.b64info, false, decoded)) return false;
  c.info = std::move(decoded);
  return true;
}

// ---- keys -----------------------------------------------------------------

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

bool verify_digest(EVP_PKEY* key, const EVP_MD* md, std::string_view data, const unsigned char* sig,
                   std::size_t sig_len) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, sig, sig_len, reinterpret_cast<const unsigned char*>(data.data()),
                             data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) ERR_clear_error();
  return ok;
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

}  // namespace

// ---- verifier ---------------------------------------------------------------

void verifier::pkey_free::operator()(evp_pkey_st* k) const noexcept { EVP_PKEY_free(k); }
void verifier::md_free::operator()(evp_md_st* m) const noexcept { EVP_MD_free(m); }

struct verifier::checked {
  std::string payload;  // decoded claims JSON, signature already verified
};

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

bool verifier::check_signature(int alg_index, std::string_view signed_part, std::string_view sig) const {
  const alg_info& a = algs[static_cast<std::size_t>(alg_index)];
  const EVP_MD* md = _md[a.md].get();
  switch (a.fam) {
    case family::hmac: {
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_len = 0;
      if (HMAC(md, _hmac_secret.data(), static_cast<int>(_hmac_secret.size()),
               reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac,
               &mac_len) == nullptr) {
        ERR_clear_error();
        return false;
      }
      // Constant time: a byte-by-byte early exit would let a client find
      // a valid MAC one byte at a time by timing.
      return sig.size() == mac_len && CRYPTO_memcmp(sig.data(), mac, mac_len) == 0;
    }
    case family::rsa:
      if (sig.size() != static_cast<std::size_t>(EVP_PKEY_get_size(_rsa.get()))) return false;
      return verify_digest(_rsa.get(), md, signed_part, reinterpret_cast<const unsigned char*>(sig.data()),
                           sig.size());
    case family::ecdsa:
      return verify_ecdsa(_ecdsa.get(), md, _ecdsa_bits, signed_part, sig);
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
  if (!b64_decode(token.substr(0, dot1), true, header)) return verify_error::malformed;
  json_object hdr;
  if (!hdr.open(header)) return verify_error::malformed;
  std::string alg;
  bool has_alg = false;
  for (auto field : hdr.object()) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return verify_error::malformed;
    if (key == "alg") {
      od::value v;
      if (has_alg || field.value().get(v) != simdjson::SUCCESS || !read_string(v, alg))
        return verify_error::malformed;
      has_alg = true;
    } else if (key == "crit") {
      // RFC 7515 §4.1.11: extensions we do not implement must be refused.
      return verify_error::malformed;
    }
  }
  if (!has_alg) return verify_error::malformed;
  int alg_index = -1;
  for (std::size_t i = 0; i < algs.size(); ++i)
    if (algs[i].name == alg) alg_index = static_cast<int>(i);
  if (alg_index < 0) return verify_error::unsupported_alg;  // includes "none", always
  // The alg picks the key *type*: an HS token is checked only against the
  // HMAC secret, never with an RSA/EC public key as the HMAC key (the
  // classic key-confusion attack), and vice versa.
  const alg_info& a = algs[static_cast<std::size_t>(alg_index)];
  const bool have_key = a.fam == family::hmac    ? !_hmac_secret.empty()
                        : a.fam == family::rsa   ? _rsa != nullptr
                                                 : _ecdsa != nullptr && _ecdsa_bits == a.ec_bits;
  if (!have_key) return verify_error::unsupported_alg;

  const std::size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return verify_error::malformed;
  // Decode both remaining parts before checking the signature, so that
  // undecodable input is malformed whichever part is broken.
  std::string sig;
  if (!b64_decode(token.substr(dot2 + 1), true, sig)) return verify_error::malformed;
  if (!b64_decode(token.substr(dot1 + 1, dot2 - dot1 - 1), true, out.payload)) return verify_error::malformed;
  if (!check_signature(alg_index, token.substr(0, dot2), sig)) return verify_error::bad_signature;
  return verify_error::none;
}

namespace {

// The same order of checks as Centrifugo, so a token that is both expired
// and for another audience gets "invalid token", not a refresh attempt that
// can never succeed: audience and issuer first, then time.
verify_error check_audience_issuer(const claims& c, std::string_view audience, std::string_view issuer) {
  if (!audience.empty() && !(c.has_aud && c.aud_matched)) return verify_error::wrong_audience;
  if (!issuer.empty() && !(c.has_iss && c.iss == issuer)) return verify_error::wrong_issuer;
  return verify_error::none;
}

verify_error check_time(const claims& c, std::int64_t now) {
  if ((c.has_exp && c.exp <= now) || (c.has_nbf && c.nbf > now)) return verify_error::expired;
  return verify_error::none;
}

}  // namespace

verify_error verifier::verify_connect(std::string_view token, std::int64_t now_unix, connect_claims& out) const {
  checked chk;
  if (auto e = check(token, chk); e != verify_error::none) return e;
  claims c;
  if (!parse_claims(chk.payload, true, _audience, c) || !resolve_info(c)) return verify_error::malformed;
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
  claims c;
  if (!parse_claims(chk.payload, false, _audience, c) || !resolve_info(c)) return verify_error::malformed;
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
  std::string token = b64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  token += '.';
  token += b64url_encode(claims_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  // HMAC() wants a non-null key pointer even for an empty key.
  static const char empty_key = 0;
  if (HMAC(EVP_sha256(), secret.empty() ? &empty_key : secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(token.data()), token.size(), mac, &mac_len) == nullptr) {
    ERR_clear_error();
    return {};
  }
  token += '.';
  token += b64url_encode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
  return token;
}

const char* to_string(verify_error e) noexcept {
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
  return "unknown";
}

}  // namespace sb::auth
