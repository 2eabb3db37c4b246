#pragma once
// Who gets what: the channel tables of one shard and its half of the
// home-shard protocol (DESIGN.md "The path of a message").
//
// A channel's home shard is hash(channel) % shards. The home keeps the
// record of which of this node's shards have subscribers and hands the
// stream itself (ordering, history, presence) to its engine
// (routing/engine.hpp; the memory engine by default); every other shard
// keeps only its local subscribers.
//
//   subscribe     a shard with no registration for the channel sends
//                 register(channel) to the home, which asks its engine where
//                 the stream stands, records the shard and answers with that
//                 offset; the subscription becomes active when the answer
//                 arrives. Rings are FIFO and the engine answers before it
//                 dispatches the next publication, so every publication
//                 forwarded after the answer follows it: nothing is missed
//                 and nothing arrives twice. A shard already registered
//                 activates new subscriptions at once, at the offset of the
//                 last publication it delivered.
//   publish       the entering shard sends the publication to the home,
//                 whose engine stamps the next offset and dispatches it; the
//                 home forwards one reference per subscriber shard, and each
//                 shard encodes the push frame once per push format and
//                 queues it on every local subscriber.
//   unsubscribe   when a shard's last local subscription (active or
//                 pending) ends, it sends unregister(channel) to the home.
//
// router.cpp is the subscriber and entering side, router_home.cpp the home
// side.
//
// Threading: a router belongs to its shard; every member function runs on
// that shard's thread. Routers of other shards are reached only through
// tasks on the mesh.

#include "pool/compact_string.hpp"
#include "pool/frame_buffer.hpp"
#include "pool/keyed_set.hpp"
#include "pool/object_pool.hpp"
#include "pool/task.hpp"
#include "routing/engine.hpp"
#include "routing/home_channel.hpp"
#include "routing/publication.hpp"
#include "routing/router_stats.hpp"
#include "routing/stream.hpp"
#include "routing/subscription.hpp"

#include <boost/unordered/unordered_flat_map.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sb {
class mesh;
}

namespace sb::routing {

/// Encodes a publication into a complete WebSocket frame in one push
/// format (protocol-specific, set by gateway/). Called once per publication
/// per subscriber shard per push format that a subscriber there reads, on
/// that shard's thread; `arg` is what the shard registered with it (the
/// shard's compressor for the compressed formats).
struct push_encoder {
  using fn_type = frame_ref (*)(void* arg, frame_pool& pool, const publication& pub);
  fn_type fn = nullptr;
  void* arg = nullptr;
  explicit operator bool() const noexcept { return fn != nullptr; }
  frame_ref operator()(frame_pool& pool, const publication& pub) const { return fn(arg, pool, pub); }
};
/// One encoder per push format (subscribe_flags::push_format); null where
/// no subscriber will ask for it.
using push_encoders = std::array<push_encoder, max_push_formats>;

/// One shard's routing state. Shard thread only.
class router final : private engine_host {
 public:
  /// `all` must hold every shard's router (index = shard id) before any
  /// task runs; it is read-only afterwards. `streams` is this shard's engine:
  /// it must outlive the router.
  router(unsigned shard_id, mesh& m, const std::vector<router*>& all, frame_pool& frames, const push_encoders& encode,
         engine& streams);
  ~router();
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  /// Tells subscriber shards whose forwards the mesh shed where their
  /// streams stand, resends the joins/leaves the mesh refused, and lets the
  /// engine expire what it keeps; the shard calls it about once a second.
  void sweep_history();

  unsigned id() const noexcept { return _id; }
  mesh& shard_mesh() const noexcept { return _mesh; }
  const std::vector<router*>& all() const noexcept { return _all; }
  /// The home shard of a channel (any thread).
  static unsigned home_of(std::string_view channel, unsigned shards) noexcept {
    return static_cast<unsigned>(channel_hash(channel) % shards);
  }
  /// A channel's 64-bit hash, the same in every process and run (a cluster
  /// agrees on homes); also the key of a lean channel at its home.
  static std::uint64_t channel_hash(std::string_view channel) noexcept;
  /// Lean channels (decisions §18) are kept at their home under 32 bits of
  /// the hash (the high half: the low bits are alike for one home's
  /// channels), with up to this many shards.
  static constexpr unsigned lean_max_shards = 32;
  static std::uint32_t lean_key(std::string_view channel) noexcept {
    return static_cast<std::uint32_t>(channel_hash(channel) >> 32);
  }

  /// Subscribes `who` to `channel`. Returns the subscription, active at once
  /// (on_subscribed already called) when this shard is registered and no
  /// recovery is asked for, else pending until the home answers. With
  /// `recover`, the home answers with the publications after that position
  /// in the same order as the live stream, so none is missed or repeated.
  /// Null when the mesh refused (overload).
  subscription* subscribe(subscriber& who, std::string_view channel, const recovery_request* recover = nullptr,
                          subscribe_flags flags = {});

  /// Ends a subscription (active or pending). The pointer is invalid after.
  void unsubscribe(subscription* s);

  /// Sends a publication to its channel's home for ordering and fan-out;
  /// `ordered` (may be empty) runs on the home shard with the engine's
  /// answer (callers hop back themselves). False when the mesh refused it
  /// (overload; counted).
  bool publish(publication_ptr pub, publish_done ordered = {});

  /// From the main thread (the server API): sends `pub` to its channel's
  /// home through the main thread's rings; on the home shard, once its
  /// engine ordered it, `ordered(offset, epoch)` runs there (offset 0:
  /// nobody subscribes anywhere, dropped; epoch empty unless the channel
  /// keeps history). False when the mesh refused (overload).
  static bool publish_from_main(mesh& m, const std::vector<router*>& all, publication_ptr pub, publish_done ordered);

