#pragma once
// The JSON format behind session/codec.hpp's interfaces: commands one JSON
// object per line of a text frame (session/json_reader.hpp), replies and
// pushes joined with '\n' (session/json_writer.hpp).

#include "session/codec.hpp"
#include "session/json_reader.hpp"

namespace sb::proto {

/// Reads JSON frames; one per shard, shard thread only.
class json_decoder final : public command_decoder {
 public:
  parse_error decode(std::span<const std::uint8_t> frame, command_sink& sink) override;

 private:
  command_parser _parser;
};

/// Writes JSON replies and pushes, newline-separated within a frame.
/// Stateless; any thread.
class json_encoder final : public reply_encoder {
 public:
  format which() const noexcept override { return format::json; }
  bool binary_frames() const noexcept override { return false; }
  using reply_encoder::error_reply;
  void error_reply(std::string& out, std::uint32_t id, std::uint32_t code, std::string_view message,
                   bool temporary) const override;
  void connect_reply(std::string& out, std::uint32_t id, const connect_result& r) const override;
  void subscribe_reply(std::string& out, std::uint32_t id, const subscribe_result& r) const override;
  void refresh_reply(std::string& out, std::uint32_t id, const refresh_result& r) const override;
  void sub_refresh_reply(std::string& out, std::uint32_t id, bool expires, std::uint32_t ttl) const override;
  void empty_reply(std::string& out, std::uint32_t id, method m) const override;
  void presence_reply(std::string& out, std::uint32_t id, std::span<const client_info_view> clients) const override;
  void presence_stats_reply(std::string& out, std::uint32_t id, std::uint32_t num_clients,
                            std::uint32_t num_users) const override;
  void history_reply(std::string& out, std::uint32_t id, std::span<const publication_view> pubs,
                     std::string_view epoch, std::uint64_t offset) const override;
  void rpc_reply(std::string& out, std::uint32_t id, std::string_view data) const override;
  void publication_push(std::string& out, const publication_view& p) const override;
  void join_push(std::string& out, std::string_view channel, const client_info_view& info) const override;
  void leave_push(std::string& out, std::string_view channel, const client_info_view& info) const override;
  void unsubscribe_push(std::string& out, std::string_view channel, std::uint32_t code,
                        std::string_view reason) const override;
  void subscribe_push(std::string& out, std::string_view channel, const server_subscription& s) const override;
  void message_push(std::string& out, std::string_view data) const override;
  void refresh_push(std::string& out, bool expires, std::uint32_t ttl) const override;
  void ping(std::string& out) const override;
};

}  // namespace sb::proto
