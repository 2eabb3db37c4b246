// swload parent: what the parent process's files share. options.cpp reads
// the command line; the coordinator forks the workers and relays the phases
// between them (coordinator.cpp), drives the api and reconnect scenarios
// through the gateway's server API (drivers.cpp) and prints the figures at
// the end (summary.cpp). The workers never include this header; what parent
// and workers share is in swload.hpp.
//
// The parent is one thread: nothing here is locked, and every function below
// is for that thread only.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "histogram.hpp"
#include "swload.hpp"

// Its own namespace: these names are the parent's alone, and a same-named
// type in the worker's files must not be taken for them at link time.
namespace swload::in_parent {

/// Parses the command line into options with every default filled in; on a
/// bad flag prints why and the usage on stderr and exits 2, on --help prints
/// the usage on stdout and exits 0. Called once, by main, before the fork.
options parse_options(int argc, char** argv);

/// The workers' shares of the clients (o.procs at most, fewer when there
/// are fewer clients or chat rooms); exits 2 when a worker would hold more
/// connections than one process's fd table takes. Called once, by main.
std::vector<worker_plan> plan_workers(const options& o);

/// The workers' counters added up: counts summed, times the latest (the
/// first connect the earliest); all_recovered_ns is -1 when a worker that
/// dropped clients has not recovered them all.
counters sum(const std::vector<counters>& all);

/// The failed connections by reason, e.g. "connect 3, timeout 1"; empty when
/// none failed.
std::string failures(const counters& c);

/// The CPU seconds (user + system) process pid has used; -1 when unknown.
double server_cpu_s(pid_t pid);
/// CPU seconds of the server: --server-pid plus every --also-pid.
double servers_cpu_s(const options& o);
/// RSS (KiB) of the server: --server-pid plus every --also-pid.
long servers_rss_kib(const options& o);

/// Sends one command down a worker's pipe (a small, atomic pipe write).
void tell(int fd, command_kind kind, std::int64_t value);

/// api: one round as the parent saw it.
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

/// reconnect: the phases as the parent drives them, and what it saw.
struct reconnect_run {
  enum class step { holding, dropping, away, reconnecting, settling } at = step::holding;
  std::size_t reports = 0;  // dropped / back reports of the current step
  std::int64_t drop_ns = 0, reconnect_ns = 0, back_ns = 0;
  double cpu_drop = -1, cpu_reconnect = -1, cpu_back = -1;  // the server's CPU seconds then
  double missed_ms = 0;                                     // publishing the missed ones
  bool before_done = false;
  std::uint64_t before_offset = 0, missed_offset = 0, final_offset = 0;
  long published = 0, api_errors = 0;
  std::string api_error;  // the last one
};

/// The parent's side of one run: the forked workers, their pipes and latest
/// counters, the phases (all ready → go → … → final) and what the api and
/// reconnect drivers saw. main makes one, then calls start, run and
/// summarize, in that order.
class coordinator {
 public:
  coordinator(const options& o, std::vector<worker_plan> plans) : _o(o), _plans(std::move(plans)) {}

  /// Samples the server's RSS (--server-pid) and forks the workers, each
  /// with a pipe up and one down; false, after saying why on stderr, when a
  /// pipe or a fork failed (the workers forked so far die with the parent).
  bool start();

  /// Relays the phases until every worker sent its final report or died,
  /// or --timeout passed; prints a progress line a second on stderr; then
  /// kills what is left of the workers and reaps them all.
  void run();

  /// Prints the summary and the one line of JSON on stdout; returns the
  /// process's exit code (main.cpp says which).
  int summarize() const;

 private:
  std::size_t gone_count() const;
  void tell_all(command_kind kind, std::int64_t value) const;

  // coordinator.cpp: the workers' reports, the phases, the progress line.
  void on_report(std::size_t w, const report& r);
  void all_ready();
  void progress(std::int64_t now);

  // drivers.cpp: the api rounds and the reconnect steps; each *_step
  // returns true when it took a step (the loop then looks again at once).
  bool api_step(std::int64_t now);
  void publish_round(int r, api_round& out) const;
  bool round_complete() const;
  void on_round_report(std::size_t w, const counters& c, const histogram& h);
  bool reconnect_step(std::int64_t now);
  double server_cpu_now() const;

  // summary.cpp: the scenario's own lines, text and JSON.
  double api_summary(counters& t, histogram& hist, std::string& text, std::string& json) const;
  bool reconnect_summary(const counters& t, const histogram& hist, std::string& text, std::string& json) const;

  const options& _o;
  std::vector<worker_plan> _plans;
  const bool _publishes = _o.scen != scenario::idle;
  const bool _api = _o.scen == scenario::api;
  const bool _reconnect = _o.scen == scenario::reconnect;

  std::size_t _procs = 0;
  std::vector<pid_t> _pids;
  std::vector<int> _ups, _downs;  // the pipes' parent ends: reports up, commands down
  std::vector<pollfd> _pfds;
  std::vector<counters> _latest;   // each worker's last report
  std::vector<bool> _done, _gone;  // final report in / died before it
  std::size_t _ready_workers = 0, _finals = 0;
  histogram _hist;  // the final reports' histograms
  histogram _attempt_hist;  // reconnect: the successful attempts' handshakes

  std::int64_t _start = 0, _t0 = 0;  // workers forked; the run's start time (`go`), 0 before
  std::int64_t _last_progress = 0;
  std::uint64_t _last_delivered = 0;
  long _server_rss0 = -1, _server_rss1 = -1;    // KiB before the fork and --settle s after all ready
  double _server_cpu0 = -1, _server_cpu1 = -1;  // CPU seconds at the start and at the end of the run window
  bool _timed_out = false, _worker_died = false;

  std::vector<api_round> _rounds;  // api: the rounds published so far
  reconnect_run _rr;
};

}  // namespace swload::in_parent
