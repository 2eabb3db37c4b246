#include "session/centrifuge_json.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

namespace sb::proto {

namespace od = simdjson::ondemand;
using sj_error = simdjson::error_code;

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

const char* to_string(parse_error e) noexcept {
  switch (e) {
    case parse_error::none: return "none";
    case parse_error::bad_json: return "bad_json";
    case parse_error::bad_command: return "bad_command";
  }
  return "";
}

// ---------------------------------------------------------------------------
// parsing
//
// On-Demand parses each line once, in place: strings are unescaped into the
// parser's string buffer and raw JSON (`data`) is a view of the frame copy,
// byte for byte what the client sent (a DOM round trip would rewrite numbers:
// 1.10 -> 1.1, big integers -> doubles). On-Demand does not fully validate
// what it skips, so every raw value we keep or skip (data, unknown fields)
// goes through validate_json, which also enforces the depth limit. Known
// fields are validated by their typed getters.
//
// Build note: On-Demand is compiled into this file for the target given by
// the compiler flags (x86-64 baseline = simdjson's "fallback" kernel); the
// DOM API dispatches at run time. Commands are small, so the baseline is
// fine; -march=x86-64-v3 makes stage 1 SIMD.

namespace {
constexpr std::size_t max_validate_depth = 1024;  // bounds validate_json's stack array
}  // namespace

struct command_parser::impl {
  od::parser od;
  std::size_t max_depth = command_parser::default_max_depth;
  std::unique_ptr<char[]> buf;  // frame copy + SIMDJSON_PADDING
  std::size_t cap = 0;          // frame bytes buf can hold
  std::size_t len = 0;          // bytes of the current frame
  std::size_t pos = 0;          // start of the next line
};

command_parser::command_parser(std::size_t max_depth) : _impl(std::make_unique<impl>()) {
  // Pre-size for typical commands; larger lines grow the parsers on demand
  // (keeping this depth), once, then the capacity stays.
  _impl->max_depth = std::min(max_depth, max_validate_depth);
  if (_impl->od.allocate(4096, _impl->max_depth) != simdjson::SUCCESS) throw std::bad_alloc();
  _impl->buf = std::make_unique<char[]>(4096 + simdjson::SIMDJSON_PADDING);
  _impl->cap = 4096;
}
command_parser::~command_parser() = default;
command_parser::command_parser(command_parser&&) noexcept = default;
command_parser& command_parser::operator=(command_parser&&) noexcept = default;

namespace {

parse_error map_error(sj_error e) noexcept {
  switch (e) {
    case simdjson::SUCCESS: return parse_error::none;
    // Valid JSON that is not a valid command.
    case simdjson::INCORRECT_TYPE:
    case simdjson::NUMBER_OUT_OF_RANGE:
    case simdjson::DEPTH_ERROR:
    case simdjson::NO_SUCH_FIELD:
    case simdjson::INDEX_OUT_OF_BOUNDS:
      return parse_error::bad_command;
    default:
      return parse_error::bad_json;
  }
}

bool is_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// Length of the JSON number at the start of s (grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), or 0 if none.
std::size_t number_length(std::string_view s) noexcept {
  std::size_t i = 0, n = s.size();
  auto digit = [&](std::size_t k) { return k < n && s[k] >= '0' && s[k] <= '9'; };
  if (i < n && s[i] == '-') ++i;
  if (!digit(i)) return 0;
  if (s[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digit(i)) return 0;
    while (digit(i)) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digit(i)) return 0;
    while (digit(i)) ++i;
  }
  return i;
}

bool valid_number(std::string_view s) noexcept { return !s.empty() && number_length(s) == s.size(); }

bool is_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Full RFC 8259 check of one raw value (data, unknown fields), iterative,
// with a depth limit. Why not simdjson's DOM parser: 3.0.1 rejects valid JSON
// that Centrifuge passes through (integers beyond 64 bits, lone surrogate
// escapes such as "\ud800", which JSON.stringify emits). UTF-8 was already
// validated for the whole line by On-Demand's stage 1.
parse_error validate_json(std::string_view s, std::size_t max_depth) noexcept {
  bool in_object[max_validate_depth + 1];  // per open container: object or array
  std::size_t depth = 0, i = 0;
  const std::size_t n = s.size();
  auto skip_ws = [&] {
    while (i < n && is_ws(s[i])) ++i;
  };
  auto string = [&]() -> bool {  // at '"'
    ++i;
    while (i < n) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c == '"') {
        ++i;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i >= n) return false;
        char e = s[i];
        if (e == 'u') {
          if (i + 4 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) || !is_hex(s[i + 4])) {
            return false;
          }
          i += 4;
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't') {
          return false;
        }
      }
      ++i;
    }
    return false;
  };
  enum class st { value, key, after };
  st state = st::value;
  for (;;) {
    skip_ws();
    if (state == st::value) {
      if (i >= n) return parse_error::bad_json;
      char c = s[i];
      if (c == '{' || c == '[') {
        if (++depth > max_depth) return parse_error::bad_command;
        in_object[depth] = c == '{';
        ++i;
        skip_ws();
        if (i < n && s[i] == (c == '{' ? '}' : ']')) {
          ++i;
          --depth;
          state = st::after;
        } else {
          state = c == '{' ? st::key : st::value;
        }
        continue;
      }
      if (c == '"') {
        if (!string()) return parse_error::bad_json;
      } else if (s.substr(i, 4) == "true" || s.substr(i, 4) == "null") {
        i += 4;
      } else if (s.substr(i, 5) == "false") {
        i += 5;
      } else {
        std::size_t len = number_length(s.substr(i));
        if (len == 0) return parse_error::bad_json;
        i += len;
      }
      state = st::after;
    } else if (state == st::key) {
      if (i >= n || s[i] != '"' || !string()) return parse_error::bad_json;
      skip_ws();
      if (i >= n || s[i] != ':') return parse_error::bad_json;
      ++i;
      state = st::value;
    } else {  // after a value
      if (depth == 0) return i == n ? parse_error::none : parse_error::bad_json;
      if (i >= n) return parse_error::bad_json;
      if (s[i] == ',') {
        ++i;
        state = in_object[depth] ? st::key : st::value;
      } else if (s[i] == (in_object[depth] ? '}' : ']')) {
        ++i;
        --depth;
      } else {
        return parse_error::bad_json;
      }
    }
  }
}

