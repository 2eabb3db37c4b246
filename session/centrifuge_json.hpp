#pragma once
// Centrifuge client protocol v2, JSON format: parsing commands and encoding
// replies and pushes (docs/protocol.md has the wire format and the codes).
//
// A WebSocket text frame holds one or more commands, one JSON object per
// line; the replies to one frame are joined with '\n' into one frame. A
// push is a reply without id ({"push":{...}}). Protocol ping is an empty
// object in both directions. `bytes` fields (data, info) travel as raw JSON.
//
// The codec has no I/O and no shared state: one parser per shard thread.
// Protobuf would be a second codec beside this one with the same command
// struct, chosen at the upgrade by subprotocol.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sb::proto {

enum class method : std::uint8_t {
  none,  // {}: a pong
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

/// Name of a method as it appears on the wire ("publish"...).
const char* to_string(method m) noexcept;

struct connect_request {
  std::string_view token, name, version;
  std::string data_json;  // raw JSON or empty
};
struct subscribe_request {
  std::string_view channel, token, epoch;
  bool recover = false, positioned = false, recoverable = false, join_leave = false;
  std::uint64_t offset = 0;
  std::string data_json;
};
struct channel_request {
  std::string_view channel;
};
struct publish_request {
  std::string_view channel;
  std::string data_json;
};
struct history_request {
  std::string_view channel;
  std::int32_t limit = 0;
  bool has_since = false;
  std::uint64_t since_offset = 0;
  std::string_view since_epoch;
  bool reverse = false;
};
struct refresh_request {
  std::string_view token;
};
struct sub_refresh_request {
  std::string_view channel, token;
};
struct rpc_request {
  std::string_view method_name;
  std::string data_json;
};

/// One parsed command. String views point into the parser and are valid
/// during the callback only. Only the member matching `m` is filled.
struct command {
  std::uint32_t id = 0;
  method m = method::none;
  connect_request connect;
  subscribe_request subscribe;
  channel_request unsubscribe;
  publish_request publish;
  channel_request presence;  // presence and presence_stats
  history_request history;
  refresh_request refresh;
  sub_refresh_request sub_refresh;
  rpc_request rpc;  // rpc and send (data only)
};

enum class parse_error { none, bad_json, bad_command };

/// Parses frames of commands. Owner shard's thread; reuse one per shard.
class command_parser {
 public:
  command_parser();
  ~command_parser();
  command_parser(const command_parser&) = delete;
  command_parser& operator=(const command_parser&) = delete;

  /// Calls on_command for every command in the frame, in order, and stops
  /// at the first malformed one (the caller disconnects with 3501).
  template <typename F>
  parse_error parse(std::string_view frame, F&& on_command) {
    while (!frame.empty()) {
      auto nl = frame.find('\n');
      std::string_view line = frame.substr(0, nl);
      frame = nl == std::string_view::npos ? std::string_view{} : frame.substr(nl + 1);
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      parse_error e = parse_one(line, _cmd);
      if (e != parse_error::none) return e;
      on_command(static_cast<const command&>(_cmd));
    }
    return parse_error::none;
  }

  /// Parses exactly one command (one line).
  parse_error parse_one(std::string_view line, command& out);

 private:
  struct impl;
  impl* _impl;
  command _cmd;
};

// ---- codes (Centrifugo v5 "Error and disconnect codes") --------------------

namespace error_code {
inline constexpr std::uint32_t internal = 100, unauthorized = 101, unknown_channel = 102, permission_denied = 103,
                               method_not_found = 104, already_subscribed = 105, limit_exceeded = 106,
                               bad_request = 107, not_available = 108, token_expired = 109, expired = 110,
                               too_many_requests = 111, unrecoverable_position = 112;
}

/// Sent as the WebSocket close code with the reason text. 3000-3499:
/// the client reconnects; 3500-3999: it does not.
namespace disconnect_code {
inline constexpr std::uint16_t connection_closed = 3000, shutdown = 3001, server_error = 3004, expired = 3005,
                               sub_expired = 3006, slow = 3008, write_error = 3009, insufficient_state = 3010,
                               force_reconnect = 3011, no_pong = 3012, too_many_requests = 3013,
                               invalid_token = 3500, bad_request = 3501, stale = 3502, force_disconnect = 3503,
                               connection_limit = 3504, channel_limit = 3505, permission_denied = 3507,
                               not_available = 3508;
}

// ---- encoding (each appends one JSON object to `out`, no newline) ---------

/// Appends `s` as a JSON string literal (quoted, escaped).
void append_json_string(std::string& out, std::string_view s);

void encode_error_reply(std::string& out, std::uint32_t id, std::uint32_t code, std::string_view message,
                        bool temporary = false);

struct sub_position {
  std::string_view channel;
  std::uint64_t offset = 0;
};
struct connect_result {
  std::string_view client, version;
  bool expires = false;
  std::uint32_t ttl = 0;
  std::uint32_t ping = 0;  // seconds between server pings
  bool pong = false;       // the client must answer pings
  std::vector<sub_position> subs;  // server-side subscriptions
};
void encode_connect_reply(std::string& out, std::uint32_t id, const connect_result& r);

struct subscribe_result {
  bool expires = false;
  std::uint32_t ttl = 0;
  bool recoverable = false;
  std::string_view epoch;
  std::uint64_t offset = 0;
  bool recovered = false, was_recovering = false, positioned = false;
};
void encode_subscribe_reply(std::string& out, std::uint32_t id, const subscribe_result& r);

struct refresh_result {
  std::string_view client, version;
  bool expires = false;
  std::uint32_t ttl = 0;
};
void encode_refresh_reply(std::string& out, std::uint32_t id, const refresh_result& r);
void encode_sub_refresh_reply(std::string& out, std::uint32_t id, bool expires, std::uint32_t ttl);

/// {"id":N,"<method>":{}} for results without fields (unsubscribe, publish, ping).
void encode_empty_reply(std::string& out, std::uint32_t id, method m);

struct client_info_view {
  std::string_view user, client, conn_info, chan_info;  // infos are raw JSON or empty
};
struct publication_view {
  std::string_view channel, data;  // data: raw JSON
  std::uint64_t offset = 0;
  bool has_info = false;
  client_info_view info;
};
void encode_publication_push(std::string& out, const publication_view& p);
void encode_unsubscribe_push(std::string& out, std::string_view channel, std::uint32_t code, std::string_view reason);
void encode_disconnect_push(std::string& out, std::uint32_t code, std::string_view reason);
/// Server ping: an empty object.
void encode_ping(std::string& out);

}  // namespace sb::proto
