#pragma once
// Process configuration: TOML file (toml++) overlaid by command-line flags
// (CLI11). Errors are config_error with a one-line message naming the
// problem; main turns them into exit code 2.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sb {

/// A configuration mistake; what() is one line naming the key or flag.
struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// host:port as given; host may be an IPv4/IPv6 literal or a name.
struct host_port {
  std::string host;
  std::uint16_t port = 0;
  std::string str() const;
};

/// Parses "HOST:PORT" or "[v6]:PORT"; throws config_error naming `what`.
host_port parse_host_port(const std::string& text, const std::string& what);

/// Everything the process needs at start. Read on the main thread before any
/// shard starts, then immutable (shards read it without locks).
struct config {
  unsigned shards = 0;  // 0 until resolved: then the CPU count
  host_port listen{"0.0.0.0", 8000};
  host_port ops_listen{"127.0.0.1", 9000};
  std::uint64_t max_connections = 0;       // 0: as many as the fd tables allow
  unsigned listen_backlog = 4096;          // per shard listener
  std::uint32_t mesh_ring_capacity = 4096; // messages per (source, destination) ring
  std::uint32_t mesh_overflow_limit = 65536;  // messages waiting for a full ring before shedding
  bool private_fd_tables = true;           // false only for ThreadSanitizer runs (see --help)
  std::string config_file;                 // where it came from, for the log
};

/// Outcome of argument parsing: run with a config, or exit with a code
/// (--help, --version, or a parse error already printed).
struct parse_result {
  std::optional<config> cfg;
  int exit_code = 0;
};

/// Main thread: parses argv and the config file it names. Prints --help and
/// usage errors itself; throws config_error for bad values.
parse_result parse_command_line(int argc, char** argv);

/// Main thread: reads a TOML file into `cfg` (unknown keys are errors).
void load_config_file(const std::string& path, config& cfg);

}  // namespace sb
