#include "gateway/config.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <toml++/toml.h>

#include <cctype>
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

std::uint32_t parse_duration_ms(const std::string& text, const std::string& what, std::uint32_t max_hours) {
  double value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc{} || p == begin || value < 0) {
    throw config_error(fmt::format("{}: '{}' is not a duration (e.g. \"25s\", \"500ms\")", what, text));
  }
  std::string_view unit(p, static_cast<std::size_t>(end - p));
  double ms = 0;
  if (unit.empty() || unit == "s") ms = value * 1000;
  else if (unit == "ms") ms = value;
  else if (unit == "m") ms = value * 60'000;
  else if (unit == "h") ms = value * 3'600'000;
  else throw config_error(fmt::format("{}: unknown unit in '{}' (ms, s, m, h)", what, text));
  if (ms > max_hours * 3'600'000.0) {
    throw config_error(fmt::format("{}: '{}' is longer than {} hours", what, text, max_hours));
  }
  return static_cast<std::uint32_t>(ms);
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

std::uint32_t get_duration(const toml::node& node, const std::string& key) {
  if (node.is_string()) return parse_duration_ms(get_string(node, key), fmt::format("config key '{}'", key));
  throw config_error(fmt::format("config key '{}': expected a duration string such as \"25s\"", key));
}

std::vector<std::string> get_string_list(const toml::node& node, const std::string& key) {
  const toml::array* arr = node.as_array();
  if (!arr) throw config_error(fmt::format("config key '{}': expected an array of strings", key));
  std::vector<std::string> out;
  for (const auto& item : *arr) {
    if (!item.is_string()) throw config_error(fmt::format("config key '{}': expected an array of strings", key));
    out.emplace_back(*item.value<std::string_view>());
  }
  return out;
}

void check_mode(const std::string& mode, const std::string& what) {
  if (mode != "echo" && mode != "centrifuge") {
    throw config_error(fmt::format("{}: unknown mode '{}' (available: centrifuge, echo)", what, mode));
  }
}

void check_engine(const std::string& engine, const std::string& what) {
  if (engine != "memory" && engine != "redis") {
    throw config_error(fmt::format("{}: unknown engine '{}' (available: memory, redis)", what, engine));
  }
}

bool get_bool(const toml::node& node, const std::string& key) {
  if (!node.is_boolean()) throw config_error(fmt::format("config key '{}': expected true or false", key));
  return *node.value<bool>();
}

// A channel option, at top level or inside [[namespaces]]. False when `key`
// is not a channel option.
bool parse_channel_option(const std::string& key, const std::string& where, const toml::node& node,
                          routing::channel_options& o) {
  const std::string name = where.empty() ? key : where + "." + key;
  struct flag {
    const char* key;
    bool routing::channel_options::*field;
  };
  static constexpr flag flags[] = {
      {"allow_subscribe_for_client", &routing::channel_options::allow_subscribe_for_client},
      {"allow_subscribe_for_anonymous", &routing::channel_options::allow_subscribe_for_anonymous},
      {"allow_publish_for_subscriber", &routing::channel_options::allow_publish_for_subscriber},
      {"allow_publish_for_client", &routing::channel_options::allow_publish_for_client},
      {"allow_publish_for_anonymous", &routing::channel_options::allow_publish_for_anonymous},
      {"allow_user_limited_channels", &routing::channel_options::allow_user_limited_channels},
      {"presence", &routing::channel_options::presence},
      {"join_leave", &routing::channel_options::join_leave},
      {"force_push_join_leave", &routing::channel_options::force_push_join_leave},
      {"allow_presence_for_subscriber", &routing::channel_options::allow_presence_for_subscriber},
      {"allow_presence_for_client", &routing::channel_options::allow_presence_for_client},
      {"allow_history_for_subscriber", &routing::channel_options::allow_history_for_subscriber},
      {"allow_history_for_client", &routing::channel_options::allow_history_for_client},
      {"force_recovery", &routing::channel_options::force_recovery},
      {"force_positioning", &routing::channel_options::force_positioning},
      {"allow_recovery", &routing::channel_options::allow_recovery},
      {"allow_positioning", &routing::channel_options::allow_positioning},
      {"proxy_subscribe", &routing::channel_options::proxy_subscribe},
      {"proxy_publish", &routing::channel_options::proxy_publish},
  };
  for (const auto& f : flags) {
    if (key == f.key) {
      o.*(f.field) = get_bool(node, name);
      return true;
    }
  }
  if (key == "history_size") {
    o.history_size = get_uint<std::uint32_t>(node, name, 0, 1u << 20);
    return true;
  }
  if (key == "history_ttl") {
    o.history_ttl = std::chrono::milliseconds(get_duration(node, name));
    return true;
  }
  return false;
}

