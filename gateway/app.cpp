#include "gateway/app.hpp"

#include "gateway/client.hpp"
#include "gateway/cluster.hpp"
#include "gateway/drain.hpp"
#include "gateway/engine_setup.hpp"
#include "gateway/jwt.hpp"
#include "gateway/memory_stats.hpp"
#include "gateway/metrics.hpp"
#include "gateway/reload.hpp"
#include "gateway/server_api.hpp"
#include "gateway/shard.hpp"
#include "routing/router.hpp"
#include "ops/dashboard.hpp"
#include "ops/http_server.hpp"
#include "ops/log.hpp"
#include "routing/mesh.hpp"
#include "session/json_writer.hpp"
#include "session/session.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <vector>

namespace sb {

namespace asio = boost::asio;

namespace {

// Stops registered right after each start, run in reverse order.
class stop_stack {
 public:
  void push(std::function<void()> fn) { _fns.push_back(std::move(fn)); }
  void run() {
    while (!_fns.empty()) {
      auto fn = std::move(_fns.back());
      _fns.pop_back();
      fn();
    }
  }
  ~stop_stack() { run(); }

 private:
  std::vector<std::function<void()>> _fns;
};

struct fd_limits {
  std::uint64_t hard = 0;
  std::uint64_t soft = 0;
};

// Raise the soft RLIMIT_NOFILE to the hard limit: a shard's table may then
// use every fd number up to it.
fd_limits raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) throw std::system_error(errno, std::generic_category(), "getrlimit");
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return {static_cast<std::uint64_t>(rl.rlim_max), static_cast<std::uint64_t>(rl.rlim_cur)};
}

session_options make_session_options(const config& cfg) {
  session_options o;
  o.upgrade.path = cfg.websocket_path;
  o.upgrade.allowed_origins = cfg.allowed_origins;
  o.max_message_size = cfg.max_message_size;
  o.max_queued_bytes = cfg.max_queued_bytes;
  o.upgrade.permessage_deflate = cfg.websocket_compression;
  o.deflate.min_size = cfg.websocket_compression_min_size;
  o.deflate.level = cfg.websocket_compression_level;
  o.handshake_timeout = std::chrono::milliseconds(cfg.handshake_timeout_ms);
  o.ping_interval = std::chrono::milliseconds(cfg.websocket_ping_interval_ms);
  o.pong_timeout = std::chrono::milliseconds(cfg.websocket_pong_timeout_ms);
  o.close_timeout = std::chrono::milliseconds(cfg.close_timeout_ms);
  o.admission = make_admission_options(cfg);
  if (cfg.mode == "centrifuge") {
    // Centrifuge's subprotocols (the client's format: gateway/client.cpp).
    o.upgrade.subprotocols = {"centrifuge-json", "centrifuge-protobuf"};
    // The protocol's own ping/pong ({}) watches the peer; WebSocket pings
    // only when asked for explicitly.
    if (!cfg.websocket_ping_set) o.ping_interval = std::chrono::milliseconds(0);
    // Centrifuge's disconnect codes travel in the close frame.
    o.slow_close_code = 3008;
    o.slow_close_reason = "slow";
    o.shutdown_close_code = 3001;
    o.shutdown_close_reason = "shutdown";
    // In flight until the connect is answered (client::finish_connect).
    o.admission.established_on_open = false;
  }
  return o;
}

std::string deflate_json(const ws::deflate_stats& d) {
  return fmt::format(
      R"("sessions":{},"messages":{},"skipped":{},"bytes_in":{},"bytes_out":{},"inflated":{},"inflated_in":{},)"
      R"("inflated_out":{})",
      d.sessions.get(), d.messages.get(), d.skipped.get(), d.bytes_in.get(), d.bytes_out.get(), d.inflated.get(),
      d.inflated_in.get(), d.inflated_out.get());
}

std::string routing_json(const routing::router* r) {
  if (!r) return {};
  const auto& st = r->stats();
  return fmt::format(
      R"("local_channels":{},"home_channels":{},"subscriptions":{},"publications_in":{},"publications_home":{},)"
      R"("publications_dropped":{},"frames_encoded":{},"deliveries":{},"mesh_refused":{},"history_publications":{},)"
      R"("history_bytes":{},"recoveries":{},"recoveries_failed":{},"presence_entries":{},)"
      R"("history_evictions":{},"stream_gaps":{},"presence_lost":{})",
      st.local_channels.get(), st.home_channels.get(), st.subscriptions.get(), st.publications_in.get(),
      st.publications_home.get(), st.publications_dropped.get(), st.frames_encoded.get(), st.deliveries.get(),
      st.mesh_refused.get(), st.history_publications.get(), st.history_bytes.get(), st.recoveries.get(),
      st.recoveries_failed.get(), st.presence_entries.get(), st.history_evictions.get(),
      st.stream_gaps.get(), st.presence_lost.get());
}

