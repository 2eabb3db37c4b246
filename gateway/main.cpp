// switchboard: the process entry point. Configuration problems end the
// process with one line on stderr and exit code 2; a dependency that is not
// there at start (Redis unreachable) with exit code 3.

#include "gateway/app.hpp"
#include "gateway/config.hpp"
#include "gateway/engine_setup.hpp"

#include <fmt/core.h>

#include <exception>
#include <system_error>

int main(int argc, char** argv) {
  try {
    auto parsed = sb::parse_command_line(argc, argv);
    if (!parsed.cfg) return parsed.exit_code;
    // SIGHUP: the same command line and file, read again.
    auto reparse = [argc, argv] {
      auto again = sb::parse_command_line(argc, argv);
      if (!again.cfg) throw sb::config_error("the command line no longer parses");
      return std::move(*again.cfg);
    };
    return sb::run_gateway(*parsed.cfg, reparse);
  } catch (const sb::config_error& e) {
    fmt::print(stderr, "switchboard: error: {}\n", e.what());
    return 2;
  } catch (const sb::startup_error& e) {
    fmt::print(stderr, "switchboard: error: {}\n", e.what());
    return 3;
  } catch (const std::system_error& e) {
    fmt::print(stderr, "switchboard: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "switchboard: error: {}\n", e.what());
    return 2;
  }
}