// One line's worth of field readers.
class reader {
 public:
  explicit reader(std::size_t max_depth) noexcept : _max_depth(max_depth) {}

  // Reads a value's type; null means "absent" (proto3 JSON) and is consumed.
  parse_error kind(od::value& v, od::json_type& t, bool& is_null) noexcept {
    is_null = false;
    if (auto e = v.type().get(t)) return map_error(e);
    if (t == od::json_type::null) {
      bool n = false;
      if (auto e = v.is_null().get(n)) return map_error(e);
      if (!n) return parse_error::bad_json;
      is_null = true;
    }
    return parse_error::none;
  }

  parse_error str(od::value v, std::string_view& out) noexcept {
    od::json_type t;
    bool null = false;
    if (auto e = kind(v, t, null); e != parse_error::none || null) return e;
    if (t != od::json_type::string) return parse_error::bad_command;
    return map_error(v.get_string().get(out));
  }

  parse_error boolean(od::value v, bool& out) noexcept {
    od::json_type t;
    bool null = false;
    if (auto e = kind(v, t, null); e != parse_error::none || null) return e;
    if (t != od::json_type::boolean) return parse_error::bad_command;
    return map_error(v.get_bool().get(out));
  }

  parse_error u64(od::value v, std::uint64_t& out) noexcept {
    od::json_type t;
    bool null = false;
    if (auto e = kind(v, t, null); e != parse_error::none || null) return e;
    if (t != od::json_type::number) return parse_error::bad_command;
    // Any well-formed number that is not a uint64 (negative, fraction,
    // exponent, too big) is a type error, not bad JSON: check the token's
    // grammar ourselves because simdjson reports some of these as
    // NUMBER_ERROR.
    std::string_view tok = trim_right(v.raw_json_token());
    if (auto e = v.get_uint64().get(out); e != simdjson::SUCCESS) {
      return valid_number(tok) ? parse_error::bad_command : parse_error::bad_json;
    }
    return parse_error::none;
  }