std::string protocol_json(const centrifuge_handler* h) {
  if (!h) return {};
  const auto& st = h->stats();
  return fmt::format(
      R"("client_records":{},"clients":{},"protobuf_clients":{},"users":{},"connects":{},"connect_errors":{},"subscribes":{},"subscribe_errors":{},)"
      R"("unsubscribes":{},"publishes":{},"publish_errors":{},"refreshes":{},"bad_requests":{},"disconnects":{},)"
      R"("rate_limited":{},"rate_limit_disconnects":{},"rate_limit_tracked":{})",
      st.client_records.get(), st.clients.get(), st.protobuf_clients.get(), st.users.get(), st.connects.get(), st.connect_errors.get(), st.subscribes.get(),
      st.subscribe_errors.get(), st.unsubscribes.get(), st.publishes.get(), st.publish_errors.get(),
      st.refreshes.get(), st.bad_requests.get(), st.disconnects.get(), st.rate_limited.get(),
      st.rate_limit_disconnects.get(), st.rate_limit_tracked.get());
}

// Per-shard and total figures as JSON, from relaxed counters: the ops
// endpoint never locks or waits on a shard.
std::string stats_json(const std::vector<std::unique_ptr<shard>>& shards, const mesh& m, std::uint64_t fd_cap,
                       const std::string& api, const std::string& cluster, bool draining,
                       const std::string& config_json) {
  std::uint64_t total = 0, accepted = 0, open = 0, handshaking = 0, connecting = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(end_reason::count)> ended{};
  std::string per;
  std::array<std::uint64_t, latency_bounds_us.size() + 1> latency{};
  std::array<std::uint64_t, queue_bounds_bytes.size() + 1> queue{};
  for (auto& s : shards) {
    const auto& st = s->stats();
    const auto& src = m.source_stats(s->id());
    const auto& dst = m.dest_stats(s->id());
    const session_stats* ss = s->sessions();
    std::uint64_t o = ss ? ss->open.get() : 0, h = ss ? ss->handshaking.get() : 0;
    total += o + h;
    open += o;
    handshaking += h;
    std::uint64_t c = ss ? ss->connecting.get() : 0;
    connecting += c;
    accepted += st.accepted.get();
    std::string reasons, rejected, shard_latency = R"("count":0)";
    if (ss) {
      std::array<std::uint64_t, latency_bounds_us.size() + 1> mine{};
      std::uint64_t count = 0;
      for (std::size_t i = 0; i < mine.size(); ++i) {
        mine[i] = ss->publish_to_write_us.bucket(i);
        latency[i] += mine[i];
        count += mine[i];
      }
      for (std::size_t i = 0; i < queue.size(); ++i) queue[i] += ss->queue_at_write_bytes.bucket(i);
      shard_latency = fmt::format(R"("count":{},"p50":{},"p99":{})", count,
                                  bucket_quantile(latency_bounds_us, mine, 0.50),
                                  bucket_quantile(latency_bounds_us, mine, 0.99));
      for (std::size_t i = 0; i < ended.size(); ++i) {
        std::uint64_t n = ss->ended[i].get();
        ended[i] += n;
        if (!reasons.empty()) reasons += ',';
        reasons += fmt::format(R"("{}":{})", to_string(static_cast<end_reason>(i)), n);
      }
      for (const auto& r : ss->rejected) {
        if (!r.label()) break;
        if (!rejected.empty()) rejected += ',';
        rejected += fmt::format(R"("{}":{})", r.label(), r.n.get());
      }
    }
    if (!per.empty()) per += ',';
    per += fmt::format(
        R"({{"id":{},"connections":{},"open":{},"handshaking":{},"connecting":{},"accepted":{},"rejected_over_limit":{},)"
        R"("accept_errors":{},"upgrades":{},"messages_in":{},"frames_out":{},"bytes_in":{},"bytes_out":{},)"
        R"("writes":{},"tls_handshakes":{},"tls_resumed":{},"queued_bytes":{},"ended":{{{}}},"handshake_rejected":{{{}}},"fd_capacity":{},)"
        R"("mesh_sent":{},"mesh_received":{},"mesh_deferred":{},"mesh_shed":{},"publish_to_write_us":{{{}}},)"
        R"("deflate":{{{}}},"routing":{{{}}},"protocol":{{{}}}}})",
        s->id(), o + h, o, h, c, st.accepted.get(), st.rejected_over_limit.get(), st.accept_errors.get(),
        ss ? ss->upgrades.get() : 0, ss ? ss->messages_in.get() : 0, ss ? ss->frames_out.get() : 0,
        ss ? ss->bytes_in.get() : 0, ss ? ss->bytes_out.get() : 0, ss ? ss->writes.get() : 0,
        ss ? ss->tls_handshakes.get() : 0, ss ? ss->tls_resumed.get() : 0, ss ? ss->queued_bytes.get() : 0, reasons, rejected, st.fd_capacity.get(), src.sent.get(),
        dst.received.get(), src.deferred.get(), src.shed.get(), shard_latency, ss ? deflate_json(ss->deflate) : "",
        routing_json(s->router()),
        protocol_json(s->protocol()));
  }
  std::string totals;
  for (std::size_t i = 0; i < ended.size(); ++i) {
    if (!totals.empty()) totals += ',';
    totals += fmt::format(R"("{}":{})", to_string(static_cast<end_reason>(i)), ended[i]);
  }
  std::string redis = redis_stats_json(shards);
  if (!cluster.empty()) redis += (redis.empty() ? "" : ",") + std::string(R"("cluster":{)") + cluster + "}";
  memory_figures mem = read_memory_figures();
  std::string memory = fmt::format(R"("rss_bytes":{})", mem.rss_bytes);
  if (mem.jemalloc) {
    memory += fmt::format(R"(,"jemalloc":{{"allocated":{},"active":{},"resident":{},"mapped":{}}})",
                          mem.jemalloc->allocated, mem.jemalloc->active, mem.jemalloc->resident, mem.jemalloc->mapped);
  }
  // Quantiles are bucket upper bounds ("p99 <= 2,500 us"), over all
  // shards, since start (the dashboard differences successive polls).
  std::uint64_t latency_count = 0;
  for (auto c : latency) latency_count += c;
  std::string latency_json = fmt::format(
      R"("count":{},"p50":{},"p90":{},"p99":{},"p999":{},"bounds":[{}],"buckets":[{}])", latency_count,
      bucket_quantile(latency_bounds_us, latency, 0.50), bucket_quantile(latency_bounds_us, latency, 0.90),
      bucket_quantile(latency_bounds_us, latency, 0.99), bucket_quantile(latency_bounds_us, latency, 0.999),
      fmt::join(latency_bounds_us, ","), fmt::join(latency, ","));
  std::string queue_json =
      fmt::format(R"("p50":{},"p99":{})", bucket_quantile(queue_bounds_bytes, queue, 0.50),
                  bucket_quantile(queue_bounds_bytes, queue, 0.99));
  return fmt::format(R"({{"shards":{},"draining":{},"connections":{},"open":{},"handshaking":{},"connecting":{},"accepted":{},)"
                     R"("connection_capacity":{},"ended":{{{}}},"memory":{{{}}},"publish_to_write_us":{{{}}},)"
                     R"("queue_at_write_bytes":{{{}}},"api":{{{}}},{},{}"per_shard":[{}]}})",
                     shards.size(), draining, total, open, handshaking, connecting, accepted, fd_cap * shards.size(), totals, memory,
                     latency_json, queue_json, api, config_json, redis.empty() ? "" : redis + ",", per) +
         "\n";
}