void parse_namespaces(const toml::node& node, const std::string& path, config& cfg) {
  const toml::array* arr = node.as_array();
  if (!arr) throw config_error(fmt::format("config file {}: 'namespaces' must be an array of tables ([[namespaces]])", path));
  for (const auto& item : *arr) {
    const toml::table* t = item.as_table();
    if (!t) throw config_error(fmt::format("config file {}: 'namespaces' must be an array of tables ([[namespaces]])", path));
    routing::channel_rules::named_options ns;
    bool named = false;
    for (auto&& [k, v] : *t) {
      std::string key(k.str());
      if (key == "name") {
        ns.name = get_string(v, "namespaces.name");
        named = true;
      } else if (!parse_channel_option(key, "namespaces", v, ns.options)) {
        throw config_error(fmt::format("config file {}: unknown key 'namespaces.{}'", path, key));
      }
    }
    if (!named || ns.name.empty()) throw config_error(fmt::format("config file {}: a namespace has no 'name'", path));
    for (char c : ns.name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
        throw config_error(fmt::format("config file {}: namespace name '{}' may use only letters, digits, '_', '-', '.'",
                                       path, ns.name));
      }
    }
    for (const auto& other : cfg.namespaces) {
      if (other.name == ns.name) throw config_error(fmt::format("config file {}: namespace '{}' twice", path, ns.name));
    }
    cfg.namespaces.push_back(std::move(ns));
  }
}

void check_shards(std::uint64_t n) {
  if (n == 0) throw config_error("shards: must be at least 1");
  if (n > 1024) throw config_error(fmt::format("shards: {} is more than 1024", n));
}

// A rate: a number per second, fractions allowed (0.5: one every 2 s).
double get_rate(const toml::node& node, const std::string& key) {
  auto v = node.value<double>();
  if (!v || !(node.is_integer() || node.is_floating_point()) || *v < 0 || *v > 1e12) {
    throw config_error(fmt::format("config key '{}': expected a number per second, at least 0", key));
  }
  return *v;
}

// client_<kind>_rate / client_<kind>_burst (docs/config.md, "Rate limits").
bool parse_rate_key(const std::string& key, const toml::node& node, rate_limits& limits) {
  if (key == "client_rate_disconnect_after") {
    limits.disconnect_after = get_uint<std::uint32_t>(node, key, 0, 1u << 30);
    return true;
  }
  for (std::size_t i = 0; i < limited_count; ++i) {
    std::string base = fmt::format("client_{}_", limited_name(static_cast<limited>(i)));
    if (key == base + "rate") {
      limits.of[i].per_second = get_rate(node, key);
      return true;
    }
    if (key == base + "burst") {
      limits.of[i].burst = get_uint<std::uint64_t>(node, key, 1, std::uint64_t{1} << 40);
      return true;
    }
  }
  return false;
}

}  // namespace

// The backend proxy's keys (docs/config.md "Backend proxy"). False when
// `key` is not one of them.
static bool parse_proxy_key(const std::string& key, const toml::node& node, proxy_config& p) {
  for (std::size_t i = 0; i < proxy_kind_count; ++i) {
    std::string kind = proxy_kind_name(static_cast<proxy_kind>(i));
    if (key == kind + "_proxy_endpoint") {
      p.of[i].url = get_string(node, key);
      if (!p.of[i].url.empty()) p.of[i].where = parse_http_url(p.of[i].url, fmt::format("config key '{}'", key));
      return true;
    }
    if (key == kind + "_proxy_timeout") {
      p.of[i].timeout_ms = get_duration(node, key);
      if (p.of[i].timeout_ms == 0) throw config_error(fmt::format("config key '{}': must be more than 0", key));
      return true;
    }
  }
  if (key == "proxy_max_connections") {
    p.max_connections = get_uint<std::uint32_t>(node, key, 1, 4096);
  } else if (key == "proxy_max_pending") {
    p.max_pending = get_uint<std::uint32_t>(node, key, 0, 1u << 24);
  } else if (key == "proxy_max_response_size") {
    p.max_response_bytes = get_uint<std::uint32_t>(node, key, 1024, 64u << 20);
  } else if (key == "proxy_breaker_failure_ratio") {
    double r = node.is_integer() ? static_cast<double>(*node.value<std::int64_t>()) : node.value<double>().value_or(-1);
    if (!(r > 0 && r <= 1)) throw config_error("config key 'proxy_breaker_failure_ratio': a number in (0, 1]");
    p.breaker.failure_ratio = r;
  } else if (key == "proxy_breaker_min_requests") {
    p.breaker.min_requests = get_uint<std::uint32_t>(node, key, 1, 1u << 20);
  } else if (key == "proxy_breaker_window") {
    p.breaker.window_ms = get_duration(node, key);
    if (p.breaker.window_ms < 100) throw config_error("config key 'proxy_breaker_window': at least \"100ms\"");
  } else if (key == "proxy_breaker_open_time") {
    p.breaker.open_ms = get_duration(node, key);
    if (p.breaker.open_ms == 0) throw config_error("config key 'proxy_breaker_open_time': must be more than 0");
  } else if (key == "proxy_breaker_half_open_probes") {
    p.breaker.half_open_probes = get_uint<std::uint32_t>(node, key, 1, 1024);
  } else {
    return false;
  }
  return true;
}

