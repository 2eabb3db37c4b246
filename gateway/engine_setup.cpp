#include "gateway/engine_setup.hpp"

#include "gateway/shard.hpp"
#include "ops/log.hpp"
#include "pool/histogram.hpp"
#include "routing/memory_engine.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hiredis/hiredis.h>

#include <random>
#include <thread>

namespace sb {

namespace {

// One blocking round trip on a startup connection; "" when it answered,
// else what went wrong.
std::string ask(redisContext* c, std::vector<std::string> args, std::string* answer = nullptr) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) return c->errstr[0] ? c->errstr : "no reply";
  std::string err;
  if (r->type == REDIS_REPLY_ERROR) err = std::string(r->str, r->len);
  else if (answer && r->type == REDIS_REPLY_STRING) *answer = std::string(r->str, r->len);
  freeReplyObject(r);
  return err;
}

void check_server(const redis::endpoint& ep, std::chrono::milliseconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  std::string host = ep.resolved.address().to_string();
  redisContext* c = redisConnectWithTimeout(host.c_str(), ep.port, tv);
  if (!c || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    throw startup_error(fmt::format("Redis at {} is unreachable: {}", ep.url, why));
  }
  redisSetTimeout(c, tv);
  std::string err, info;
  if (!ep.password.empty()) err = ask(c, {"AUTH", ep.password});
  if (err.empty() && ep.db != 0) err = ask(c, {"SELECT", std::to_string(ep.db)});
  if (err.empty()) err = ask(c, {"PING"});
  if (err.empty()) err = ask(c, {"INFO", "server"}, &info);
  redisFree(c);
  if (!err.empty()) throw startup_error(fmt::format("Redis at {} refused us: {}", ep.url, err));
  // Streams (history) need Redis 5.
  auto at = info.find("redis_version:");
  if (at != std::string::npos && std::atoi(info.c_str() + at + 14) < 5) {
    throw startup_error(fmt::format("Redis at {} is older than 5.0 (no streams): {}", ep.url,
                                    info.substr(at + 14, info.find('\r', at) - at - 14)));
  }
}

}  // namespace

engine_setup make_engine_setup(const config& cfg) {
  engine_setup setup;
  if (cfg.engine != "redis") return setup;
  setup.redis = true;
  auto& o = setup.redis_options;
  o.prefix = cfg.redis_prefix;
  o.presence_ttl = std::chrono::milliseconds(cfg.presence_ttl_ms);
  o.history_meta_ttl = std::chrono::milliseconds(cfg.history_meta_ttl_ms);
  o.connection.connect_timeout = std::chrono::milliseconds(cfg.redis_connect_timeout_ms);
  for (const auto& url : cfg.redis_address) {
    redis::endpoint ep;
    try {
      ep = redis::parse_endpoint(url);
    } catch (const std::invalid_argument& e) {
      throw config_error(fmt::format("redis_address '{}': {}", url, e.what()));
    }
    try {
      redis::resolve(ep);
    } catch (const std::runtime_error& e) {
      throw startup_error(fmt::format("redis_address {}: {}", ep.url, e.what()));
    }
    check_server(ep, o.connection.connect_timeout);
    log::info("engine redis: {} answers", ep.url);
    o.servers.push_back(std::move(ep));
  }
  return setup;
}

std::unique_ptr<routing::engine> make_engine(const engine_setup& setup, const config& cfg,
                                             boost::asio::io_context& io, const routing::channel_rules* rules,
                                             unsigned shard_id) {
  std::uint64_t seed = std::random_device{}() ^ (std::uint64_t{shard_id} << 32);
  if (!setup.redis) return std::make_unique<routing::memory_engine>(rules, cfg.history_max_bytes / cfg.shards, seed);
  auto e = std::make_unique<routing::redis_engine>(io, rules, setup.redis_options, seed);
  e->on_link([shard_id](const redis::endpoint& where, bool pubsub, bool up, std::string_view why) {
    const char* what = pubsub ? "pub/sub" : "commands";
    if (up) log::info("redis {} connection to {} up (shard {})", what, where.url, shard_id);
    else log::warn("redis {} connection to {} lost (shard {}): {}; reconnecting", what, where.url, shard_id, why);
  });
  return e;
}

