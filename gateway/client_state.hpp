#pragma once
// The protocol state of one session (gateway/client.hpp's handler keeps one
// per open session) and the helpers its two halves share: client.cpp (the
// connection's life: connect result, pings, close, the user index, server
// API operations) and client_commands.cpp (the commands a client sends).
// Internal to gateway/; shard thread only, like the handler.

#include "gateway/client.hpp"
#include "session/codec.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sb {

/// Unix time in seconds (token expiry is in unix seconds).
std::int64_t unix_now();

/// Seconds from now until `exp` (unix seconds), 0 when past; for `ttl` fields.
std::uint32_t ttl_until(std::int64_t exp);

struct client final : routing::subscriber {
  enum class state : std::uint8_t { connecting, connect_pending, connected, closing };

  explicit client(session& s) : sess(s) {}

  void on_subscribed(routing::subscription& s, const routing::position& pos) override;
  void deliver(const frame_ref& frame) override { (void)sess.send(frame); }
  void on_insufficient_state(routing::subscription& s) override;
  void on_subscribe_failed(routing::subscription& s, std::uint32_t code) override;

  centrifuge_handler& handler() const noexcept {
    return static_cast<centrifuge_handler&>(*sess.context().handler());
  }
  /// The wire format this client speaks; its replies and pushes go through it.
  proto::format format() const noexcept { return static_cast<proto::format>(wire); }
  const proto::reply_encoder& encoder() const noexcept { return *proto::encoder_for(format()); }
  /// Which push frames its subscriptions take (routing::subscribe_flags):
  /// the wire format, +2 when the session negotiated permessage-deflate
  /// (client_push.cpp).
  std::uint8_t push_format() const noexcept { return static_cast<std::uint8_t>(wire | (sess.deflate() ? 2 : 0)); }

  // The client's subscriptions are chained through the subscriptions
  // themselves (subscription::next_of_owner): no vector per client.
  // owner_tag: the subscribe command waiting for activation (0: none);
  // owner_flag: server-side, from the connection token's `channels`.
  routing::subscription* find(std::string_view channel) const {
    for (auto* s = subs; s; s = s->next_of_owner) {
      if (s->name() == channel) return s;
    }
    return nullptr;
  }
  void add(routing::subscription* s, std::uint32_t reply_id, bool server_side) {
    s->owner_tag = reply_id;
    s->owner_flag = server_side;
    s->next_of_owner = subs;
    subs = s;
    ++sub_count;
  }
  void remove(routing::subscription* s) {
    for (auto** p = &subs; *p; p = &(*p)->next_of_owner) {
      if (*p == s) {
        *p = s->next_of_owner;
        --sub_count;
        return;
      }
    }
  }

  /// The client id as text (a UUID); kept as 16 bytes.
  std::array<char, 36> id_text() const noexcept;
  std::string_view conn_info_view() const noexcept { return conn_info ? std::string_view(*conn_info) : std::string_view(); }

  void on_deadline();  // the session timer we set passed
  void finish_connect(std::string& out);
  void push_subscribed(routing::subscription& s, const routing::position& pos);

  session& sess;
  compact_string user;                       // 31 characters inline (std::string: 15)
  std::array<std::uint8_t, 16> id{};        // client id (UUID bytes)
  std::unique_ptr<const std::string> conn_info;  // raw JSON from the token's `info`; null when none
  std::int64_t exp = 0;                     // connection expiry (unix seconds), 0: none
  routing::subscription* subs = nullptr;    // newest first
  client* next_of_user = nullptr;           // the user's next client on this shard (user index)
  std::uint32_t connect_id = 0;             // connect command waiting for server-side subscriptions
  std::uint32_t connect_waiting = 0;        // server-side subscriptions not active yet
  std::uint16_t sub_count = 0;
  std::uint16_t pending_queries = 0;        // history reads waiting for the home
  state st = state::connecting;
  // Bits: a million of these; they share one byte.
  std::uint8_t wire : 2 = 0;             // proto::format, fixed at the upgrade
  bool indexed : 1 = false;              // in the handler's user index
  bool awaiting_pong : 1 = false;
  bool pong_check : 1 = false;           // the armed deadline is the pong check, not the next ping
  bool proxy_refresh : 1 = false;        // connected by the connect proxy: the server refreshes it (refresh proxy)
  bool refreshing : 1 = false;           // a refresh proxy request is out
};

/// How a subscription follows its channel, as Centrifugo decides it (see
/// client.cpp); `req` is null for server-side subscriptions.
routing::subscribe_flags subscription_flags(const routing::channel_rules& rules, std::string_view channel,
                                            const proto::subscribe_request* req, std::uint8_t push_format);

/// The fields of a proxy request every kind carries: the client's id (`id`
/// is its text, which must outlive the request) and user (client_proxy.cpp).
proxy_request proxy_fields(const client& c, const std::array<char, 36>& id);

/// A subscribe result from the home's position; `views` holds the
/// publication views the result points at.
void fill_subscribe_result(proto::subscribe_result& r, const routing::position& pos, bool recoverable,
                           bool positioned, std::vector<proto::publication_view>& views);

}  // namespace sb
