#include "gateway/shard.hpp"

#include "ops/log.hpp"
#include "gateway/client.hpp"
#include "session/session.hpp"
#include "gateway/engine_setup.hpp"
#include "gateway/reload.hpp"
#include "routing/mesh.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/core.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <optional>
#include <random>
#include <system_error>

namespace sb {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// The CPU this shard runs on: the (id % n)-th CPU the process may use.
int pick_cpu(unsigned id) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
  int n = CPU_COUNT(&set);
  if (n <= 0) return -1;
  int want = static_cast<int>(id % static_cast<unsigned>(n));
  for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set) && seen++ == want) return cpu;
  }
  return -1;
}

}  // namespace

struct shard::local {
  local(shard& s, const shard_services& svc, std::uint64_t fd_capacity)
      : owner(s),
        acceptor(s._ctx.get_executor()),
        accept_backoff(s._ctx),
        history_sweep(s._ctx),
        sessions(s._ctx, *svc.sessions),
        opts(svc.protocol ? *svc.protocol : protocol_options{}),
        engine(make_engine(*svc.engines, s._cfg, s._ctx, svc.protocol ? &opts.rules : nullptr, s._id)),
        router(s._id, *svc.router_mesh, *svc.routers, sessions.frames(), centrifuge_handler::push_encoders(sessions.deflater()), *engine),
        fd_cap(fd_capacity),
        guard(asio::make_work_guard(s._ctx)) {
    std::uint64_t max = s._cfg.max_connections;
    per_shard_max = max == 0 ? fd_cap : std::min<std::uint64_t>(fd_cap, (max + s._cfg.shards - 1) / s._cfg.shards);
    sessions.set_tls(svc.tls);
    if (s._cfg.mode == "echo") {
      sessions.set_handler(echo);
    } else {
      protocol.emplace(opts, router, sessions);
      sessions.set_handler(*protocol);
    }
    // Other shards reach this router through tasks; it exists before this
    // shard reports itself started, so before any client can connect.
    (*svc.routers)[s._id] = &router;
    if (svc.handlers) (*svc.handlers)[s._id] = protocol ? &*protocol : nullptr;
    owner._sessions.store(&sessions.stats(), std::memory_order_release);
    owner._router.store(&router, std::memory_order_release);
    owner._protocol.store(protocol ? &*protocol : nullptr, std::memory_order_release);
    owner._redis.store(dynamic_cast<const routing::redis_engine*>(engine.get()), std::memory_order_release);
    sweep_history();
  }

  ~local() {
    // Sessions end first (normally stop() did it already), so the handler
    // and the router see every client leave before they are destroyed.
    sessions.close_all();
    owner._sessions.store(nullptr, std::memory_order_release);
    owner._router.store(nullptr, std::memory_order_release);
    owner._protocol.store(nullptr, std::memory_order_release);
    owner._redis.store(nullptr, std::memory_order_release);
  }

  std::uint16_t listen(const host_port& where, std::uint16_t port) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(where.host, ec);
    if (ec) throw std::system_error(ec, fmt::format("listen address '{}'", where.host));
    tcp::endpoint ep(addr, port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      // SO_REUSEPORT: every shard binds the same port and the kernel spreads
      // incoming connections over the shards' accept queues.
      int one = 1;
      if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        ec.assign(errno, boost::system::system_category());
      }
    }
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(static_cast<int>(owner._cfg.listen_backlog), ec);
    if (!ec) acceptor.non_blocking(true, ec);  // accept4 takes the queue until EAGAIN
    if (ec) {
      boost::system::error_code ignored;
      acceptor.close(ignored);
      throw std::system_error(ec, fmt::format("listen on {}:{}", where.host, port));
    }
    do_accept();
    return acceptor.local_endpoint().port();
  }

  void do_accept() {
    acceptor.async_wait(tcp_acceptor::wait_read, [this](boost::system::error_code ec) { on_acceptable(ec); });
  }

  // Takes what the listen queue holds, up to a batch (a connect storm must
  // not starve the shard's other work; the next wait finds the rest), each
  // as a bare non-blocking fd: a session's socket is not an Asio object
  // (session/poller.hpp), so Asio never makes a reactor record for it.
  void on_acceptable(boost::system::error_code ec) {
    if (stopping || ec == asio::error::operation_aborted) return;
    if (ec) return accept_failed(ec.value());
    constexpr int accept_batch = 64;
    for (int i = 0; i < accept_batch; ++i) {
      int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return accept_failed(errno);
      }
      owner._stats.accepted.inc();
      const auto& st = sessions.stats();
      if (st.open.get() + st.handshaking.get() >= per_shard_max) {
        owner._stats.rejected_over_limit.inc();
        ::close(fd);
      } else {
        sessions.accept(fd);
      }
      if (stopping) return;
    }
    do_accept();
  }

  void accept_failed(int err) {
    owner._stats.accept_errors.inc();
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      // Out of fds or memory: accepting again at once would spin. Back
      // off briefly; the kernel keeps the backlog meanwhile.
      auto now = std::chrono::steady_clock::now();
      if (now - last_accept_warning > std::chrono::seconds(10)) {
        last_accept_warning = now;
        log::warn("accept failed: {} ({} connections open on this shard); pausing accepts for 100 ms",
                  std::generic_category().message(err), sessions.live());
      }
      accept_backoff.expires_after(std::chrono::milliseconds(100));
      accept_backoff.async_wait([this](boost::system::error_code e) {
        if (!e && !stopping) do_accept();
      });
      return;
    }
    do_accept();  // ECONNABORTED and friends: the peer gave up, go on
  }

  void sweep_history() {
    history_sweep.expires_after(std::chrono::seconds(1));
    history_sweep.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping) return;
      router.sweep_history();
      if (protocol) protocol->sweep();
      sweep_history();
    });
  }

  void drain(std::chrono::milliseconds period) {
    if (stopping) return;
    boost::system::error_code ignored;
    acceptor.close(ignored);  // new connections are refused from now on
    accept_backoff.cancel();
    sessions.drain(period);
  }

  void stop() {
    if (stopping) return;
    stopping = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    accept_backoff.cancel();
    history_sweep.cancel();
    // Sessions get a 1001 close frame where the socket takes it, then their
    // sockets close; pending handlers run with operation_aborted and the
    // sessions are freed as they finish. run() returns when all are done.
    sessions.close_all();
    // The engine's connections (Redis) close too: their pending commands
    // fail and nothing reconnects, so the loop can end.
    engine->stop();
    if (protocol) protocol->stop();  // the backend proxy's connections
    // Tasks for a destination that stopped (the main thread, once a drain
    // has ended) are not retried for ever.
    router.shard_mesh().stop_source(owner._id);
    guard.reset();
  }

  shard& owner;
  tcp_acceptor acceptor;
  asio::steady_timer accept_backoff;
  asio::steady_timer history_sweep;  // once a second: expired history and the records it kept
  echo_handler echo;  // --mode echo: a diagnostic
  // Destroyed in reverse: the handler (client state) first, then the
  // router (subscriptions), then the engine (streams), then the sessions.
  session_context sessions;
  // This shard's copy of the protocol options: the handler and the engine
  // read it on this thread only, so a reload replaces it between two
  // events, atomically for this shard (reload()).
  protocol_options opts;
  std::unique_ptr<routing::engine> engine;
  routing::router router;
  std::optional<centrifuge_handler> protocol;
  std::uint64_t fd_cap;
  std::uint64_t per_shard_max = 0;
  bool stopping = false;
  std::chrono::steady_clock::time_point last_accept_warning{};
  // Keeps run() going while the shard is idle; stop() releases it.
  asio::executor_work_guard<asio::io_context::executor_type> guard;
};

