// Base64 and JSON reading for the JWT verifier; see jwt_parse.hpp.

#include "gateway/jwt_parse.hpp"

#include <simdjson.h>

#include <array>
#include <cmath>
#include <utility>

namespace sb::auth::detail {

namespace {

namespace od = simdjson::ondemand;

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

}  // namespace

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

namespace {

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

}  // namespace

// ---- header ---------------------------------------------------------------

bool parse_header(std::string_view json, std::string& alg) {
  json_object hdr;
  if (!hdr.open(json)) return false;
  bool has_alg = false;
  for (auto field : hdr.object()) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
    if (key == "alg") {
      od::value v;
      if (has_alg || field.value().get(v) != simdjson::SUCCESS || !read_string(v, alg)) return false;
      has_alg = true;
    } else if (key == "crit") {
      // RFC 7515 §4.1.11: extensions we do not implement must be refused.
      return false;
    }
  }
  return has_alg;
}

// ---- claims ---------------------------------------------------------------

namespace {

// clang-format would give each name a line of its own; as tables these read
// better, so they keep the layout they were written in.
// clang-format off
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
// clang-format on

}  // namespace

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
    // One claim a line, like the tables above.
    // clang-format off
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
    // clang-format on
    if (!ok) return false;
  }
  return true;
}

bool resolve_info(claims& c) {
  if (c.b64info.empty()) return true;
  std::string decoded;
  if (!b64_decode(c.b64info, false, decoded)) return false;
  c.info = std::move(decoded);
  return true;
}

}  // namespace sb::auth::detail
