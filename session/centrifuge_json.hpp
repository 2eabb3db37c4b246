#pragma once
// Centrifuge client protocol v2, JSON format: parsing commands and encoding
// replies and pushes. docs/protocol.md has the wire format and the codes;
// the source of truth is centrifugal/protocol client.proto (field names are
// the proto names, defaults are omitted, `bytes` fields travel as raw JSON).
//
// A WebSocket text frame holds one or more commands, one JSON object per
// line; the replies to one frame are joined with '\n' into one frame. A push
// is a reply without id ({"push":{...}}). Protocol ping is an empty object in
// both directions (server "{}", client pong "{}").
//
// No I/O, no shared state, no exceptions on the data path: one parser per
// shard, used only by that shard's thread. The encoders are free functions
// that append to a caller-owned, reused std::string.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
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

/// The JSON field name of a method ("publish", ...; "" for none). Any thread.
const char* to_string(method m) noexcept;

// ---- commands ---------------------------------------------------------------
// Every string_view below points into the parser (unescaped strings) or into
// its copy of the frame (raw JSON) and is valid only while on_command runs.
// A field absent or JSON null reads as its default (proto3 semantics).

/// SubscribeRequest (also the value type of ConnectRequest.subs).
struct subscribe_request {
  std::string_view channel, token, epoch;
  bool recover = false;
  bool positioned = false, recoverable = false, join_leave = false;
  std::uint64_t offset = 0;
  std::string_view data_json;  // raw JSON, exactly as sent, or empty
  std::string_view delta;      // requested delta type ("fossil") or empty
};

/// ConnectRequest. `subs` maps channel → request (client-side recovery of
/// server-side subscriptions); its capacity is kept between commands.
struct connect_request {
  std::string_view token, name, version;
  std::string_view data_json;  // raw JSON or empty
  std::vector<std::pair<std::string_view, subscribe_request>> subs;
};

/// UnsubscribeRequest.
struct unsubscribe_request {
  std::string_view channel;
};
/// PublishRequest.
struct publish_request {
  std::string_view channel;
  std::string_view data_json;  // raw JSON or empty
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
enum class parse_error {
  none,
  bad_json,    // not JSON: syntax, truncation, invalid string escapes, trailing bytes
  bad_command  // JSON but not a command: not an object, unknown request shape, wrong
               // types, id not a uint32, id missing where needed, several requests,
               // nesting deeper than the limit
};

/// Name for logs ("none", "bad_json", "bad_command"). Any thread.
const char* to_string(parse_error e) noexcept;

/// Parses frames of newline-delimited commands. One instance per shard,
/// used only by its thread (simdjson parsers are not thread-safe and the
/// instance keeps its buffers between frames, so the steady state does not
/// allocate).
///
/// Padding: simdjson reads up to SIMDJSON_PADDING bytes past the input, and
/// frames come unmasked in the shard's scratch buffer, whose tail we do not
/// own. So parse() copies the frame once into the parser's own padded buffer
/// (grown to the largest frame seen, never shrunk; the session's frame size
/// limit bounds it). One memcpy per frame is cheaper than making every
/// producer of frames reason about padding.
class command_parser {
 public:
  /// Nesting deeper than this (counting from inside each raw JSON value
  /// such as `data`) is refused with bad_command.
  static constexpr std::size_t default_max_depth = 64;

  /// Startup/shard setup: allocates the parser state (throws bad_alloc only).
  explicit command_parser(std::size_t max_depth = default_max_depth);
  ~command_parser();
  command_parser(command_parser&&) noexcept;
  command_parser& operator=(command_parser&&) noexcept;
  command_parser(const command_parser&) = delete;
  command_parser& operator=(const command_parser&) = delete;

  /// Owner thread. Parses every command of `frame` in order and calls
  /// on_command(const command&) for each one before parsing the next (so
  /// the views in the command stay valid for the whole call). Blank lines
  /// are skipped. Stops at the first bad line and returns its error; the
  /// commands before it have been delivered. If on_command returns bool,
  /// false stops the frame early (e.g. the session is closing) with none.
  template <class F>
  parse_error parse(std::string_view frame, F&& on_command) {
    if (parse_error e = load(frame); e != parse_error::none) return e;
    for (;;) {
      bool have = false;
      if (parse_error e = next(have); e != parse_error::none) return e;
      if (!have) return parse_error::none;
      if constexpr (std::is_same_v<std::invoke_result_t<F&, const command&>, bool>) {
        if (!on_command(std::as_const(_cmd))) return parse_error::none;
      } else {
        on_command(std::as_const(_cmd));
      }
    }
  }

 private:
  struct impl;
  parse_error load(std::string_view frame) noexcept;
  parse_error next(bool& have) noexcept;

