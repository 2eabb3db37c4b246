#pragma once
// A publication as it travels between shards: created once where it enters
// (server API or a client's publish), ordered by the channel's home shard,
// and read by every shard that has subscribers. It is immutable once the
// home shard has stamped it, and shared by reference between shards, so its
// count is atomic — one increment per destination shard, never one per
// subscriber (subscribers share the encoded frame, see routing/router.cpp).

#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>

#include <cstdint>
#include <string>

namespace sb::routing {

/// Who published (absent for server-side publications).
struct client_info {
  std::string user;
  std::string client;     // client id
  std::string conn_info;  // raw JSON or empty
  std::string chan_info;  // raw JSON or empty
};

/// One publication. Written by the entering shard, stamped (offset) by the
/// home shard before it is shared; read-only afterwards on every shard.
struct publication : boost::intrusive_ref_counter<publication, boost::thread_safe_counter> {
  /// What subscribers get: a publication, or a join/leave event (presence
  /// with join_leave; `info` says who; no offset, not kept in history).
  enum class kind : std::uint8_t { publication, join, leave };
  kind what = kind::publication;
  std::string channel;
  std::string data;        // raw JSON
  std::uint64_t offset = 0;
  std::int64_t entered_ns = 0;  // steady clock when it entered the gateway (publish→write latency)
  bool has_info = false;
  client_info info;
};

using publication_ptr = boost::intrusive_ptr<publication>;

}  // namespace sb::routing
