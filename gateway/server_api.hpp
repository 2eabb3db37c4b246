#pragma once
// The server API: Centrifugo-compatible `POST /api/<method>` on the ops port,
// for backends. Methods: publish, broadcast, subscribe, unsubscribe,
// disconnect, refresh, channels, info, batch, history, history_remove,
// presence, presence_stats.
//
// Threading: everything here runs on the main thread. A method that touches
// shards sends tasks through the mesh (the main thread is a source and a
// destination of it) and answers when the shards have answered: a publish
// is answered once the channel's home shard has ordered it, so a 200 means
// the publication has its place in the channel's stream. No lock, no
// shared mutable state with the shards.

#include "ops/http_server.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sb {

}  // namespace sb
namespace boost::asio {
class io_context;
}
namespace sb {

class mesh;
class centrifuge_handler;
class cluster_bus;
struct config;
namespace routing {
class router;
class channel_rules;
}  // namespace routing

class server_api {
 public:
  struct wiring {
    const config* cfg = nullptr;
    mesh* shard_mesh = nullptr;
    const std::vector<routing::router*>* routers = nullptr;       // index = shard
    const std::vector<centrifuge_handler*>* handlers = nullptr;   // null entries in echo mode
    const routing::channel_rules* rules = nullptr;
    /// The node's figures for `info` (a JSON object), main thread.
    std::function<std::string()> node_info;
    /// The main thread's loop: a timer answers calls whose shards never did
    /// (an answer the mesh shed under overload). Null: no such timer.
    boost::asio::io_context* main_ctx = nullptr;
    /// With engine = "redis": user-level commands, `info` and `channels`
    /// reach the other nodes through it. Null: this node is alone.
    cluster_bus* bus = nullptr;
  };

  explicit server_api(wiring w);
  ~server_api();
  server_api(const server_api&) = delete;
  server_api& operator=(const server_api&) = delete;

  /// Whether requests are served (a key is set, or api_insecure).
  bool enabled() const noexcept;

  /// POST /api/<method>: answers through `reply`, now or after the shards did.
  void handle(const ops::http_request& req, ops::http_reply reply);
  /// The API's own key check, for other endpoints that need it (POST
  /// /drain): ok, off (no api_key and not api_insecure), or unauthorized
  /// (counted as the API's unauthorized calls).
  enum class access { ok, off, unauthorized };
  access check_key(const ops::http_request& req);

  /// A user-level command (subscribe, unsubscribe, disconnect, refresh)
  /// another node received, applied to this node's connections (no answer).
  void apply_from_cluster(std::string_view method, std::string_view params);
  /// This node's channels matching `pattern`, for another node's `channels`
  /// ("<length> <name> <count>\n" per channel).
  void channels_for_cluster(std::string pattern, std::function<void(std::string)> done);

  /// Requests by method and outcome, as JSON members ("publish":{"ok":N,...}).
  std::string stats_json() const;

  /// The same figures as Prometheus metric families (appended to /metrics):
  /// switchboard_api_requests_total{method,outcome},
  /// switchboard_api_rejected_total{reason}, switchboard_api_pending,
  /// switchboard_api_timed_out_total.
  std::string metrics_text() const;

  struct impl;

 private:
  std::unique_ptr<impl> _impl;
};

}  // namespace sb
