#include "session/centrifuge_json.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <limits>

namespace sb::proto {

namespace dom = simdjson::dom;

const char* to_string(method m) noexcept {
  switch (m) {
    case method::none: return "";
    case method::connect: return "connect";
    case method::subscribe: return "subscribe";
    case method::unsubscribe: return "unsubscribe";
    case method::publish: return "publish";
    case method::presence: return "presence";
    case method::presence_stats: return "presence_stats";
    case method::history: return "history";
    case method::ping: return "ping";
    case method::send: return "send";
    case method::rpc: return "rpc";
    case method::refresh: return "refresh";
    case method::sub_refresh: return "sub_refresh";
  }
  return "";
}

// ---------------------------------------------------------------------------
// parsing

struct command_parser::impl {
  // DOM parser reused for every line; simdjson copies the line into its own
  // padded buffer (frames come from the shard's scratch, which is not padded).
  dom::parser parser;
};

command_parser::command_parser() : _impl(new impl) {
  // Depth 64 is plenty for commands; deeper input is refused, not parsed.
  if (_impl->parser.allocate(4096, 64) != simdjson::SUCCESS) {
    // Out of memory at start: parse() reallocates on demand (default depth).
  }
}

command_parser::~command_parser() { delete _impl; }

namespace {

// Typed field readers: false on a wrong type (→ bad_command).
bool read(dom::element v, std::string_view& out) { return v.get_string().get(out) == simdjson::SUCCESS; }
bool read(dom::element v, bool& out) { return v.get_bool().get(out) == simdjson::SUCCESS; }
bool read(dom::element v, std::uint64_t& out) { return v.get_uint64().get(out) == simdjson::SUCCESS; }
bool read_i32(dom::element v, std::int32_t& out) {
  std::int64_t x = 0;
  if (v.get_int64().get(x) != simdjson::SUCCESS) return false;
  if (x < std::numeric_limits<std::int32_t>::min() || x > std::numeric_limits<std::int32_t>::max()) return false;
  out = static_cast<std::int32_t>(x);
  return true;
}
// Raw JSON of any value, minified (it is re-embedded verbatim in pushes).
void read_raw(dom::element v, std::string& out) { out = simdjson::minify(v); }

// Visits the fields of a request object; unknown fields are ignored
// (forward compatibility), a known field of the wrong type fails.
template <typename F>
bool for_fields(dom::element v, F&& f) {
  dom::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return false;
  for (auto field : obj) {
    if (!f(field.key, field.value)) return false;
  }
  return true;
}

bool parse_connect(dom::element v, connect_request& r) {
  return for_fields(v, [&](std::string_view k, dom::element x) {
    if (k == "token") return read(x, r.token);
    if (k == "name") return read(x, r.name);
    if (k == "version") return read(x, r.version);
    if (k == "data") return read_raw(x, r.data_json), true;
    if (k == "subs") return x.is_object();  // recovery of server-side subs: not used yet
    return true;
  });
}

bool parse_subscribe(dom::element v, subscribe_request& r) {
  return for_fields(v, [&](std::string_view k, dom::element x) {
    if (k == "channel") return read(x, r.channel);
    if (k == "token") return read(x, r.token);
    if (k == "recover") return read(x, r.recover);
    if (k == "epoch") return read(x, r.epoch);
    if (k == "offset") return read(x, r.offset);
    if (k == "positioned") return read(x, r.positioned);
    if (k == "recoverable") return read(x, r.recoverable);
    if (k == "join_leave") return read(x, r.join_leave);
    if (k == "data") return read_raw(x, r.data_json), true;
    return true;
  });
}

bool parse_channel(dom::element v, channel_request& r) {
  return for_fields(v, [&](std::string_view k, dom::element x) { return k == "channel" ? read(x, r.channel) : true; });
}

bool parse_publish(dom::element v, publish_request& r) {
  return for_fields(v, [&](std::string_view k, dom::element x) {
    if (k == "channel") return read(x, r.channel);
    if (k == "data") return read_raw(x, r.data_json), true;
    return true;
  });
}

bool parse_history(dom::element v, history_request& r) {
  return for_fields(v, [&](std::string_view k, dom::element x) {
    if (k == "channel") return read(x, r.channel);
    if (k == "limit") return read_i32(x, r.limit);
    if (k == "reverse") return read(x, r.reverse);
    if (k == "since") {
      r.has_since = true;
      return for_fields(x, [&](std::string_view k2, dom::element y) {
        if (k2 == "offset") return read(y, r.since_offset);
        if (k2 == "epoch") return read(y, r.since_epoch);
        return true;
      });
    }
    return true;
  });
}

bool parse_rpc(dom::element v, rpc_request& r) {
  return for_fields(v, [&](std::string_view k, dom::element x) {
    if (k == "method") return read(x, r.method_name);
    if (k == "data") return read_raw(x, r.data_json), true;
    return true;
  });
}

}  // namespace

parse_error command_parser::parse_one(std::string_view line, command& out) {
  dom::element doc;
  if (_impl->parser.parse(line.data(), line.size(), true).get(doc) != simdjson::SUCCESS) return parse_error::bad_json;
  dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return parse_error::bad_command;

  out = command{};
  int requests = 0;
  for (auto field : obj) {
    std::string_view k = field.key;
    dom::element v = field.value;
    bool ok = true;
    if (k == "id") {
      std::uint64_t id = 0;
      ok = read(v, id) && id <= std::numeric_limits<std::uint32_t>::max();
      out.id = static_cast<std::uint32_t>(id);
      if (!ok) return parse_error::bad_command;
      continue;
    }
    method m = method::none;
    if (k == "connect") m = method::connect, ok = parse_connect(v, out.connect);
    else if (k == "subscribe") m = method::subscribe, ok = parse_subscribe(v, out.subscribe);
    else if (k == "unsubscribe") m = method::unsubscribe, ok = parse_channel(v, out.unsubscribe);
    else if (k == "publish") m = method::publish, ok = parse_publish(v, out.publish);
    else if (k == "presence") m = method::presence, ok = parse_channel(v, out.presence);
    else if (k == "presence_stats") m = method::presence_stats, ok = parse_channel(v, out.presence);
    else if (k == "history") m = method::history, ok = parse_history(v, out.history);
    else if (k == "ping") m = method::ping, ok = v.is_object();
    else if (k == "send") m = method::send, ok = parse_rpc(v, out.rpc);
    else if (k == "rpc") m = method::rpc, ok = parse_rpc(v, out.rpc);
    else if (k == "refresh") {
      m = method::refresh;
      ok = for_fields(v, [&](std::string_view k2, dom::element x) { return k2 == "token" ? read(x, out.refresh.token) : true; });
    } else if (k == "sub_refresh") {
      m = method::sub_refresh;
      ok = for_fields(v, [&](std::string_view k2, dom::element x) {
        if (k2 == "channel") return read(x, out.sub_refresh.channel);
        if (k2 == "token") return read(x, out.sub_refresh.token);
        return true;
      });
    } else {
      continue;  // unknown field: ignored
    }
    if (!ok) return parse_error::bad_command;
    if (++requests > 1) return parse_error::bad_command;  // one request per command
    out.m = m;
  }
  // {"id":5} alone names no method.
  if (out.m == method::none && out.id != 0) return parse_error::bad_command;
  return parse_error::none;
}

// ---------------------------------------------------------------------------
// encoding

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 0xf]);
        } else {
          out.push_back(ch);  // UTF-8 passes through (frames were validated)
        }
    }
  }
  out.push_back('"');
}

