#include "gateway/app.hpp"

#include "gateway/shard.hpp"
#include "ops/http_server.hpp"
#include "ops/log.hpp"
#include "routing/mesh.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <functional>
#include <memory>
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

std::uint64_t open_fds() {
  std::uint64_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

std::string stats_json(const std::vector<std::unique_ptr<shard>>& shards, const mesh& m, std::uint64_t fd_cap) {
  std::uint64_t total = 0, accepted = 0;
  std::string per;
  for (auto& s : shards) {
    const auto& st = s->stats();
    const auto& src = m.source_stats(s->id());
    const auto& dst = m.dest_stats(s->id());
    total += st.connections.get();
    accepted += st.accepted.get();
    if (!per.empty()) per += ',';
    per += fmt::format(
        R"({{"id":{},"connections":{},"accepted":{},"closed":{},"rejected_over_limit":{},"accept_errors":{},)"
        R"("bytes_in":{},"fd_capacity":{},"mesh_sent":{},"mesh_received":{},"mesh_deferred":{},"mesh_shed":{}}})",
        s->id(), st.connections.get(), st.accepted.get(), st.closed.get(), st.rejected_over_limit.get(),
        st.accept_errors.get(), st.bytes_in.get(), st.fd_capacity.get(), src.sent.get(), dst.received.get(),
        src.deferred.get(), src.shed.get());
  }
  return fmt::format(R"({{"shards":{},"connections":{},"accepted":{},"connection_capacity":{},"per_shard":[{}]}})",
                     shards.size(), total, accepted, fd_cap * shards.size(), per) + "\n";
}

}  // namespace

int run_gateway(const config& cfg) {
  fd_limits lim = raise_fd_limit();

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
  mesh router(ctxs, &main_ctx, cfg.mesh_ring_capacity, cfg.mesh_overflow_limit);
  ops::http_server ops_server(main_ctx, {});
  // Declared after everything its entries touch, so that on an early throw
  // it runs (and joins the shards) before those are destroyed.
  stop_stack stops;

  // What one shard's table can hold for clients: the hard limit less what
  // is open now (copied into every table) and a reserve for the listener,
  // logging and the odd file.
  constexpr std::uint64_t reserve = 64;
  std::uint64_t inherited = open_fds();
  std::uint64_t per_table = lim.soft > inherited + reserve ? lim.soft - inherited - reserve : 0;
  // With --shared-fd-table (TSan runs) all shards draw from one table.
  std::uint64_t per_shard_fds = cfg.private_fd_tables ? per_table : per_table / cfg.shards;
  std::uint64_t capacity = per_shard_fds * cfg.shards;

  for (auto& s : shards) {
    s->start(router, per_shard_fds);
    stops.push([&s] {
      s->stop();
      s->join();
    });
  }
  pthread_sigmask(SIG_UNBLOCK, &blocked, nullptr);

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

  ops_server.route("/healthz", [](const ops::http_request&, ops::http_response& res) { res.body = "ok\n"; });
  ops_server.route("/stats", [&](const ops::http_request&, ops::http_response& res) {
    res.content_type = "application/json";
    res.body = stats_json(shards, router, per_shard_fds);
  });
  {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(cfg.ops_listen.host, ec);
    if (ec) throw std::system_error(ec, fmt::format("ops listen address '{}'", cfg.ops_listen.host));
    ops_server.listen({addr, cfg.ops_listen.port});
  }
  stops.push([&ops_server] { ops_server.stop(); });

  host_port client_ep{cfg.listen.host, port};
  host_port ops_ep{cfg.ops_listen.host, ops_server.local_endpoint().port()};
  log::info("listening: clients on {} , ops on {}", client_ep.str(), ops_ep.str());
  // A stable line on stdout for scripts and tests that start us on port 0.
  fmt::print("switchboard listening clients={} ops={}\n", client_ep.str(), ops_ep.str());
  std::fflush(stdout);

  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    log::info("signal {}: shutting down", sig);
    main_ctx.stop();
  });
  main_ctx.run();

  stops.run();  // ops server, then shards (stop + join), in reverse
  log::info("stopped cleanly");
  return 0;
}

}  // namespace sb
