#pragma once
// The nodes of a cluster on Redis, as the server API sees them (engine =
// "redis"; docs/ops.md "Running a cluster"). On the main thread, beside the
// server API, over two connections to the first Redis server:
//
//   control    every node subscribes to P.control. A user-level command of
//              the server API (subscribe, unsubscribe, disconnect, refresh)
//              is applied on this node's shards and published there once;
//              every other node applies it to its own connections.
//   registry   every node writes its `info` figures into P.nodes (a hash
//              with an expiry set, as presence) every 2 s; `info` reads
//              them all, so a node that died drops out after 10 s.
//   survey     `channels` asks every registered node over P.control and
//              merges the answers (sent to P.node.UID) with its own; a node
//              that does not answer within 3 s is left out (and logged).
//
// Main thread only. Faults: while Redis is away, the calls that need it
// answer 100 and the registry is written again when it returns.

#include "routing/redis_connection.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sb {

class cluster_bus final : private redis::pubsub_handler {
 public:
  /// What this node does for the bus (main thread).
  struct local {
    std::function<std::string()> node_info;  // this node's `info` object (JSON)
    /// Apply a user-level command another node received: method name and
    /// its parameters as the server API takes them (JSON).
    std::function<void(std::string_view method, std::string_view params)> apply;
    /// This node's channels matching a pattern, as the shards' `channels`
    /// parts ("<length> <name> <count>\n"...); answers through `done`.
    std::function<void(std::string pattern, std::function<void(std::string)> done)> channels;
  };

  cluster_bus(boost::asio::io_context& io, const redis::endpoint& where, std::string prefix, std::string uid, local l);
  ~cluster_bus();
  cluster_bus(const cluster_bus&) = delete;
  cluster_bus& operator=(const cluster_bus&) = delete;

  void start();
  /// Leaves the registry and closes; the goodbye needs the main loop to run
  /// until closed().
  void stop();
  bool closed() const noexcept { return _closed; }

  /// Publishes a user-level command to the other nodes; done(true) once
  /// Redis took it, done(false) when it could not (Redis away).
  void send_command(std::string_view method, std::string_view params, std::function<void(bool)> done);
  /// Every registered node's `info` object (a JSON array's elements), or
  /// nullopt when Redis cannot be read.
  void nodes(std::function<void(std::optional<std::string>)> done);
  /// The other nodes' `channels` parts for `pattern` (this node's are not
  /// included), or nullopt when Redis cannot be reached.
  void survey_channels(std::string pattern, std::function<void(std::optional<std::vector<std::string>>)> done);

  const redis::connection& commands() const noexcept { return *_cmd; }
  /// The registry as the last heartbeat read it (JSON array elements; ""
  /// before the first): what /stats and the dashboard show.
  const std::string& last_nodes() const noexcept { return _last_nodes; }

 private:
  struct survey {
    std::size_t waiting = 0;
    std::vector<std::string> parts;
    std::function<void(std::optional<std::vector<std::string>>)> done;
    std::chrono::steady_clock::time_point deadline;
  };
  void on_message(std::string_view channel, std::string_view payload) override;
  void on_subscribed(std::string_view) override {}
  void on_unsubscribed(std::string_view) override {}
  void heartbeat();
  void tick();
  void expire_surveys();
  void finish_survey(std::uint64_t id);
  void publish(const std::string& channel, std::string message, std::function<void(bool)> done);

  boost::asio::io_context& _io;
  std::string _prefix, _uid;
  std::string _control, _mine, _nodes, _nodes_exp;  // key names
  local _local;
  std::unique_ptr<redis::connection> _cmd, _sub;
  boost::asio::steady_timer _timer;
  std::map<std::uint64_t, survey> _surveys;
  std::uint64_t _next_survey = 1;
  std::string _last_nodes;
  bool _stopped = false;
  bool _closed = false;
};

}  // namespace sb
