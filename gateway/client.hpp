#pragma once
// The Centrifuge client protocol v2 over a session: connect (JWT),
// subscribe / unsubscribe / publish / refresh / sub_refresh / history /
// presence, protocol ping/pong, and the per-shard user index. One handler
// per shard; it owns the client state of every session on that shard.
// Frames are read and replies written through the connection's wire format
// (session/codec.hpp: JSON today). client.cpp is a connection's life and the
// server API's operations on clients, client_commands.cpp the commands.
//
// Threading: the handler and every client belong to one shard and run on
// its thread only; other shards are reached through the router's mesh.

#include "gateway/jwt.hpp"
#include "gateway/proxy.hpp"
#include "gateway/rate_limit.hpp"
#include "pool/compact_string.hpp"
#include "pool/counter.hpp"
#include "pool/keyed_set.hpp"
#include "pool/object_pool.hpp"
#include "routing/channel_rules.hpp"
#include "routing/router.hpp"
#include "session/codec.hpp"
#include "session/protocol.hpp"
#include "session/session.hpp"

#include <boost/unordered/unordered_flat_map.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace sb {

/// Protocol settings shared read-only by every shard.
struct protocol_options {
  routing::channel_rules rules;
  // Never null when running; shared by the shards' options until a reload
  // replaces it (the last shard to let go frees it).
  std::shared_ptr<const auth::verifier> verifier;
  bool allow_anonymous_connect = false;        // empty `sub` (or no token) may connect
  bool allow_anonymous_without_token = false;  // a connect with no token at all
  std::uint32_t client_channel_limit = 128;
  std::chrono::milliseconds ping_interval{25'000};
  std::chrono::milliseconds pong_timeout{8'000};
  std::chrono::milliseconds stale_timeout{10'000};           // connect must arrive within
  std::chrono::milliseconds expired_close_delay{25'000};     // grace after token expiry
  bool publish_waits_for_engine = false;  // a publish is answered once the engine ordered it (Redis)
  rate_limits limits;                     // per connection (gateway/rate_limit.hpp)
  // The backend proxy's endpoints; null: none. Read when the handler is
  // built (a reload does not change them: restart-only).
  std::shared_ptr<const proxy_config> proxy;
  std::string version = "0.1.0";
};

/// Commands by outcome, per shard.
struct protocol_stats {
  counter connects;
  counter connect_errors;
  counter subscribes;
  counter subscribe_errors;
  counter unsubscribes;
  counter publishes;
  counter publish_errors;
  counter refreshes;
  counter bad_requests;     // disconnects for malformed commands
  counter disconnects;      // every disconnect we initiated
  counter client_records;   // client state records alive (every open session, connected or not)
  counter clients;          // connected clients now
  counter protobuf_clients; // of which speak the Protobuf format
  counter users;            // distinct users with a client on this shard now
  counter rate_limited;     // commands refused with 111 by the rate limits
  counter rate_limit_disconnects;  // clients disconnected (3013) for flooding past them
  counter rate_limit_tracked;      // clients with a rate-limit state now (a bucket not full)
  proxy_stats proxy;               // backend proxy requests (gateway/proxy.hpp)
};

struct client;
/// The key of the user index (client.cpp).
std::string_view client_user(const client& c) noexcept;

/// The Centrifuge protocol handler of one shard.
class centrifuge_handler final : public session_handler {
 public:
  centrifuge_handler(const protocol_options& opts, routing::router& router, session_context& sessions);
  ~centrifuge_handler() override;

  void on_open(session& s, const ws::upgrade_result& req) override;
  void on_message(session& s, ws::opcode op, std::span<const std::uint8_t> payload) override;
  void on_close(session& s) override;
  void on_timer(session& s) override;

  // Server API operations on this shard's clients of `user` (all of them, or
  // only the one whose id is `client` when it is not empty). Shard thread;
  // each returns how many clients it touched.

  /// Starts the close of each (the index changes when they are gone).
  std::size_t disconnect_user(std::string_view user, std::string_view client, std::uint16_t code,
                              std::string_view reason);
  /// Server-side subscription: a subscribe push when it is live. Clients
  /// already subscribed or at client_channel_limit are skipped.
  std::size_t subscribe_user(std::string_view user, std::string_view client, std::string_view channel);
  /// Ends the subscription with an unsubscribe push (code 2000 "server unsubscribe").
  std::size_t unsubscribe_user(std::string_view user, std::string_view client, std::string_view channel);
  /// New connection expiry (unix seconds, 0: none), or `expired`: close 3005.
  std::size_t refresh_user(std::string_view user, std::string_view client, std::int64_t expire_at, bool expired);

  const protocol_stats& stats() const noexcept { return _stats; }
  /// About once a second (the shard's sweep): forgets rate-limit states
  /// whose buckets are full again.
  void sweep();
  /// The options this handler reads (the shard's copy) were replaced by a
  /// reload (gateway/reload.hpp): the rate limits take the new budgets.
  /// Shard thread.
  void options_changed();
  /// Shard shutdown: the backend proxy's connections close, so that the
  /// loop can end.
  void stop();

  /// The router's encoders, one per push format (client_state.hpp's
  /// push_format(); client_push.cpp); the compressed ones use `deflater`,
  /// the shard's.
  static routing::push_encoders push_encoders(ws::deflater& deflater);

 private:
  friend struct client;
  struct command_handler;

  // One command of a frame (client_commands.cpp); replies go into _out.
  void handle(client& c, const proto::command& cmd);
  /// False when the command was refused (answered 111) or the client is
  /// being disconnected for flooding.
  bool admit(client& c, const proto::command& cmd);
  void handle_connect(client& c, const proto::command& cmd);
  void handle_subscribe(client& c, const proto::command& cmd);
  void handle_publish(client& c, const proto::command& cmd);
  void handle_refresh(client& c, const proto::command& cmd);
  void handle_sub_refresh(client& c, const proto::command& cmd);
  void handle_history(client& c, const proto::command& cmd);
  void handle_presence(client& c, const proto::command& cmd);
  void handle_rpc(client& c, const proto::command& cmd);
  // What connect, subscribe and publish do once allowed (by a token, the
  // namespace, or the backend proxy); replies go into _out.
  void start_connected(client& c, const std::vector<std::string>& channels);
  void subscribe_allowed(client& c, std::uint32_t id, const proto::subscribe_request& req, std::string data);
  void publish_allowed(client& c, std::uint32_t id, std::string_view channel, std::string_view data);

  // Backend proxy (client_proxy.cpp): a command waiting for the backend.
  struct proxy_wait {
    client* c = nullptr;
    std::uint32_t id = 0;  // command id (0: the server-side refresh)
    proxy_kind kind = proxy_kind::connect;
    std::string channel, data, epoch;  // copies of the command's fields
    proto::subscribe_request sub;      // subscribe: flags and position (views re-pointed on answer)
  };
  bool proxied(proxy_kind k) const noexcept { return _proxy && _proxy->enabled(k); }
  void proxy_call(client& c, proxy_wait&& w, const proxy_request& req);
  void answer_proxy(std::uint64_t key, proxy_reply&& r);
  void proxy_connect(client& c, const proto::command& cmd);
  void proxy_refresh(client& c);
  /// The error a client gets when the backend could not answer (timeout,
  /// unavailable, bad response, breaker open, overloaded).
  void proxy_failed(client& c, std::uint32_t id, const proxy_reply& r);
  void connect_answered(client& c, std::uint32_t id, proxy_reply&& r);
  void refresh_answered(client& c, proxy_reply&& r);
  void bad_request(client& c);
  /// An error reply to `cmd` (into the frame's replies).
  void error(client& c, const proto::command& cmd, std::uint32_t code, std::string_view message);
  template <typename Send>
  void ask_home(client& c, std::uint32_t id, Send&& send);
  void reply_frame(client& c);
  void disconnect(client& c, std::uint16_t code, std::string_view reason);
  template <typename Fn>
  std::size_t for_user(std::string_view user, std::string_view client, Fn&& fn);
  void index_user(client& c);
  /// The client and command id a query answers; null when the client is gone or no longer connected.
  std::pair<client*, std::uint32_t> take_query(std::uint64_t query);
  void answer_history(std::uint64_t query, routing::history_answer&& a);
  void forget_waits(client& c);
  void answer_publish(std::uint64_t query, std::uint32_t error);
  void answer_presence(std::uint64_t query, bool counts_only, routing::presence_answer&& a);
  routing::client_info presence_info(const client& c) const;
  routing::subscription* subscribe_client(client& c, std::string_view channel, const routing::recovery_request* rec,
                                          routing::subscribe_flags flags);
  void unsubscribe_client(client& c, routing::subscription* sub);
  void unindex_user(client& c);
  std::array<std::uint8_t, 16> new_client_id();

  const protocol_options& _opts;
  routing::router& _router;
  session_context& _sessions;
  protocol_stats _stats;
  struct client_pool;                     // object_pool<client>; client is defined in client.cpp
  std::unique_ptr<client_pool> _clients;
  keyed_set<client, &client_user> _users;  // one client per user; see index_user
  std::array<std::unique_ptr<proto::command_decoder>, proto::format_count> _decoders;  // null: not built in
  std::string _out;  // replies of the frame being handled, in the client's format
  std::mt19937_64 _rng;
  // History reads waiting for their channel's home, by request id. A client
  // that ends first is removed here, so a late answer finds nobody.
  boost::unordered_flat_map<std::uint64_t, std::pair<client*, std::uint32_t>> _queries;  // → client, command id
  std::uint64_t _next_query = 0;
  rate_limiter _limiter;
  std::unique_ptr<backend_proxy> _proxy;  // null: no endpoint configured
  boost::unordered_flat_map<std::uint64_t, proxy_wait> _proxied;  // by key, as _queries
  // Data the backend gave for a reply that goes out later: a connect
  // waiting for its server-side subscriptions, a subscribe waiting for its
  // home. Empty unless a proxy answered with data.
  boost::unordered_flat_map<const client*, std::string> _connect_data;
  boost::unordered_flat_map<const routing::subscription*, std::string> _subscribe_data;
  bool _refuse_message = false;  // the frame being handled is over the client's read_bytes budget
};

}  // namespace sb
