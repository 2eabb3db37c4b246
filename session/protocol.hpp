#pragma once
// Centrifuge client protocol v2, independent of its wire format: what a
// command asks for, what a reply or push says, and the protocol's codes.
// The JSON format (session/json_*.hpp) and the Protobuf format
// (session/protobuf_codec.hpp) read and write these same types
// (session/codec.hpp is the seam). The source of truth is centrifugal/protocol client.proto: field
// names are the proto names and a default value means "absent".
//
// Payload fields (`data`, `conn_info`, `chan_info`, named *_json or data)
// carry the application's bytes as they travelled: raw JSON text in the
// JSON format, the proto `bytes` field in Protobuf.
//
// Plain types and constants: no I/O, no shared state; any thread.

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace sb::proto {

/// Which request a command carries (the Command field that was set).
enum class method : std::uint8_t {
  none,  // {}: a pong (the answer to a server ping)
  connect,
  subscribe,
  unsubscribe,
  publish,
  presence,
  presence_stats,
  history,
  ping,
  send,
  rpc,
  refresh,
  sub_refresh
};

/// The field name of a method ("publish", ...; "" for none), as both formats name it. Any thread.
const char* to_string(method m) noexcept;

// ---- commands ---------------------------------------------------------------
// Every string_view below points into the decoder (unescaped strings) or into
// its copy of the frame (raw payloads) and is valid only while the command
// is being handled. A field absent (or JSON null) reads as its default
// (proto3 semantics).

/// SubscribeRequest (also the value type of ConnectRequest.subs).
struct subscribe_request {
  std::string_view channel, token, epoch;
  bool recover = false;
  bool positioned = false, recoverable = false, join_leave = false;
  std::uint64_t offset = 0;
  std::string_view data_json;  // raw payload, exactly as sent, or empty
  std::string_view delta;      // requested delta type ("fossil") or empty
};

/// ConnectRequest. `subs` maps channel → request (client-side recovery of
/// server-side subscriptions); its capacity is kept between commands.
struct connect_request {
  std::string_view token, name, version;
  std::string_view data_json;  // raw payload or empty
  std::vector<std::pair<std::string_view, subscribe_request>> subs;
};

/// UnsubscribeRequest.
struct unsubscribe_request {
  std::string_view channel;
};
/// PublishRequest.
struct publish_request {
  std::string_view channel;
  std::string_view data_json;  // raw payload or empty
};
/// PresenceRequest and PresenceStatsRequest.
struct channel_request {
  std::string_view channel;
};
/// HistoryRequest; `since` (StreamPosition) is flattened.
struct history_request {
  std::string_view channel;
  std::int32_t limit = 0;
  bool has_since = false;
  std::uint64_t since_offset = 0;
  std::string_view since_epoch;
  bool reverse = false;
};
/// RefreshRequest.
struct refresh_request {
  std::string_view token;
};
/// SubRefreshRequest.
struct sub_refresh_request {
  std::string_view channel, token;
};
/// RPCRequest (`method` on the wire).
struct rpc_request {
  std::string_view method_name, data_json;
};
/// SendRequest: asynchronous message, no reply.
struct send_request {
  std::string_view data_json;
};

/// One parsed command. Only the member matching `m` is filled; the others
/// hold defaults. Invariants the parser guarantees: at most one request;
/// id > 0 unless m is none (pong) or send.
struct command {
  std::uint32_t id = 0;
  method m = method::none;
  connect_request connect;
  subscribe_request subscribe;
  unsubscribe_request unsubscribe;
  publish_request publish;
  channel_request presence;
  channel_request presence_stats;
  history_request history;
  rpc_request rpc;
  send_request send;
  refresh_request refresh;
  sub_refresh_request sub_refresh;
};

/// Why a frame was refused. Either way the session disconnects with 3501
/// "bad request" (Centrifuge does the same); the split is for metrics/logs.
/// The names are the JSON format's; a binary format maps undecodable bytes
/// to bad_json and a well-formed message that is no command to bad_command.
enum class parse_error {
  none,
  bad_json,    // not JSON: syntax, truncation, invalid string escapes, trailing bytes
  bad_command  // JSON but not a command: not an object, unknown request shape, wrong
               // types, id not a uint32, id missing where needed, several requests,
               // nesting deeper than the limit
};

/// Name for logs ("none", "bad_json", "bad_command"). Any thread.
const char* to_string(parse_error e) noexcept;

// ---- codes ------------------------------------------------------------------
// Checked against centrifugal/centrifuge v0.33 (Centrifugo v5) errors.go,
// disconnect.go, unsubscribe.go and centrifugal.dev "Client protocol codes".

/// Error.code in a reply (the command failed; the connection stays).
namespace error_code {
inline constexpr std::uint32_t internal = 100;  // temporary
inline constexpr std::uint32_t unauthorized = 101;
inline constexpr std::uint32_t unknown_channel = 102;
inline constexpr std::uint32_t permission_denied = 103;
inline constexpr std::uint32_t method_not_found = 104;
inline constexpr std::uint32_t already_subscribed = 105;
inline constexpr std::uint32_t limit_exceeded = 106;
inline constexpr std::uint32_t bad_request = 107;
inline constexpr std::uint32_t not_available = 108;
inline constexpr std::uint32_t token_expired = 109;  // the client fetches a new token and retries
inline constexpr std::uint32_t expired = 110;
inline constexpr std::uint32_t too_many_requests = 111;  // temporary
inline constexpr std::uint32_t unrecoverable_position = 112;
}  // namespace error_code

/// The documented message of a built-in error code ("" if not built in).
std::string_view error_message(std::uint32_t code) noexcept;
/// Whether a built-in error is temporary (100 and 111): centrifuge-js then
/// retries the subscribe/connect instead of giving up.
bool error_temporary(std::uint32_t code) noexcept;

/// Disconnect codes: the WebSocket close code, with the reason as close
/// text (over WebSocket Centrifuge sends disconnects in the Close frame, not
/// as a push). 3000-3499 (and 4000-4499, >= 5000): the client reconnects;
/// 3500-3999 (and 4500-4999): terminal, it does not.
namespace disconnect_code {
inline constexpr std::uint16_t connection_closed = 3000;  // never sent, logs only
inline constexpr std::uint16_t shutdown = 3001;
inline constexpr std::uint16_t server_error = 3004;
inline constexpr std::uint16_t expired = 3005;
inline constexpr std::uint16_t sub_expired = 3006;
inline constexpr std::uint16_t slow = 3008;
inline constexpr std::uint16_t write_error = 3009;
inline constexpr std::uint16_t insufficient_state = 3010;
inline constexpr std::uint16_t force_reconnect = 3011;
inline constexpr std::uint16_t no_pong = 3012;
inline constexpr std::uint16_t too_many_requests = 3013;
inline constexpr std::uint16_t invalid_token = 3500;
inline constexpr std::uint16_t bad_request = 3501;
inline constexpr std::uint16_t stale = 3502;
inline constexpr std::uint16_t force_disconnect = 3503;
inline constexpr std::uint16_t connection_limit = 3504;
inline constexpr std::uint16_t channel_limit = 3505;
inline constexpr std::uint16_t inappropriate_protocol = 3506;
inline constexpr std::uint16_t permission_denied = 3507;
inline constexpr std::uint16_t not_available = 3508;
inline constexpr std::uint16_t too_many_errors = 3509;
}  // namespace disconnect_code

/// The documented reason of a built-in disconnect code ("" if not built in;
/// 3005 is "connection expired"). Always < 123 bytes (close frame limit).
std::string_view disconnect_reason(std::uint32_t code) noexcept;
/// Whether a v2 client reconnects after this code (centrifuge-js rule).
constexpr bool disconnect_reconnects(std::uint32_t code) noexcept {
  return !((code >= 3500 && code < 4000) || (code >= 4500 && code < 5000));
}

/// Unsubscribe push codes. >= 2500: the client resubscribes by itself.
namespace unsubscribe_code {
inline constexpr std::uint32_t server = 2000;  // "server unsubscribe"
inline constexpr std::uint32_t insufficient_state = 2500;
inline constexpr std::uint32_t expired = 2501;  // "subscription expired"
}  // namespace unsubscribe_code

// ---- results and pushes -----------------------------------------------------
// Views into the caller's data, valid while an encoder runs.

/// ClientInfo: who published / joined / left.
struct client_info_view {
  std::string_view user, client;
  std::string_view conn_info, chan_info;  // raw payload or empty
};

/// Publication. `channel` is the push's channel (Push.channel) when used
/// in a publication push; inside results it is not written.
struct publication_view {
  std::string_view channel;
  std::string_view data;  // raw payload
  std::uint64_t offset = 0;
  bool has_info = false;
  client_info_view info;
  std::span<const std::pair<std::string_view, std::string_view>> tags;
};

/// A subscription inside a connect result (server-side subscriptions), keyed
/// by channel; the fields are SubscribeResult's. {channel, offset} is the
/// common case.
struct sub_position {
  std::string_view channel;
  std::uint64_t offset = 0;
  std::string_view epoch;
  bool recoverable = false, positioned = false;
  bool recovered = false, was_recovering = false;
  bool expires = false;
  std::uint32_t ttl = 0;
  std::string_view data_json;
  std::span<const publication_view> publications;
};

/// ConnectResult.
struct connect_result {
  std::string_view client, version;
  bool expires = false;
  std::uint32_t ttl = 0;
  std::string_view data_json;
  std::uint32_t ping = 0;  // seconds between server pings
  bool pong = false;       // the client must answer pings
  std::string_view session, node;
  std::vector<sub_position> subs;  // server-side subscriptions
};

/// SubscribeResult.
struct subscribe_result {
  bool expires = false;
  std::uint32_t ttl = 0;
  bool recoverable = false;
  std::string_view epoch;
  std::uint64_t offset = 0;
  bool recovered = false, was_recovering = false, positioned = false;
  std::string_view data_json;
  std::span<const publication_view> publications;
};

/// RefreshResult.
struct refresh_result {
  std::string_view client, version;
  bool expires = false;
  std::uint32_t ttl = 0;
};

/// Subscribe push (server-side subscription made after connect).
struct server_subscription {
  bool recoverable = false, positioned = false;
  std::string_view epoch;
  std::uint64_t offset = 0;
  std::string_view data_json;
};

}  // namespace sb::proto
