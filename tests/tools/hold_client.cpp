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
// usage: hold_client HOST PORT COUNT SOURCE_IP [--timeout S] [--inflight K]

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

enum class state : unsigned char { idle, connecting, open, closed };

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
  for (int i = 5; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--timeout") timeout_s = std::atoi(argv[i + 1]);
    else if (f == "--inflight") inflight_max = std::atoi(argv[i + 1]);
  }

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

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return fail("epoll_create1");

  std::vector<int> fds(static_cast<size_t>(count), -1);
  std::vector<state> st(static_cast<size_t>(count), state::idle);
  int next = 0, inflight = 0, open = 0, closed = 0;
  bool reported_connected = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::vector<epoll_event> events(1024);
  char buf[4096];

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
        st[idx] = state::open;
        --inflight;
        ++open;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u32 = idx;
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        if (!(e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) continue;
      }
      if (st[idx] == state::open && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        ssize_t r = ::read(fd, buf, sizeof(buf));
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
