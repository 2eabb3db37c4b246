#pragma once
// The HTTP/1.1 → WebSocket upgrade on the client port (RFC 6455 section 4.2).
//
// Stateless: the session keeps the bytes received so far (in a pooled
// buffer, at most header_limit) and re-parses them from the start after
// every read. Upgrade requests are a few hundred bytes, so re-parsing costs
// less than keeping a Beast parser (hundreds of bytes) per handshaking
// connection. Beast's request_parser does the HTTP; this file decides the
// WebSocket rules and writes the answer, which is a 101 or a proper HTTP
// error (400, 403, 404, 405, 426, 431; 503 from admission) — never a
// silently dropped socket.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sb::ws {

/// What the endpoint accepts. Read-only after start; shared by all shards.
struct upgrade_options {
  std::string path = "/connection/websocket";  // the only WebSocket endpoint; others → 404
  std::vector<std::string> allowed_origins;    // Centrifugo semantics (see check_origin)
  std::vector<std::string> subprotocols;       // the ones we speak, in our order of preference
  std::size_t header_limit = 8192;             // → 431 above it
  bool permessage_deflate = false;             // accept RFC 7692 offers (session/ws_deflate.hpp)
};

enum class upgrade_status { need_more, accepted, rejected };

/// The outcome of parsing what a connection sent so far.
struct upgrade_result {
  upgrade_status status = upgrade_status::need_more;
  std::size_t consumed = 0;  // bytes of the request; bytes after it are the client's first frames
  std::string response;      // complete HTTP answer to write: 101 on accept, the error on reject
  // Static label for metrics on reject: not_http, headers_too_large,
  // http_version, bad_method, not_found, not_upgrade, no_host, bad_version,
  // bad_key, body, origin.
  const char* reason = "";
  std::string subprotocol;  // chosen on accept ("" if none)
  std::string query;        // on accept: the request target after '?' ("" if none), still percent-encoded
  bool deflate = false;     // on accept: permessage-deflate was negotiated (both sides without context takeover)
};

/// The Sec-WebSocket-Extensions answer to one header line of offers when
/// permessage-deflate is accepted ("" when no offer in it is acceptable).
/// The answer always asks for no context takeover on both sides, which is
/// what keeps compression state out of the session (ws_deflate.hpp); an
/// offer is declined when it has an unknown, repeated or invalid parameter
/// or asks for a server window under 15 bits (every publication is
/// compressed once with a 15-bit window for all). Any thread.
std::string accept_deflate_offer(std::string_view offers);

/// The value of `name` in a query string ("a=1&b=2"), percent-decoded
/// (and '+' as space); empty when absent. Any thread.
std::string query_param(std::string_view query, std::string_view name);

/// Decides what to answer a new connection. Owner shard's thread (pure: no
/// I/O, no state kept between calls). `bytes`: everything received so far,
/// from the first byte; call again after every read while need_more. Errors
/// are answers, never exceptions (only std::bad_alloc can escape).
upgrade_result parse_upgrade(std::string_view bytes, const upgrade_options& opts);

/// The answer to a valid upgrade that the node will not take now (admission):
/// 503 with `Retry-After: retry_after_s`, labelled `reason`. Any thread.
upgrade_result busy_response(const char* reason, unsigned retry_after_s);

/// Sec-WebSocket-Accept for a key: base64(SHA-1(key + RFC 6455 GUID)). Any thread.
std::string accept_key(std::string_view key);

/// Centrifugo's origin rule. No Origin header: allowed. Empty allowed list:
/// allowed only when the host[:port] of "scheme://host[:port]" equals Host,
/// case-insensitively (same origin; "null" never is).
/// Otherwise one pattern must match the whole origin, case-insensitively,
/// where '*' matches any run of characters ("*" alone allows all). Any thread.
bool check_origin(std::string_view origin, std::string_view host, const std::vector<std::string>& allowed);

/// True when the comma-separated header value holds `token` (case-insensitive).
bool has_token(std::string_view list, std::string_view token) noexcept;

}  // namespace sb::ws
