#include "gateway/config.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <toml++/toml.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <thread>

namespace sb {

std::string host_port::str() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

host_port parse_host_port(const std::string& text, const std::string& what) {
  host_port hp;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw config_error(fmt::format("{}: '{}' is not [IPv6]:PORT", what, text));
    }
    hp.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) throw config_error(fmt::format("{}: '{}' is not HOST:PORT", what, text));
    hp.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (hp.host.empty()) throw config_error(fmt::format("{}: '{}' has no host", what, text));
  unsigned long port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
    throw config_error(fmt::format("{}: bad port '{}' (expected 0-65535)", what, port_text));
  }
  hp.port = static_cast<std::uint16_t>(port);
  return hp;
}

namespace {

template <typename T>
T get_uint(const toml::node& node, const std::string& key, std::uint64_t min, std::uint64_t max) {
  auto v = node.value<std::int64_t>();
  if (!v || !node.is_integer()) throw config_error(fmt::format("config key '{}': expected an integer", key));
  if (*v < 0 || static_cast<std::uint64_t>(*v) < min || static_cast<std::uint64_t>(*v) > max) {
    throw config_error(fmt::format("config key '{}': {} is out of range [{}, {}]", key, *v, min, max));
  }
  return static_cast<T>(*v);
}

std::string get_string(const toml::node& node, const std::string& key) {
  if (!node.is_string()) throw config_error(fmt::format("config key '{}': expected a string", key));
  return std::string(*node.value<std::string_view>());
}

void check_shards(std::uint64_t n) {
  if (n == 0) throw config_error("shards: must be at least 1");
  if (n > 1024) throw config_error(fmt::format("shards: {} is more than 1024", n));
}

}  // namespace

void load_config_file(const std::string& path, config& cfg) {
  toml::table root;
  if (std::FILE* f = std::fopen(path.c_str(), "r")) {
    std::fclose(f);
  } else {
    throw config_error(fmt::format("config file {}: cannot be read ({})", path, std::strerror(errno)));
  }
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw config_error(fmt::format("config file {}:{}:{}: {}", path, where.line, where.column, e.description()));
  }
  cfg.config_file = path;
  for (auto&& [k, node] : root) {
    std::string key(k.str());
    if (key == "shards") {
      auto n = get_uint<unsigned>(node, key, 0, std::numeric_limits<unsigned>::max());
      check_shards(n);
      cfg.shards = n;
    } else if (key == "listen") {
      cfg.listen = parse_host_port(get_string(node, key), "config key 'listen'");
    } else if (key == "ops_listen") {
      cfg.ops_listen = parse_host_port(get_string(node, key), "config key 'ops_listen'");
    } else if (key == "max_connections") {
      cfg.max_connections = get_uint<std::uint64_t>(node, key, 0, std::numeric_limits<std::int64_t>::max());
    } else if (key == "listen_backlog") {
      cfg.listen_backlog = get_uint<unsigned>(node, key, 1, 65535);
    } else if (key == "mesh_ring_capacity") {
      cfg.mesh_ring_capacity = get_uint<std::uint32_t>(node, key, 16, 1u << 24);
    } else if (key == "mesh_overflow_limit") {
      cfg.mesh_overflow_limit = get_uint<std::uint32_t>(node, key, 0, 1u << 30);
    } else {
      throw config_error(fmt::format("config file {}: unknown key '{}'", path, key));
    }
  }
}

parse_result parse_command_line(int argc, char** argv) {
  CLI::App app{
      "switchboard: a WebSocket gateway for instant messaging (Centrifuge protocol v2).\n"
      "Flags override the values of the config file."};
  app.set_version_flag("--version", "switchboard 0.1.0");

  std::string config_file;
  std::optional<unsigned> shards;
  std::optional<std::string> listen, ops_listen;
  std::optional<std::uint64_t> max_connections;

  app.add_option("--config", config_file, "TOML config file (keys: docs/config.md)");
  app.add_option("--shards", shards,
                 "number of shards (threads, each with its own listener and fd table); default: CPU count");
  app.add_option("--listen", listen, "client (WebSocket) listener HOST:PORT; default 0.0.0.0:8000; port 0 picks one");
  app.add_option("--ops-listen", ops_listen,
                 "server API and ops listener HOST:PORT; default 127.0.0.1:9000; port 0 picks one");
  app.add_option("--max-connections", max_connections,
                 "client connections accepted at most (0: as many as the fd tables allow)");
  bool shared_fd_table = false;
  app.add_flag("--shared-fd-table", shared_fd_table,
               "diagnostic: shards share the process's fd table instead of each unsharing its own. "
               "Only for ThreadSanitizer runs (its fd model assumes one table); capacity drops to one table's limit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return {std::nullopt, app.exit(e)};
  } catch (const CLI::CallForVersion& e) {
    return {std::nullopt, app.exit(e)};
  } catch (const CLI::ParseError& e) {
    throw config_error(fmt::format("command line: {}", e.what()));
  }

  config cfg;
  if (!config_file.empty()) load_config_file(config_file, cfg);
  if (shards) {
    check_shards(*shards);
    cfg.shards = *shards;
  }
  if (listen) cfg.listen = parse_host_port(*listen, "--listen");
  if (ops_listen) cfg.ops_listen = parse_host_port(*ops_listen, "--ops-listen");
  if (max_connections) cfg.max_connections = *max_connections;
  if (shared_fd_table) cfg.private_fd_tables = false;
  if (cfg.shards == 0) cfg.shards = std::max(1u, std::thread::hardware_concurrency());
  return {std::move(cfg), 0};
}

}  // namespace sb
