#pragma once
// Which engine the shards use (config key `engine`), made ready on the main
// thread before any shard starts, and the Redis engine's figures for /stats
// and /metrics (docs/config.md "Engine", docs/ops.md "Running a cluster").

#include "gateway/config.hpp"
#include "routing/redis_engine.hpp"

#include <boost/asio/io_context.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sb {

class shard;

/// A dependency the process needs is not there (Redis unreachable at
/// start): main prints it and exits with code 3.
struct startup_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What every shard needs to make its engine; immutable once made.
struct engine_setup {
  bool redis = false;
  routing::redis_engine_options redis_options;
};

/// Main thread: parses and resolves redis_address and checks that every
/// server answers (AUTH, SELECT, PING; Redis 5 or newer for streams).
/// Throws config_error for a bad address, startup_error when a server
/// cannot be reached or refuses us.
engine_setup make_engine_setup(const config& cfg);

/// Shard thread: this shard's engine. `rules` may be null (echo mode).
std::unique_ptr<routing::engine> make_engine(const engine_setup& setup, const config& cfg,
                                             boost::asio::io_context& io, const routing::channel_rules* rules,
                                             unsigned shard_id);

/// Main thread, after the shards started and before clients are accepted:
/// waits until every shard's Redis connections are up (a client that
/// subscribed in between would be refused with 100); throws startup_error
/// after redis_connect_timeout.
void wait_for_engines(const std::vector<std::unique_ptr<shard>>& shards, const config& cfg);

/// `"redis":{...}` for /stats (empty with the memory engine): servers up,
/// reconnects, commands, failures, pending, round-trip quantiles.
std::string redis_stats_json(const std::vector<std::unique_ptr<shard>>& shards);
/// The switchboard_redis_* metric families (empty with the memory engine).
std::string redis_metrics_text(const std::vector<std::unique_ptr<shard>>& shards);

}  // namespace sb
