#include "session/json_codec.hpp"

#include "session/json_writer.hpp"

namespace sb::proto {

namespace {

// Replies of one frame are newline-delimited.
std::string& next(std::string& out) {
  if (!out.empty()) out.push_back('\n');
  return out;
}

// Adapts the parser's callback to the sink.
struct to_sink {
  command_sink& sink;
  bool operator()(const command& c) const { return sink.on_command(c); }
};

}  // namespace

parse_error json_decoder::decode(std::span<const std::uint8_t> frame, command_sink& sink) {
  return _parser.parse(std::string_view(reinterpret_cast<const char*>(frame.data()), frame.size()), to_sink{sink});
}

void json_encoder::error_reply(std::string& out, std::uint32_t id, std::uint32_t code, std::string_view message,
                               bool temporary) const {
  encode_error_reply(next(out), id, code, message, temporary);
}
void json_encoder::connect_reply(std::string& out, std::uint32_t id, const connect_result& r) const {
  encode_connect_reply(next(out), id, r);
}
void json_encoder::subscribe_reply(std::string& out, std::uint32_t id, const subscribe_result& r) const {
  encode_subscribe_reply(next(out), id, r);
}
void json_encoder::refresh_reply(std::string& out, std::uint32_t id, const refresh_result& r) const {
  encode_refresh_reply(next(out), id, r);
}
void json_encoder::sub_refresh_reply(std::string& out, std::uint32_t id, bool expires, std::uint32_t ttl) const {
  encode_sub_refresh_reply(next(out), id, expires, ttl);
}
void json_encoder::empty_reply(std::string& out, std::uint32_t id, method m) const {
  encode_empty_reply(next(out), id, m);
}
void json_encoder::presence_reply(std::string& out, std::uint32_t id,
                                  std::span<const client_info_view> clients) const {
  encode_presence_reply(next(out), id, clients);
}
void json_encoder::presence_stats_reply(std::string& out, std::uint32_t id, std::uint32_t num_clients,
                                        std::uint32_t num_users) const {
  encode_presence_stats_reply(next(out), id, num_clients, num_users);
}
void json_encoder::history_reply(std::string& out, std::uint32_t id, std::span<const publication_view> pubs,
                                 std::string_view epoch, std::uint64_t offset) const {
  encode_history_reply(next(out), id, pubs, epoch, offset);
}
void json_encoder::rpc_reply(std::string& out, std::uint32_t id, std::string_view data) const {
  encode_rpc_reply(next(out), id, data);
}
void json_encoder::publication_push(std::string& out, const publication_view& p) const {
  encode_publication_push(next(out), p);
}
void json_encoder::join_push(std::string& out, std::string_view channel, const client_info_view& info) const {
  encode_join_push(next(out), channel, info);
}
void json_encoder::leave_push(std::string& out, std::string_view channel, const client_info_view& info) const {
  encode_leave_push(next(out), channel, info);
}
void json_encoder::unsubscribe_push(std::string& out, std::string_view channel, std::uint32_t code,
                                    std::string_view reason) const {
  encode_unsubscribe_push(next(out), channel, code, reason);
}
void json_encoder::subscribe_push(std::string& out, std::string_view channel, const server_subscription& s) const {
  encode_subscribe_push(next(out), channel, s);
}
void json_encoder::message_push(std::string& out, std::string_view data) const {
  encode_message_push(next(out), data);
}
void json_encoder::refresh_push(std::string& out, bool expires, std::uint32_t ttl) const {
  encode_refresh_push(next(out), expires, ttl);
}
void json_encoder::ping(std::string& out) const { encode_ping(next(out)); }

}  // namespace sb::proto
