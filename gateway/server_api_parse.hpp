#pragma once
// The server API's parsing of untrusted input, apart from the calls it makes
// (gateway/server_api.cpp) so that it can be fuzzed on its own
// (tests/fuzz/fuzz_server_api.cpp): a request's method name and parameters,
// a batch's list of commands, the `channels` pattern, and the shards'
// answers to `channels`. Plain functions: no state, any thread.

#include "session/protocol.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

// simdjson's DOM element, forward-declared so that including this header
// does not drag simdjson into every file that does.
namespace simdjson::dom {
class element;
}

namespace sb::api {

enum class method : std::uint8_t {
  publish, broadcast, subscribe, unsubscribe, disconnect, refresh, presence, presence_stats, history,
  history_remove, channels, info, batch, count
};

inline constexpr std::array<std::string_view, static_cast<std::size_t>(method::count)> method_names = {
    "publish", "broadcast", "subscribe", "unsubscribe", "disconnect", "refresh", "presence",
    "presence_stats", "history", "history_remove", "channels", "info", "batch"};

/// The method called `name` into m; false for none.
bool find_method(std::string_view name, method& m);

/// One API command with its parameters copied out of the request (a batch
/// runs its commands one after another, after the request's JSON is gone).
struct command {
  method m = method::count;  // count: no method (a batch entry that names none)
  std::string error;  // non-empty: the parameters were invalid (107)
  std::string channel;
  std::vector<std::string> channels;
  std::string data;  // raw JSON
  std::string user;
  std::string client;
  std::string pattern;
  std::uint16_t code = proto::disconnect_code::force_disconnect;
  std::string reason = "force disconnect";
  std::int64_t expire_at = 0;
  bool expired = false;
  // history
  std::int32_t limit = 0;
  bool has_since = false;
  std::uint64_t since_offset = 0;
  std::string since_epoch;
  bool reverse = false;
};

/// The parameters of one call of method m (a request's body, or a batch
/// entry's value). `raw`, when given, is the JSON text `params` was parsed
/// from: `data` is then taken as written (whitespace removed) instead of
/// re-encoded. Never throws; invalid parameters set `error`.
command parse_command(method m, simdjson::dom::element params, std::string_view raw = {});

/// A batch request: {"commands":[{"<method>":{...}}, ...], "parallel":bool}.
struct batch {
  std::string error;  // non-empty: the whole request is refused (107) with this message
  std::vector<command> commands;  // one per entry; an entry that is not one known method has `error` set
  bool parallel = false;
};

/// The body of a batch request (`raw`: its text, as for parse_command).
batch parse_batch(simdjson::dom::element doc, std::string_view raw = {});

/// In the text of a valid JSON object, the value of its first member named
/// `key` (written without escapes), as written; empty when there is none.
std::string_view raw_member(std::string_view object_text, std::string_view key);
/// In the text of a valid JSON array, its elements as written.
std::vector<std::string_view> raw_elements(std::string_view array_text);

/// The `channels` pattern: '*' matches any run of characters; everything
/// else matches itself.
bool glob(std::string_view p, std::string_view s);

/// Adds one shard's "<length> <name> <count>\n" entries (a name may hold
/// any byte) to `merged`. False on anything malformed (never an exception).
bool merge_channel_counts(std::string_view rest, std::map<std::string, std::uint64_t, std::less<>>& merged);

/// The parameters of a user-level command (subscribe, unsubscribe,
/// disconnect, refresh) as JSON that parse_command reads back: how the
/// command travels to the other nodes of a cluster (gateway/cluster.hpp).
std::string command_json(const command& c);

}  // namespace sb::api