void finish_rate_limits(config& cfg) {
  for (std::size_t i = 0; i < limited_count; ++i) {
    rate& r = cfg.client_limits.of[i];
    if (r.per_second <= 0) continue;
    bool bytes = static_cast<limited>(i) == limited::read_bytes;
    // Unset: one second's worth (bytes: at least one largest message).
    if (r.burst == 0) {
      r.burst = static_cast<std::uint64_t>(std::max(1.0, r.per_second));
      if (bytes) r.burst = std::max<std::uint64_t>(r.burst, cfg.max_message_size);
    }
    if (bytes && r.burst < cfg.max_message_size) {
      throw config_error(fmt::format("config key 'client_read_bytes_burst': {} is less than max_message_size ({}): "
                                     "a largest message could never be read",
                                     r.burst, cfg.max_message_size));
    }
  }
}

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
    } else if (key == "history_max_bytes") {
      cfg.history_max_bytes = get_uint<std::uint64_t>(node, key, 0, std::uint64_t{1} << 40);
    } else if (key == "mesh_overflow_limit") {
      cfg.mesh_overflow_limit = get_uint<std::uint32_t>(node, key, 0, 1u << 30);
    } else if (key == "mode") {
      cfg.mode = get_string(node, key);
      check_mode(cfg.mode, "config key 'mode'");
    } else if (key == "websocket_path") {
      cfg.websocket_path = get_string(node, key);
      if (cfg.websocket_path.empty() || cfg.websocket_path[0] != '/') {
        throw config_error("config key 'websocket_path': must start with '/'");
      }
    } else if (key == "allowed_origins") {
      cfg.allowed_origins = get_string_list(node, key);
    } else if (key == "token_hmac_secret_key") {
      cfg.token_hmac_secret_key = get_string(node, key);
    } else if (key == "token_rsa_public_key") {
      cfg.token_rsa_public_key = get_string(node, key);
    } else if (key == "token_ecdsa_public_key") {
      cfg.token_ecdsa_public_key = get_string(node, key);
    } else if (key == "token_audience") {
      cfg.token_audience = get_string(node, key);
    } else if (key == "token_issuer") {
      cfg.token_issuer = get_string(node, key);
    } else if (key == "api_key") {
      cfg.api_key = get_string(node, key);
    } else if (key == "api_insecure") {
      cfg.api_insecure = get_bool(node, key);
    } else if (key == "api_max_body") {
      cfg.api_max_body = get_uint<std::uint32_t>(node, key, 1024, 64u << 20);
    } else if (key == "allow_anonymous_connect") {
      cfg.allow_anonymous_connect = get_bool(node, key);
    } else if (key == "allow_anonymous_connect_without_token") {
      cfg.allow_anonymous_connect_without_token = get_bool(node, key);
    } else if (key == "client_channel_limit") {
      cfg.client_channel_limit = get_uint<std::uint32_t>(node, key, 1, 1u << 20);
    } else if (key == "channel_max_length") {
      cfg.channel_max_length = get_uint<std::uint32_t>(node, key, 1, 1u << 16);
    } else if (key == "ping_interval") {
      cfg.ping_interval_ms = get_duration(node, key);
    } else if (key == "pong_timeout") {
      cfg.pong_timeout_ms = get_duration(node, key);
    } else if (key == "client_expired_close_delay") {
      cfg.client_expired_close_delay_ms = get_duration(node, key);
    } else if (key == "engine") {
      cfg.engine = get_string(node, key);
      check_engine(cfg.engine, "config key 'engine'");
    } else if (key == "redis_address") {
      cfg.redis_address = node.is_string() ? std::vector<std::string>{get_string(node, key)} : get_string_list(node, key);
    } else if (key == "redis_prefix") {
      cfg.redis_prefix = get_string(node, key);
      if (cfg.redis_prefix.empty()) throw config_error("config key 'redis_prefix': must not be empty");
    } else if (key == "redis_connect_timeout") {
      cfg.redis_connect_timeout_ms = get_duration(node, key);
    } else if (key == "presence_ttl") {
      cfg.presence_ttl_ms = get_duration(node, key);
      if (cfg.presence_ttl_ms < 3000) throw config_error("config key 'presence_ttl': at least \"3s\"");
    } else if (key == "history_meta_ttl") {
      if (!node.is_string()) throw config_error("config key 'history_meta_ttl': expected a duration such as \"720h\"");
      cfg.history_meta_ttl_ms = parse_duration_ms(get_string(node, key), "config key 'history_meta_ttl'", 1000);
    } else if (key == "name") {
      cfg.name = get_string(node, key);
    } else if (key == "namespaces") {
      parse_namespaces(node, path, cfg);
    } else if (parse_channel_option(key, "", node, cfg.channel_defaults)) {
      // a channel option for channels without a namespace
    } else if (key == "websocket_message_size_limit") {  // Centrifugo's name for max_message_size
      cfg.max_message_size = get_uint<std::uint64_t>(node, key, 126, 64u << 20);
    } else if (key == "client_queue_max_size") {  // Centrifugo's name for max_queued_bytes
      cfg.max_queued_bytes = get_uint<std::uint64_t>(node, key, 1024, 1u << 30);
    } else if (key == "max_message_size") {
      cfg.max_message_size = get_uint<std::uint64_t>(node, key, 126, 64u << 20);
    } else if (key == "max_queued_bytes") {
      cfg.max_queued_bytes = get_uint<std::uint64_t>(node, key, 1024, 1u << 30);
    } else if (key == "websocket_compression") {
      cfg.websocket_compression = get_bool(node, key);
    } else if (key == "websocket_compression_min_size") {
      cfg.websocket_compression_min_size = get_uint<std::uint64_t>(node, key, 0, 64u << 20);
    } else if (key == "websocket_compression_level") {
      cfg.websocket_compression_level = get_uint<int>(node, key, 1, 9);
    } else if (key == "handshake_timeout") {
      cfg.handshake_timeout_ms = get_duration(node, key);
    } else if (key == "websocket_ping_interval") {
      cfg.websocket_ping_interval_ms = get_duration(node, key);
      cfg.websocket_ping_set = true;
    } else if (key == "websocket_pong_timeout") {
      cfg.websocket_pong_timeout_ms = get_duration(node, key);
    } else if (parse_rate_key(key, node, cfg.client_limits)) {
    } else if (parse_proxy_key(key, node, cfg.proxy)) {
    } else if (key == "close_timeout") {
      cfg.close_timeout_ms = get_duration(node, key);
    } else if (key == "shutdown_drain_period") {
      cfg.shutdown_drain_period_ms = get_duration(node, key);
    } else if (key == "tls") {
      cfg.tls = get_bool(node, key);
    } else if (key == "ops_tls") {
      cfg.ops_tls = get_bool(node, key);
    } else if (key == "tls_cert") {
      cfg.tls_cert = get_string(node, key);
    } else if (key == "tls_key") {
      cfg.tls_key = get_string(node, key);
    } else if (key == "tls_min_version") {
      cfg.tls_min_version = get_string(node, key);
      if (cfg.tls_min_version != "1.2" && cfg.tls_min_version != "1.3") {
        throw config_error("config key 'tls_min_version': \"1.2\" or \"1.3\"");
      }
    } else if (key == "tls_ciphers") {
      cfg.tls_ciphers = get_string(node, key);
    } else if (key == "log_level") {
      cfg.log_level = get_string(node, key);
      if (cfg.log_level != "debug" && cfg.log_level != "info" && cfg.log_level != "warn" && cfg.log_level != "error") {
        throw config_error(fmt::format("log_level: '{}' is not one of debug, info, warn, error", cfg.log_level));
      }
    } else if (key == "connect_rate_limit") {
      cfg.connect_rate_limit = get_rate(node, key);
    } else if (key == "connect_rate_burst") {
      cfg.connect_rate_burst = get_uint<std::uint32_t>(node, key, 0, 1u << 30);
    } else if (key == "max_handshakes_in_flight") {
      cfg.max_handshakes_in_flight = get_uint<std::uint32_t>(node, key, 0, 1u << 30);
    } else if (key == "admission_retry_after_max") {
      cfg.admission_retry_after_max_ms = get_duration(node, key);
      if (cfg.admission_retry_after_max_ms < 1000) throw config_error("admission_retry_after_max: at least 1s");
    } else {
      throw config_error(fmt::format("config file {}: unknown key '{}'", path, key));
    }
  }
  finish_rate_limits(cfg);
  if ((cfg.tls || cfg.ops_tls) && (cfg.tls_cert.empty() || cfg.tls_key.empty())) {
    throw config_error(fmt::format("config file {}: {} = true needs tls_cert and tls_key (PEM files)", path,
                                   cfg.tls ? "tls" : "ops_tls"));
  }
  auto check_proxy_flags = [&](const routing::channel_options& o, const std::string& where) {
    if (o.proxy_subscribe && !cfg.proxy.enabled(proxy_kind::subscribe)) {
      throw config_error(fmt::format("config file {}: {}proxy_subscribe needs subscribe_proxy_endpoint", path, where));
    }
    if (o.proxy_publish && !cfg.proxy.enabled(proxy_kind::publish)) {
      throw config_error(fmt::format("config file {}: {}proxy_publish needs publish_proxy_endpoint", path, where));
    }
  };
  check_proxy_flags(cfg.channel_defaults, "");
  for (const auto& ns : cfg.namespaces) check_proxy_flags(ns.options, fmt::format("namespace '{}': ", ns.name));
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
  std::optional<std::string> mode;
  app.add_option("--mode", mode,
                 "application handler: 'centrifuge' (default: Centrifuge client protocol v2, JSON) or 'echo' "
                 "(diagnostic: every WebSocket message is sent back as it came)");
  std::optional<std::string> engine, name;
  std::vector<std::string> redis_address;
  app.add_option("--engine", engine, "where streams, history and presence live: 'memory' (default) or 'redis'");
  app.add_option("--redis-address", redis_address,
                 "Redis server redis://HOST:PORT (repeat for several: channels are sharded over them)");
  app.add_option("--name", name, "this node's name in the server API's info (default: hostname:port)");
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
  if (engine) {
    check_engine(*engine, "--engine");
    cfg.engine = *engine;
  }
  if (!redis_address.empty()) cfg.redis_address = redis_address;
  if (name) cfg.name = *name;
  if (cfg.engine == "redis" && cfg.redis_address.empty()) {
    throw config_error("engine = \"redis\" needs redis_address (e.g. \"redis://127.0.0.1:6379\")");
  }
  if (mode) {
    check_mode(*mode, "--mode");
    cfg.mode = *mode;
  }
  if (cfg.mode == "centrifuge" && cfg.websocket_ping_set && cfg.websocket_ping_interval_ms > 0) {
    // The protocol's ping/pong watches Centrifuge clients, on the session's
    // one timer (no second timer per connection); WebSocket pings would
    // need that timer too.
    throw config_error(
        "config key 'websocket_ping_interval': in centrifuge mode clients are pinged by the protocol "
        "(ping_interval, pong_timeout); WebSocket pings are for mode = \"echo\"");
  }
  if (cfg.shards == 0) cfg.shards = std::max(1u, std::thread::hardware_concurrency());
  if (cfg.mesh_ring_capacity == 0) {
    // (shards + 1)² rings of 64-byte slots: 4096 slots each up to 15
    // shards, then smaller so that all rings together stay near 64 MiB (a
    // million connections on 54 shards: 256 slots, 48 MiB); a full ring
    // only defers a message to its source's overflow.
    std::uint64_t rings = std::uint64_t{cfg.shards + 1} * (cfg.shards + 1);
    std::uint32_t cap = 4096;
    while (cap > 64 && rings * cap > (std::uint64_t{1} << 20)) cap /= 2;
    cfg.mesh_ring_capacity = cap;
  }
  return {std::move(cfg), 0};
}

}  // namespace sb
