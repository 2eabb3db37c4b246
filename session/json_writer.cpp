#include "session/json_writer.hpp"

#include <simdjson.h>

#include <charconv>

namespace sb::proto {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid (overlong,
// surrogate, > U+10FFFF, truncated), per Unicode table 3-7.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    if (k >= s.size()) return false;
    unsigned b = static_cast<unsigned char>(s[k]);
    return b >= lo && b <= hi;
  };
  unsigned c = static_cast<unsigned char>(s[i]);
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c == 0xE0) return cont(i + 1, 0xA0) && cont(i + 2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(i + 1) && cont(i + 2) ? 3 : 0;
  if (c == 0xED) return cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
  if (c == 0xF0) return cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c == 0xF4) return cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  return 0;
}

// Copies runs of plain bytes in one append; escapes the rest. With
// utf8_ok == false (rare: the string failed validation) every byte >= 0x80
// is checked and each invalid one becomes U+FFFD, as Go's encoding/json
// does, so a text frame never carries invalid UTF-8 (clients would close
// with 1007).
void append_escaped(std::string& out, std::string_view s, bool utf8_ok) {
  std::size_t run = 0;
  std::size_t i = 0;
  auto flush = [&](std::size_t end) {
    if (end > run) out.append(s.data() + run, end - run);
  };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || utf8_ok)) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (std::size_t n = utf8_sequence(s, i)) {
        i += n;
        continue;
      }
      flush(i);
      out.append("\xEF\xBF\xBD");
      run = ++i;
      continue;
    }
    flush(i);
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default: {
        const char u[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 0xF]};
        out.append(u, sizeof u);
      }
    }
    run = ++i;
  }
  flush(s.size());
}

void append_uint(std::string& out, std::uint64_t v) {
  char b[20];
  auto r = std::to_chars(b, b + sizeof b, v);
  out.append(b, r.ptr);
}

// One JSON object under construction; closes on destruction. The typed
// members apply proto3 omitempty (defaults are not written), as Centrifuge's
// encoder does. Literal keys are ours and need no escaping; map keys
// (channel names, client ids, tag names) go through map_key.
class obj {
 public:
  explicit obj(std::string& out) : _out(out) { _out.push_back('{'); }
  ~obj() { _out.push_back('}'); }
  obj(const obj&) = delete;
  obj& operator=(const obj&) = delete;

  std::string& key(std::string_view literal) {
    comma();
    _out.push_back('"');
    _out.append(literal);
    _out.append("\":");
    return _out;
  }
  std::string& map_key(std::string_view k) {
    comma();
    append_json_string(_out, k);
    _out.push_back(':');
    return _out;
  }
  void str(std::string_view k, std::string_view v) {
    if (!v.empty()) append_json_string(key(k), v);
  }
  void str_always(std::string_view k, std::string_view v) { append_json_string(key(k), v); }
  void u64(std::string_view k, std::uint64_t v) {
    if (v != 0) append_uint(key(k), v);
  }
  void boolean(std::string_view k, bool v) {
    if (v) key(k).append("true");
  }
  void raw(std::string_view k, std::string_view json) {
    if (!json.empty()) key(k).append(json);
  }

 private:
  void comma() {
    if (!_first) _out.push_back(',');
    _first = false;
  }
  std::string& _out;
  bool _first = true;
};

void write_client_info(std::string& out, const client_info_view& i) {
  // Centrifuge writes user and client even when empty (anonymous user).
  obj o(out);
  o.str_always("user", i.user);
  o.str_always("client", i.client);
  o.raw("conn_info", i.conn_info);
  o.raw("chan_info", i.chan_info);
}

void write_publication(std::string& out, const publication_view& p) {
  obj o(out);
  o.raw("data", p.data);
  if (p.has_info) write_client_info(o.key("info"), p.info);
  o.u64("offset", p.offset);
  if (!p.tags.empty()) {
    obj t(o.key("tags"));
    for (const auto& [k, v] : p.tags) append_json_string(t.map_key(k), v);
  }
}

void write_publications(obj& o, std::span<const publication_view> pubs) {
  if (pubs.empty()) return;
  std::string& out = o.key("publications");
  out.push_back('[');
  for (std::size_t i = 0; i < pubs.size(); ++i) {
    if (i) out.push_back(',');
    write_publication(out, pubs[i]);
  }
  out.push_back(']');
}

// SubscribeResult's fields in Centrifuge's order: a subscribe reply and each
// server-side subscription of a connect reply (sub_position) carry the same.
template <typename R>
void write_subscribe_fields(obj& o, const R& r) {
  o.boolean("expires", r.expires);
  o.u64("ttl", r.ttl);
  o.boolean("recoverable", r.recoverable);
  o.str("epoch", r.epoch);
  write_publications(o, r.publications);
  o.boolean("recovered", r.recovered);
  o.u64("offset", r.offset);
  o.boolean("positioned", r.positioned);
  o.raw("data", r.data_json);
  o.boolean("was_recovering", r.was_recovering);
}

// {"push":{"channel":"c", ...}} — members declared in closing order.
struct push_obj {
  obj outer;
  obj push;
  push_obj(std::string& out, std::string_view channel) : outer(out), push(outer.key("push")) {
    push.str("channel", channel);
  }
};

// {"id":N,"<method>":{ ...}}
struct reply_obj {
  obj outer;
  obj result;
  reply_obj(std::string& out, std::uint32_t id, std::string_view m) : outer(out), result(write_id(outer, id, m)) {}
  static std::string& write_id(obj& o, std::uint32_t id, std::string_view m) {
    o.u64("id", id);
    return o.key(m);
  }
};

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  // Valid UTF-8 is copied in runs; the SIMD validation runs only for
  // strings that have a non-ASCII byte at all.
  bool utf8_ok = true;
  for (char ch : s) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      utf8_ok = simdjson::validate_utf8(s.data(), s.size());
      break;
    }
  }
  append_escaped(out, s, utf8_ok);
  out.push_back('"');
}

