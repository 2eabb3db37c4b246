#pragma once
// A channel as its home shard knows it: which of this node's shards have
// subscribers (the router's part) and where the stream stands (the
// engine's part, routing/engine.hpp). Home shard thread only.

#include "pool/compact_string.hpp"
#include "routing/shard_set.hpp"
#include "routing/stream.hpp"

#include <cstdint>
#include <memory>
#include <string_view>

namespace sb::routing {

/// What an engine keeps per channel beside the record (the memory engine's
/// retained history and presence). Null for channels that need nothing.
struct channel_store {
  virtual ~channel_store() = default;
};

/// One record per channel per home shard, pooled; 72 bytes. Lean channels
/// (no history, presence or join/leave; decisions §18) have none. The record
/// lives while a shard of this node subscribes, or while its engine keeps it
/// (engine::release returned true), and goes through router's erase_home.
struct home_channel {
  explicit home_channel(std::string_view n) : name(n) {}
  compact_string name;
  shard_set shards;          // this node's shards with subscribers
  std::uint64_t offset = 0;  // of the last publication dispatched here (the engine keeps it)
  stream_epoch epoch;        // the stream's epoch as the engine gave it: changes when continuity is lost
  std::unique_ptr<channel_store> store;  // the engine's; null when it keeps nothing for this channel
};

inline std::string_view home_channel_name(const home_channel& c) noexcept { return c.name; }

}  // namespace sb::routing
