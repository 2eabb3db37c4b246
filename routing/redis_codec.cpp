#include "routing/redis_codec.hpp"

#include <charconv>

namespace sb::routing::redis_codec {

namespace {

constexpr std::uint8_t has_info_flag = 1;

void put_varint(std::uint64_t v, std::string& out) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_bytes(std::string_view s, std::string& out) {
  put_varint(s.size(), out);
  out.append(s);
}

/// Reads from a view, failing (and staying failed) on anything short.
struct reader {
  std::string_view in;
  bool ok = true;

  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) break;
      auto b = static_cast<std::uint8_t>(in.front());
      in.remove_prefix(1);
      v |= std::uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  void bytes(std::string& out) {
    std::uint64_t n = varint();
    if (!ok || n > in.size()) {
      ok = false;
      return;
    }
    out.assign(in.substr(0, n));
    in.remove_prefix(n);
  }
};

void put_info(const client_info& who, std::string& out) {
  put_bytes(who.user, out);
  put_bytes(who.client, out);
  put_bytes(who.conn_info, out);
  put_bytes(who.chan_info, out);
}

void read_info(reader& r, client_info& who) {
  r.bytes(who.user);
  r.bytes(who.client);
  r.bytes(who.conn_info);
  r.bytes(who.chan_info);
}

}  // namespace

void encode_body(const publication& p, std::string& out) {
  out.push_back(static_cast<char>(p.has_info ? has_info_flag : 0));
  put_bytes(p.data, out);
  put_info(p.has_info ? p.info : client_info{}, out);
}

void encode_info(const client_info& who, std::string& out) { put_info(who, out); }

bool decode_body(std::string_view in, publication& p) {
  if (in.empty()) return false;
  auto flags = static_cast<std::uint8_t>(in.front());
  if (flags & ~has_info_flag) return false;
  reader r{in.substr(1)};
  r.bytes(p.data);
  read_info(r, p.info);
  p.has_info = flags & has_info_flag;
  return r.ok && r.in.empty();
}

bool decode_info(std::string_view in, client_info& who) {
  reader r{in};
  read_info(r, who);
  return r.ok && r.in.empty();
}

bool decode_message(std::string_view payload, message& m) {
  if (payload.empty()) return false;
  char tag = payload.front();
  payload.remove_prefix(1);
  if (tag == 'j' || tag == 'l') {
    m.what = tag == 'j' ? publication::kind::join : publication::kind::leave;
    m.offset = 0;
    m.epoch = {};
    m.body = payload;
    return true;
  }
  if (tag != 'p') return false;
  m.what = publication::kind::publication;
  auto colon = payload.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 20) return false;
  auto [end, ec] = std::from_chars(payload.data(), payload.data() + colon, m.offset);
  if (ec != std::errc() || end != payload.data() + colon) return false;
  payload.remove_prefix(colon + 1);
  auto colon2 = payload.find(':');
  if (colon2 == std::string_view::npos || colon2 > 64) return false;
  m.epoch = payload.substr(0, colon2);
  m.body = payload.substr(colon2 + 1);
  return (m.offset == 0) == m.epoch.empty();
}

std::string encode_presence_message(publication::kind what, const client_info& who) {
  std::string out(1, what == publication::kind::join ? 'j' : 'l');
  publication p;
  p.has_info = true;
  p.info = who;
  encode_body(p, out);
  return out;
}

std::string encode_plain_message(const publication& p) {
  std::string out = "p0::";
  out.reserve(out.size() + p.data.size() + 16);
  encode_body(p, out);
  return out;
}

}  // namespace sb::routing::redis_codec