void wait_for_engines(const std::vector<std::unique_ptr<shard>>& shards, const config& cfg) {
  if (cfg.engine != "redis") return;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.redis_connect_timeout_ms) +
                  std::chrono::seconds(1);
  for (;;) {
    std::string down;
    for (const auto& s : shards) {
      const routing::redis_engine* e = s->redis();
      if (!e) continue;
      for (const auto& srv : e->servers()) {
        // The counters, not up(): this is another thread than the connections'.
        if (srv.commands->stats().up.get() == 0 || srv.pubsub->stats().up.get() == 0) down = srv.commands->where().url;
      }
    }
    if (down.empty()) return;
    if (std::chrono::steady_clock::now() > deadline) {
      throw startup_error(fmt::format("Redis at {} did not accept the shards' connections in time", down));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

namespace {

// Adds up one server's connections over every shard.
struct server_totals {
  std::uint64_t up = 0, links = 0, connects = 0, failures = 0, commands = 0, failed = 0, errors = 0, pending = 0,
                messages = 0, bytes_out = 0, bytes_in = 0;
  std::array<std::uint64_t, redis::rtt_bounds_us.size() + 1> rtt{};
  void add(const redis::connection& c) {
    const auto& st = c.stats();
    ++links;
    up += st.up.get();
    connects += st.connects.get();
    failures += st.failures.get();
    commands += st.commands.get();
    failed += st.failed.get();
    errors += st.errors.get();
    pending += st.pending.get();
    messages += st.messages.get();
    bytes_out += st.bytes_out.get();
    bytes_in += st.bytes_in.get();
    for (std::size_t i = 0; i < rtt.size(); ++i) rtt[i] += st.rtt_us.bucket(i);
  }
};

std::vector<std::pair<std::string, server_totals>> totals(const std::vector<std::unique_ptr<shard>>& shards) {
  std::vector<std::pair<std::string, server_totals>> out;
  for (const auto& s : shards) {
    const routing::redis_engine* e = s->redis();
    if (!e) continue;
    const auto& servers = e->servers();
    if (out.size() < servers.size()) out.resize(servers.size());
    for (std::size_t i = 0; i < servers.size(); ++i) {
      out[i].first = servers[i].commands->where().url;
      out[i].second.add(*servers[i].commands);
      out[i].second.add(*servers[i].pubsub);
    }
  }
  return out;
}

}  // namespace

std::string redis_stats_json(const std::vector<std::unique_ptr<shard>>& shards) {
  auto all = totals(shards);
  if (all.empty()) return {};
  std::string per;
  for (const auto& [url, t] : all) {
    if (!per.empty()) per += ',';
    std::uint64_t count = 0;
    for (auto c : t.rtt) count += c;
    per += fmt::format(
        R"({{"address":"{}","connections":{},"up":{},"connects":{},"failures":{},"commands":{},"failed":{},)"
        R"("errors":{},"pending":{},"messages":{},"bytes_out":{},"bytes_in":{},"rtt_us":{{"count":{},"p50":{},"p99":{}}}}})",
        url, t.links, t.up, t.connects, t.failures, t.commands, t.failed, t.errors, t.pending, t.messages, t.bytes_out,
        t.bytes_in, count,
        bucket_quantile(redis::rtt_bounds_us, t.rtt, 0.50), bucket_quantile(redis::rtt_bounds_us, t.rtt, 0.99));
  }
  return fmt::format(R"("redis":{{"servers":[{}]}})", per);
}

std::string redis_metrics_text(const std::vector<std::unique_ptr<shard>>& shards) {
  auto all = totals(shards);
  if (all.empty()) return {};
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    for (const auto& [url, t] : all) out += fmt::format("{}{{server=\"{}\"}} {}\n", name, url, value(t));
  };
  family("switchboard_redis_connections_up", "gauge", "Connections to this Redis server that are up (2 per shard).",
         [](const server_totals& t) { return t.up; });
  family("switchboard_redis_connects_total", "counter", "Connections made to this Redis server (the first included).",
         [](const server_totals& t) { return t.connects; });
  family("switchboard_redis_failures_total", "counter", "Connection attempts that failed and connections lost.",
         [](const server_totals& t) { return t.failures; });
  family("switchboard_redis_commands_total", "counter", "Commands sent to this Redis server.",
         [](const server_totals& t) { return t.commands; });
  family("switchboard_redis_commands_failed_total", "counter",
         "Commands that failed without a reply (server away, connection lost, queue full); answered with error 100.",
         [](const server_totals& t) { return t.failed; });
  family("switchboard_redis_errors_total", "counter", "Error replies from this Redis server.",
         [](const server_totals& t) { return t.errors; });
  family("switchboard_redis_pending_commands", "gauge", "Commands waiting for their reply now.",
         [](const server_totals& t) { return t.pending; });
  family("switchboard_redis_messages_total", "counter", "Pub/sub messages received from this Redis server.",
         [](const server_totals& t) { return t.messages; });
  family("switchboard_redis_sent_bytes_total", "counter", "Bytes written to this Redis server (commands).",
         [](const server_totals& t) { return t.bytes_out; });
  family("switchboard_redis_received_bytes_total", "counter", "Bytes read from this Redis server (replies, messages).",
         [](const server_totals& t) { return t.bytes_in; });
  const char* h = "switchboard_redis_rtt_seconds";
  out += fmt::format("# HELP {} Command round trip, queued to reply.\n# TYPE {} histogram\n", h, h);
  for (const auto& [url, t] : all) {
    std::uint64_t cum = 0;
    for (std::size_t i = 0; i < redis::rtt_bounds_us.size(); ++i) {
      cum += t.rtt[i];
      out += fmt::format("{}_bucket{{server=\"{}\",le=\"{}\"}} {}\n", h, url,
                         static_cast<double>(redis::rtt_bounds_us[i]) / 1e6, cum);
    }
    cum += t.rtt.back();
    out += fmt::format("{}_bucket{{server=\"{}\",le=\"+Inf\"}} {}\n{}_count{{server=\"{}\"}} {}\n", h, url, cum, h, url,
                       cum);
  }
  return out;
}

}  // namespace sb
