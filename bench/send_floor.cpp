// The single-send floor (issue 17): what one small write to one idle TCP
// socket costs on this machine, kernel included, with nothing of ours in
// the way. A broadcast's gateway CPU per delivery is compared with it.
//
// usage: send_floor [N=19000] [ROUNDS=5] [PAYLOAD=120]
//
// N loopback connections, both ends in this process, spread over "cells":
// threads with private fd tables (unshare(CLONE_FILES)) of at most 9,000
// connections each (18,000 fds: the 20,000-fd limit per table), so N may be
// a million. Each round, every cell sends one WebSocket text frame of
// PAYLOAD bytes to each of its server-side sockets (one send() each, as the
// gateway does per subscriber), timed by the thread's CPU clock; then,
// untimed, it reads the frames back on the client side. On loopback the
// receiving socket's TCP work runs in the sender's softirq, so it is in the
// figure, as it is in the gateway's. Prints CPU µs per send (the floor)
// and sends per second per core.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <barrier>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int per_cell = 9000;

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "send_floor: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

struct cell_result {
  double send_cpu_s = 0;
  std::uint64_t sends = 0, refused = 0;
};

void run_cell(int id, int count, int rounds, const std::string& frame, std::barrier<>& ready, std::barrier<>& go,
              cell_result& out) {
  if (::unshare(CLONE_FILES) != 0) die("unshare(CLONE_FILES)");
  int lst = ::socket(AF_INET, SOCK_STREAM, 0);
  if (lst < 0) die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(addr);
  if (::bind(lst, reinterpret_cast<sockaddr*>(&addr), alen) != 0 || ::listen(lst, 4096) != 0) die("listen");
  ::getsockname(lst, reinterpret_cast<sockaddr*>(&addr), &alen);
  std::vector<int> servers, clients;
  servers.reserve(count);
  clients.reserve(count);
  for (int i = 0; i < count; ++i) {
    // Source addresses rotate (127.3.x.y): a million connections need more
    // than one address's ephemeral ports.
    int c = ::socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0) die("socket (client)");
    int one = 1;
    ::setsockopt(c, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    sockaddr_in src{};
    src.sin_family = AF_INET;
    const int k = id * per_cell + i;
    src.sin_addr.s_addr = htonl((127u << 24) | (3u << 16) | (static_cast<unsigned>(k / 250 % 250) << 8) |
                                static_cast<unsigned>(k % 250 + 1));
    if (::bind(c, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) die("bind (client)");
    if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) die("connect");
    int s = ::accept4(lst, nullptr, nullptr, SOCK_NONBLOCK);
    if (s < 0) die("accept");
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    servers.push_back(s);
    clients.push_back(c);
  }
  std::vector<char> sink(64 * 1024);
  ready.arrive_and_wait();
  for (int r = 0; r < rounds; ++r) {
    go.arrive_and_wait();
    const double t0 = thread_cpu_s();
    for (int s : servers) {
      ssize_t w = ::send(s, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w == static_cast<ssize_t>(frame.size())) {
        ++out.sends;
      } else {
        ++out.refused;
      }
    }
    out.send_cpu_s += thread_cpu_s() - t0;
    for (int c : clients) (void)::recv(c, sink.data(), sink.size(), MSG_DONTWAIT);  // untimed
  }
  for (int fd : servers) ::close(fd);
  for (int fd : clients) ::close(fd);
  ::close(lst);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 19000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  const int payload = argc > 3 ? std::atoi(argv[3]) : 120;
  if (n <= 0 || rounds <= 0 || payload <= 0 || payload > 125) {
    std::fprintf(stderr, "usage: send_floor [N>0] [ROUNDS>0] [PAYLOAD 1..125]\n");
    return 2;
  }
  std::string frame;
  frame.push_back(static_cast<char>(0x81));  // FIN + text
  frame.push_back(static_cast<char>(payload));
  frame.append(static_cast<std::size_t>(payload), 'x');

  const int cells = (n + per_cell - 1) / per_cell;
  std::vector<cell_result> results(static_cast<std::size_t>(cells));
  std::barrier<> ready(cells + 1), go(cells + 1);
  std::vector<std::thread> threads;
  auto t_setup = std::chrono::steady_clock::now();
  for (int c = 0; c < cells; ++c) {
    const int count = c + 1 < cells ? per_cell : n - per_cell * (cells - 1);
    threads.emplace_back(run_cell, c, count, rounds, std::cref(frame), std::ref(ready), std::ref(go),
                         std::ref(results[static_cast<std::size_t>(c)]));
  }
  ready.arrive_and_wait();
  const double setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_setup).count();
  for (int r = 0; r < rounds; ++r) go.arrive_and_wait();
  for (auto& t : threads) t.join();
  double cpu = 0;
  std::uint64_t sends = 0, refused = 0;
  for (const auto& r : results) {
    cpu += r.send_cpu_s;
    sends += r.sends;
    refused += r.refused;
  }
  const double us = sends ? cpu * 1e6 / static_cast<double>(sends) : 0;
  std::printf("connections %d in %d cells (set up in %.1f s), rounds %d, frame %zu B\n", n, cells, setup_s, rounds,
              frame.size());
  std::printf("sends %llu, refused %llu\n", static_cast<unsigned long long>(sends),
              static_cast<unsigned long long>(refused));
  std::printf("floor: %.2f us CPU per send (kernel included), %.0f sends/s per core\n", us, us > 0 ? 1e6 / us : 0.0);
  std::printf("{\"connections\": %d, \"sends\": %llu, \"cpu_us_per_send\": %.3f}\n", n,
              static_cast<unsigned long long>(sends), us);
  return refused ? 1 : 0;
}
