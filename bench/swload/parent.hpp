// swload parent: what the parent process's files share (main.cpp,
// options.cpp). The workers never include it; what parent and workers
// share is in swload.hpp.
#pragma once

#include <vector>

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

}  // namespace swload::in_parent
