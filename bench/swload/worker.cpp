// swload worker, the loop and the scenario control: the phases (connect,
// wait for `go`, run, drain), the publishing schedule of broadcast and
// chat, the api rounds, the reconnect scenario's drop and reconnect, the
// parent's commands and the reports back. The worker class and the phases
// are described in worker.hpp.

#include "worker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <set>
#include <vector>

namespace swload {

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

long vm_rss_kib(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/status", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      v = std::atol(line + 6);
      break;
    }
  }
  std::fclose(f);
  return v;
}

std::vector<long> pick_targets(long n, long k) {
  // Floyd's sampling: k distinct values without a permutation of all n.
  k = std::min(k, n);
  std::mt19937_64 rng(20240607);
  std::set<long> picked;
  for (long j = n - k; j < n; ++j) {
    long v = std::uniform_int_distribution<long>(0, j)(rng);
    if (!picked.insert(v).second) picked.insert(j);
  }
  return {picked.begin(), picked.end()};
}

namespace in_worker {

int worker::run() {
  // One token first: OpenSSL sets up its digest tables on first use, a
  // one-off cost that is not per connection.
  if (_o.proto == protocol::centrifuge) wire::connect_command(_o.secret, "warm-up", "");
  long rss0 = vm_rss_kib(getpid());
  _ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event pev{};
  pev.events = EPOLLIN;
  pev.data.u32 = parent_tag;
  if (_ep < 0 || epoll_ctl(_ep, EPOLL_CTL_ADD, _plan.from_parent, &pev) != 0) return 1;
  // Per-connection memory starts here, so the RSS delta below includes it.
  _conns.resize(static_cast<std::size_t>(_total));
  if (_chat) _room_seq.assign(static_cast<std::size_t>(_clients * _o.room_size), 0);
  if (_reconnect) _offsets.assign(static_cast<std::size_t>(_clients), 0);

  _dst.sin_family = AF_INET;
  // A cluster: each worker's clients on one node (--ports), the nodes in turn.
  int port = _o.ports.empty() ? _o.port : _o.ports[static_cast<std::size_t>(_plan.index) % _o.ports.size()];
  _dst.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, _o.host.c_str(), &_dst.sin_addr);
  _src_first = _o.src_first;
  _src_count = _o.src_last - _o.src_first + 1;
  _src_start = static_cast<std::uint32_t>(static_cast<std::uint64_t>(_src_count) * _plan.index / _plan.procs);
  _rate = _o.rate / _plan.procs;
  _inflight_max = std::max<long>(1, _o.inflight / _plan.procs);
  _pending = _total;
  _ramp_start = now_ns();
  _c.first_connect_ns = _ramp_start;

  std::vector<epoll_event> events(1024);
  std::int64_t next_report = _ramp_start + 250 * ms_ns;
  std::int64_t next_timeout_check = _ramp_start + 500 * ms_ns;
  while (true) {
    std::int64_t now = now_ns();
    switch (_phase) {
      case phase::connecting:
      case phase::reconnecting:
        start_due(now);
        if (now >= next_timeout_check) {
          check_timeouts(now);
          next_timeout_check = now + 500 * ms_ns;
        }
        if (_next_start == to_start() && _pending == 0) {
          if (_reconnecting) {
            end_reconnect();
            break;
          }
          _c.all_ready_ns = now;
          _c.rss_delta_kib = vm_rss_kib(getpid()) - rss0;
          send_report(report_kind::ready);
          _phase = phase::waiting_go;
        }
        break;
      case phase::waiting_go:
        break;
      case phase::running:
        if (_o.scen == scenario::api || _reconnect) break;  // holding until the parent's next command
        if (_o.scen == scenario::idle) {
          if (now >= _t0 + static_cast<std::int64_t>(_o.hold * s_ns)) {
            send_report(report_kind::final);
            return 0;
          }
          break;
        }
        publish_due(now);
        if (_pub_next >= _pub_total && now >= _run_end) end_publishing();
        break;
      case phase::draining:
        if (_reconnect) {
          if (_reached < _relevant && now < _drain_end) break;
          // Whatever a live client still misses of the final offset is lost.
          for (long i = 0; i < _clients; ++i) {
            std::uint64_t last = _offsets[static_cast<std::size_t>(i)];
            if (_conns[static_cast<std::size_t>(i)].st == state::ready && last < _target) _c.lost += _target - last;
          }
          _c.expected = _c.delivered - _c.dup + _c.lost;
          send_report(report_kind::final);
          return 0;
        }
        if ((_expected_known && _c.delivered - _c.dup >= _c.expected) || now >= _drain_end) {
          if (_o.scen == scenario::api && _round < api_rounds(_o)) {
            end_round();
            break;
          }
          send_report(report_kind::final);
          return 0;
        }
        break;
    }
    if (now >= next_report) {
      send_report(report_kind::progress);
      next_report = now + 250 * ms_ns;
    }
    int timeout = std::min<int>(next_timeout_ms(now), static_cast<int>((next_report - now + ms_ns - 1) / ms_ns));
    int n = epoll_wait(_ep, events.data(), static_cast<int>(events.size()), std::max(timeout, 0));
    // Commands first: an api round is announced before it is published, and
    // its first deliveries may come in the same batch.
    for (int j = 0; j < n; ++j) {
      if (events[static_cast<std::size_t>(j)].data.u32 == parent_tag) on_command();
    }
    for (int j = 0; j < n; ++j) {
      const auto& ev = events[static_cast<std::size_t>(j)];
      if (ev.data.u32 != parent_tag) on_event(static_cast<long>(ev.data.u32), ev.events);
    }
  }
}

