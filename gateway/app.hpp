#pragma once
// The wiring function of the process (Redpanda's application.cc shape):
// starts the services in dependency order and registers each one's stop
// right after its start, so shutdown runs in reverse without anyone ordering
// it by hand.

#include "gateway/config.hpp"

#include <functional>

namespace sb {

/// Main thread: runs the gateway until SIGINT/SIGTERM. Returns the exit
/// code (0 after a clean shutdown). Throws config_error / std::system_error
/// for problems found while starting (main turns them into exit code 2).
/// `reparse` reads the config again for a SIGHUP reload (gateway/reload.hpp).
int run_gateway(const config& cfg, std::function<config()> reparse);

}  // namespace sb
