#pragma once
// The Protobuf format behind session/codec.hpp's interfaces: Centrifuge
// protocol v2's client.proto (centrifugal/protocol; the field numbers are
// in protobuf_codec.cpp), as centrifuge-js's protobuf build speaks it over
// WebSocket: binary frames, each holding one or more varint-delimited
// Commands (client → server) or Replies (server → client). A client picks
// it with the `centrifuge-protobuf` subprotocol or `?cf_protocol=protobuf`.
//
// Payload fields (`data`, `conn_info`, `chan_info`) are proto `bytes`: a
// publication is carried as the bytes it was published with, so JSON and
// Protobuf subscribers of one channel read the same payload (JSON ones
// need it to be JSON, as in Centrifugo).

#include "session/codec.hpp"

namespace sb::proto {

/// Reads Protobuf frames; one per shard, shard thread only.
class protobuf_decoder final : public command_decoder {
 public:
  parse_error decode(std::span<const std::uint8_t> frame, command_sink& sink) override;

 private:
  command _cmd;  // reused, so connect.subs keeps its capacity
};

/// Writes Protobuf replies and pushes, each varint-delimited. Stateless;
/// any thread.
class protobuf_encoder final : public reply_encoder {
 public:
  format which() const noexcept override { return format::protobuf; }
  bool binary_frames() const noexcept override { return true; }
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