int worker::next_timeout_ms(std::int64_t now) const {
  auto until = [now](std::int64_t t) {
    return static_cast<int>(std::clamp<std::int64_t>((t - now + ms_ns - 1) / ms_ns, 0, 100));
  };
  switch (_phase) {
    case phase::connecting:
    case phase::reconnecting:
      if (_next_start < to_start() && _inflight < _inflight_max) return 1;
      return retry_due() >= 0 ? until(retry_due()) : 100;
    case phase::waiting_go:
      return 100;
    case phase::running:
      if (_o.scen == scenario::api || _reconnect) return 100;
      if (_o.scen == scenario::idle) return until(_t0 + static_cast<std::int64_t>(_o.hold * s_ns));
      if (_pub_next < _pub_total)
        return until(_t0 + static_cast<std::int64_t>(static_cast<double>(_pub_next) * _pub_interval_ns));
      return until(_run_end);
    case phase::draining:
      return until(_drain_end);
  }
  return 100;
}

// reconnect: resets the connections of the dropped clients at once (RST,
// no close frame: SO_LINGER 0), keeping their offsets.
void worker::drop_clients() {
  for (long i = 0; i < _clients; ++i) {
    conn& k = _conns[static_cast<std::size_t>(i)];
    if (k.st != state::ready || !dropped_client(_o.drop, global(i))) continue;
    linger lg{1, 0};
    setsockopt(k.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    ::close(k.fd);
    std::free(k.tail);
    std::free(k.out);
    k = conn{};  // state::idle until started again
    _redo.push_back(static_cast<std::uint32_t>(i));
    ++_c.dropped;
  }
  send_report(report_kind::dropped);
}

// reconnect: the dropped clients connect again, ramped like the first
// connects; they are all recovered once their offsets reach missed_offset.
void worker::begin_reconnect(std::uint64_t missed_offset, std::int64_t now) {
  _reconnecting = true;
  _next_start = 0;
  _inflight = 0;
  _rate = _o.reconnect_rate / _plan.procs;
  _inflight_max = std::max<long>(1, _o.reconnect_inflight / _plan.procs);
  _pending = static_cast<long>(_redo.size());
  _ramp_start = _reconnect_ns = now;
  set_target(missed_offset, true, now);
  _phase = phase::reconnecting;
}

void worker::end_reconnect() {
  _reconnecting = false;
  send_report(report_kind::back);
  _phase = phase::running;
}

void worker::on_command() {
  command cmd{};
  ssize_t r = ::read(_plan.from_parent, &cmd, sizeof(cmd));
  if (r == 0) _exit(1);  // the parent is gone
  if (r != static_cast<ssize_t>(sizeof(cmd))) return;
  if (cmd.kind == command_kind::go && _phase == phase::waiting_go) {
    begin_run(cmd.value);
  } else if (cmd.kind == command_kind::expect && !_plan.publisher) {
    _c.expected = static_cast<std::uint64_t>(cmd.value) * _c.ready;
    _expected_known = true;
  } else if (cmd.kind == command_kind::round && _phase == phase::running && _o.scen == scenario::api) {
    begin_round(static_cast<int>(cmd.value), now_ns());
  } else if (_reconnect && _phase == phase::running) {
    auto value = static_cast<std::uint64_t>(cmd.value);
    std::int64_t now = now_ns();
    if (cmd.kind == command_kind::drop) {
      drop_clients();
    } else if (cmd.kind == command_kind::reconnect) {
      begin_reconnect(value, now);
    } else if (cmd.kind == command_kind::settle) {
      set_target(value, false, now);
      _drain_end = now + static_cast<std::int64_t>(_o.drain * s_ns);
      _phase = phase::draining;
    }
  }
}

// api: a round starts; the counters and the histogram start over, and the
// worker works out what its ready clients are owed.
void worker::begin_round(int round, std::int64_t now) {
  _round = round;
  _c.delivered = _c.dup = 0;
  _c.last_delivery_ns = 0;
  _hist = histogram{};
  _c.expected = 0;
  if (round == broadcast_round) {
    _c.expected = _c.ready;
  } else {
    for (long g : pick_targets(_o.n, _o.targets)) {
      if (g >= _plan.first && g < _plan.last && _conns[static_cast<std::size_t>(g - _plan.first)].st == state::ready) {
        ++_c.expected;
      }
    }
  }
  _expected_known = true;
  _drain_end = now + static_cast<std::int64_t>(_o.drain * s_ns);
  _phase = phase::draining;
}

void worker::end_round() {
  send_report(report_kind::round);
  _expected_known = false;
  _phase = phase::running;
}

void worker::begin_run(std::int64_t t0) {
  _t0 = t0;
  _run_end = t0 + static_cast<std::int64_t>(_o.duration * s_ns);
  _drain_end = _run_end + static_cast<std::int64_t>(_o.drain * s_ns);
  _phase = phase::running;
  if (_o.scen == scenario::broadcast && _plan.publisher) {
    _order.push_back(_clients);
    _pub_total = static_cast<std::uint64_t>(std::ceil(_o.duration * _o.pub_rate));
    _pub_interval_ns = s_ns / _o.pub_rate;
  } else if (_chat) {
    // Every ready client publishes msg_rate per second; the publications of
    // all clients are spread evenly over time, in a shuffled order so that
    // room members do not publish back to back.
    _room_ready.assign(static_cast<std::size_t>((_clients + _o.room_size - 1) / _o.room_size), 0);
    for (long i = 0; i < _clients; ++i) {
      if (_conns[static_cast<std::size_t>(i)].st != state::ready) continue;
      _order.push_back(i);
      ++_room_ready[static_cast<std::size_t>(i / _o.room_size)];
    }
    std::shuffle(_order.begin(), _order.end(), std::mt19937(static_cast<unsigned>(_plan.index) + 1));
    _pub_total =
        static_cast<std::uint64_t>(std::llround(_o.duration * _o.msg_rate * static_cast<double>(_order.size())));
    _pub_interval_ns = _order.empty() ? 0 : s_ns / (_o.msg_rate * static_cast<double>(_order.size()));
  }
}

void worker::publish_due(std::int64_t now) {
  for (int b = 0; b < publish_batch && _pub_next < _pub_total; ++b) {
    if (_t0 + static_cast<std::int64_t>(static_cast<double>(_pub_next) * _pub_interval_ns) > now) return;
    publish(_order[_pub_next % _order.size()]);
    ++_pub_next;
  }
}

void worker::publish(long i) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (k.st != state::ready) return;
  std::uint32_t seq = ++k.pub_seq;
  char head[96];
  std::snprintf(head, sizeof(head), R"({"t":%lld,"s":%u,"p":%ld)", static_cast<long long>(now_ns()), seq, global(i));
  std::string data = head;
  if (_o.pad) {
    // --pad: chat-like text (words from a small vocabulary, varied by the
    // sequence number), so that compression sees what chat looks like
    // rather than one repeated byte.
    static constexpr const char* words[] = {"hello", "team", "the", "build", "is", "green", "again", "after",
                                            "lunch", "can", "you", "review", "my", "change", "thanks", "ok"};
    data += R"(,"text":")";
    for (std::uint32_t w = seq; data.size() < std::strlen(head) + 10 + _o.pad; ++w) {
      data += words[(w * 7 + w / 5) % 16];
      data += ' ';
    }
    data += '"';
  }
  data += '}';
  std::string ch = channel_for(i);
  std::string msg = _o.proto == protocol::centrifuge
                        ? std::string(R"({"id":)") + std::to_string(seq + 2) + R"(,"publish":{"channel":")" + ch +
                              R"(","data":)" + data + "}}"
                        : "pub " + ch + " " + data;
  ++_c.pubs;
  send_text(i, msg);
}