  std::unique_ptr<impl> _impl;
  command _cmd;
};

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

// ---- encoding ---------------------------------------------------------------
// Each encoder appends ONE JSON object to `out` (no newline; the caller puts
// '\n' between replies of one frame). Any thread, no shared state. Strings
// are escaped (quotes, backslash, control characters; invalid UTF-8 becomes
// U+FFFD so the text frame stays valid UTF-8). Fields named *_json / data /
// conn_info / chan_info are embedded verbatim and must already be valid JSON
// (from the parser, or from parsed JWT claims); empty means "omit".

/// Appends `s` as a JSON string literal (quoted, escaped).
void append_json_string(std::string& out, std::string_view s);

/// {"id":N,"error":{"code":C,"message":"M"[,"temporary":true]}}
void encode_error_reply(std::string& out, std::uint32_t id, std::uint32_t code, std::string_view message,
                        bool temporary = false);
/// Built-in error by code, with its documented message and temporary flag.
void encode_error_reply(std::string& out, std::uint32_t id, std::uint32_t code);

/// ClientInfo: who published / joined / left.
struct client_info_view {
  std::string_view user, client;
  std::string_view conn_info, chan_info;  // raw JSON or empty
};

/// Publication. `channel` is the push's channel (Push.channel) when used
/// with encode_publication_push; inside results it is not written.
struct publication_view {
  std::string_view channel;
  std::string_view data;  // raw JSON
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
/// {"id":N,"connect":{...}}
void encode_connect_reply(std::string& out, std::uint32_t id, const connect_result& r);

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
/// {"id":N,"subscribe":{...}}
void encode_subscribe_reply(std::string& out, std::uint32_t id, const subscribe_result& r);

/// RefreshResult.
struct refresh_result {
  std::string_view client, version;
  bool expires = false;
  std::uint32_t ttl = 0;
};
/// {"id":N,"refresh":{...}}
void encode_refresh_reply(std::string& out, std::uint32_t id, const refresh_result& r);
/// {"id":N,"sub_refresh":{"expires":true,"ttl":T}}
void encode_sub_refresh_reply(std::string& out, std::uint32_t id, bool expires, std::uint32_t ttl);

/// {"id":N,"<method>":{}} for results without fields (unsubscribe, publish,
/// ping, and sub_refresh/refresh when nothing expires).
void encode_empty_reply(std::string& out, std::uint32_t id, method m);

/// {"id":N,"presence":{"presence":{"<client>":{ClientInfo},...}}}
void encode_presence_reply(std::string& out, std::uint32_t id, std::span<const client_info_view> clients);
/// {"id":N,"presence_stats":{"num_clients":C,"num_users":U}}
void encode_presence_stats_reply(std::string& out, std::uint32_t id, std::uint32_t num_clients,
                                 std::uint32_t num_users);
/// {"id":N,"history":{"publications":[...],"epoch":"E","offset":O}}
void encode_history_reply(std::string& out, std::uint32_t id, std::span<const publication_view> pubs,
                          std::string_view epoch, std::uint64_t offset);
/// {"id":N,"rpc":{"data":...}}
void encode_rpc_reply(std::string& out, std::uint32_t id, std::string_view data_json);

/// {"push":{"channel":"c","pub":{"data":...,"info":{...},"offset":O,"tags":{...}}}}
/// Called once per publication per shard; every subscriber shares the bytes.
void encode_publication_push(std::string& out, const publication_view& p);
/// Same, positional; info may be null.
void encode_publication_push(std::string& out, std::string_view channel, std::string_view data_json,
                             std::uint64_t offset, const client_info_view* info = nullptr);
/// {"push":{"channel":"c","join":{"info":{...}}}}
void encode_join_push(std::string& out, std::string_view channel, const client_info_view& info);
/// {"push":{"channel":"c","leave":{"info":{...}}}}
void encode_leave_push(std::string& out, std::string_view channel, const client_info_view& info);
/// {"push":{"channel":"c","unsubscribe":{"code":C,"reason":"R"}}}
void encode_unsubscribe_push(std::string& out, std::string_view channel, std::uint32_t code, std::string_view reason);

/// Subscribe push (server-side subscription made after connect).
struct subscribe_push {
  bool recoverable = false, positioned = false;
  std::string_view epoch;
  std::uint64_t offset = 0;
  std::string_view data_json;
};
/// {"push":{"channel":"c","subscribe":{...}}}
void encode_subscribe_push(std::string& out, std::string_view channel, const subscribe_push& s);
/// {"push":{"message":{"data":...}}} (server-to-client async message)
void encode_message_push(std::string& out, std::string_view data_json);
/// {"push":{"refresh":{"expires":true,"ttl":T}}} (server-side refresh)
void encode_refresh_push(std::string& out, bool expires, std::uint32_t ttl);
/// {"push":{"disconnect":{"code":C,"reason":"R"}}}. Over WebSocket the
/// disconnect goes in the Close frame instead (Centrifuge disables this push
/// there); this is for unidirectional transports and tests.
void encode_disconnect_push(std::string& out, std::uint32_t code, std::string_view reason);
/// Server ping: "{}".
void encode_ping(std::string& out);

}  // namespace sb::proto