  parse_error u32(od::value v, std::uint32_t& out) noexcept {
    std::uint64_t x = 0;
    if (auto e = u64(v, x); e != parse_error::none) return e;
    if (x > std::numeric_limits<std::uint32_t>::max()) return parse_error::bad_command;
    out = static_cast<std::uint32_t>(x);
    return parse_error::none;
  }

  parse_error i32(od::value v, std::int32_t& out) noexcept {
    od::json_type t;
    bool null = false;
    if (auto e = kind(v, t, null); e != parse_error::none || null) return e;
    if (t != od::json_type::number) return parse_error::bad_command;
    std::string_view tok = trim_right(v.raw_json_token());
    std::int64_t x = 0;
    if (auto e = v.get_int64().get(x); e != simdjson::SUCCESS) {
      return valid_number(tok) ? parse_error::bad_command : parse_error::bad_json;
    }
    if (x < std::numeric_limits<std::int32_t>::min() || x > std::numeric_limits<std::int32_t>::max()) {
      return parse_error::bad_command;
    }
    out = static_cast<std::int32_t>(x);
    return parse_error::none;
  }

  // The exact JSON text of any value, validated. null reads as empty.
  parse_error raw(od::value v, std::string_view& out) noexcept {
    od::json_type t;
    bool null = false;
    if (auto e = kind(v, t, null); e != parse_error::none || null) return e;
    std::string_view text;
    if (t == od::json_type::object) {
      od::object o;
      if (auto e = v.get_object().get(o)) return map_error(e);
      if (auto e = o.raw_json().get(text)) return map_error(e);
    } else if (t == od::json_type::array) {
      od::array a;
      if (auto e = v.get_array().get(a)) return map_error(e);
      if (auto e = a.raw_json().get(text)) return map_error(e);
    } else {
      // A scalar: its token (to the next token, so trim the whitespace).
      // Left unconsumed; the enclosing object's iteration steps over it.
      text = v.raw_json_token();
    }
    text = trim_right(text);
    if (auto e = validate(text); e != parse_error::none) return e;
    out = text;
    return parse_error::none;
  }

  // Unknown field: ignored for forward compatibility, but it must be JSON.
  parse_error skip(od::value v) noexcept {
    std::string_view ignored;
    return raw(v, ignored);
  }

  // Request objects: a null request counts as absent (proto3 JSON).
  template <class Fn>
  parse_error object(od::value v, Fn&& on_field) noexcept {
    od::json_type t;
    bool null = false;
    if (auto e = kind(v, t, null); e != parse_error::none || null) return e;
    if (t != od::json_type::object) return parse_error::bad_command;
    od::object o;
    if (auto e = v.get_object().get(o)) return map_error(e);
    for (auto fr : o) {
      od::field f;
      if (auto e = std::move(fr).get(f)) return map_error(e);
      std::string_view key;
      if (auto e = f.unescaped_key().get(key)) return map_error(e);
      if (auto e = on_field(key, f.value()); e != parse_error::none) return e;
    }
    return parse_error::none;
  }

 private:
  parse_error validate(std::string_view text) noexcept { return validate_json(text, _max_depth); }


  std::size_t _max_depth;
};

method request_method(std::string_view key) noexcept {
  // Ordered by how often clients send them.
  if (key == "publish") return method::publish;
  if (key == "subscribe") return method::subscribe;
  if (key == "unsubscribe") return method::unsubscribe;
  if (key == "connect") return method::connect;
  if (key == "ping") return method::ping;
  if (key == "send") return method::send;
  if (key == "rpc") return method::rpc;
  if (key == "history") return method::history;
  if (key == "presence") return method::presence;
  if (key == "presence_stats") return method::presence_stats;
  if (key == "refresh") return method::refresh;
  if (key == "sub_refresh") return method::sub_refresh;
  return method::none;
}

