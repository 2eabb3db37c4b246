// swload: a lean WebSocket client fleet for side-by-side benchmarks
// (bench/scenarios/peers.sh). This is the parent: it parses the flags
// (options.cpp), forks the workers (worker.cpp) and relays the phase
// changes between them (coordinator.cpp), prints a progress line every
// second on stderr, and at the end a summary and exactly one line of JSON
// starting with {"swload": on stdout (summary.cpp). In the api scenario it
// also publishes the rounds through the server API and prints "swload: all
// ready" on stdout as soon as every client is in; in the reconnect scenario
// it drives the drop, publishes the missed and the live publications
// through the server API, and samples the server's CPU around the reconnect
// (drivers.cpp).
//
// Exit: 0 when every connection became ready and stayed (reconnect: came
// back, recovered), and nothing was lost (reconnect: nor duplicated); 1
// otherwise; 2 on bad flags; 3 on --timeout.

#include <signal.h>
#include <sys/resource.h>

#include <utility>
#include <vector>

#include "parent.hpp"
#include "swload.hpp"

int main(int argc, char** argv) {
  using namespace swload;
  options o = in_parent::parse_options(argc, argv);
  std::vector<worker_plan> plans = in_parent::plan_workers(o);
  ::signal(SIGPIPE, SIG_IGN);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  in_parent::coordinator fleet(o, std::move(plans));
  if (!fleet.start()) return 1;
  fleet.run();
  return fleet.summarize();
}