// Publishing is over: work out the deliveries this worker's clients are owed.
void worker::end_publishing() {
  _phase = phase::draining;
  if (_o.scen == scenario::broadcast && _plan.publisher) {
    _c.expected = _c.pubs * _c.ready;
    _expected_known = true;
    send_report(report_kind::published);  // the parent tells the other workers
  } else if (_chat) {
    // Rooms never straddle workers, so every member of a local room is local.
    _c.expected = 0;
    for (long i : _order) {
      _c.expected += static_cast<std::uint64_t>(_conns[static_cast<std::size_t>(i)].pub_seq) *
                     _room_ready[static_cast<std::size_t>(i / _o.room_size)];
    }
    _expected_known = true;
  }
}

void worker::send_report(report_kind kind) {
  report r{kind, static_cast<std::uint32_t>(_plan.index), _c};
  // Small reports are atomic pipe writes; the final one (with the two
  // histograms) is larger and the parent reads it whole.
  auto write_all = [this](const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(_plan.to_parent, c, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) _exit(1);
      c += w;
      n -= static_cast<std::size_t>(w);
    }
  };
  write_all(&r, sizeof(r));
  if (kind == report_kind::round || kind == report_kind::final) {
    write_all(&_hist, sizeof(_hist));
    write_all(&_attempt_hist, sizeof(_attempt_hist));
  }
}

}  // namespace in_worker

int run_worker(const options& o, const worker_plan& plan) {
  in_worker::worker w(o, plan);
  return w.run();
}

}  // namespace swload