parse_error read_subscribe(reader& r, od::value v, subscribe_request& s) noexcept {
  return r.object(v, [&](std::string_view k, od::value x) -> parse_error {
    if (k == "channel") return r.str(x, s.channel);
    if (k == "token") return r.str(x, s.token);
    if (k == "recover") return r.boolean(x, s.recover);
    if (k == "epoch") return r.str(x, s.epoch);
    if (k == "offset") return r.u64(x, s.offset);
    if (k == "data") return r.raw(x, s.data_json);
    if (k == "positioned") return r.boolean(x, s.positioned);
    if (k == "recoverable") return r.boolean(x, s.recoverable);
    if (k == "join_leave") return r.boolean(x, s.join_leave);
    if (k == "delta") return r.str(x, s.delta);
    return r.skip(x);
  });
}

parse_error read_request(reader& r, method m, od::value v, command& c) noexcept {
  switch (m) {
    case method::connect: {
      auto& q = c.connect;
      return r.object(v, [&](std::string_view k, od::value x) -> parse_error {
        if (k == "token") return r.str(x, q.token);
        if (k == "data") return r.raw(x, q.data_json);
        if (k == "name") return r.str(x, q.name);
        if (k == "version") return r.str(x, q.version);
        if (k == "subs") {
          return r.object(x, [&](std::string_view ch, od::value sx) -> parse_error {
            // Allocates only when a connect carries more subs than any before.
            q.subs.emplace_back(ch, subscribe_request{});
            return read_subscribe(r, sx, q.subs.back().second);
          });
        }
        return r.skip(x);
      });
    }
    case method::subscribe: return read_subscribe(r, v, c.subscribe);
    case method::unsubscribe:
      return r.object(v, [&](std::string_view k, od::value x) -> parse_error {
        if (k == "channel") return r.str(x, c.unsubscribe.channel);
        return r.skip(x);
      });
    case method::publish:
      return r.object(v, [&](std::string_view k, od::value x) -> parse_error {
        if (k == "channel") return r.str(x, c.publish.channel);
        if (k == "data") return r.raw(x, c.publish.data_json);
        return r.skip(x);
      });
    case method::presence:
    case method::presence_stats: {
      auto& q = m == method::presence ? c.presence : c.presence_stats;
      return r.object(v, [&](std::string_view k, od::value x) -> parse_error {
        if (k == "channel") return r.str(x, q.channel);
        return r.skip(x);
      });
    }
    case method::history: {
      auto& q = c.history;
      return r.object(v, [&](std::string_view k, od::value x) -> parse_error {
        if (k == "channel") return r.str(x, q.channel);
        if (k == "limit") return r.i32(x, q.limit);
        if (k == "reverse") return r.boolean(x, q.reverse);
        if (k == "since") {
          od::json_type t;
          bool null = false;
          if (auto e = r.kind(x, t, null); e != parse_error::none || null) return e;
          q.has_since = true;
          return r.object(x, [&](std::string_view sk, od::value sx) -> parse_error {
            if (sk == "offset") return r.u64(sx, q.since_offset);
            if (sk == "epoch") return r.str(sx, q.since_epoch);
            return r.skip(sx);
          });
        }
        return r.skip(x);
      });
    }
    case method::ping: return r.object(v, [&](std::string_view, od::value x) { return r.skip(x); });
    case method::send:
      return r.object(v, [&](std::string_view k, od::value x) -> parse_error {
        if (k == "data") return r.raw(x, c.send.data_json);
        return r.skip(x);
      });
    case method::rpc:
      return r.object(v, [&](std::string_view k, od::value x) -> parse_error {
        if (k == "data") return r.raw(x, c.rpc.data_json);
        if (k == "method") return r.str(x, c.rpc.method_name);
        return r.skip(x);
      });
    case method::refresh:
      return r.object(v, [&](std::string_view k, od::value x) -> parse_error {
        if (k == "token") return r.str(x, c.refresh.token);
        return r.skip(x);
      });
    case method::sub_refresh:
      return r.object(v, [&](std::string_view k, od::value x) -> parse_error {
        if (k == "channel") return r.str(x, c.sub_refresh.channel);
        if (k == "token") return r.str(x, c.sub_refresh.token);
        return r.skip(x);
      });
    case method::none: break;
  }
  return parse_error::bad_command;
}

