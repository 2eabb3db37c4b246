#pragma once
// Process configuration: TOML file (toml++) overlaid by command-line flags
// (CLI11). Errors are config_error with a one-line message naming the
// problem; main turns them into exit code 2.

#include "gateway/proxy_config.hpp"
#include "gateway/rate_limits.hpp"
#include "routing/channel_rules.hpp"

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
  std::uint32_t mesh_ring_capacity = 0;    // messages per (source, destination) ring; 0 until resolved (by shards)
  std::uint32_t mesh_overflow_limit = 65536;  // messages waiting for a full ring before shedding
  std::uint64_t history_max_bytes = 256ull << 20;  // all channels' history together (split over shards); 0: no bound
  // Sessions (issue 3). Durations are strings in the file: "25s", "500ms".
  std::string mode = "centrifuge";                // application handler: "centrifuge" or the "echo" diagnostic
  std::string websocket_path = "/connection/websocket";
  std::vector<std::string> allowed_origins;       // Centrifugo semantics: empty = same origin only; "*" = any
  std::uint64_t max_message_size = 65536;         // bytes of one (reassembled) message; above → close 1009
  std::uint64_t max_queued_bytes = 1 << 20;       // outbound bytes per session; above → closed as slow consumer
  // permessage-deflate (RFC 7692), negotiated per connection when on;
  // restart-only. Messages under the minimum size go uncompressed.
  bool websocket_compression = false;
  std::uint64_t websocket_compression_min_size = 128;
  int websocket_compression_level = 1;            // zlib level 1..9
  std::uint32_t handshake_timeout_ms = 10'000;
  std::uint32_t websocket_ping_interval_ms = 25'000;  // 0: no server pings
  std::uint32_t websocket_pong_timeout_ms = 10'000;
  std::uint32_t close_timeout_ms = 3'000;
  std::uint32_t shutdown_drain_period_ms = 5'000;  // SIGTERM, POST /drain: sessions closed spread over this
  rate_limits client_limits;                       // per connection; all off by default
  // Admission, per shard (docs/config.md "Admission"); 0: off.
  double connect_rate_limit = 0;                   // WebSocket upgrades admitted per second
  std::uint32_t connect_rate_burst = 0;            // at once; 0: one second's worth
  std::uint32_t max_handshakes_in_flight = 0;      // upgraded, connect not answered yet
  std::uint32_t admission_retry_after_max_ms = 10'000;  // 503's Retry-After drawn from [1 s, this]
  // TLS on the client listener (issue 15; docs/config.md "TLS"). The
  // certificate, key, version and ciphers reload on SIGHUP; `tls` itself
  // needs a restart.
  bool tls = false;
  std::string tls_cert;                    // PEM file: certificate then chain
  std::string tls_key;                     // PEM file: private key
  std::string tls_min_version = "1.2";     // "1.2" or "1.3"
  std::string tls_ciphers;                 // TLS 1.2 ciphers (OpenSSL syntax); empty: ECDHE + AEAD only
  bool ops_tls = false;                    // HTTPS on the ops/API listener, with the same certificate
  bool private_fd_tables = true;           // false only for ThreadSanitizer runs (see --help)
  std::string log_level = "info";          // debug, info, warn, error (reloaded on SIGHUP)

  // Centrifuge protocol (issue 4); names as in Centrifugo v5's configuration.
  std::string token_hmac_secret_key;
  std::string token_rsa_public_key;     // PEM text
  std::string token_ecdsa_public_key;   // PEM text
  std::string token_audience;
  std::string token_issuer;
  std::string api_key;                  // server API (issue 6)
  bool api_insecure = false;
  std::uint32_t api_max_body = 1u << 20;  // bytes of a request body on the ops port (larger: 413)
  bool allow_anonymous_connect = false;
  bool allow_anonymous_connect_without_token = false;
  std::uint32_t client_channel_limit = 128;
  std::uint32_t channel_max_length = 255;
  std::uint32_t ping_interval_ms = 25'000;   // protocol ping ({}), not the WebSocket one
  std::uint32_t pong_timeout_ms = 8'000;
  std::uint32_t client_expired_close_delay_ms = 25'000;
  bool websocket_ping_set = false;           // websocket_ping_interval given explicitly
  routing::channel_options channel_defaults;  // channels without a namespace
  std::vector<routing::channel_rules::named_options> namespaces;
  std::string config_file;                 // where it came from, for the log

  // Engine (issue 14): where channels' streams, history and presence live.
  std::string engine = "memory";           // "memory" (this process) or "redis" (shared by nodes)
  std::vector<std::string> redis_address;  // "redis://[:password@]host:port[/db]"; several: channels sharded
  std::string redis_prefix = "switchboard";
  std::uint32_t redis_connect_timeout_ms = 2'000;
  std::uint32_t presence_ttl_ms = 60'000;  // a presence entry's life unless its node refreshes it
  std::uint32_t history_meta_ttl_ms = 720u * 3600 * 1000;  // a silent stream's offset and epoch (0: forever)
  std::string name;                        // this node's name in `info` (default: hostname:client port)

  // Backend proxy (issue 16): Centrifugo's connect/refresh/subscribe/publish/rpc proxies.
  proxy_config proxy;
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

/// Parses "25s", "500ms", "2m", "1h" (a bare number is seconds); throws
/// config_error naming `what` (also when longer than `max_hours`).
std::uint32_t parse_duration_ms(const std::string& text, const std::string& what, std::uint32_t max_hours = 24);

/// Main thread: reads a TOML file into `cfg` (unknown keys are errors).
void load_config_file(const std::string& path, config& cfg);
/// The rate limits' defaults (a burst of one second's worth) and checks;
/// load_config_file calls it.
void finish_rate_limits(config& cfg);

}  // namespace sb
