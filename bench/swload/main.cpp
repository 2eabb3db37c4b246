// swload: a lean WebSocket client fleet for side-by-side benchmarks
// (bench/scenarios/peers.sh). This file is the parent: it parses the flags,
// forks the workers (worker.cpp), relays the phase changes between them,
// prints a progress line every second on stderr, and at the end a summary
// and exactly one line of JSON starting with {"swload": on stdout. In the
// api scenario it also publishes the rounds through the server API and
// prints "swload: all ready" on stdout as soon as every client is in; in the
// reconnect scenario it drives the drop, publishes the missed and the live
// publications through the server API, and samples the server's CPU around
// the reconnect.
//
// Exit: 0 when every connection became ready and stayed (reconnect: came
// back, recovered), and nothing was lost (reconnect: nor duplicated); 1
// otherwise; 2 on bad flags; 3 on --timeout.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "parent.hpp"
#include "swload.hpp"
#include "wire.hpp"

namespace {

using namespace swload;

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
    t.dup += c.dup;
    if (c.first_connect_ns && (!t.first_connect_ns || c.first_connect_ns < t.first_connect_ns)) t.first_connect_ns = c.first_connect_ns;
    t.all_ready_ns = std::max(t.all_ready_ns, c.all_ready_ns);
    t.last_delivery_ns = std::max(t.last_delivery_ns, c.last_delivery_ns);
    t.rss_delta_kib += c.rss_delta_kib;
    if (c.last_close_code) t.last_close_code = c.last_close_code;
    if (c.last_errno) t.last_errno = c.last_errno;
    t.dropped += c.dropped;
    t.back += c.back;
    t.back_failed += c.back_failed;
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

// api: one round as the parent saw it.
struct api_round {
  std::int64_t published_ns = 0;  // the payload's "t", taken before the request
  double request_ms = 0;          // the API request, until its answer
  int status = 0;                 // HTTP status (0: no answer)
  std::string reply;
  std::size_t reports = 0;
  std::vector<counters> workers;
  histogram hist;
  counters total() const { return sum(workers); }
  double time_to_all_s() const {
    std::int64_t last = total().last_delivery_ns;
    return last > published_ns ? (last - published_ns) / 1e9 : 0;
  }
};

// POSTs body (which ends in `"data":`) completed with the payload
// {"t":<CLOCK_MONOTONIC ns>,"s":s} to the server API; returns the stamp.
std::int64_t post_stamped(const options& o, const std::string& path, std::string body, long s, int& status,
                          std::string& reply) {
  std::int64_t t = now_ns();
  body += R"({"t":)" + std::to_string(t) + R"(,"s":)" + std::to_string(s) + "}}";
  status = wire::http_post(o.host, o.api_port, path, o.api_key, body, 30, reply);
  return t;
}

// Announces round r to the workers, then publishes it: --channel in the
// broadcast round, the targets' personal channels (one `broadcast` call) in
// the personal round. The payload is {"t":<CLOCK_MONOTONIC ns>,"s":r}.
void publish_round(const options& o, int r, const std::vector<int>& downs, api_round& out) {
  std::string path, body;
  if (r == broadcast_round) {
    path = "/api/publish";
    body = R"({"channel":")" + o.channel + R"(","data":)";
  } else {
    path = "/api/broadcast";
    body = R"({"channels":[)";
    bool first = true;
    for (long g : pick_targets(o.n, o.targets)) {
      body += (first ? "\"" : ",\"") + wire::expand(o.personal, g) + "\"";
      first = false;
    }
    body += R"(],"data":)";
  }
  for (int fd : downs) tell(fd, command_kind::round, r);
  out.published_ns = post_stamped(o, path, body, r, out.status, out.reply);
  out.request_ms = (now_ns() - out.published_ns) / 1e6;
}

// reconnect: the phases as the parent drives them, and what it saw.
struct reconnect_run {
  enum class step { holding, dropping, away, reconnecting, settling } at = step::holding;
  std::size_t reports = 0;  // dropped / back reports of the current step
  std::int64_t drop_ns = 0, reconnect_ns = 0, back_ns = 0;
  double cpu_drop = -1, cpu_reconnect = -1, cpu_back = -1;  // the server's CPU seconds then
  double missed_ms = 0;                                    // publishing the missed ones
  bool before_done = false;
  std::uint64_t before_offset = 0, missed_offset = 0, final_offset = 0;
  long published = 0, api_errors = 0;
  std::string api_error;  // the last one
};

// reconnect: publishes `count` publications to --channel through the server
// API, "s" from `first` on; returns the offset of the last one (the API
// answers {"result":{"offset":K,"epoch":"…"}} on a channel with history).
std::uint64_t publish_offsets(const options& o, long first, long count, reconnect_run& rr) {
  std::uint64_t offset = 0;
  for (long s = first; s < first + count; ++s) {
    int status = 0;
    std::string reply;
    post_stamped(o, "/api/publish", R"({"channel":")" + o.channel + R"(","data":)", s, status, reply);
    std::uint64_t k = 0;
    if (status == 200 && wire::to_u64(wire::member(wire::member(reply, "result"), "offset"), k)) {
      offset = k;
      ++rr.published;
    } else {
      ++rr.api_errors;
      while (!reply.empty() && std::isspace(static_cast<unsigned char>(reply.back()))) reply.pop_back();
      rr.api_error = "HTTP " + std::to_string(status) + ": " + reply.substr(0, 200);
      if (status == 200) rr.api_error += " (no offset: is the channel in a namespace with history?)";
    }
  }
  return offset;
}

std::string failures(const counters& c) {
  std::string s;
  for (int r = 0; r < reasons; ++r) {
    if (!c.failed[r]) continue;
    s += (s.empty() ? "" : ", ") + std::string(reason_name(r)) + " " + std::to_string(c.failed[r]);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  options o = in_parent::parse_options(argc, argv);
  std::vector<worker_plan> plans = in_parent::plan_workers(o);
  const bool publishes = o.scen != scenario::idle;
  ::signal(SIGPIPE, SIG_IGN);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  long server_rss0 = o.server_pid ? vm_rss_kib(o.server_pid) : -1;
  std::vector<pid_t> pids;
  std::vector<int> ups, downs;
  for (auto& plan : plans) {
    int up[2], down[2];
    if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0) {
      std::perror("swload: pipe");
      return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("swload: fork");
      return 1;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (int fd : ups) ::close(fd);
      for (int fd : downs) ::close(fd);
      ::close(up[0]);
      ::close(down[1]);
      plan.to_parent = up[1];
      plan.from_parent = down[0];
      std::_Exit(run_worker(o, plan));
    }
    ::close(up[1]);
    ::close(down[0]);
    pids.push_back(pid);
    ups.push_back(up[0]);
    downs.push_back(down[1]);
  }

  const std::size_t procs = plans.size();
  std::vector<counters> latest(procs);
  std::vector<bool> done(procs, false), gone(procs, false);
  std::size_t ready_workers = 0, finals = 0;
  histogram hist;
  const std::int64_t start = now_ns();
  const std::int64_t deadline = start + static_cast<std::int64_t>(o.timeout * 1e9);
  const double planned = o.scen == scenario::idle ? o.hold : o.duration;
  std::int64_t t0 = 0, last_progress = start;
  std::uint64_t last_delivered = 0;
  long server_rss1 = -1;
  double server_cpu0 = -1, server_cpu1 = -1;
  bool timed_out = false, worker_died = false;
  const bool api = o.scen == scenario::api;
  std::vector<api_round> rounds;  // api: the rounds published so far
  // api: publishing the rounds one after the other, each once the previous
  // one's reports (round, or final for the last) are all in.
  auto next_round = [&] {
    rounds.emplace_back();
    rounds.back().workers.resize(procs);
    publish_round(o, static_cast<int>(rounds.size()), downs, rounds.back());
  };
  auto on_round_report = [&](std::size_t w, const counters& c, const histogram& h) {
    api_round& r = rounds.back();
    r.workers[w] = c;
    r.hist.merge(h);
    ++r.reports;
  };
  auto round_complete = [&] {
    return !rounds.empty() && rounds.back().reports + static_cast<std::size_t>(std::count(gone.begin(), gone.end(), true)) >= procs;
  };
  std::vector<pollfd> pfds(procs);
  for (std::size_t w = 0; w < procs; ++w) pfds[w] = {ups[w], POLLIN, 0};
  const bool reconnect = o.scen == scenario::reconnect;
  reconnect_run rr;
  auto cpu_now = [&] { return o.server_pid ? server_cpu_s(o.server_pid) : -1.0; };
  auto tell_all = [&](command_kind kind, std::int64_t value) {
    for (int fd : downs) tell(fd, kind, value);
  };
  // reconnect: the next step, when it is due; true when one was taken.
  auto reconnect_step = [&](std::int64_t now) {
    using step = reconnect_run::step;
    bool all_reported = rr.reports + static_cast<std::size_t>(std::count(gone.begin(), gone.end(), true)) >= procs;
    switch (rr.at) {
      case step::holding:
        if (!rr.before_done) {
          rr.before_done = true;
          rr.before_offset = publish_offsets(o, 1, o.before, rr);
          return true;
        }
        if (now < t0 + static_cast<std::int64_t>(o.hold * 1e9)) return false;
        rr.cpu_drop = cpu_now();
        rr.drop_ns = now_ns();
        tell_all(command_kind::drop, rr.drop_ns);
        rr.at = step::dropping;
        return true;
      case step::dropping: {
        if (!all_reported) return false;
        // Every dropped connection is reset: the clients miss what follows.
        std::int64_t p0 = now_ns();
        rr.missed_offset = o.missed ? publish_offsets(o, o.before + 1, o.missed, rr) : rr.before_offset;
        rr.missed_ms = (now_ns() - p0) / 1e6;
        rr.reports = 0;
        rr.at = step::away;
        return true;
      }
      case step::away:
        if (now < rr.drop_ns + static_cast<std::int64_t>(o.away * 1e9)) return false;
        rr.cpu_reconnect = cpu_now();
        rr.reconnect_ns = now_ns();
        tell_all(command_kind::reconnect, static_cast<std::int64_t>(rr.missed_offset));
        rr.at = step::reconnecting;
        return true;
      case step::reconnecting: {
        if (!all_reported) return false;
        rr.cpu_back = cpu_now();
        rr.back_ns = now_ns();
        std::uint64_t live = publish_offsets(o, o.before + o.missed + 1, o.live, rr);
        rr.final_offset = live ? live : rr.missed_offset;
        tell_all(command_kind::settle, static_cast<std::int64_t>(rr.final_offset));
        rr.at = step::settling;
        return true;
      }
      case step::settling:
        return false;
    }
    return false;
  };

  while (finals + std::count(gone.begin(), gone.end(), true) < procs) {
    std::int64_t now = now_ns();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    if (api && t0 && now >= t0 + static_cast<std::int64_t>(o.hold * 1e9) &&
        (rounds.empty() || (round_complete() && static_cast<int>(rounds.size()) < api_rounds(o)))) {
      next_round();
      continue;
    }
    if (reconnect && t0 && now >= t0 && reconnect_step(now)) continue;
    if (now - last_progress >= 1'000'000'000) {
      counters t = sum(latest);
      if (planned > 3 || now - start > 3'000'000'000) {
        std::fprintf(stderr, "swload %6.1fs  started %llu  ready %llu  failed %llu%s%s%s", (now - start) / 1e9,
                     static_cast<unsigned long long>(t.started), static_cast<unsigned long long>(t.ready),
                     static_cast<unsigned long long>(t.failed_total()), t.failed_total() ? " (" : "",
                     failures(t).c_str(), t.failed_total() ? ")" : "");
        if (reconnect) {
          std::fprintf(stderr, "  dropped %llu  back %llu", static_cast<unsigned long long>(t.dropped),
                       static_cast<unsigned long long>(t.back));
        }
        if (publishes) {
          std::fprintf(stderr, "  pubs %llu  delivered %llu  %.0f msgs/s", static_cast<unsigned long long>(t.pubs),
                       static_cast<unsigned long long>(t.delivered),
                       static_cast<double>(t.delivered - last_delivered) * 1e9 / static_cast<double>(now - last_progress));
        }
        std::fputc('\n', stderr);
      }
      last_delivered = t.delivered;
      last_progress = now;
    }
    int n = poll(pfds.data(), pfds.size(), 100);
    for (std::size_t w = 0; n > 0 && w < procs; ++w) {
      if (!(pfds[w].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      report r{};
      if (!read_all(ups[w], &r, sizeof(r))) {
        // EOF before the final report: the worker died.
        gone[w] = !done[w];
        worker_died = worker_died || !done[w];
        pfds[w].fd = -1;
        continue;
      }
      latest[w] = r.c;
      switch (r.kind) {
        case report_kind::progress:
          break;
        case report_kind::ready:
          if (++ready_workers == procs) {
            if (o.server_pid) {
              ::usleep(static_cast<useconds_t>(o.settle * 1e6));
              server_rss1 = vm_rss_kib(o.server_pid);
              server_cpu0 = server_cpu_s(o.server_pid);
            }
            t0 = now_ns() + 100'000'000;  // every worker hears `go` before it
            for (int fd : downs) tell(fd, command_kind::go, t0);
            if (api) {
              counters c = sum(latest);
              double s = (c.all_ready_ns - c.first_connect_ns) / 1e9;
              std::printf("swload: all ready: %llu of %ld in %.2f s (%.0f/s), %llu failed; holding %.0f s\n",
                          static_cast<unsigned long long>(c.ready), o.n, s, s > 0 ? static_cast<double>(c.ready) / s : 0,
                          static_cast<unsigned long long>(c.failed_total()), o.hold);
              std::fflush(stdout);
            }
          }
          break;
        case report_kind::published:
          for (int fd : downs) tell(fd, command_kind::expect, static_cast<std::int64_t>(r.c.pubs));
          break;
        case report_kind::dropped:
        case report_kind::back:
          ++rr.reports;
          break;
        case report_kind::round:
        case report_kind::final: {
          histogram h;
          if (!read_all(ups[w], &h, sizeof(h))) {
            gone[w] = true;
            worker_died = true;
            break;
          }
          if (api && !rounds.empty()) on_round_report(w, r.c, h);
          if (r.kind == report_kind::round) break;
          hist.merge(h);
          done[w] = true;
          pfds[w].fd = -1;
          ++finals;
          break;
        }
      }
    }
  }
  if (o.server_pid) server_cpu1 = server_cpu_s(o.server_pid);
  for (std::size_t w = 0; w < procs; ++w) {
    if (!done[w] && !gone[w]) ::kill(pids[w], SIGKILL);
  }
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  rusage ru_children{}, ru_self{};
  getrusage(RUSAGE_CHILDREN, &ru_children);
  getrusage(RUSAGE_SELF, &ru_self);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  double cpu_s = tv(ru_children.ru_utime) + tv(ru_children.ru_stime) + tv(ru_self.ru_utime) + tv(ru_self.ru_stime);

  counters t = sum(latest);
  if (o.scen == scenario::broadcast) t.expected = latest[0].pubs * t.ready;  // one publisher, every ready client subscribed
  // api: the deliveries are the rounds' (each worker's counters restart per round).
  double api_window_s = 0;
  std::string rounds_text, rounds_json;
  if (api) {
    t.pubs = t.pub_errors = t.expected = t.delivered = t.dup = 0;
    hist = histogram{};
    for (std::size_t i = 0; i < rounds.size(); ++i) {
      const api_round& r = rounds[i];
      counters c = r.total();
      bool ok = r.status == 200 && r.reply.find(R"("error")") == std::string::npos;
      ++t.pubs;
      t.pub_errors += ok ? 0 : 1;
      t.expected += c.expected;
      t.delivered += c.delivered;
      t.dup += c.dup;
      hist.merge(r.hist);
      double tta = r.time_to_all_s();
      api_window_s += tta;
      long long r_lost = static_cast<long long>(c.expected) - static_cast<long long>(c.delivered - c.dup);
      double per_s = tta > 0 ? static_cast<double>(c.delivered - c.dup) / tta : 0;
      const char* name = i + 1 == broadcast_round ? "broadcast" : "personal";
      char line[512];
      std::snprintf(line, sizeof(line),
                    "  round %zu (%s): API %d in %.1f ms%s%s; %llu of %llu delivered, lost %lld, dup %llu; all in %.3f s "
                    "(%.0f deliveries/s); latency µs p50 %llu  p99 %llu  max %llu\n",
                    i + 1, name, r.status, r.request_ms, ok ? "" : ": ", ok ? "" : r.reply.substr(0, 200).c_str(),
                    static_cast<unsigned long long>(c.delivered - c.dup), static_cast<unsigned long long>(c.expected),
                    r_lost, static_cast<unsigned long long>(c.dup), tta, per_s,
                    static_cast<unsigned long long>(r.hist.percentile(0.5)),
                    static_cast<unsigned long long>(r.hist.percentile(0.99)), static_cast<unsigned long long>(r.hist.max()));
      rounds_text += line;
      std::snprintf(line, sizeof(line),
                    R"(%s{"round":"%s","api_status":%d,"api_ms":%.1f,"expected":%llu,"delivered":%llu,"lost":%lld,)"
                    R"("dup":%llu,"time_to_all_s":%.4f,"deliveries_per_s":%.0f,"lat_us":{"p50":%llu,"p99":%llu,"max":%llu}})",
                    i ? "," : "", name, r.status, r.request_ms, static_cast<unsigned long long>(c.expected),
                    static_cast<unsigned long long>(c.delivered - c.dup), r_lost, static_cast<unsigned long long>(c.dup), tta,
                    per_s, static_cast<unsigned long long>(r.hist.percentile(0.5)),
                    static_cast<unsigned long long>(r.hist.percentile(0.99)), static_cast<unsigned long long>(r.hist.max()));
      rounds_json += line;
    }
  }
  if (reconnect) {
    t.pubs = static_cast<std::uint64_t>(rr.published + rr.api_errors);
    t.pub_errors = static_cast<std::uint64_t>(rr.api_errors);
  }
  std::string reconnect_text, reconnect_json;
  bool reconnect_ok = true;
  if (reconnect) {
    // Times from the reconnect command (and from the drop); -1: never.
    auto since = [](std::int64_t at, std::int64_t from) { return at > 0 && from > 0 ? (at - from) / 1e9 : -1.0; };
    double back_s = since(t.all_back_ns, rr.reconnect_ns), back_drop_s = since(t.all_back_ns, rr.drop_ns);
    double rec_s = since(t.all_recovered_ns, rr.reconnect_ns), rec_drop_s = since(t.all_recovered_ns, rr.drop_ns);
    double per_s = back_s > 0 ? static_cast<double>(t.back) / back_s : 0;
    double cpu_reconnect = rr.cpu_back >= 0 && rr.cpu_reconnect >= 0 ? rr.cpu_back - rr.cpu_reconnect : -1;
    double cpu_drop = rr.cpu_reconnect >= 0 && rr.cpu_drop >= 0 ? rr.cpu_reconnect - rr.cpu_drop : -1;
    double cpu_us_per_client = cpu_reconnect >= 0 && t.back ? cpu_reconnect * 1e6 / static_cast<double>(t.back) : -1;
    reconnect_ok = t.back == t.dropped && t.back_failed == 0 && t.not_recovered == 0 && t.epoch_changes == 0 &&
                   t.recovered == t.missed && t.dup == 0 && rr.at == reconnect_run::step::settling;
    char buf[2048];
    std::snprintf(buf, sizeof(buf),
                  "  reconnect: %ld publications before; dropped %llu of %llu at once (TCP reset); %ld publications while "
                  "away (API %.1f ms), reconnect %.2f s after the drop\n"
                  "    all back in %.3f s from the reconnect (%.3f s from the drop), %.0f clients/s; %llu back, %llu failed\n"
                  "    all recovered in %.3f s from the reconnect (%.3f s from the drop)%s\n"
                  "    recovered %llu of %llu missed publications; recovered:false %llu clients; epoch changes %llu\n"
                  "    time to back µs: p50 %llu  p90 %llu  p99 %llu  max %llu\n"
                  "    then %ld live publications; lost %llu, dup %llu (channel offset %llu before the drop, %llu when away, %llu at the end)\n",
                  o.before, static_cast<unsigned long long>(t.dropped), static_cast<unsigned long long>(t.ready), o.missed,
                  rr.missed_ms, since(rr.reconnect_ns, rr.drop_ns), back_s, back_drop_s, per_s,
                  static_cast<unsigned long long>(t.back), static_cast<unsigned long long>(t.back_failed), rec_s,
                  rec_drop_s, t.all_recovered_ns > 0 ? "" : " ** NOT ALL **", static_cast<unsigned long long>(t.recovered),
                  static_cast<unsigned long long>(t.missed), static_cast<unsigned long long>(t.not_recovered),
                  static_cast<unsigned long long>(t.epoch_changes), static_cast<unsigned long long>(hist.percentile(0.5)),
                  static_cast<unsigned long long>(hist.percentile(0.9)), static_cast<unsigned long long>(hist.percentile(0.99)),
                  static_cast<unsigned long long>(hist.max()), o.live, static_cast<unsigned long long>(t.lost),
                  static_cast<unsigned long long>(t.dup), static_cast<unsigned long long>(rr.before_offset),
                  static_cast<unsigned long long>(rr.missed_offset), static_cast<unsigned long long>(rr.final_offset));
    reconnect_text = buf;
    if (rr.api_errors) reconnect_text += "    API errors: " + std::to_string(rr.api_errors) + ", last: " + rr.api_error + "\n";
    if (o.server_pid) {
      std::snprintf(buf, sizeof(buf),
                    "  server pid %d: cpu %.3f s in the reconnect (%.1f µs per client back), %.3f s from the drop to the "
                    "reconnect\n",
                    static_cast<int>(o.server_pid), cpu_reconnect, cpu_us_per_client, cpu_drop);
      reconnect_text += buf;
    }
    std::snprintf(buf, sizeof(buf),
                  R"(,"reconnect":{"before":%ld,"dropped":%llu,"back":%llu,"back_failed":%llu,"missed":%ld,"missed_owed":%llu,)"
                  R"("recovered":%llu,"not_recovered":%llu,"epoch_changes":%llu,"live":%ld,"lost":%llu,"dup":%llu,)"
                  R"("away_s":%.3f,"missed_api_ms":%.1f,"time_to_all_back_s":%.4f,"time_to_all_back_from_drop_s":%.4f,)"
                  R"("time_to_all_recovered_s":%.4f,"time_to_all_recovered_from_drop_s":%.4f,"clients_per_s":%.0f,)"
                  R"("back_us":{"p50":%llu,"p90":%llu,"p99":%llu,"max":%llu},"server_cpu_reconnect_s":%.3f,)"
                  R"("server_cpu_drop_s":%.3f,"server_cpu_us_per_client":%.1f,"api_errors":%ld})",
                  o.before, static_cast<unsigned long long>(t.dropped), static_cast<unsigned long long>(t.back),
                  static_cast<unsigned long long>(t.back_failed), o.missed, static_cast<unsigned long long>(t.missed),
                  static_cast<unsigned long long>(t.recovered), static_cast<unsigned long long>(t.not_recovered),
                  static_cast<unsigned long long>(t.epoch_changes), o.live, static_cast<unsigned long long>(t.lost),
                  static_cast<unsigned long long>(t.dup), since(rr.reconnect_ns, rr.drop_ns), rr.missed_ms, back_s,
                  back_drop_s, rec_s, rec_drop_s, per_s, static_cast<unsigned long long>(hist.percentile(0.5)),
                  static_cast<unsigned long long>(hist.percentile(0.9)), static_cast<unsigned long long>(hist.percentile(0.99)),
                  static_cast<unsigned long long>(hist.max()), cpu_reconnect, cpu_drop, cpu_us_per_client, rr.api_errors);
    reconnect_json = buf;
  }
  std::uint64_t failed = t.failed_total() + (o.n - std::min<std::uint64_t>(o.n, t.ready + t.failed_total()));
  double connect_s = t.all_ready_ns > t.first_connect_ns ? (t.all_ready_ns - t.first_connect_ns) / 1e9 : 0;
  double handshake_rate = connect_s > 0 ? static_cast<double>(t.ready) / connect_s : 0;
  auto unique = static_cast<long long>(t.delivered - t.dup);
  long long lost = static_cast<long long>(t.expected) - unique;
  // Deliveries per second over the publishing window, or until the last
  // delivery when the server fell behind.
  double window_s = api ? api_window_s : t0 && !reconnect ? std::max(o.duration, (t.last_delivery_ns - t0) / 1e9) : 0;
  double deliveries_per_s = publishes && window_s > 0 ? static_cast<double>(t.delivered) / window_s : 0;
  std::uint64_t connections = t.ready + (o.scen == scenario::broadcast ? 1 : 0);
  double rss_per_conn = connections ? static_cast<double>(t.rss_delta_kib) * 1024 / static_cast<double>(connections) : 0;
  double server_rss_per_conn =
      server_rss0 >= 0 && server_rss1 >= 0 && connections ? static_cast<double>(server_rss1 - server_rss0) * 1024 / static_cast<double>(connections) : -1;
  double server_cpu = server_cpu0 >= 0 && server_cpu1 >= 0 ? server_cpu1 - server_cpu0 : -1;
  double server_us_per_delivery = server_cpu >= 0 && t.delivered ? server_cpu * 1e6 / static_cast<double>(t.delivered) : -1;
  auto pct = [&](double q) { return static_cast<unsigned long long>(hist.percentile(q)); };
  const char* scen_names[] = {"idle", "broadcast", "chat", "api", "reconnect"};
  const char* scen_name = scen_names[static_cast<int>(o.scen)];
  const char* proto_name = o.proto == protocol::centrifuge ? "centrifuge" : "raw";

  std::printf("swload %s (%s), %ld clients, %zu workers%s%s\n", scen_name, proto_name, o.n, procs,
              timed_out ? "  ** TIMEOUT **" : "", worker_died ? "  ** WORKER DIED **" : "");
  std::printf("  connections: %llu ready, %llu failed%s%s%s in %.2f s (%.0f handshakes/s)\n",
              static_cast<unsigned long long>(t.ready), static_cast<unsigned long long>(failed), failed ? " (" : "",
              failures(t).c_str(), failed ? ")" : "", connect_s, handshake_rate);
  if (t.last_close_code) std::printf("  last close code from the server: %u\n", t.last_close_code);
  if (t.last_errno) std::printf("  last socket error: %s\n", std::strerror(t.last_errno));
  if (publishes) {
    std::printf("  publications: %llu (%llu errors); deliveries: %llu of %llu expected, lost %lld, dup %llu; %.0f/s\n",
                static_cast<unsigned long long>(t.pubs), static_cast<unsigned long long>(t.pub_errors),
                static_cast<unsigned long long>(t.delivered), static_cast<unsigned long long>(t.expected), lost,
                static_cast<unsigned long long>(t.dup), deliveries_per_s);
    if (!reconnect) {
      std::printf("  latency µs: p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n", pct(0.5), pct(0.9), pct(0.99),
                  pct(0.999), static_cast<unsigned long long>(hist.max()));
    }
    std::fputs(rounds_text.c_str(), stdout);
    std::fputs(reconnect_text.c_str(), stdout);
  }
  std::printf("  swload: cpu %.2f s, rss %.0f B per connection\n", cpu_s, rss_per_conn);
  if (o.server_pid) {
    std::printf("  server pid %d: rss %ld -> %ld KiB (%.0f B per connection), cpu %.2f s in the run window",
                static_cast<int>(o.server_pid), server_rss0, server_rss1, server_rss_per_conn, server_cpu);
    if (publishes) std::printf(" (%.3f µs per delivery)", server_us_per_delivery);
    std::printf("\n");
  }
  std::printf(
      "{\"swload\":\"1\",\"scenario\":\"%s\",\"proto\":\"%s\",\"n\":%ld,\"procs\":%zu,\"ready\":%llu,\"failed\":%llu,"
      "\"failed_by_reason\":{",
      scen_name, proto_name, o.n, procs, static_cast<unsigned long long>(t.ready), static_cast<unsigned long long>(failed));
  for (int r = 0; r < reasons; ++r) {
    std::printf("%s\"%s\":%llu", r ? "," : "", reason_name(r), static_cast<unsigned long long>(t.failed[r]));
  }
  std::printf(
      "},\"last_close_code\":%u,\"connect_s\":%.3f,\"handshake_rate\":%.0f,\"pubs\":%llu,\"pub_errors\":%llu,"
      "\"expected\":%llu,\"delivered\":%llu,\"lost\":%lld,\"dup\":%llu,\"deliveries_per_s\":%.0f,"
      "\"lat_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu},\"cpu_s\":%.3f,"
      "\"rss_per_conn_b\":%.0f,\"server_rss_per_conn_b\":%.0f,\"server_cpu_s\":%.3f,\"server_cpu_us_per_delivery\":%.4f,"
      "\"rounds\":[%s]%s,\"timeout\":%s}\n",
      t.last_close_code, connect_s, handshake_rate, static_cast<unsigned long long>(t.pubs),
      static_cast<unsigned long long>(t.pub_errors), static_cast<unsigned long long>(t.expected),
      static_cast<unsigned long long>(t.delivered), lost, static_cast<unsigned long long>(t.dup), deliveries_per_s,
      pct(0.5), pct(0.9), pct(0.99), pct(0.999), static_cast<unsigned long long>(hist.max()), cpu_s, rss_per_conn,
      server_rss_per_conn, server_cpu, server_us_per_delivery, rounds_json.c_str(), reconnect_json.c_str(),
      timed_out ? "true" : "false");
  std::fflush(stdout);
  if (timed_out) return 3;
  return failed || lost != 0 || t.pub_errors || worker_died || !reconnect_ok ? 1 : 0;
}