// The `info` method's node object (Centrifugo's shape, plus per-shard
// figures). Counter reads are relaxed: a moment's view, no lock.
std::string node_info_json(const std::vector<std::unique_ptr<shard>>& shards, const std::string& uid,
                           const std::string& node_name, const std::string& version,
                           std::chrono::steady_clock::time_point started_at) {
  std::uint64_t clients = 0, users = 0, subs = 0, channels = 0;
  std::string per;
  for (const auto& s : shards) {
    std::uint64_t c = 0, u = 0, sub = 0, ch = 0;
    if (const centrifuge_handler* h = s->protocol()) {
      c = h->stats().clients.get();
      u = h->stats().users.get();
    }
    if (const routing::router* r = s->router()) {
      sub = r->stats().subscriptions.get();
      ch = r->stats().home_channels.get();  // each channel has one home: no double count
    }
    clients += c;
    users += u;
    subs += sub;
    channels += ch;
    if (!per.empty()) per += ',';
    per += fmt::format(R"({{"id":{},"num_clients":{},"num_users":{},"num_subs":{},"num_channels":{}}})", s->id(), c, u,
                       sub, ch);
  }
  std::string name;
  proto::append_json_string(name, node_name);
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at).count();
  // num_users sums the shards' user indexes: a user connected to two
  // shards counts twice (no process-wide user map, by design).
  return fmt::format(R"({{"uid":{},"name":{},"version":"{}","num_clients":{},"num_users":{},"num_subs":{},)"
                     R"("num_channels":{},"uptime":{},"process":{{"rss":{}}},"shards":[{}]}})",
                     uid, name, version, clients, users, subs, channels, uptime, read_memory_figures().rss_bytes, per);
}

}  // namespace

