#pragma once
// What a channel's stream looks like to those who read it: its epoch, where
// a subscription starts in it, and the answers to history and presence
// reads. Shared by the router (routing/router.hpp) and the engine that keeps
// the streams (routing/engine.hpp). Plain values: any thread.

#include "routing/publication.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sb::routing {

/// A stream's epoch as the records keep it: the 8 characters its home drew
/// (8 bytes per record instead of a 32-byte string; there is a record per
/// personal channel on two shards), or none.
class stream_epoch {
 public:
  stream_epoch() = default;
  explicit stream_epoch(std::string_view s) noexcept {
    for (std::size_t i = 0; i < sizeof(_c) && i < s.size(); ++i) _c[i] = s[i];
  }
  std::string_view view() const noexcept {
    std::size_t n = 0;
    while (n < sizeof(_c) && _c[n] != 0) ++n;
    return {_c, n};
  }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: read as a view everywhere

 private:
  char _c[8] = {};
};

/// Where a subscription starts, as its home shard said (DESIGN.md "The path
/// of a message"): the offset of the last publication before it and the
/// stream's epoch; for a recovering subscription also whether the position
/// it asked for could be served and the publications it missed, in order.
struct position {
  std::uint64_t offset = 0;
  std::string_view epoch;
  bool was_recovering = false;
  bool recovered = false;
  std::span<const publication_ptr> publications;
};

/// A subscription's request to recover from a known position.
struct recovery_request {
  std::uint64_t offset = 0;
  std::string_view epoch;
};

/// The engine's answer to a recovery: the stream's position after which the
/// live publications follow, and (when recovered) the ones in between.
struct recovery_answer {
  std::uint32_t error = 0;  // 0, or 100 (the engine could not read the stream)
  std::uint64_t offset = 0;
  stream_epoch epoch;
  bool recovered = false;
  std::vector<publication_ptr> publications;
};

/// A history read (the `history` command and the server API's).
struct history_query {
  std::int32_t limit = 0;  // 0: position only; < 0: everything retained; > 0: at most this many
  bool has_since = false;
  std::uint64_t since_offset = 0;
  std::string since_epoch;
  bool reverse = false;   // newest first
  bool remove = false;    // history_remove: drop what is retained instead
};

/// The home's answer to a history_query.
struct history_answer {
  std::uint32_t error = 0;   // 0, 108 (no history in this namespace) or 112 (since not servable)
  std::uint64_t offset = 0;  // the stream's position
  std::string epoch;
  std::vector<publication_ptr> publications;
};

/// The home's answer to a presence read.
struct presence_answer {
  std::uint32_t error = 0;  // 0, or 108 (no presence in this namespace)
  std::vector<client_info> clients;  // empty when only the counts were asked for
  std::uint32_t num_clients = 0;
  std::uint32_t num_users = 0;
};

}  // namespace sb::routing
