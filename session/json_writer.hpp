#pragma once
// Centrifuge protocol v2, JSON format, writing: replies ({"id":N,...}) and
// pushes ({"push":{...}}), defaults omitted as Centrifuge's encoder does.
// The replies to one frame are joined with '\n' into one frame (the
// json_encoder in session/json_codec.hpp does that); the server's ping is
// an empty object ({}).
//
// Each encoder appends ONE JSON object to `out` (no newline). Strings
// are escaped (quotes, backslash, control characters; invalid UTF-8 becomes
// U+FFFD so the text frame stays valid UTF-8). Fields named *_json / data /
// conn_info / chan_info are embedded verbatim and must already be valid JSON
// (from the parser, or from parsed JWT claims); empty means "omit".
//
// No shared state: any thread. Each encoder appends to a caller-owned,
// reused std::string (no allocation once it has grown).

#include "session/protocol.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sb::proto {

/// Appends `s` as a JSON string literal (quoted, escaped).
void append_json_string(std::string& out, std::string_view s);

/// {"id":N,"error":{"code":C,"message":"M"[,"temporary":true]}}
void encode_error_reply(std::string& out, std::uint32_t id, std::uint32_t code, std::string_view message,
                        bool temporary = false);
/// Built-in error by code, with its documented message and temporary flag.
void encode_error_reply(std::string& out, std::uint32_t id, std::uint32_t code);

/// {"id":N,"connect":{...}}
void encode_connect_reply(std::string& out, std::uint32_t id, const connect_result& r);

/// {"id":N,"subscribe":{...}}
void encode_subscribe_reply(std::string& out, std::uint32_t id, const subscribe_result& r);

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

/// {"push":{"channel":"c","subscribe":{...}}}
void encode_subscribe_push(std::string& out, std::string_view channel, const server_subscription& s);
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