void reset(command& c) noexcept {
  // Keep the subs vector's capacity: no allocation per connect.
  auto subs = std::move(c.connect.subs);
  subs.clear();
  c = command{};
  c.connect.subs = std::move(subs);
}

}  // namespace

parse_error command_parser::load(std::string_view frame) noexcept {
  impl& s = *_impl;
  if (frame.size() > s.cap) {
    // Grows to the largest frame seen; the session's frame limit bounds it.
    std::size_t n = std::max(frame.size(), s.cap * 2);
    char* p = new (std::nothrow) char[n + simdjson::SIMDJSON_PADDING];
    if (!p) return parse_error::bad_json;  // out of memory: refuse the frame, not the process
    s.buf.reset(p);
    s.cap = n;
  }
  if (!frame.empty()) std::memcpy(s.buf.get(), frame.data(), frame.size());
  // Zero the padding once per frame: simdjson never needs the values, but
  // valgrind/MSan-clean reads are worth 64 bytes.
  std::memset(s.buf.get() + frame.size(), 0, simdjson::SIMDJSON_PADDING);
  s.len = frame.size();
  s.pos = 0;
  return parse_error::none;
}

parse_error command_parser::next(bool& have) noexcept {
  impl& s = *_impl;
  have = false;
  const char* base = s.buf.get();
  while (s.pos < s.len) {
    const char* begin = base + s.pos;
    const void* nl = std::memchr(begin, '\n', s.len - s.pos);
    std::size_t n = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - begin) : s.len - s.pos;
    s.pos += n + (nl ? 1 : 0);
    bool blank = true;
    for (std::size_t i = 0; i < n && blank; ++i) blank = is_ws(begin[i]);
    if (blank) continue;

    reset(_cmd);
    // Everything after the line (rest of the frame + padding) is readable.
    std::size_t capacity = static_cast<std::size_t>(base + s.cap + simdjson::SIMDJSON_PADDING - begin);
    od::document doc;
    if (auto e = s.od.iterate(begin, n, capacity).get(doc)) return map_error(e);
    od::object root;
    if (auto e = doc.get_object().get(root)) return map_error(e);

    reader r(s.max_depth);
    int requests = 0;
    for (auto fr : root) {
      od::field f;
      if (auto e = std::move(fr).get(f)) return map_error(e);
      std::string_view key;
      if (auto e = f.unescaped_key().get(key)) return map_error(e);
      od::value v = f.value();
      if (key == "id") {
        if (auto e = r.u32(v, _cmd.id); e != parse_error::none) return e;
        continue;
      }
      method m = request_method(key);
      if (m == method::none) {
        if (auto e = r.skip(v); e != parse_error::none) return e;
        continue;
      }
      od::json_type t;
      bool null = false;
      if (auto e = r.kind(v, t, null); e != parse_error::none) return e;
      if (null) continue;  // "publish":null is no request
      // Centrifuge takes the first request and may refuse several; we
      // refuse: a client sending two is broken, and guessing hides it.
      if (++requests > 1) return parse_error::bad_command;
      _cmd.m = m;
      if (auto e = read_request(r, m, v, _cmd); e != parse_error::none) return e;
    }
    // Bytes after the object ({"id":1}x, {}{}): 3.0.1 has no at_end() on a
    // document; its location is OUT_OF_BOUNDS exactly when all is consumed.
    if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) return parse_error::bad_json;

    // Same rules as Centrifuge's client.go: {} (id 0, no request) is a
    // pong; every other command needs an id except send (no reply).
    if (_cmd.m == method::none) {
      if (_cmd.id != 0) return parse_error::bad_command;
    } else if (_cmd.m != method::send && _cmd.id == 0) {
      return parse_error::bad_command;
    }
    have = true;
    return parse_error::none;
  }
  return parse_error::none;
}

