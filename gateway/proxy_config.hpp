#pragma once
// What the backend proxy is configured with (docs/config.md "Backend
// proxy"): one HTTP endpoint per kind of request, as Centrifugo's
// connect/refresh/subscribe/publish/rpc proxies, and the pool and circuit
// breaker settings every endpoint shares. Plain types: config.hpp includes
// this; the proxy itself is gateway/proxy.hpp.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace sb {

/// The kinds of proxied request: one endpoint, pool and breaker each.
enum class proxy_kind : std::uint8_t { connect, refresh, subscribe, publish, rpc, count };
inline constexpr std::size_t proxy_kind_count = static_cast<std::size_t>(proxy_kind::count);
/// Config prefix and metric label of each kind ("connect", ...).
const char* proxy_kind_name(proxy_kind k) noexcept;

/// An http:// URL split for the client: host, port and request target.
struct http_url {
  std::string host;
  std::uint16_t port = 80;
  std::string target = "/";
  bool empty() const noexcept { return host.empty(); }
};
/// Parses "http://HOST[:PORT][/PATH]" (IPv6 as [addr]); throws
/// config_error naming `what`. https:// is refused (TLS is not built yet).
http_url parse_http_url(const std::string& text, const std::string& what);

struct proxy_endpoint {
  std::string url;              // as configured; empty: this kind is not proxied
  http_url where;               // parsed url
  std::uint32_t timeout_ms = 1000;  // whole request: connect, write, response
};

struct breaker_options {
  double failure_ratio = 0.5;       // failures / requests within the window that open it
  std::uint32_t min_requests = 10;  // within the window, before the ratio counts
  std::uint32_t window_ms = 10'000;
  std::uint32_t open_ms = 5'000;    // open this long, then half-open
  std::uint32_t half_open_probes = 1;  // requests let through while half-open
};

struct proxy_config {
  std::array<proxy_endpoint, proxy_kind_count> of{};
  std::uint32_t max_connections = 16;  // per endpoint per shard: requests in flight at most
  std::uint32_t max_pending = 1024;    // per endpoint per shard: waiting for a connection
  std::uint32_t max_response_bytes = 1u << 20;
  breaker_options breaker;
  bool enabled(proxy_kind k) const noexcept { return !of[static_cast<std::size_t>(k)].url.empty(); }
  const proxy_endpoint& operator[](proxy_kind k) const noexcept { return of[static_cast<std::size_t>(k)]; }
  bool any() const noexcept {
    for (const auto& e : of) {
      if (!e.url.empty()) return true;
    }
    return false;
  }
};

}  // namespace sb
