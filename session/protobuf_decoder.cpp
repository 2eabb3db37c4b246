// Commands in Protobuf (protobuf_codec.hpp). Field numbers from
// centrifugal/protocol client.proto, as centrifuge-js 5.x encodes them.
#include "session/pb_wire.hpp"
#include "session/protobuf_codec.hpp"

#include <simdjson.h>

namespace sb::proto {

namespace {

using pb::wire;

// Why a read failed: bytes that are not Protobuf (bad_json, the JSON
// format's name for "undecodable"), or a well-formed message that is no
// valid command (bad_command).
struct field_reader {
  pb::reader r;
  parse_error err = parse_error::none;

  explicit field_reader(std::string_view bytes) : r(bytes) {}

  bool fail(parse_error e) {
    if (err == parse_error::none) err = e;
    return false;
  }
  // proto3 `string` fields must be UTF-8 (Go's protobuf refuses others, and
  // channel names go on to JSON clients).
  bool str(wire w, std::string_view& v) {
    if (w != wire::bytes || !r.bytes(v)) return fail(parse_error::bad_json);
    if (!simdjson::validate_utf8(v.data(), v.size())) return fail(parse_error::bad_command);
    return true;
  }
  bool raw(wire w, std::string_view& v) {
    if (w != wire::bytes || !r.bytes(v)) return fail(parse_error::bad_json);
    return true;
  }
  bool u64(wire w, std::uint64_t& v) {
    if (w != wire::varint || !r.varint(v)) return fail(parse_error::bad_json);
    return true;
  }
  bool u32(wire w, std::uint32_t& v) {
    std::uint64_t x;
    if (!u64(w, x)) return false;
    if (x > UINT32_MAX) return fail(parse_error::bad_command);
    v = static_cast<std::uint32_t>(x);
    return true;
  }
  // int32: negative values are sign-extended to 10 bytes on the wire.
  bool i32(wire w, std::int32_t& v) {
    std::uint64_t x;
    if (!u64(w, x)) return false;
    v = static_cast<std::int32_t>(static_cast<std::uint32_t>(x));
    return true;
  }
  bool boolean(wire w, bool& v) {
    std::uint64_t x;
    if (!u64(w, x)) return false;
    v = x != 0;
    return true;
  }
  bool message(wire w, std::string_view& v) { return raw(w, v); }
  bool skip(wire w) { return r.skip(w) || fail(parse_error::bad_json); }

