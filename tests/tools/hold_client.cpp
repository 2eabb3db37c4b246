// hold_client: opens N TCP connections to HOST:PORT from one source address,
// holds them, and reports when the server has closed them all. One process
// stays under the 20,000-fd limit; tests start several, each with its own
// source address (127.0.0.0/8 all reaches this host), to go past ~28k
// connections to one port and past one process's fd limit.
//
// stdout lines: "connected N" once all N are established, "closed N" once
// the server closed all N (then exit 0). Any connect failure: "failed K
// <reason>" and exit 1. Bounded by --timeout seconds (exit 3).
//
// With --ws, each connection first completes a WebSocket upgrade to
// /connection/websocket and "connected" means all are upgraded; the client
// then answers server pings with pongs, so connections stay open while idle.
//
// With --poke R (needs --ws), once all are upgraded the client sends R
// rounds of one 1-byte text message on every connection and waits for all
// echoes of each round before the next ("poked N" on stdout); a benchmark
// divides the gateway's CPU time by the number of wake-ups.
//
// With --cf SECRET (needs --ws), each connection then sends a Centrifuge
// connect whose HS256 token (user "u<base+i>", --user-base) subscribes it
// server-side to "personal:#u<base+i>"; "connected" means all connect
// replies arrived. Protocol pings ({}) are answered.
//
// With --tls 1, each connection is TLS (wss): the handshake comes first
// (no certificate check: this measures the server, it is not a client to
// trust), then everything above runs inside it.
//
// With --deflate 1, the upgrade offers permessage-deflate and must get it;
// a compressed connect reply is inflated (zlib) before it is read.
//
// usage: hold_client HOST PORT COUNT SOURCE_IP [--timeout S] [--inflight K] [--ws 1] [--poke R]
//                    [--cf SECRET] [--user-base N] [--tls 1] [--deflate 1]

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <algorithm>
#include <string_view>
#include <cstring>
#include <string>
#include <vector>

#include "bench/swload/wire.hpp"

