// swload parent, the coordinator: forks the workers, reads their reports,
// relays the phase changes between them (all ready → go, a broadcast's
// publisher done → expect), prints a progress line a second on stderr, and
// at the end reaps the workers. The api and reconnect scenarios' own steps
// are drivers.cpp's, the summary summary.cpp's.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "parent.hpp"

namespace swload::in_parent {

namespace {

bool read_all(int fd, void* p, std::size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace

double servers_cpu_s(const options& o) {
  double total = server_cpu_s(o.server_pid);
  for (pid_t p : o.also_pids) total += server_cpu_s(p);
  return total;
}

long servers_rss_kib(const options& o) {
  long total = vm_rss_kib(o.server_pid);
  for (pid_t p : o.also_pids) total += vm_rss_kib(p);
  return total;
}

double server_cpu_s(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char buf[1024];
  std::size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
  const char* p = std::strrchr(buf, ')');
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void tell(int fd, command_kind kind, std::int64_t value) {
  command c{kind, value};
  (void)!::write(fd, &c, sizeof(c));
}

counters sum(const std::vector<counters>& all) {
  counters t;
  t.first_connect_ns = 0;
  for (const auto& c : all) {
    t.started += c.started;
    t.ready += c.ready;
    for (int r = 0; r < reasons; ++r) t.failed[r] += c.failed[r];
    t.pubs += c.pubs;
    t.pub_errors += c.pub_errors;
    t.expected += c.expected;
    t.delivered += c.delivered;
    t.compressed += c.compressed;
    t.wire_bytes += c.wire_bytes;
    t.text_bytes += c.text_bytes;
    t.dup += c.dup;
    if (c.first_connect_ns && (!t.first_connect_ns || c.first_connect_ns < t.first_connect_ns))
      t.first_connect_ns = c.first_connect_ns;
    t.all_ready_ns = std::max(t.all_ready_ns, c.all_ready_ns);
    t.last_delivery_ns = std::max(t.last_delivery_ns, c.last_delivery_ns);
    t.rss_delta_kib += c.rss_delta_kib;
    if (c.last_close_code) t.last_close_code = c.last_close_code;
    if (c.last_errno) t.last_errno = c.last_errno;
    t.dropped += c.dropped;
    t.back += c.back;
    t.back_failed += c.back_failed;
    t.refused += c.refused;
    t.missed += c.missed;
    t.recovered += c.recovered;
    t.not_recovered += c.not_recovered;
    t.epoch_changes += c.epoch_changes;
    t.lost += c.lost;
    t.all_back_ns = std::max(t.all_back_ns, c.all_back_ns);
    // All recovered only when every worker that dropped clients says so.
    if (c.dropped && !c.all_recovered_ns) t.all_recovered_ns = -1;
    if (t.all_recovered_ns >= 0) t.all_recovered_ns = std::max(t.all_recovered_ns, c.all_recovered_ns);
  }
  return t;
}

std::string failures(const counters& c) {
  std::string s;
  for (int r = 0; r < reasons; ++r) {
    if (!c.failed[r]) continue;
    s += (s.empty() ? "" : ", ") + std::string(reason_name(r)) + " " + std::to_string(c.failed[r]);
  }
  return s;
}

std::size_t coordinator::gone_count() const {
  return static_cast<std::size_t>(std::count(_gone.begin(), _gone.end(), true));
}

void coordinator::tell_all(command_kind kind, std::int64_t value) const {
  for (int fd : _downs) tell(fd, kind, value);
}

bool coordinator::start() {
  _server_rss0 = _o.server_pid ? servers_rss_kib(_o) : -1;
  for (auto& plan : _plans) {
    int up[2], down[2];
    if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0) {
      std::perror("swload: pipe");
      return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("swload: fork");
      return false;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (int fd : _ups) ::close(fd);
      for (int fd : _downs) ::close(fd);
      ::close(up[0]);
      ::close(down[1]);
      plan.to_parent = up[1];
      plan.from_parent = down[0];
      std::_Exit(run_worker(_o, plan));
    }
    ::close(up[1]);
    ::close(down[0]);
    _pids.push_back(pid);
    _ups.push_back(up[0]);
    _downs.push_back(down[1]);
  }

  _procs = _plans.size();
  _latest.resize(_procs);
  _done.assign(_procs, false);
  _gone.assign(_procs, false);
  _start = _last_progress = now_ns();
  _pfds.resize(_procs);
  for (std::size_t w = 0; w < _procs; ++w) _pfds[w] = {_ups[w], POLLIN, 0};
  return true;
}

void coordinator::run() {
  const std::int64_t deadline = _start + static_cast<std::int64_t>(_o.timeout * 1e9);
  while (_finals + gone_count() < _procs) {
    std::int64_t now = now_ns();
    if (now >= deadline) {
      _timed_out = true;
      break;
    }
    if (_api && _t0 && api_step(now)) continue;
    if (_reconnect && _t0 && now >= _t0 && reconnect_step(now)) continue;
    if (now - _last_progress >= 1'000'000'000) progress(now);
    int n = poll(_pfds.data(), _pfds.size(), 100);
    for (std::size_t w = 0; n > 0 && w < _procs; ++w) {
      if (!(_pfds[w].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      report r{};
      if (!read_all(_ups[w], &r, sizeof(r))) {
        // EOF before the final report: the worker died.
        _gone[w] = !_done[w];
        _worker_died = _worker_died || !_done[w];
        _pfds[w].fd = -1;
        continue;
      }
      on_report(w, r);
    }
  }
  if (_o.server_pid) _server_cpu1 = servers_cpu_s(_o);
  for (std::size_t w = 0; w < _procs; ++w) {
    if (!_done[w] && !_gone[w]) ::kill(_pids[w], SIGKILL);
  }
  for (pid_t pid : _pids) waitpid(pid, nullptr, 0);
}

void coordinator::on_report(std::size_t w, const report& r) {
  _latest[w] = r.c;
  switch (r.kind) {
    case report_kind::progress:
      break;
    case report_kind::ready:
      if (++_ready_workers == _procs) all_ready();
      break;
    case report_kind::published:
      tell_all(command_kind::expect, static_cast<std::int64_t>(r.c.pubs));
      break;
    case report_kind::dropped:
    case report_kind::back:
      ++_rr.reports;
      break;
    case report_kind::round:
    case report_kind::final: {
      histogram h, attempts;
      if (!read_all(_ups[w], &h, sizeof(h)) || !read_all(_ups[w], &attempts, sizeof(attempts))) {
        _gone[w] = true;
        _worker_died = true;
        break;
      }
      if (_api && !_rounds.empty()) on_round_report(w, r.c, h);
      if (r.kind == report_kind::round) break;
      _hist.merge(h);
      _attempt_hist.merge(attempts);
      _done[w] = true;
      _pfds[w].fd = -1;
      ++_finals;
      break;
    }
  }
}

// Every worker is ready: the server's RSS once it has settled, then `go`.
void coordinator::all_ready() {
  if (_o.server_pid) {
    ::usleep(static_cast<useconds_t>(_o.settle * 1e6));
    _server_rss1 = servers_rss_kib(_o);
    _server_cpu0 = servers_cpu_s(_o);
  }
  _t0 = now_ns() + 100'000'000;  // every worker hears `go` before it
  tell_all(command_kind::go, _t0);
  if (_api) {
    counters c = sum(_latest);
    double s = (c.all_ready_ns - c.first_connect_ns) / 1e9;
    std::printf("swload: all ready: %llu of %ld in %.2f s (%.0f/s), %llu failed; holding %.0f s\n",
                static_cast<unsigned long long>(c.ready), _o.n, s, s > 0 ? static_cast<double>(c.ready) / s : 0,
                static_cast<unsigned long long>(c.failed_total()), _o.hold);
    std::fflush(stdout);
  }
}

// Short runs (3 s planned or less) print no progress for their first 3 s.
void coordinator::progress(std::int64_t now) {
  const double planned = _o.scen == scenario::idle ? _o.hold : _o.duration;
  counters t = sum(_latest);
  if (planned > 3 || now - _start > 3'000'000'000) {
    std::fprintf(stderr, "swload %6.1fs  started %llu  ready %llu  failed %llu%s%s%s", (now - _start) / 1e9,
                 static_cast<unsigned long long>(t.started), static_cast<unsigned long long>(t.ready),
                 static_cast<unsigned long long>(t.failed_total()), t.failed_total() ? " (" : "", failures(t).c_str(),
                 t.failed_total() ? ")" : "");
    if (_reconnect) {
      std::fprintf(stderr, "  dropped %llu  back %llu", static_cast<unsigned long long>(t.dropped),
                   static_cast<unsigned long long>(t.back));
    }
    if (_publishes) {
      std::fprintf(
          stderr, "  pubs %llu  delivered %llu  %.0f msgs/s", static_cast<unsigned long long>(t.pubs),
          static_cast<unsigned long long>(t.delivered),
          static_cast<double>(t.delivered - _last_delivered) * 1e9 / static_cast<double>(now - _last_progress));
    }
    std::fputc('\n', stderr);
  }
  _last_delivered = t.delivered;
  _last_progress = now;
}

}  // namespace swload::in_parent
