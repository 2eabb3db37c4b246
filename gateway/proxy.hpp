#pragma once
// The backend proxy of one shard (as Centrifugo's connect, refresh,
// subscribe, publish and rpc proxies): a request becomes an HTTP POST of
// Centrifugo's proxy JSON to the kind's endpoint, over that shard's
// keep-alive pool (gateway/http_pool.hpp), guarded by a circuit breaker
// (gateway/circuit_breaker.hpp) and bounded in concurrency. The backend's
// answer is parsed into a proxy_reply: a result, an error for the client, a
// disconnect, or one of the failures, which the handler turns into the
// documented errors (docs/protocol.md "Backend proxy").
//
// Threading: one per shard, on its thread; answers run there, never inside
// call().

#include "gateway/circuit_breaker.hpp"
#include "gateway/proxy_config.hpp"
#include "pool/counter.hpp"

#include <boost/asio/io_context.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sb {

class http_pool;

struct proxy_reply {
  enum class outcome : std::uint8_t {
    result,        // {"result":{...}}: the fields below
    error,         // {"error":{"code","message","temporary"}}: pass to the client
    disconnect,    // {"disconnect":{"code","reason"}}: close the client with it
    timeout,       // no answer within the endpoint's timeout
    unavailable,   // connection refused or failed, backend gone
    bad_response,  // not HTTP 200 with one of the three JSON shapes
    breaker_open,  // not sent: the endpoint's breaker is open
    overloaded,    // not sent: max_connections busy and max_pending waiting
    count
  };
  outcome what = outcome::unavailable;
  // error / disconnect
  std::uint32_t code = 0;
  std::string message;  // error message or disconnect reason
  bool temporary = false;
  // result (each kind reads its own; raw JSON values kept as text)
  std::string user;
  std::int64_t expire_at = 0;
  bool expired = false;
  std::string info;  // raw JSON; empty: none
  std::string data;  // raw JSON, or the bytes of "b64data" (for Protobuf clients); empty: none
  std::vector<std::string> channels;

  bool failed() const noexcept { return what >= outcome::timeout; }
};
inline constexpr std::size_t proxy_outcome_count = static_cast<std::size_t>(proxy_reply::outcome::count);
/// Metric label of an outcome ("result", "error", "timeout", ...).
const char* proxy_outcome_name(proxy_reply::outcome o) noexcept;

/// The backend's answer, HTTP status 200 and body `body`, for a request of
/// kind `k`. Pure (thread_local parser): the unit test and the fuzz target
/// call it directly. Anything but the documented shapes is bad_response.
proxy_reply parse_proxy_reply(proxy_kind k, std::string_view body);

/// The request body's fields; empty strings are left out (`data` is raw
/// JSON, the others are strings).
struct proxy_request {
  std::string_view client, user, channel, method, name, version, token;
  /// The client speaks Protobuf: "protocol":"protobuf","encoding":"binary",
  /// and its payload goes as "b64data" (base64), as Centrifugo sends it.
  bool binary = false;
  std::string_view data;  // raw JSON (JSON clients) or the client's bytes (binary)
};
/// Centrifugo's proxy request JSON: {"client":..,"transport":"websocket",
/// "protocol":"json","encoding":"json",...}. Any thread.
std::string proxy_request_body(const proxy_request& r);

/// Per kind, per shard; read by /metrics.
struct proxy_stats {
  std::array<std::array<counter, proxy_outcome_count>, proxy_kind_count> outcomes;
  std::array<counter, proxy_kind_count> in_flight;      // sent, not answered
  std::array<counter, proxy_kind_count> breaker_state;  // 0 closed, 1 open, 2 half-open
  std::array<counter, proxy_kind_count> breaker_opened; // times it opened
};

class backend_proxy {
 public:
  using callback = std::function<void(proxy_reply&&)>;
  /// Builds a pool and a breaker for every configured kind; throws
  /// std::runtime_error when an endpoint's host does not resolve.
  backend_proxy(boost::asio::io_context& io, const proxy_config& cfg, proxy_stats& stats);
  ~backend_proxy();

  bool enabled(proxy_kind k) const noexcept { return _pools[static_cast<std::size_t>(k)] != nullptr; }
  /// Sends `body` to kind `k`'s endpoint; `done` runs once, later, on this
  /// shard's thread. A kind with no endpoint (one a reload named: the
  /// endpoints are restart-only) answers unavailable.
  void call(proxy_kind k, std::string body, callback done);
  /// Shard shutdown: requests end as unavailable, none is taken afterwards.
  void close();

 private:
  void answered(proxy_kind k, proxy_reply&& r, const callback& done);

  boost::asio::io_context& _io;
  proxy_stats& _stats;
  std::array<std::unique_ptr<http_pool>, proxy_kind_count> _pools;
  std::vector<circuit_breaker> _breakers;  // one per kind
};

}  // namespace sb