// ---------------------------------------------------------------------------
// codes

std::string_view error_message(std::uint32_t code) noexcept {
  switch (code) {
    case error_code::internal: return "internal server error";
    case error_code::unauthorized: return "unauthorized";
    case error_code::unknown_channel: return "unknown channel";
    case error_code::permission_denied: return "permission denied";
    case error_code::method_not_found: return "method not found";
    case error_code::already_subscribed: return "already subscribed";
    case error_code::limit_exceeded: return "limit exceeded";
    case error_code::bad_request: return "bad request";
    case error_code::not_available: return "not available";
    case error_code::token_expired: return "token expired";
    case error_code::expired: return "expired";
    case error_code::too_many_requests: return "too many requests";
    case error_code::unrecoverable_position: return "unrecoverable position";
    default: return "";
  }
}

bool error_temporary(std::uint32_t code) noexcept {
  return code == error_code::internal || code == error_code::too_many_requests;
}

std::string_view disconnect_reason(std::uint32_t code) noexcept {
  switch (code) {
    case disconnect_code::connection_closed: return "connection closed";
    case disconnect_code::shutdown: return "shutdown";
    case disconnect_code::server_error: return "internal server error";
    case disconnect_code::expired: return "connection expired";
    case disconnect_code::sub_expired: return "subscription expired";
    case disconnect_code::slow: return "slow";
    case disconnect_code::write_error: return "write error";
    case disconnect_code::insufficient_state: return "insufficient state";
    case disconnect_code::force_reconnect: return "force reconnect";
    case disconnect_code::no_pong: return "no pong";
    case disconnect_code::too_many_requests: return "too many requests";
    case disconnect_code::invalid_token: return "invalid token";
    case disconnect_code::bad_request: return "bad request";
    case disconnect_code::stale: return "stale";
    case disconnect_code::force_disconnect: return "force disconnect";
    case disconnect_code::connection_limit: return "connection limit";
    case disconnect_code::channel_limit: return "channel limit";
    case disconnect_code::inappropriate_protocol: return "inappropriate protocol";
    case disconnect_code::permission_denied: return "permission denied";
    case disconnect_code::not_available: return "not available";
    case disconnect_code::too_many_errors: return "too many errors";
    default: return "";
  }
}

// ---------------------------------------------------------------------------
// encoding

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
      sr.boolean("expires", s.expires);
      sr.u64("ttl", s.ttl);
      sr.boolean("recoverable", s.recoverable);
      sr.str("epoch", s.epoch);
      write_publications(sr, s.publications);
      sr.boolean("recovered", s.recovered);
      sr.u64("offset", s.offset);
      sr.boolean("positioned", s.positioned);
      sr.raw("data", s.data_json);
      sr.boolean("was_recovering", s.was_recovering);
    }
  }
  c.u64("ping", r.ping);
  c.boolean("pong", r.pong);
  c.str("session", r.session);
  c.str("node", r.node);
}

void encode_subscribe_reply(std::string& out, std::uint32_t id, const subscribe_result& r) {
  reply_obj rep(out, id, "subscribe");
  obj& s = rep.result;
  s.boolean("expires", r.expires);
  s.u64("ttl", r.ttl);
  s.boolean("recoverable", r.recoverable);
  s.str("epoch", r.epoch);
  write_publications(s, r.publications);
  s.boolean("recovered", r.recovered);
  s.u64("offset", r.offset);
  s.boolean("positioned", r.positioned);
  s.raw("data", r.data_json);
  s.boolean("was_recovering", r.was_recovering);
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

void encode_subscribe_push(std::string& out, std::string_view channel, const subscribe_push& s) {
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