int run_gateway(const config& cfg, std::function<config()> reparse) {
  fd_limits lim = raise_fd_limit();
  if (auto lv = log::parse_level(cfg.log_level)) log::set_min_level(*lv);

  // Asynchronous signals go to the main thread only: shard threads inherit
  // a mask that blocks them (Asio's signal handler writes to a pipe, and an
  // fd number means something only in the table that made it).
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGHUP);
  sigaddset(&blocked, SIGQUIT);
  ::signal(SIGPIPE, SIG_IGN);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);

  asio::io_context main_ctx(1);
  asio::signal_set signals(main_ctx, SIGINT, SIGTERM);

  // Every io_context (and its reactor) exists before any shard unshares.
  std::vector<std::unique_ptr<shard>> shards;
  std::vector<asio::io_context*> ctxs;
  for (unsigned i = 0; i < cfg.shards; ++i) {
    shards.push_back(std::make_unique<shard>(i, cfg));
    ctxs.push_back(&shards.back()->context());
  }
  mesh shard_mesh(ctxs, &main_ctx, cfg.mesh_ring_capacity, cfg.mesh_overflow_limit);
  ops::http_server ops_server(main_ctx, {cfg.api_max_body, 60});
  const session_options sess_opts = make_session_options(cfg);
  std::shared_ptr<const auth::verifier> verifier = make_verifier(cfg);
  if (cfg.mode == "centrifuge" && !verifier->enabled() && !cfg.allow_anonymous_connect &&
      !cfg.allow_anonymous_connect_without_token) {
    log::warn("no token key configured (token_hmac_secret_key, token_rsa_public_key, token_ecdsa_public_key) and "
              "anonymous connections are off: no client can connect");
  }
  if (cfg.token_hmac_secret_key == "switchboard-dev-secret-change-me") {
    log::warn("token_hmac_secret_key is the development secret from ops/switchboard.toml: replace it before "
              "exposing the client port");
  }
  // Before any shard starts: with engine = "redis", Redis must answer now.
  const engine_setup engines = make_engine_setup(cfg);
  // The shards start with a copy each (a reload replaces theirs).
  const protocol_options proto_opts = make_protocol_options(cfg, verifier, engines.redis);
  std::vector<routing::router*> routers(cfg.shards, nullptr);
  std::vector<centrifuge_handler*> handlers(cfg.shards, nullptr);
  // TLS: the certificate is checked now (a bad one stops the start).
  std::shared_ptr<const tls::context> tls_ctx = make_tls_context(cfg);
  if (cfg.tls) log::info("TLS on the client listener (wss): {}", tls_ctx->summary());
  if (cfg.ops_tls) {
    ops_server.set_tls(tls_ctx->native());
    log::info("TLS on the ops listener (https): {}", tls_ctx->summary());
  }
  shard_services services{&shard_mesh, &sess_opts, &proto_opts, &routers, &handlers, &engines,
                          cfg.tls ? tls_ctx : nullptr};
  const auto started_at = std::chrono::steady_clock::now();
  // This process's id in `info` (Centrifugo's node uid): random per start.
  const std::string uid_hex = fmt::format("{:08x}{:08x}", std::random_device{}(), std::random_device{}());
  const std::string node_uid = "\"" + uid_hex + "\"";
  std::string node_name = cfg.name;  // default: hostname:client port, once the port is bound
  auto node_info = [&] { return node_info_json(shards, node_uid, node_name, proto_opts.version, started_at); };
  // With Redis, the nodes find each other through it (gateway/cluster.hpp).
  server_api* api_ptr = nullptr;
  std::unique_ptr<cluster_bus> bus;
  if (engines.redis) {
    bus = std::make_unique<cluster_bus>(
        main_ctx, engines.redis_options.servers.front(), cfg.redis_prefix, uid_hex,
        cluster_bus::local{node_info,
                           [&api_ptr](std::string_view m, std::string_view p) { api_ptr->apply_from_cluster(m, p); },
                           [&api_ptr](std::string pattern, std::function<void(std::string)> done) {
                             api_ptr->channels_for_cluster(std::move(pattern), std::move(done));
                           }});
  }
  // The main thread's copies of what a reload changes for the server API.
  config live_cfg = cfg;
  routing::channel_rules api_rules = proto_opts.rules;
  server_api api({&live_cfg, &shard_mesh, &routers, &handlers, &api_rules, node_info, &main_ctx, bus.get()});
  api_ptr = &api;
  // SIGHUP: read the config again (gateway/reload.hpp).
  config_reloader reloader({&main_ctx, &shards, &live_cfg, &api_rules, std::move(reparse), engines.redis,
                            [&ops_server](const tls::context& t) { ops_server.set_tls(t.native()); }});
  if (cfg.api_key == "switchboard-dev-api-key-change-me") {
    log::warn("api_key is the development key from ops/switchboard.toml: replace it before exposing the ops port");
  }
  if (!api.enabled()) {
    log::warn("server API off: no api_key configured (set api_key, or api_insecure behind a firewall)");
  } else if (cfg.api_key.empty()) {
    log::warn("server API without a key (api_insecure): anyone who reaches the ops port can publish");
  }
  // Declared after everything its entries touch, so that on an early throw
  // it runs (and joins the shards) before those are destroyed.
  stop_stack stops;

  // What one shard's table can hold for clients: the hard limit less what
  // is open now (copied into every table) and a reserve for the listener,
  // logging and the odd file.
  constexpr std::uint64_t reserve = 64;
  std::uint64_t inherited = open_fd_count();
  std::uint64_t per_table = lim.soft > inherited + reserve ? lim.soft - inherited - reserve : 0;
  // With --shared-fd-table (TSan runs) all shards draw from one table.
  std::uint64_t per_shard_fds = cfg.private_fd_tables ? per_table : per_table / cfg.shards;
  std::uint64_t capacity = per_shard_fds * cfg.shards;

  for (auto& s : shards) {
    s->start(services, per_shard_fds);
    stops.push([&s] {
      s->stop();
      s->join();
    });
  }
  pthread_sigmask(SIG_UNBLOCK, &blocked, nullptr);
  wait_for_engines(shards, cfg);

  if (!cfg.private_fd_tables) log::warn("--shared-fd-table: shards share one fd table (diagnostic mode)");
  log::info("{} shards; fd limit {} per table (soft {}, hard {}), {} fds per shard for clients; capacity {} connections",
            cfg.shards, lim.soft, lim.soft, lim.hard, per_shard_fds, capacity);
  if (cfg.max_connections > capacity) {
    log::warn("max_connections is {} but {} shards can hold only {} connections ({} fds each): "
              "raise --shards to at least {}",
              cfg.max_connections, cfg.shards, capacity, per_shard_fds,
              per_shard_fds ? (cfg.max_connections + per_shard_fds - 1) / per_shard_fds : 0);
  }

  // Shard 0 binds first so that port 0 resolves to one port all shards share.
  std::uint16_t port = cfg.listen.port;
  for (auto& s : shards) port = s->listen(cfg.listen, port);
  if (node_name.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "switchboard");
    node_name = fmt::format("{}:{}", host, port);
  }

  // The operator's dashboard (ops/dashboard/, embedded at build time): GET /
  // and its script, stylesheet and uPlot; the page polls /stats.
  for (const auto& asset : ops::dashboard_assets()) {
    ops_server.route(std::string(asset.path), [&asset](const ops::http_request& req, ops::http_response& res) {
      if (req.method != "GET") {
        res.status = 405;
        res.body = "GET only\n";
        return;
      }
      res.content_type = std::string(asset.content_type);
      res.body = std::string(asset.bytes);
    });
  }
  ops_server.route("/healthz", [](const ops::http_request&, ops::http_response& res) { res.body = "ok\n"; });
  ops_server.route_prefix("/api/", [&api](const ops::http_request& req, ops::http_reply reply) {
    api.handle(req, std::move(reply));
  });
  // Graceful drain: the first SIGTERM/SIGINT or POST /drain; then exit 0.
  drain_control drain(main_ctx, shards, std::chrono::milliseconds(cfg.shutdown_drain_period_ms),
                      std::chrono::milliseconds(cfg.close_timeout_ms), [&main_ctx] { main_ctx.stop(); });
  ops_server.route("/drain", [&](const ops::http_request& req, ops::http_response& res) {
    res.content_type = "application/json";
    if (req.method != "POST") {
      res.status = 405;
      res.body = R"({"error":{"code":107,"message":"POST only"}})" "\n";
      return;
    }
    switch (api.check_key(req)) {
      case server_api::access::ok: break;
      case server_api::access::off:
        res.status = 404;
        res.body = R"({"error":{"code":108,"message":"needs the server API's key: set api_key"}})" "\n";
        return;
      case server_api::access::unauthorized:
        res.status = 401;
        res.body = R"({"error":{"code":101,"message":"unauthorized"}})" "\n";
        return;
    }
    std::uint64_t sessions = drain.sessions();
    drain.begin("POST /drain");
    res.status = 202;
    res.body = fmt::format(R"({{"result":{{"draining":true,"period_ms":{},"sessions":{}}}}})", drain.period().count(),
                           sessions) +
               "\n";
  });
  ops_server.route("/stats", [&](const ops::http_request&, ops::http_response& res) {
    res.content_type = "application/json";
    std::string cluster = bus ? fmt::format(R"("node":{},"nodes":[{}])", node_uid, bus->last_nodes()) : "";
    res.body = stats_json(shards, shard_mesh, per_shard_fds, api.stats_json(), cluster, drain.draining(),
                          reloader.stats_json());
  });
  ops_server.route("/metrics", [&](const ops::http_request&, ops::http_response& res) {
    res.content_type = std::string(metrics_content_type);
    res.body = metrics_text(shards, shard_mesh, per_shard_fds, proto_opts.version) + api.metrics_text() +
               redis_metrics_text(shards) + reloader.metrics_text();
  });
  // /readyz answers 503 from the moment a drain or shutdown starts.
  ops_server.route("/readyz", [&](const ops::http_request&, ops::http_response& res) {
    bool running = !drain.draining();
    for (const auto& s : shards) running = running && s->sessions() != nullptr;
    res.status = running ? 200 : 503;
    res.body = running ? "ready\n" : "not ready\n";
  });
  {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(cfg.ops_listen.host, ec);
    if (ec) throw std::system_error(ec, fmt::format("ops listen address '{}'", cfg.ops_listen.host));
    ops_server.listen({addr, cfg.ops_listen.port});
  }
  stops.push([&ops_server] { ops_server.stop(); });
  if (bus) {
    bus->start();
    stops.push([&bus, &main_ctx] {
      bus->stop();
      // The signal stopped the main loop; its goodbye to the registry runs
      // on it, for at most 2 s.
      main_ctx.restart();
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (!bus->closed() && std::chrono::steady_clock::now() < until) {
        main_ctx.run_one_for(std::chrono::milliseconds(50));
      }
    });
  }

  host_port client_ep{cfg.listen.host, port};
  host_port ops_ep{cfg.ops_listen.host, ops_server.local_endpoint().port()};
  log::info("listening: clients on {} (WebSocket endpoint {}, mode {}, engine {}), ops on {}", client_ep.str(),
            cfg.websocket_path, cfg.mode, cfg.engine, ops_ep.str());
  // A stable line on stdout for scripts and tests that start us on port 0.
  fmt::print("switchboard listening clients={} ops={}\n", client_ep.str(), ops_ep.str());
  std::fflush(stdout);

  // The first signal drains; a second one stops at once.
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int sig) {
    if (ec) return;
    if (drain.draining()) {
      log::info("signal {} while draining: shutting down now", sig);
      return main_ctx.stop();
    }
    drain.begin(fmt::format("signal {}", sig));
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  main_ctx.run();

  stops.run();  // ops server, then shards (stop + join), in reverse
  log::info("stopped cleanly");
  return 0;
}

}  // namespace sb