namespace {

// Appends `,"key":` (or `"key":` when first).
void key(std::string& out, bool& first, std::string_view k) {
  if (!first) out.push_back(',');
  first = false;
  out.push_back('"');
  out.append(k);
  out += "\":";
}

void field(std::string& out, bool& first, std::string_view k, std::string_view str) {
  key(out, first, k);
  append_json_string(out, str);
}
void field(std::string& out, bool& first, std::string_view k, std::uint64_t n) {
  key(out, first, k);
  fmt::format_to(std::back_inserter(out), "{}", n);
}
void field_true(std::string& out, bool& first, std::string_view k) {
  key(out, first, k);
  out += "true";
}
void field_raw(std::string& out, bool& first, std::string_view k, std::string_view json) {
  key(out, first, k);
  out.append(json);
}

void reply_open(std::string& out, std::uint32_t id, std::string_view result) {
  fmt::format_to(std::back_inserter(out), "{{\"id\":{},\"{}\":{{", id, result);
}

}  // namespace

void encode_error_reply(std::string& out, std::uint32_t id, std::uint32_t code, std::string_view message,
                        bool temporary) {
  fmt::format_to(std::back_inserter(out), "{{\"id\":{},\"error\":{{\"code\":{},\"message\":", id, code);
  append_json_string(out, message);
  if (temporary) out += ",\"temporary\":true";
  out += "}}";
}