void encode_error_reply(std::string& out, std::uint32_t id, std::uint32_t code, std::string_view message,
                        bool temporary) {
  reply_obj r(out, id, "error");
  r.result.u64("code", code);
  r.result.str("message", message);
  r.result.boolean("temporary", temporary);
}

void encode_error_reply(std::string& out, std::uint32_t id, std::uint32_t code) {
  encode_error_reply(out, id, code, error_message(code), error_temporary(code));
}

void encode_connect_reply(std::string& out, std::uint32_t id, const connect_result& r) {
  reply_obj rep(out, id, "connect");
  obj& c = rep.result;
  c.str("client", r.client);
  c.str("version", r.version);
  c.boolean("expires", r.expires);
  c.u64("ttl", r.ttl);
  c.raw("data", r.data_json);
  if (!r.subs.empty()) {
    obj subs(c.key("subs"));
    for (const sub_position& s : r.subs) {
      obj sr(subs.map_key(s.channel));
      write_subscribe_fields(sr, s);
    }
  }
  c.u64("ping", r.ping);
  c.boolean("pong", r.pong);
  c.str("session", r.session);
  c.str("node", r.node);
}

void encode_subscribe_reply(std::string& out, std::uint32_t id, const subscribe_result& r) {
  reply_obj rep(out, id, "subscribe");
  write_subscribe_fields(rep.result, r);
}

void encode_refresh_reply(std::string& out, std::uint32_t id, const refresh_result& r) {
  reply_obj rep(out, id, "refresh");
  rep.result.str("client", r.client);
  rep.result.str("version", r.version);
  rep.result.boolean("expires", r.expires);
  rep.result.u64("ttl", r.ttl);
}

void encode_sub_refresh_reply(std::string& out, std::uint32_t id, bool expires, std::uint32_t ttl) {
  reply_obj rep(out, id, "sub_refresh");
  rep.result.boolean("expires", expires);
  rep.result.u64("ttl", ttl);
}

void encode_empty_reply(std::string& out, std::uint32_t id, method m) {
  reply_obj rep(out, id, to_string(m));
}

void encode_presence_reply(std::string& out, std::uint32_t id, std::span<const client_info_view> clients) {
  reply_obj rep(out, id, "presence");
  obj p(rep.result.key("presence"));
  for (const client_info_view& c : clients) write_client_info(p.map_key(c.client), c);
}

void encode_presence_stats_reply(std::string& out, std::uint32_t id, std::uint32_t num_clients,
                                 std::uint32_t num_users) {
  reply_obj rep(out, id, "presence_stats");
  rep.result.u64("num_clients", num_clients);
  rep.result.u64("num_users", num_users);
}

void encode_history_reply(std::string& out, std::uint32_t id, std::span<const publication_view> pubs,
                          std::string_view epoch, std::uint64_t offset) {
  reply_obj rep(out, id, "history");
  write_publications(rep.result, pubs);
  rep.result.str("epoch", epoch);
  rep.result.u64("offset", offset);
}

void encode_rpc_reply(std::string& out, std::uint32_t id, std::string_view data_json) {
  reply_obj rep(out, id, "rpc");
  rep.result.raw("data", data_json);
}

void encode_publication_push(std::string& out, const publication_view& p) {
  push_obj po(out, p.channel);
  write_publication(po.push.key("pub"), p);
}

void encode_publication_push(std::string& out, std::string_view channel, std::string_view data_json,
                             std::uint64_t offset, const client_info_view* info) {
  publication_view p;
  p.channel = channel;
  p.data = data_json;
  p.offset = offset;
  if (info) {
    p.has_info = true;
    p.info = *info;
  }
  encode_publication_push(out, p);
}

void encode_join_push(std::string& out, std::string_view channel, const client_info_view& info) {
  push_obj po(out, channel);
  obj j(po.push.key("join"));
  write_client_info(j.key("info"), info);
}

void encode_leave_push(std::string& out, std::string_view channel, const client_info_view& info) {
  push_obj po(out, channel);
  obj l(po.push.key("leave"));
  write_client_info(l.key("info"), info);
}

void encode_unsubscribe_push(std::string& out, std::string_view channel, std::uint32_t code,
                             std::string_view reason) {
  push_obj po(out, channel);
  obj u(po.push.key("unsubscribe"));
  u.u64("code", code);
  u.str("reason", reason);
}

void encode_subscribe_push(std::string& out, std::string_view channel, const server_subscription& s) {
  push_obj po(out, channel);
  obj o(po.push.key("subscribe"));
  o.boolean("recoverable", s.recoverable);
  o.str("epoch", s.epoch);
  o.u64("offset", s.offset);
  o.boolean("positioned", s.positioned);
  o.raw("data", s.data_json);
}

void encode_message_push(std::string& out, std::string_view data_json) {
  push_obj po(out, {});
  obj m(po.push.key("message"));
  m.raw("data", data_json);
}

void encode_refresh_push(std::string& out, bool expires, std::uint32_t ttl) {
  push_obj po(out, {});
  obj r(po.push.key("refresh"));
  r.boolean("expires", expires);
  r.u64("ttl", ttl);
}

void encode_disconnect_push(std::string& out, std::uint32_t code, std::string_view reason) {
  push_obj po(out, {});
  obj d(po.push.key("disconnect"));
  d.u64("code", code);
  d.str("reason", reason);
}

void encode_ping(std::string& out) { out.append("{}"); }

}  // namespace sb::proto
