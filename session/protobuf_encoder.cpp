// Replies and pushes in Protobuf (protobuf_codec.hpp): each a Reply,
// varint-delimited. Field numbers from centrifugal/protocol client.proto.
#include "session/pb_wire.hpp"
#include "session/protobuf_codec.hpp"

namespace sb::proto {

namespace {

using pb::nested;
using pb::put_bool;
using pb::put_bytes;
using pb::put_uint;

// Reply's fields.
namespace reply_field {
constexpr std::uint32_t id = 1, error = 2, push = 4;
}  // namespace reply_field
// Push's fields.
namespace push_field {
constexpr std::uint32_t channel = 2, pub = 4, join = 5, leave = 6, unsubscribe = 7, message = 8, subscribe = 9,
                        refresh = 12;
}  // namespace push_field

// Reply's result field for a method: connect 5 ... sub_refresh 15, the
// command's field + 1 (Reply has no result for send; field 3 is reserved).
std::uint32_t result_field(method m) noexcept {
  switch (m) {
    case method::connect: return 5;
    case method::subscribe: return 6;
    case method::unsubscribe: return 7;
    case method::publish: return 8;
    case method::presence: return 9;
    case method::presence_stats: return 10;
    case method::history: return 11;
    case method::ping: return 12;
    case method::rpc: return 13;
    case method::refresh: return 14;
    case method::sub_refresh: return 15;
    case method::send:
    case method::none: break;
  }
  return 0;
}

void write_client_info(std::string& out, std::uint32_t field, const client_info_view& i) {
  nested n(out, field);
  put_bytes(out, 1, i.user);
  put_bytes(out, 2, i.client);
  put_bytes(out, 3, i.conn_info);
  put_bytes(out, 4, i.chan_info);
}

void write_publication(std::string& out, std::uint32_t field, const publication_view& p) {
  nested n(out, field);
  put_bytes(out, 4, p.data);
  if (p.has_info) write_client_info(out, 5, p.info);
  put_uint(out, 6, p.offset);
  for (const auto& [k, v] : p.tags) {  // map<string, string>: entries {1: key, 2: value}
    nested e(out, 7);
    put_bytes(out, 1, k);
    put_bytes(out, 2, v);
  }
}

// SubscribeResult's fields (a subscribe reply, and each server-side
// subscription of a connect reply).
template <typename R>
void write_subscribe_fields(std::string& out, const R& r) {
  put_bool(out, 1, r.expires);
  put_uint(out, 2, r.ttl);
  put_bool(out, 3, r.recoverable);
  put_bytes(out, 6, r.epoch);
  for (const publication_view& p : r.publications) write_publication(out, 7, p);
  put_bool(out, 8, r.recovered);
  put_uint(out, 9, r.offset);
  put_bool(out, 10, r.positioned);
  put_bytes(out, 11, r.data_json);
  put_bool(out, 12, r.was_recovering);
}

// One Reply, varint-delimited: its id and the result message of `m`,
// whose fields the caller writes while this lives.
struct reply {
  nested frame;
  std::uint32_t id;
  nested result;
  reply(std::string& out, std::uint32_t id_, std::uint32_t result_field)
      : frame(out, 0), id((put_uint(out, reply_field::id, id_), id_)), result(out, result_field) {}
};

// One Reply carrying a Push on `channel`, and the push's `kind` message.
struct push {
  nested frame;
  nested body;
  nested kind;
  push(std::string& out, std::string_view channel, std::uint32_t kind_field)
      : frame(out, 0), body(out, reply_field::push), kind((put_bytes(out, push_field::channel, channel), out), kind_field) {}
};

}  // namespace

void protobuf_encoder::error_reply(std::string& out, std::uint32_t id, std::uint32_t code, std::string_view message,
                                   bool temporary) const {
  reply r(out, id, reply_field::error);
  put_uint(out, 1, code);
  put_bytes(out, 2, message);
  put_bool(out, 3, temporary);
}

void protobuf_encoder::connect_reply(std::string& out, std::uint32_t id, const connect_result& c) const {
  reply r(out, id, result_field(method::connect));
  put_bytes(out, 1, c.client);
  put_bytes(out, 2, c.version);
  put_bool(out, 3, c.expires);
  put_uint(out, 4, c.ttl);
  put_bytes(out, 5, c.data_json);
  for (const sub_position& s : c.subs) {  // map<string, SubscribeResult>
    nested e(out, 6);
    put_bytes(out, 1, s.channel);
    nested v(out, 2);
    write_subscribe_fields(out, s);
  }
  put_uint(out, 7, c.ping);
  put_bool(out, 8, c.pong);
  put_bytes(out, 9, c.session);
  put_bytes(out, 10, c.node);
}

void protobuf_encoder::subscribe_reply(std::string& out, std::uint32_t id, const subscribe_result& s) const {
  reply r(out, id, result_field(method::subscribe));
  write_subscribe_fields(out, s);
}

void protobuf_encoder::refresh_reply(std::string& out, std::uint32_t id, const refresh_result& x) const {
  reply r(out, id, result_field(method::refresh));
  put_bytes(out, 1, x.client);
  put_bytes(out, 2, x.version);
  put_bool(out, 3, x.expires);
  put_uint(out, 4, x.ttl);
}

void protobuf_encoder::sub_refresh_reply(std::string& out, std::uint32_t id, bool expires, std::uint32_t ttl) const {
  reply r(out, id, result_field(method::sub_refresh));
  put_bool(out, 1, expires);
  put_uint(out, 2, ttl);
}

void protobuf_encoder::empty_reply(std::string& out, std::uint32_t id, method m) const {
  // The result is present even when empty: it says which command it answers.
  reply r(out, id, result_field(m));
}

void protobuf_encoder::presence_reply(std::string& out, std::uint32_t id,
                                      std::span<const client_info_view> clients) const {
  reply r(out, id, result_field(method::presence));
  for (const client_info_view& c : clients) {  // map<string, ClientInfo>, keyed by client id
    nested e(out, 1);
    put_bytes(out, 1, c.client);
    write_client_info(out, 2, c);
  }
}

void protobuf_encoder::presence_stats_reply(std::string& out, std::uint32_t id, std::uint32_t num_clients,
                                            std::uint32_t num_users) const {
  reply r(out, id, result_field(method::presence_stats));
  put_uint(out, 1, num_clients);
  put_uint(out, 2, num_users);
}

void protobuf_encoder::history_reply(std::string& out, std::uint32_t id, std::span<const publication_view> pubs,
                                     std::string_view epoch, std::uint64_t offset) const {
  reply r(out, id, result_field(method::history));
  for (const publication_view& p : pubs) write_publication(out, 1, p);
  put_bytes(out, 2, epoch);
  put_uint(out, 3, offset);
}

void protobuf_encoder::rpc_reply(std::string& out, std::uint32_t id, std::string_view data) const {
  reply r(out, id, result_field(method::rpc));
  put_bytes(out, 1, data);
}

void protobuf_encoder::publication_push(std::string& out, const publication_view& p) const {
  nested frame(out, 0);
  nested body(out, reply_field::push);
  put_bytes(out, push_field::channel, p.channel);
  write_publication(out, push_field::pub, p);
}

void protobuf_encoder::join_push(std::string& out, std::string_view channel, const client_info_view& info) const {
  push p(out, channel, push_field::join);
  write_client_info(out, 1, info);
}

void protobuf_encoder::leave_push(std::string& out, std::string_view channel, const client_info_view& info) const {
  push p(out, channel, push_field::leave);
  write_client_info(out, 1, info);
}

void protobuf_encoder::unsubscribe_push(std::string& out, std::string_view channel, std::uint32_t code,
                                        std::string_view reason) const {
  push p(out, channel, push_field::unsubscribe);
  put_uint(out, 2, code);
  put_bytes(out, 3, reason);
}

void protobuf_encoder::subscribe_push(std::string& out, std::string_view channel, const server_subscription& s) const {
  push p(out, channel, push_field::subscribe);
  put_bool(out, 1, s.recoverable);
  put_bytes(out, 4, s.epoch);
  put_uint(out, 5, s.offset);
  put_bool(out, 6, s.positioned);
  put_bytes(out, 7, s.data_json);
}

void protobuf_encoder::message_push(std::string& out, std::string_view data) const {
  push p(out, {}, push_field::message);
  put_bytes(out, 1, data);
}

void protobuf_encoder::refresh_push(std::string& out, bool expires, std::uint32_t ttl) const {
  push p(out, {}, push_field::refresh);
  put_bool(out, 1, expires);
  put_uint(out, 2, ttl);
}

void protobuf_encoder::ping(std::string& out) const {
  // An empty Reply: its varint length, 0.
  out.push_back('\0');
}

}  // namespace sb::proto
