#pragma once
// The Redis engine: channels' streams, history and presence kept in Redis,
// shared by every Switchboard node that uses the same Redis (DESIGN.md
// "Scaling past one machine", docs/ops.md "Redis key layout").
//
// One instance per shard (routing/engine.hpp), for the channels the shard
// is home of on this node. Per Redis server it holds two connections
// (routing/redis_connection.hpp): one for commands (Lua scripts, pipelined)
// and one for pub/sub. A channel goes to one Redis server by a consistent
// hash of its name (jump hash), the same on every node.
//
//   publish    one EVALSHA: the publish script stamps the offset, appends
//              the stream entry and PUBLISHes the message, atomically; the
//              message comes back to every node subscribed to the channel
//              (this one included) and is dispatched from there, so every
//              node sees every channel's publications in one order.
//              Without history: one PUBLISH, offset 0.
//   open       the first shard of this node to join a channel makes the
//              home SUBSCRIBE to it; once Redis acknowledges, the position
//              script reads where the stream stands, and publications that
//              arrive meanwhile are held and dispatched after the answer.
//   release    UNSUBSCRIBE when no shard of this node subscribes any more.
//   recover    reads the missed publications from the Redis stream and
//              splices them with what this node dispatched since it asked.
//   presence   a hash and an expiry set per channel, refreshed by the node
//              that holds the clients (a node killed stops counting after
//              presence_ttl); join/leave go through pub/sub.
//
// Faults: while a server is away every call that needs it answers at once
// with error 100; the channels it carried are subscribed again when it
// returns, and a stream that moved meanwhile (or lost its data: a new
// epoch) is reset for the subscriber shards, which tell positioned clients
// they missed publications (they recover, or are told recovered: false).
//
// Shard thread only, like every engine.

#include "routing/engine.hpp"
#include "routing/redis_connection.hpp"

#include <boost/unordered/unordered_flat_map.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace sb::routing {

class channel_rules;
struct redis_store;

struct redis_engine_options {
  std::vector<redis::endpoint> servers;  // resolved; channels sharded over them
  std::string prefix = "switchboard";    // of every key and pub/sub channel
  std::chrono::milliseconds presence_ttl{60'000};
  std::chrono::milliseconds history_meta_ttl{0};  // 0: the stream's meta never expires
  redis::connection_options connection;
};

/// What the engine reports about its servers (the gateway logs it).
using redis_link_fn = std::function<void(const redis::endpoint& where, bool pubsub, bool up, std::string_view why)>;

class redis_engine final : public engine, private redis::pubsub_handler {
 public:
  redis_engine(boost::asio::io_context& io, const channel_rules* rules, redis_engine_options o, std::uint64_t seed);
  ~redis_engine() override;
  redis_engine(const redis_engine&) = delete;
  redis_engine& operator=(const redis_engine&) = delete;

  /// Before attach: who hears about connections coming and going.
  void on_link(redis_link_fn fn) { _on_link = std::move(fn); }

  void attach(engine_host& host, router_stats& stats) override;
  void on_make(home_channel& hc) override;
  void on_erase(home_channel& hc) override;
  void open(home_channel& hc, open_done done) override;
  bool release(home_channel& hc) override;
  void recover(home_channel& hc, std::uint64_t since, std::string_view epoch, recover_done done) override;
  void publish(publication_ptr pub, publish_done done) override;
  void presence_event(publication_ptr event) override;
  void history(std::string_view channel, const history_query& q, history_done done) override;
  void presence(std::string_view channel, bool counts_only, presence_done done) override;
  void sweep() override;
  void stop() override;

  /// One Redis server as this shard sees it; the connections' figures are
  /// relaxed counters any thread may read while the shard runs.
  struct server {
    std::unique_ptr<redis::connection> commands;
    std::unique_ptr<redis::connection> pubsub;
  };
  const std::vector<server>& servers() const noexcept { return _servers; }

  /// Which of `n` servers keeps `channel` (jump consistent hash of FNV-1a).
  static unsigned server_of(std::string_view channel, unsigned n) noexcept;

 private:
  // Keys and scripts.
  std::string key(std::string_view kind, std::string_view channel) const;
  std::string_view channel_of(std::string_view pubsub_channel) const noexcept;
  void script(unsigned srv, int which, std::span<const std::string_view> keys,
              std::span<const std::string_view> args, redis::reply_fn done);
  std::string new_epoch();
  void load_scripts(unsigned srv);

  // Connections.
  void on_commands_state(unsigned srv, bool up);
  void on_pubsub_state(unsigned srv, bool up);
  void on_message(std::string_view channel, std::string_view payload) override;
  void on_subscribed(std::string_view channel) override;
  void on_unsubscribed(std::string_view channel) override;

  // A channel's stream on this node.
  redis_store* store_of(home_channel& hc) const noexcept;
  home_channel* find(std::string_view channel, std::uint64_t serial) const;
  void start_subscribe(home_channel& hc, redis_store& s);
  void position(home_channel& hc, redis_store& s);
  void go_live(home_channel& hc, redis_store& s, std::uint64_t offset, stream_epoch epoch);
  void lose(home_channel& hc, redis_store& s);
  void serve_waiters(home_channel& hc, redis_store& s);
  void fail_waiters(home_channel& hc, redis_store& s);
  void deliver(home_channel& hc, redis_store& s, publication_ptr pub, stream_epoch epoch);
  void unsubscribe(home_channel& hc, redis_store& s);
  void settle(home_channel& hc, redis_store& s);
  void start_recover(home_channel& hc, redis_store& s, std::uint64_t since, stream_epoch epoch, recover_done done);
  void finish_recover(home_channel& hc, redis_store& s, std::uint64_t since, stream_epoch epoch,
                      const redis::reply* r, recover_done& done);
  void check_deferred(home_channel& hc, redis_store& s);
  void expire_deferred(home_channel& hc, redis_store& s, std::int64_t now_ms);

  // Presence (redis_engine_reads.cpp).
  void presence_write(std::string_view channel, const std::string& client, const std::string& value, bool join,
                      bool join_leave, bool announce);
  void refresh_presence();

  boost::asio::io_context& _io;
  const channel_rules* _rules;
  redis_engine_options _opts;
  std::vector<server> _servers;
  std::vector<std::string> _shas;  // of the scripts, by index (redis_engine.cpp)
  engine_host* _host = nullptr;
  router_stats* _stats = nullptr;
  redis_link_fn _on_link;
  std::minstd_rand _rng;
  std::uint64_t _serial = 0;
  std::vector<home_channel*> _records;  // every record with a store (resubscribed after an outage)
  // Channels UNSUBSCRIBEd whose acknowledgement has not come: a SUBSCRIBE
  // acknowledged before it is an older one's.
  boost::unordered_flat_map<std::string, std::uint32_t> _unsubscribing;
  // Presence of this node's clients, by channel then client id: refreshed
  // in Redis every presence_ttl / 3, written again after an outage.
  boost::unordered_flat_map<std::string, boost::unordered_flat_map<std::string, std::string>> _present;
  std::chrono::steady_clock::time_point _next_refresh{};
  std::uint64_t _bad_messages = 0;  // pub/sub payloads that did not decode
  boost::asio::steady_timer _farewell;  // stop(): the latest the connections close
  unsigned _closing = 0;                // command connections still answering stop()'s removals
  bool _stopped = false;
};

}  // namespace sb::routing