namespace {

enum class state : unsigned char { idle, connecting, tls_handshaking, upgrading, cf_connecting, open, closed };

// One connection's byte stream: the socket, or TLS over it.
std::vector<SSL*> ssls;
ssize_t io_read(int fd, std::size_t idx, void* buf, std::size_t n) {
  SSL* ssl = ssls.empty() ? nullptr : ssls[idx];
  if (!ssl) return ::read(fd, buf, n);
  std::size_t got = 0;
  if (SSL_read_ex(ssl, buf, n, &got) == 1) return static_cast<ssize_t>(got);
  int e = SSL_get_error(ssl, 0);
  ERR_clear_error();
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  errno = errno ? errno : ECONNRESET;
  return -1;
}
ssize_t io_write(int fd, std::size_t idx, const void* buf, std::size_t n) {
  SSL* ssl = ssls.empty() ? nullptr : ssls[idx];
  if (!ssl) return ::write(fd, buf, n);
  std::size_t put = 0;
  if (SSL_write_ex(ssl, buf, n, &put) == 1) return static_cast<ssize_t>(put);
  ERR_clear_error();
  errno = EAGAIN;
  return -1;
}

// An HS256 connection JWT for `user`, subscribed server-side to its
// personal channel "personal:#<user>", as a masked client text frame (the
// token and frame helpers are swload's: bench/swload/wire.hpp).
std::string connect_frame(const std::string& secret, const std::string& user) {
  std::string cmd = swload::wire::connect_command(secret, user, "personal:#" + user);
  std::string frame(cmd.size() + swload::wire::max_client_header, '\0');
  frame.resize(swload::wire::text_frame(frame.data(), cmd));
  return frame;
}

// Answers every complete server ping in buf with a masked pong. Server
// control frames are small and arrive whole on loopback; anything else
// (data, partial frames) is ignored: this client only holds connections.
bool answer_pings(int fd, std::size_t idx, const unsigned char* buf, ssize_t n) {
  ssize_t i = 0;
  while (i + 2 <= n) {
    unsigned op = buf[i] & 0x0f;
    std::size_t len = buf[i + 1] & 0x7f;
    if (len >= 126) return true;  // a data frame we do not care about
    if (i + 2 + static_cast<ssize_t>(len) > n) return true;
    if (op == 0x8) return false;  // close: let the caller see EOF next
    if (op == 0x1 && len == 2 && buf[i + 2] == '{' && buf[i + 3] == '}') {
      // Centrifuge protocol ping: answer {} (masked, zero key).
      static const unsigned char pong[] = {0x81, 0x82, 0, 0, 0, 0, '{', '}'};
      (void)io_write(fd, idx, pong, sizeof(pong));
    }
    if (op == 0x9) {
      unsigned char out[2 + 4 + 125];
      out[0] = 0x8a;
      out[1] = static_cast<unsigned char>(0x80 | len);
      out[2] = out[3] = out[4] = out[5] = 0;  // zero mask key: payload unchanged
      std::memcpy(out + 6, buf + i + 2, len);
      (void)io_write(fd, idx, out, 6 + len);
    }
    i += 2 + static_cast<ssize_t>(len);
  }
  return true;
}

// The text of the one server data frame at the start of buf (a connect
// reply): inflated when it is compressed (RSV1; the gateway asks for no
// context takeover, so it inflates alone). Empty when it is not whole.
std::string frame_text(const char* buf, std::size_t n) {
  swload::wire::frame f;
  const auto* u = reinterpret_cast<const unsigned char*>(buf);
  if (!swload::wire::parse_header(u, n, f) || f.header + f.length > n) return {};
  std::string payload(buf + f.header, f.length);
  if (!f.rsv1) return payload;
  payload.append("\x00\x00\xff\xff", 4);
  z_stream z{};
  if (inflateInit2(&z, -15) != Z_OK) return {};
  std::string out(64 * 1024, '\0');
  z.next_in = reinterpret_cast<Bytef*>(payload.data());
  z.avail_in = static_cast<uInt>(payload.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&z, Z_SYNC_FLUSH);
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  return rc == Z_OK || rc == Z_STREAM_END ? out : std::string();
}

int fail(const char* what) {
  std::printf("failed 1 %s: %s\n", what, std::strerror(errno));
  std::fflush(stdout);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s HOST PORT COUNT SOURCE_IP [--timeout S] [--inflight K]\n", argv[0]);
    return 2;
  }
  const char* host = argv[1];
  int port = std::atoi(argv[2]);
  int count = std::atoi(argv[3]);
  const char* source = argv[4];
  int timeout_s = 300;
  int inflight_max = 512;
  bool ws = false;
  int poke_rounds = 0;
  std::string cf_secret;  // --cf SECRET: Centrifuge connect with a personal channel after the upgrade
  long user_base = 0;
  long long echo_bytes = 0;  // bytes of echoes received in the current poke round
  bool use_tls = false;
  bool deflate = false;
  for (int i = 5; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--timeout") timeout_s = std::atoi(argv[i + 1]);
    else if (f == "--inflight") inflight_max = std::atoi(argv[i + 1]);
    else if (f == "--ws") ws = std::atoi(argv[i + 1]) != 0;
    else if (f == "--poke") poke_rounds = std::atoi(argv[i + 1]);
    else if (f == "--cf") cf_secret = argv[i + 1];
    else if (f == "--user-base") user_base = std::atol(argv[i + 1]);
    else if (f == "--tls") use_tls = std::atoi(argv[i + 1]) != 0;
    else if (f == "--deflate") deflate = std::atoi(argv[i + 1]) != 0;
  }
  const std::string upgrade = swload::wire::upgrade_request(host, port, "/connection/websocket", deflate);

  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) return fail("bad host");
  sockaddr_in src{};
  src.sin_family = AF_INET;
  if (inet_pton(AF_INET, source, &src.sin_addr) != 1) return fail("bad source");

  SSL_CTX* tls_ctx = nullptr;
  if (use_tls) {
    tls_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_RELEASE_BUFFERS);  // 19,000 clients in one process
    ssls.assign(static_cast<std::size_t>(count), nullptr);
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return fail("epoll_create1");

  std::vector<int> fds(static_cast<size_t>(count), -1);
  std::vector<state> st(static_cast<size_t>(count), state::idle);
  int next = 0, inflight = 0, open = 0, closed = 0;
  bool reported_connected = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::vector<epoll_event> events(1024);
  char buf[4096];

  // TCP (or TLS) is up: send the upgrade and stay "in flight" until the
  // 101 arrives, or, without --ws, count the connection open.
  auto transport_ready = [&](int fd, std::size_t idx) {
    if (!ws) {
      st[idx] = state::open;
      --inflight;
      ++open;
      return true;
    }
    if (io_write(fd, idx, upgrade.data(), upgrade.size()) != static_cast<ssize_t>(upgrade.size())) {
      std::printf("failed 1 upgrade write: %s\n", std::strerror(errno));
      std::fflush(stdout);
      return false;
    }
    st[idx] = state::upgrading;
    return true;
  };

  while (true) {
    // Keep at most inflight_max handshakes under way: a burst of 10k SYNs
    // overflows the listener's backlog and turns into retransmit delays.
    while (next < count && inflight < inflight_max) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) return fail("socket");
      int one = 1;
      // Pick the source port at connect() time, per destination, so one
      // source address is not limited to the ephemeral range once overall.
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
      if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) return fail("bind");
      int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
      if (rc != 0 && errno != EINPROGRESS) return fail("connect");
      epoll_event ev{};
      ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
      ev.data.u32 = static_cast<uint32_t>(next);
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      fds[static_cast<size_t>(next)] = fd;
      st[static_cast<size_t>(next)] = state::connecting;
      ++next;
      ++inflight;
    }
    if (!reported_connected && open == count) {
      std::printf("connected %d\n", count);
      std::fflush(stdout);
      reported_connected = true;
      // A moment for the caller to read its baseline figures first.
      if (poke_rounds > 0) ::usleep(1'000'000);
      for (int round = 0; round < poke_rounds; ++round) {
        // One masked 1-byte text frame per connection; the echo is 3 bytes.
        static const unsigned char frame[] = {0x81, 0x81, 0, 0, 0, 0, 'x'};
        echo_bytes = 0;
        for (int k = 0; k < count; ++k) (void)io_write(fds[static_cast<size_t>(k)], static_cast<size_t>(k), frame, sizeof(frame));
        while (echo_bytes < 3LL * count && std::chrono::steady_clock::now() < deadline) {
          int m = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
          for (int j = 0; j < m; ++j) {
            auto pidx = events[static_cast<size_t>(j)].data.u32;
            ssize_t r;
            while ((r = io_read(fds[pidx], pidx, buf, sizeof(buf))) > 0) echo_bytes += r;
          }
        }
      }
      if (poke_rounds > 0) {
        std::printf("poked %lld\n", static_cast<long long>(count) * poke_rounds);
        std::fflush(stdout);
      }
    }
    if (closed == count) {
      std::printf("closed %d\n", count);
      std::fflush(stdout);
      return 0;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::printf("timeout open=%d closed=%d started=%d\n", open, closed, next);
      std::fflush(stdout);
      return 3;
    }
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
    for (int i = 0; i < n; ++i) {
      auto idx = events[static_cast<size_t>(i)].data.u32;
      int fd = fds[idx];
      uint32_t e = events[static_cast<size_t>(i)].events;
      if (st[idx] == state::connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          std::printf("failed 1 connect: %s\n", std::strerror(err));
          std::fflush(stdout);
          return 1;
        }
        if (tls_ctx) {
          ssls[idx] = SSL_new(tls_ctx);
          SSL_set_fd(ssls[idx], fd);
          SSL_set_connect_state(ssls[idx]);
          st[idx] = state::tls_handshaking;
        } else if (!transport_ready(fd, idx)) {
          return 1;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u32 = idx;
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        if (!(e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && st[idx] != state::tls_handshaking) continue;
      }
      if (st[idx] == state::tls_handshaking) {
        // The ClientHello goes out on the first call; loopback takes every
        // flight whole, so only readability is waited for.
        int rc = SSL_do_handshake(ssls[idx]);
        if (rc != 1) {
          int err = SSL_get_error(ssls[idx], rc);
          if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) continue;
          char why[256];
          ERR_error_string_n(ERR_get_error(), why, sizeof(why));
          std::printf("failed 1 tls handshake: %s\n", why);
          std::fflush(stdout);
          return 1;
        }
        if (!transport_ready(fd, idx)) return 1;
        continue;
      }
      if (st[idx] == state::upgrading && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        // The 101 answer is small and arrives whole on loopback.
        ssize_t r = io_read(fd, idx, buf, sizeof(buf));
        if (deflate && r > 12 &&
            std::string_view(buf, static_cast<std::size_t>(r)).find("\r\nSec-WebSocket-Extensions: permessage-deflate") ==
                std::string_view::npos) {
          std::printf("failed 1 upgrade answer without permessage-deflate\n");
          std::fflush(stdout);
          return 1;
        }
        if (r > 12 && std::memcmp(buf, "HTTP/1.1 101", 12) == 0 && !cf_secret.empty()) {
          std::string f = connect_frame(cf_secret, "u" + std::to_string(user_base + idx));
          if (io_write(fd, idx, f.data(), f.size()) != static_cast<ssize_t>(f.size())) {
            std::printf("failed 1 connect write\n");
            std::fflush(stdout);
            return 1;
          }
          st[idx] = state::cf_connecting;
          continue;
        }
        if (r > 12 && std::memcmp(buf, "HTTP/1.1 101", 12) == 0) {
          st[idx] = state::open;
          --inflight;
          ++open;
          continue;
        }
        if (r < 0 && errno == EAGAIN) continue;
        std::printf("failed 1 upgrade answer: %.*s\n", r > 0 ? static_cast<int>(std::min<ssize_t>(r, 60)) : 0, buf);
        std::fflush(stdout);
        return 1;
      }
      if (st[idx] == state::cf_connecting && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        ssize_t r = io_read(fd, idx, buf, sizeof(buf));
        if (r < 0 && errno == EAGAIN) continue;
        if (r > 0 && frame_text(buf, static_cast<std::size_t>(r)).find("\"connect\":{") != std::string::npos) {
          st[idx] = state::open;
          --inflight;
          ++open;
          continue;
        }
        std::printf("failed 1 connect answer: %.*s\n", r > 0 ? static_cast<int>(std::min<ssize_t>(r, 80)) : 0, buf);
        std::fflush(stdout);
        return 1;
      }
      if (st[idx] == state::open && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        ssize_t r = io_read(fd, idx, buf, sizeof(buf));
        if (ws && r > 0) {
          answer_pings(fd, idx, reinterpret_cast<unsigned char*>(buf), r);
          continue;
        }
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          st[idx] = state::closed;
          epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
          ::close(fd);
          ++closed;
          if (!reported_connected) {
            std::printf("failed 1 closed by server before all connected\n");
            std::fflush(stdout);
            return 1;
          }
        }
      }
    }
  }
}
