#include "gateway/shard.hpp"

#include "ops/log.hpp"
#include "pool/object_pool.hpp"
#include "routing/mesh.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <fmt/core.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <system_error>

namespace sb {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// A client connection as the shard runtime holds it until the WebSocket
// session (session/) takes over: a socket waiting for readability, with no
// buffer of its own.
struct raw_conn : boost::intrusive::list_base_hook<> {  // safe_link: is_linked() works
  explicit raw_conn(tcp::socket s) : sock(std::move(s)) {}
  tcp::socket sock;
  bool dead = false;
};

using conn_list = boost::intrusive::list<raw_conn, boost::intrusive::constant_time_size<false>>;

constexpr std::size_t scratch_size = 64 * 1024;

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
  local(shard& s, mesh& m, std::uint64_t fd_capacity)
      : owner(s),
        router(m),
        acceptor(s._ctx),
        accept_backoff(s._ctx),
        scratch(new char[scratch_size]),
        fd_cap(fd_capacity),
        guard(asio::make_work_guard(s._ctx)) {
    std::uint64_t max = s._cfg.max_connections;
    per_shard_max = max == 0 ? fd_cap : std::min<std::uint64_t>(fd_cap, (max + s._cfg.shards - 1) / s._cfg.shards);
  }

  ~local() {
    // Every connection was closed by stop() and reaped before run() returned.
    while (!live.empty()) release(&live.front());
    reap();
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
    if (ec) {
      boost::system::error_code ignored;
      acceptor.close(ignored);
      throw std::system_error(ec, fmt::format("listen on {}:{}", where.host, port));
    }
    do_accept();
    return acceptor.local_endpoint().port();
  }

  void do_accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket sock) { on_accept(ec, std::move(sock)); });
  }

  void on_accept(boost::system::error_code ec, tcp::socket sock) {
    if (stopping || ec == asio::error::operation_aborted) return;
    if (ec) {
      owner._stats.accept_errors.inc();
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
          ec.value() == ENFILE) {
        // Out of fds or memory: accepting again at once would spin. Back
        // off briefly; the kernel keeps the backlog meanwhile.
        auto now = std::chrono::steady_clock::now();
        if (now - last_accept_warning > std::chrono::seconds(10)) {
          last_accept_warning = now;
          log::warn("accept failed: {} ({} connections open on this shard); pausing accepts for 100 ms",
                    ec.message(), owner._stats.connections.get());
        }
        accept_backoff.expires_after(std::chrono::milliseconds(100));
        accept_backoff.async_wait([this](boost::system::error_code e) {
          if (!e && !stopping) do_accept();
        });
        return;
      }
      do_accept();  // ECONNABORTED and friends: the peer gave up, go on
      return;
    }
    owner._stats.accepted.inc();
    if (owner._stats.connections.get() >= per_shard_max) {
      owner._stats.rejected_over_limit.inc();
      boost::system::error_code ignored;
      sock.close(ignored);
    } else {
      sock.non_blocking(true, ec);
      raw_conn* c = conns.acquire(std::move(sock));
      live.push_back(*c);
      owner._stats.connections.inc();
      wait_readable(c);
    }
    do_accept();
  }

  void wait_readable(raw_conn* c) {
    c->sock.async_wait(tcp::socket::wait_read, [this, c](boost::system::error_code ec) { on_readable(c, ec); });
  }

  void on_readable(raw_conn* c, boost::system::error_code ec) {
    if (ec || c->dead) return close(c);
    // Read into the shard's scratch buffer: an idle connection holds none.
    for (;;) {
      std::size_t n = c->sock.read_some(asio::buffer(scratch.get(), scratch_size), ec);
      if (ec == asio::error::would_block) break;
      if (ec) return close(c);  // EOF or reset: a normal end, not an error
      owner._stats.bytes_in.add(n);
      if (n < scratch_size) break;
    }
    wait_readable(c);
  }

  // Closes now; frees at the end of the loop turn, never inside the
  // connection's own callback.
  void close(raw_conn* c) {
    if (c->dead && !c->is_linked()) return;
    c->dead = true;
    boost::system::error_code ignored;
    c->sock.close(ignored);
    if (c->is_linked()) live.erase(live.iterator_to(*c));
    owner._stats.connections.dec();
    owner._stats.closed.inc();
    graveyard.push_back(c);
    if (!reap_scheduled) {
      reap_scheduled = true;
      asio::post(owner._ctx, [this] { reap(); });
    }
  }

  void release(raw_conn* c) {
    if (c->is_linked()) live.erase(live.iterator_to(*c));
    conns.release(c);
  }

  void reap() {
    reap_scheduled = false;
    for (raw_conn* c : graveyard) conns.release(c);
    graveyard.clear();
  }

  void stop() {
    if (stopping) return;
    stopping = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    accept_backoff.cancel();
    // Closing a socket cancels its pending wait; its handler then runs
    // with operation_aborted and finds the connection already closed.
    while (!live.empty()) {
      raw_conn& c = live.front();
      c.dead = true;
      c.sock.shutdown(tcp::socket::shutdown_both, ignored);
      c.sock.close(ignored);
      live.pop_front();
      owner._stats.connections.dec();
      owner._stats.closed.inc();
      graveyard.push_back(&c);
    }
    if (!reap_scheduled) {
      reap_scheduled = true;
      asio::post(owner._ctx, [this] { reap(); });
    }
    guard.reset();
  }

  shard& owner;
  mesh& router;
  tcp::acceptor acceptor;
  asio::steady_timer accept_backoff;
  object_pool<raw_conn> conns;
  conn_list live;
  std::vector<raw_conn*> graveyard;
  bool reap_scheduled = false;
  bool stopping = false;
  std::unique_ptr<char[]> scratch;
  std::uint64_t fd_cap;
  std::uint64_t per_shard_max = 0;
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

void shard::start(mesh& m, std::uint64_t fd_capacity) {
  std::promise<void> started;
  auto ready = started.get_future();
  _thread = std::thread([this, &m, fd_capacity, &started] {
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
    started.set_value();
    run(&m, fd_capacity);
  });
  ready.get();
}

void shard::run(mesh* m, std::uint64_t fd_capacity) {
  local state(*this, *m, fd_capacity);
  _stats.fd_capacity.set(fd_capacity);
  _local = &state;
  _ctx.run();  // until stop() has closed everything and released the guard
  _local = nullptr;
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

void shard::join() {
  if (_thread.joinable()) _thread.join();
}

}  // namespace sb