void encode_connect_reply(std::string& out, std::uint32_t id, const connect_result& r) {
  reply_open(out, id, "connect");
  bool first = true;
  field(out, first, "client", r.client);
  field(out, first, "version", r.version);
  if (r.expires) {
    field_true(out, first, "expires");
    field(out, first, "ttl", r.ttl);
  }
  if (!r.subs.empty()) {
    key(out, first, "subs");
    out.push_back('{');
    bool sfirst = true;
    for (const auto& s : r.subs) {
      if (!sfirst) out.push_back(',');
      sfirst = false;
      append_json_string(out, s.channel);
      out.push_back(':');
      out.push_back('{');
      bool f = true;
      if (s.offset) field(out, f, "offset", s.offset);
      out.push_back('}');
    }
    out.push_back('}');
  }
  if (r.ping) field(out, first, "ping", r.ping);
  if (r.pong) field_true(out, first, "pong");
  out += "}}";
}

void encode_subscribe_reply(std::string& out, std::uint32_t id, const subscribe_result& r) {
  reply_open(out, id, "subscribe");
  bool first = true;
  if (r.expires) {
    field_true(out, first, "expires");
    field(out, first, "ttl", r.ttl);
  }
  if (r.recoverable) field_true(out, first, "recoverable");
  if (!r.epoch.empty()) field(out, first, "epoch", r.epoch);
  if (r.offset) field(out, first, "offset", r.offset);
  if (r.recovered) field_true(out, first, "recovered");
  if (r.was_recovering) field_true(out, first, "was_recovering");
  if (r.positioned) field_true(out, first, "positioned");
  out += "}}";
}

void encode_refresh_reply(std::string& out, std::uint32_t id, const refresh_result& r) {
  reply_open(out, id, "refresh");
  bool first = true;
  field(out, first, "client", r.client);
  field(out, first, "version", r.version);
  if (r.expires) {
    field_true(out, first, "expires");
    field(out, first, "ttl", r.ttl);
  }
  out += "}}";
}

void encode_sub_refresh_reply(std::string& out, std::uint32_t id, bool expires, std::uint32_t ttl) {
  reply_open(out, id, "sub_refresh");
  bool first = true;
  if (expires) {
    field_true(out, first, "expires");
    field(out, first, "ttl", ttl);
  }
  out += "}}";
}

void encode_empty_reply(std::string& out, std::uint32_t id, method m) {
  reply_open(out, id, to_string(m));
  out += "}}";
}

void encode_publication_push(std::string& out, const publication_view& p) {
  out += "{\"push\":{\"channel\":";
  append_json_string(out, p.channel);
  out += ",\"pub\":{";
  bool first = true;
  field_raw(out, first, "data", p.data.empty() ? std::string_view("null") : p.data);
  if (p.has_info) {
    key(out, first, "info");
    out.push_back('{');
    bool f = true;
    if (!p.info.user.empty()) field(out, f, "user", p.info.user);
    if (!p.info.client.empty()) field(out, f, "client", p.info.client);
    if (!p.info.conn_info.empty()) field_raw(out, f, "conn_info", p.info.conn_info);
    if (!p.info.chan_info.empty()) field_raw(out, f, "chan_info", p.info.chan_info);
    out.push_back('}');
  }
  if (p.offset) field(out, first, "offset", p.offset);
  out += "}}}";
}

void encode_unsubscribe_push(std::string& out, std::string_view channel, std::uint32_t code, std::string_view reason) {
  out += "{\"push\":{\"channel\":";
  append_json_string(out, channel);
  fmt::format_to(std::back_inserter(out), ",\"unsubscribe\":{{\"code\":{},\"reason\":", code);
  append_json_string(out, reason);
  out += "}}}";
}

void encode_disconnect_push(std::string& out, std::uint32_t code, std::string_view reason) {
  fmt::format_to(std::back_inserter(out), "{{\"push\":{{\"disconnect\":{{\"code\":{},\"reason\":", code);
  append_json_string(out, reason);
  out += "}}}";
}

void encode_ping(std::string& out) { out += "{}"; }

}  // namespace sb::proto