shard::shard(unsigned id, const config& cfg) : _id(id), _cfg(cfg), _ctx(1) {
  // Force the reactor into existence now, on the main thread, before any
  // shard unshares its fd table: a timer needs the reactor's timerfd, epoll
  // fd and eventfd interrupter. Created later, on the shard, those fds would
  // exist only in that shard's table, and a post from another thread would
  // write its wake-up into whatever that fd number is in its own table.
  asio::steady_timer warm(_ctx);
  (void)warm;
}

shard::~shard() { join(); }

void shard::start(const shard_services& svc, std::uint64_t fd_capacity) {
  std::promise<void> started;
  auto ready = started.get_future();
  _thread = std::thread([this, &svc, fd_capacity, &started] {
    log::set_thread_name(fmt::format("shard-{}", _id));
    set_this_shard_id(_id);
    pthread_setname_np(pthread_self(), fmt::format("sb-shard-{}", _id).substr(0, 15).c_str());
    int cpu = pick_cpu(_id);
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) log::warn("could not pin to CPU {}", cpu);
    }
    // A private fd table: this shard's sockets count against the fd limit of
    // this table only (DESIGN.md "Threads and ownership").
    if (_cfg.private_fd_tables && ::unshare(CLONE_FILES) != 0) {
      started.set_exception(std::make_exception_ptr(
          std::system_error(errno, std::generic_category(), "unshare(CLONE_FILES)")));
      return;
    }
    run(svc, fd_capacity, started);
  });
  ready.get();
}

void shard::run(const shard_services& svc, std::uint64_t fd_capacity, std::promise<void>& started) {
  std::optional<local> state;
  try {
    state.emplace(*this, svc, fd_capacity);
  } catch (...) {
    started.set_exception(std::current_exception());
    return;
  }
  _stats.fd_capacity.set(fd_capacity);
  if (_stats.config_generation.get() == 0) _stats.config_generation.set(1);  // the config it starts with
  _local = &*state;
  started.set_value();
  _ctx.run();  // until stop() has closed everything and released the guard
  // Free everything this shard owns while its thread still exists: the
  // client state, the routing tables, then the sessions.
  _local = nullptr;
  state.reset();
}

std::uint16_t shard::listen(const host_port& where, std::uint16_t port) {
  std::promise<std::uint16_t> bound;
  auto result = bound.get_future();
  asio::post(_ctx, [this, &where, port, &bound] {
    try {
      bound.set_value(_local->listen(where, port));
    } catch (...) {
      bound.set_exception(std::current_exception());
    }
  });
  return result.get();
}

void shard::stop() {
  asio::post(_ctx, [this] {
    if (_local) _local->stop();
  });
}

void shard::drain(std::chrono::milliseconds period) {
  asio::post(_ctx, [this, period] {
    if (_local) _local->drain(period);
  });
}

void shard::reload(std::shared_ptr<const reloadable> r) {
  asio::post(_ctx, [this, r = std::move(r)] {
    if (!_local) return;
    _local->opts = r->protocol;
    if (_local->protocol) _local->protocol->options_changed();
    _local->sessions.set_admission(r->admission);
    if (r->tls) _local->sessions.set_tls(r->tls);
    _stats.config_generation.set(r->generation);
  });
}

void shard::join() {
  if (_thread.joinable()) _thread.join();
}

}  // namespace sb
