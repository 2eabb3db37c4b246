#include "session/json_reader.hpp"

#include "session/json_validate.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace sb::proto {

namespace od = simdjson::ondemand;
using sj_error = simdjson::error_code;
using json::is_ws;
using json::max_validate_depth;
using json::trim_right;
using json::valid_number;

// On-Demand parses each line once, in place: strings are unescaped into the
// parser's string buffer and raw JSON (`data`) is a view of the frame copy,
// byte for byte what the client sent (a DOM round trip would rewrite numbers:
// 1.10 -> 1.1, big integers -> doubles). On-Demand does not fully validate
// what it skips, so every raw value we keep or skip (data, unknown fields)
// goes through json::validate, which also enforces the depth limit. Known
// fields are validated by their typed getters.
//
// Build note: On-Demand is compiled into this file for the target given by
// the compiler flags (x86-64 baseline = simdjson's "fallback" kernel); the
// DOM API dispatches at run time. Commands are small, so the baseline is
// fine; -march=x86-64-v3 makes stage 1 SIMD.

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
  parse_error validate(std::string_view text) noexcept { return json::validate(text, _max_depth); }


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

}  // namespace sb::proto