  // Reads every field of the message with `on(field, wire)`, which returns
  // false to stop on an error.
  template <typename Fn>
  bool each(Fn&& on) {
    std::uint32_t f;
    wire w;
    while (r.next(f, w)) {
      if (!on(f, w)) return false;
    }
    if (r.bad) return fail(parse_error::bad_json);
    return true;
  }
};

// A sub-message's fields, with errors carried to the parent.
template <typename Fn>
bool sub_message(field_reader& parent, wire w, Fn&& on) {
  std::string_view bytes;
  if (!parent.message(w, bytes)) return false;
  field_reader child(bytes);
  if (!child.each([&](std::uint32_t f, wire fw) { return on(child, f, fw); })) return parent.fail(child.err);
  return true;
}

bool read_subscribe(field_reader& p, wire w, subscribe_request& s) {
  return sub_message(p, w, [&](field_reader& r, std::uint32_t f, wire fw) {
    switch (f) {
      case 1: return r.str(fw, s.channel);
      case 2: return r.str(fw, s.token);
      case 3: return r.boolean(fw, s.recover);
      case 6: return r.str(fw, s.epoch);
      case 7: return r.u64(fw, s.offset);
      case 8: return r.raw(fw, s.data_json);
      case 9: return r.boolean(fw, s.positioned);
      case 10: return r.boolean(fw, s.recoverable);
      case 11: return r.boolean(fw, s.join_leave);
      case 12: return r.str(fw, s.delta);
      default: return r.skip(fw);
    }
  });
}

// A request with only a channel (1): unsubscribe, presence, presence_stats.
bool read_channel(field_reader& p, wire w, std::string_view& channel) {
  return sub_message(p, w, [&](field_reader& r, std::uint32_t f, wire fw) {
    return f == 1 ? r.str(fw, channel) : r.skip(fw);
  });
}

bool read_request(field_reader& p, wire w, method m, command& c) {
  switch (m) {
    case method::connect: {
      auto& q = c.connect;
      return sub_message(p, w, [&](field_reader& r, std::uint32_t f, wire fw) {
        switch (f) {
          case 1: return r.str(fw, q.token);
          case 2: return r.raw(fw, q.data_json);
          case 3:  // map<string, SubscribeRequest>: entries {1: key, 2: value}
            q.subs.emplace_back(std::string_view(), subscribe_request{});
            return sub_message(r, fw, [&](field_reader& e, std::uint32_t ef, wire ew) {
              if (ef == 1) return e.str(ew, q.subs.back().first);
              if (ef == 2) return read_subscribe(e, ew, q.subs.back().second);
              return e.skip(ew);
            });
          case 4: return r.str(fw, q.name);
          case 5: return r.str(fw, q.version);
          default: return r.skip(fw);
        }
      });
    }
    case method::subscribe: return read_subscribe(p, w, c.subscribe);
    case method::unsubscribe: return read_channel(p, w, c.unsubscribe.channel);
    case method::publish:
      return sub_message(p, w, [&](field_reader& r, std::uint32_t f, wire fw) {
        if (f == 1) return r.str(fw, c.publish.channel);
        if (f == 2) return r.raw(fw, c.publish.data_json);
        return r.skip(fw);
      });
    case method::presence: return read_channel(p, w, c.presence.channel);
    case method::presence_stats: return read_channel(p, w, c.presence_stats.channel);
    case method::history: {
      auto& q = c.history;
      return sub_message(p, w, [&](field_reader& r, std::uint32_t f, wire fw) {
        switch (f) {
          case 1: return r.str(fw, q.channel);
          case 7: return r.i32(fw, q.limit);
          case 8:  // StreamPosition {1: offset, 2: epoch}
            q.has_since = true;
            return sub_message(r, fw, [&](field_reader& s, std::uint32_t sf, wire sw) {
              if (sf == 1) return s.u64(sw, q.since_offset);
              if (sf == 2) return s.str(sw, q.since_epoch);
              return s.skip(sw);
            });
          case 9: return r.boolean(fw, q.reverse);
          default: return r.skip(fw);
        }
      });
    }
    case method::ping:
      return sub_message(p, w, [](field_reader& r, std::uint32_t, wire fw) { return r.skip(fw); });
    case method::send:
      return sub_message(p, w, [&](field_reader& r, std::uint32_t f, wire fw) {
        return f == 1 ? r.raw(fw, c.send.data_json) : r.skip(fw);
      });
    case method::rpc:
      return sub_message(p, w, [&](field_reader& r, std::uint32_t f, wire fw) {
        if (f == 1) return r.raw(fw, c.rpc.data_json);
        if (f == 2) return r.str(fw, c.rpc.method_name);
        return r.skip(fw);
      });
    case method::refresh:
      return sub_message(p, w, [&](field_reader& r, std::uint32_t f, wire fw) {
        return f == 1 ? r.str(fw, c.refresh.token) : r.skip(fw);
      });
    case method::sub_refresh:
      return sub_message(p, w, [&](field_reader& r, std::uint32_t f, wire fw) {
        if (f == 1) return r.str(fw, c.sub_refresh.channel);
        if (f == 2) return r.str(fw, c.sub_refresh.token);
        return r.skip(fw);
      });
    case method::none: break;
  }
  return p.fail(parse_error::bad_command);
}

// Command's request fields: 4 connect ... 15 sub_refresh, in method order.
method request_of(std::uint32_t field) noexcept {
  return field >= 4 && field <= 15 ? static_cast<method>(field - 3) : method::none;
}
static_assert(static_cast<int>(method::connect) == 1 && static_cast<int>(method::sub_refresh) == 12,
              "request_of maps Command fields 4..15 onto method's order");

parse_error read_command(std::string_view bytes, command& c) {
  field_reader r(bytes);
  const bool ok = r.each([&](std::uint32_t f, wire w) {
    if (f == 1) return r.u32(w, c.id);
    const method m = request_of(f);
    if (m == method::none) return r.skip(w);
    // As the JSON format: two different requests in one command are
    // refused. The same request twice is merged (Protobuf's rule for a
    // repeated message field).
    if (c.m != method::none && c.m != m) return r.fail(parse_error::bad_command);
    c.m = m;
    return read_request(r, w, m, c);
  });
  if (!ok) return r.err == parse_error::none ? parse_error::bad_json : r.err;
  // Centrifuge's rules, as for JSON: an empty command is a pong; every
  // other needs an id except send.
  if (c.m == method::none) {
    if (c.id != 0) return parse_error::bad_command;
  } else if (c.m != method::send && c.id == 0) {
    return parse_error::bad_command;
  }
  return parse_error::none;
}

}  // namespace

parse_error protobuf_decoder::decode(std::span<const std::uint8_t> frame, command_sink& sink) {
  // Commands are varint-delimited, one after another, to the frame's end.
  pb::reader frames(std::string_view(reinterpret_cast<const char*>(frame.data()), frame.size()));
  if (frame.empty()) return parse_error::bad_json;
  while (!frames.done()) {
    std::string_view bytes;
    if (!frames.bytes(bytes)) return parse_error::bad_json;
    auto subs = std::move(_cmd.connect.subs);
    _cmd = command{};
    subs.clear();
    _cmd.connect.subs = std::move(subs);
    if (auto e = read_command(bytes, _cmd); e != parse_error::none) return e;
    if (!sink.on_command(_cmd)) break;
  }
  return parse_error::none;
}

}  // namespace sb::proto
