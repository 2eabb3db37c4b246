// tls_handshake: full TLS handshakes per second against a TLS listener
// (issue 15's goal: >= 3,000/s of TLS 1.3 with an ECDSA P-256 certificate
// on 2 shards, this generator beside the gateway).
//
// K connections at once, each: connect, a full handshake (no session
// resumption: every connection is new), the WebSocket upgrade inside it
// (a client's handshake ends before the server's: only the server's answer
// shows that the server finished too), then an abortive close (SO_LINGER
// 0, so no TIME_WAIT piles up on the client side), and the slot starts
// again. So the figure is wss sessions opened per second. Source addresses rotate over 127.0.5.1..127.0.5.N. Prints the
// handshakes completed per second over the run and any failures. Bounded by
// --seconds; stops by itself.
//
// usage: tls_handshake HOST PORT [--seconds S] [--inflight K] [--tls 1.2|1.3] [--sources N] [--warmup S]
// e.g. bench/scenarios/tls.sh runs it against switchboard and prints the figure.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <string>
#include <vector>

namespace {

struct slot {
  int fd = -1;
  SSL* ssl = nullptr;
  bool connected = false;
  bool upgrading = false;  // the upgrade is sent; waiting for the 101
};

const char upgrade[] =
    "GET /connection/websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s HOST PORT [--seconds S] [--inflight K] [--tls 1.2|1.3] [--sources N] [--warmup S]\n",
                 argv[0]);
    return 2;
  }
  const char* host = argv[1];
  const int port = std::atoi(argv[2]);
  double seconds = 10, warmup = 1;
  int inflight = 64, sources = 32;
  std::string version = "1.3";
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (f == "--inflight") inflight = std::atoi(argv[i + 1]);
    else if (f == "--tls") version = argv[i + 1];
    else if (f == "--sources") sources = std::atoi(argv[i + 1]);
    else if (f == "--warmup") warmup = std::atof(argv[i + 1]);
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // every handshake is a full one
  const int v = version == "1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
  SSL_CTX_set_min_proto_version(ctx, v);
  SSL_CTX_set_max_proto_version(ctx, v);

  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) return 2;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<slot> slots(static_cast<std::size_t>(inflight));
  unsigned long next_source = 0;
  long done = 0, failed = 0, counted = 0;
  std::string first_error;

  auto start = [&](std::size_t i) {
    slot& s = slots[i];
    s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    linger lg{1, 0};
    setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | (5u << 8) | static_cast<unsigned>(1 + next_source++ % sources));
    ::bind(s.fd, reinterpret_cast<sockaddr*>(&src), sizeof(src));
    ::connect(s.fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
    s.ssl = SSL_new(ctx);
    SSL_set_fd(s.ssl, s.fd);
    SSL_set_connect_state(s.ssl);
    s.connected = false;
    s.upgrading = false;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
  };
  auto finish = [&](std::size_t i) {
    slot& s = slots[i];
    SSL_free(s.ssl);
    ::close(s.fd);  // RST: linger 0
    s.ssl = nullptr;
    s.fd = -1;
  };
  for (std::size_t i = 0; i < slots.size(); ++i) start(i);

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto measure_from = t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(warmup));
  const auto end = measure_from + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<epoll_event> events(1024);
  bool measuring = false;
  while (clock::now() < end) {
    if (!measuring && clock::now() >= measure_from) {
      measuring = true;
      counted = 0;
    }
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int j = 0; j < n; ++j) {
      std::size_t i = events[static_cast<std::size_t>(j)].data.u64;
      slot& s = slots[i];
      if (!s.connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          if (first_error.empty()) first_error = std::string("connect: ") + std::strerror(err);
          ++failed;
          finish(i);
          start(i);
          continue;
        }
        s.connected = true;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(ep, EPOLL_CTL_MOD, s.fd, &ev);
      }
      int rc;
      if (s.upgrading) {
        char buf[512];
        rc = SSL_read(s.ssl, buf, sizeof(buf));
        if (rc > 12 && std::memcmp(buf, "HTTP/1.1 101", 12) == 0) {
          ++done;
          ++counted;
          finish(i);
          start(i);
          continue;
        }
        if (rc > 0) {
          if (first_error.empty()) first_error = "not a 101 answer: " + std::string(buf, std::min(rc, 40));
          ++failed;
          finish(i);
          start(i);
          continue;
        }
      } else {
        rc = SSL_do_handshake(s.ssl);
        if (rc == 1) {
          s.upgrading = true;
          rc = SSL_write(s.ssl, upgrade, sizeof(upgrade) - 1);
          if (rc > 0) continue;
        }
      }
      int e = SSL_get_error(s.ssl, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
      if (first_error.empty()) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        first_error = buf;
      }
      ERR_clear_error();
      ++failed;
      finish(i);
      start(i);
    }
  }
  const double measured = std::chrono::duration<double>(clock::now() - measure_from).count();
  std::printf("{\"tls\":\"%s\",\"inflight\":%d,\"seconds\":%.1f,\"handshakes\":%ld,\"per_second\":%.0f,\"failed\":%ld%s%s%s}\n",
              version.c_str(), inflight, measured, counted, counted / measured, failed,
              first_error.empty() ? "" : ",\"first_error\":\"", first_error.c_str(), first_error.empty() ? "" : "\"");
  for (std::size_t i = 0; i < slots.size(); ++i) finish(i);
  SSL_CTX_free(ctx);
  return failed > done / 100 ? 1 : 0;
}