  /// Sends `q` to `channel`'s home from `source` (a shard id, or the main
  /// source); `answered` runs on the home shard with the answer (callers hop
  /// back themselves). False when the mesh refused.
  static bool query_history(mesh& m, unsigned source, const std::vector<router*>& all, std::string_view channel,
                            history_query q, std::function<void(history_answer&&)> answered);

  /// Presence: `who` joined / left `channel` (a client of this shard; sent
  /// after the subscribe and before the unsubscribe on the same ring, so the
  /// home sees them in order). With join_leave the home pushes the event to
  /// every subscriber.
  void join(std::string_view channel, client_info who);
  void leave(std::string_view channel, client_info who);

  /// Reads `channel`'s presence at its home (as query_history).
  static bool query_presence(mesh& m, unsigned source, const std::vector<router*>& all, std::string_view channel,
                             bool counts_only, std::function<void(presence_answer&&)> answered);

  /// Calls fn(name, active local subscriptions) for every channel with
  /// subscribers on this shard.
  template <typename Fn>
  void for_each_local_channel(Fn&& fn) const {
    for (const local_channel* lc : _local) {
      if (lc->active > 0) fn(std::string_view(lc->name), lc->active);
    }
  }

  const router_stats& stats() const noexcept { return _stats; }
  std::size_t local_channel_count() const noexcept { return _local.size(); }
  /// Of home_channel_count, the lean channels (no record, engine::lean).
  std::size_t lean_channel_count() const noexcept { return _lean.size(); }
  /// Channels this shard is home of: with a record, and lean ones.
  std::size_t home_channel_count() const noexcept { return _home.size() + _lean.size(); }

 private:
  // Home side (router_home.cpp).
  home_channel* find_home(std::string_view channel) override;
  home_channel* make_home(std::string_view channel) override;
  void erase_home(home_channel* hc) override;
  void dispatch(home_channel& hc, const publication_ptr& pub) override;
  void reset_stream(home_channel& hc, std::uint64_t offset, stream_epoch epoch) override;
  void release_if_unsubscribed(std::string_view channel);
  void home_publish(publication_ptr pub, publish_done done);
  void answer_register(unsigned from, local_channel* lc, std::uint32_t error, std::uint64_t offset,
                       stream_epoch epoch);
  bool lean_register(unsigned from, std::string_view channel);
  void lean_unregister(unsigned from, std::string_view channel);
  void forward(std::uint16_t shard, const publication_ptr& pub, const home_channel* hc);
  void on_register(unsigned from, compact_string channel, local_channel* lc);
  void on_sync(unsigned from, compact_string channel, local_channel* lc, subscription* s, std::uint64_t since,
               compact_string epoch);
  void on_unregister(unsigned from, std::string_view channel);
  void send_positions();
  // Subscriber side (router.cpp).
  void on_registered(local_channel* lc, std::uint32_t error, std::uint64_t offset, stream_epoch epoch);
  void on_synced(local_channel* lc, subscription* s, std::uint32_t error, std::uint64_t offset, stream_epoch epoch,
                 bool recovered, std::vector<publication_ptr> pubs);
  void on_reset(std::string_view channel, std::uint64_t offset, stream_epoch epoch);
  void on_deliver(const publication_ptr& pub);
  void on_position(std::string_view channel, std::uint64_t offset);
  void stream_gap(local_channel* lc);
  void release_if_unused(local_channel* lc);
  void send_presence(publication_ptr event);
  bool try_send_presence(const publication_ptr& event);
  bool send(unsigned to, task t);

  const unsigned _id;
  mesh& _mesh;
  const std::vector<router*>& _all;
  frame_pool& _frames;
  push_encoders _encode;
  engine& _engine;
  router_stats _stats;
  // Pooled records found by the name they hold (8-byte slots).
  keyed_set<local_channel, &local_channel_name> _local;
  keyed_set<home_channel, &home_channel_name> _home;
  // Home side, lean channels (engine::lean, decisions §18): no record, only
  // the bits of the subscriber shards under 32 bits of the channel's hash
  // (8-byte slots; at most 32 shards). Channels whose keys collide share an
  // entry: a shard's second registration under one key is counted in
  // _lean_extra, so neither channel loses the shard's bit while the other
  // still needs it; a collision only costs forwards the other shard drops.
  boost::unordered_flat_map<std::uint32_t, std::uint32_t> _lean;
  boost::unordered_flat_map<std::pair<std::uint32_t, std::uint16_t>, std::uint32_t,
                            boost::hash<std::pair<std::uint32_t, std::uint16_t>>>
      _lean_extra;
  object_pool<local_channel> _local_pool;
  object_pool<home_channel> _home_pool;
  object_pool<subscription> _sub_pool;
  // Home side: (channel, shard) whose publication forward the mesh shed;
  // sweep_history sends each the stream's position so that a gap at the end
  // of a stream is found too (a later publication would show it anyway).
  static constexpr std::size_t shed_limit = 1u << 16;
  std::vector<std::pair<compact_string, std::uint16_t>> _shed;
  // Subscriber side: joins/leaves the mesh refused, oldest first; resent by
  // sweep_history. Bounded: past the limit they are dropped and counted.
  static constexpr std::size_t presence_backlog_limit = 1u << 20;
  std::deque<publication_ptr> _presence_backlog;
};

}  // namespace sb::routing
