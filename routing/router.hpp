#pragma once
// Who gets what: the channel tables of one shard and its half of the
// home-shard protocol (DESIGN.md "The path of a message").
//
// A channel's home shard is hash(channel) % shards. The home keeps the
// authoritative record (which shards have subscribers, the offset
// sequence); every other shard keeps only its local subscribers.
//
//   subscribe     a shard with no registration for the channel sends
//                 register(channel) to the home, which records the shard
//                 and answers with the current offset; the subscription
//                 becomes active when that answer arrives. Rings are FIFO,
//                 so every publication the home forwards after recording
//                 the shard arrives after the answer: nothing is missed and
//                 nothing arrives twice. A shard already registered
//                 activates new subscriptions at once, at the offset of the
//                 last publication it delivered.
//   publish       the entering shard sends the publication to the home,
//                 which stamps the next offset and forwards one reference
//                 per subscriber shard; each shard encodes the push frame
//                 once and queues it on every local subscriber.
//   unsubscribe   when a shard's last local subscription (active or
//                 pending) ends, it sends unregister(channel) to the home.
//
// Threading: a router belongs to its shard; every member function runs on
// that shard's thread. Routers of other shards are reached only through
// tasks on the mesh.

#include "pool/compact_string.hpp"
#include "pool/counter.hpp"
#include "pool/frame_buffer.hpp"
#include "pool/keyed_set.hpp"
#include "pool/object_pool.hpp"
#include "pool/task.hpp"
#include "routing/publication.hpp"

#include <boost/intrusive/list.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sb {
class mesh;
}

namespace sb::routing {

struct local_channel;
class subscription;
class channel_rules;

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

/// A subscription's request to recover from a known position.
struct recovery_request {
  std::uint64_t offset = 0;
  std::string_view epoch;
};

/// How a subscription follows its channel (the namespace's options and the
/// client's request, decided by gateway/).
struct subscribe_flags {
  bool positioned = false;   // told of gaps in the stream (on_insufficient_state)
  bool join_leave = false;   // receives join and leave pushes
  bool recoverable = false;  // may recover (the router does not read it; its owner does)
};

/// A local subscriber (the client state of a session, in gateway/).
/// Called on the shard thread.
class subscriber {
 public:
  /// The subscription is active from now on, at `pos`; publications after
  /// it follow through deliver().
  virtual void on_subscribed(subscription& s, const position& pos) = 0;
  /// An encoded push frame for this subscriber (shared with the others).
  virtual void deliver(const frame_ref& frame) = 0;
  /// A positioned subscription missed publications (its shard saw a gap in
  /// the channel's offsets: the mesh shed a forward under overload). The
  /// Centrifuge answer is a disconnect with "insufficient state", after
  /// which the client recovers from its last offset.
  virtual void on_insufficient_state(subscription& s) = 0;

 protected:
  ~subscriber() = default;
};

/// One session's subscription to one channel on its shard. Owned by the
/// router's pool; the subscriber keeps the pointer until it unsubscribes.
/// 48 bytes: there is one per session per channel.
class subscription : public boost::intrusive::list_base_hook<> {
 public:
  subscription(local_channel* c, subscriber* o, subscribe_flags f)
      : channel(c), owner(o), positioned(f.positioned), join_leave(f.join_leave), recoverable(f.recoverable) {}
  local_channel* channel;
  subscriber* owner;       // null once cancelled while pending
  // The owner's fields; the router never reads them. The owner chains its
  // subscriptions here instead of keeping a vector of pointers beside them.
  subscription* next_of_owner = nullptr;
  std::uint32_t owner_tag = 0;  // e.g. the command waiting for activation
  bool owner_flag : 1 = false;  // e.g. made by the server, not the client
  bool active : 1 = false;      // the home (or the local registration) confirmed it
  bool recovering : 1 = false;  // waits for the home's answer to its recovery request
  bool positioned : 1;          // subscribe_flags
  bool join_leave : 1;
  bool recoverable : 1;
  /// The channel's name (valid while the subscription exists).
  std::string_view name() const noexcept;
};

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

/// A channel as one subscriber shard knows it.
struct local_channel {
  explicit local_channel(std::string_view n) : name(n) {}
  compact_string name;
  boost::intrusive::list<subscription, boost::intrusive::constant_time_size<false>> subs;
  std::uint32_t active = 0;        // active subscriptions
  std::uint32_t pending = 0;       // waiting for the home's answer
  bool registered = false;         // the home has recorded this shard
  bool registering = false;        // a register is on its way
  std::uint64_t last_offset = 0;   // offset of the last publication delivered here
  stream_epoch epoch;              // the stream's epoch, from the home
};

/// The shards that have subscribers of one channel: a bit per shard below
/// 64 (16 bytes per channel, no allocation), a list beyond. Iterates in
/// increasing shard order.
class shard_set {
 public:
  bool insert(std::uint16_t shard);  // false when already present
  bool erase(std::uint16_t shard);   // false when absent
  bool empty() const noexcept { return _low == 0 && (!_high || _high->empty()); }
  template <typename F>
  void for_each(F&& f) const {
    for (std::uint64_t bits = _low; bits != 0; bits &= bits - 1) {
      f(static_cast<std::uint16_t>(__builtin_ctzll(bits)));
    }
    if (_high) {
      for (std::uint16_t s : *_high) f(s);
    }
  }

 private:
  std::uint64_t _low = 0;
  std::unique_ptr<std::vector<std::uint16_t>> _high;  // shards >= 64, sorted
};

/// One retained publication of a channel's history.
struct history_entry {
  publication_ptr pub;
  std::int64_t expires_ms;  // steady clock
};

/// A channel's retained publications, oldest first, with its namespace's bounds.
struct home_channel;
struct channel_history {
  std::deque<history_entry> items;
  std::uint32_t size = 0;    // history_size
  std::int64_t ttl_ms = 0;   // history_ttl
  std::int64_t keep_until_ms = 0;  // with no subscriber shard: the record stays at least until then
  std::uint64_t bytes = 0;   // of the retained publications
  home_channel* owner = nullptr;
  // In the router's list of channels with retained history, least recently
  // published first: history_max_bytes evicts from its front.
  boost::intrusive::list_member_hook<> lru;
};

/// A channel as its home shard knows it. With history (the namespace's
/// history_size and history_ttl both set) the record outlives its last
/// subscriber while publications are retained, so that a client returning
/// within history_ttl can recover; when the retained history runs out with
/// nobody subscribed the record goes, and the next one has a new epoch
/// (continuity lost).
struct home_channel {
  explicit home_channel(std::string_view n) : name(n) {}
  compact_string name;
  shard_set shards;          // shards with subscribers
  std::uint64_t offset = 0;  // of the last publication
  stream_epoch epoch;        // random per record: changes when continuity is lost
  std::unique_ptr<channel_history> history;  // null: no history in this namespace
  std::uint32_t idle_index = UINT32_MAX;                // in the router's idle list (no shards, history kept)
  // Presence (namespace option `presence`): who is subscribed, by client id,
  // kept by join/leave messages from the subscribers' shards. Null when off
  // or empty.
  std::unique_ptr<boost::unordered_flat_map<std::string, client_info>> presence;
};

inline std::string_view local_channel_name(const local_channel& c) noexcept { return c.name; }
inline std::string_view home_channel_name(const home_channel& c) noexcept { return c.name; }

/// Encodes a publication into a complete WebSocket frame (protocol-specific,
/// set by gateway/). Called once per publication per subscriber shard.
using push_encoder = frame_ref (*)(frame_pool& pool, const publication& pub);

/// Figures of one router; shard-written, readable anywhere.
struct router_stats {
  counter local_channels;     // channels with local subscriptions
  counter home_channels;      // channels this shard is home of
  counter subscriptions;      // local subscriptions (active + pending)
  counter publications_in;    // publications that entered here
  counter publications_home;  // publications ordered here as home
  counter publications_dropped;  // at the home, with no subscriber anywhere
  counter deliveries;         // frames queued to local subscribers
  counter frames_encoded;     // push frames encoded (one per publication per shard)
  counter mesh_refused;       // sends the mesh shed (ring and overflow full)
  counter history_publications;  // publications retained at this home now
  counter history_bytes;      // their payload bytes (data + channel)
  counter recoveries;         // recovery requests answered here as home
  counter recoveries_failed;  // ... that could not be served (recovered: false)
  counter presence_entries;   // clients in the presence of channels homed here
  counter history_evictions;  // channels whose history history_max_bytes dropped
  counter stream_gaps;        // publications a subscriber shard found missing (shed forwards)
  counter presence_lost;      // joins/leaves dropped: the mesh refused them and the backlog was full
};

/// One shard's routing state. Shard thread only.
class router {
 public:
  /// `all` must hold every shard's router (index = shard id) before any
  /// task runs; it is read-only afterwards. `rules` (may be null: no
  /// history anywhere) gives each namespace's history_size and history_ttl.
  router(unsigned shard_id, mesh& m, const std::vector<router*>& all, frame_pool& frames, push_encoder encode,
         const channel_rules* rules = nullptr, std::uint64_t history_max_bytes = 0);

  /// Drops expired history and the records it kept alive, tells subscriber
  /// shards whose forwards the mesh shed where their streams stand, and
  /// resends the joins/leaves the mesh refused; the shard calls it about
  /// once a second.
  void sweep_history();
  ~router();
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  unsigned id() const noexcept { return _id; }
  mesh& shard_mesh() const noexcept { return _mesh; }
  const std::vector<router*>& all() const noexcept { return _all; }
  /// The home shard of a channel (any thread).
  static unsigned home_of(std::string_view channel, unsigned shards) noexcept;

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

  /// Sends a publication to its channel's home for ordering and fan-out.
  /// False when the mesh refused it (overload; counted).
  bool publish(publication_ptr pub);

  /// From the main thread (the server API): sends `pub` to its channel's
  /// home through the main thread's rings; on the home shard, right after
  /// the home ordered it, `ordered(offset, epoch)` runs there (offset 0:
  /// nobody subscribes anywhere, dropped; epoch empty unless the channel
  /// keeps history). False when the mesh refused (overload).
  static bool publish_from_main(mesh& m, const std::vector<router*>& all, publication_ptr pub,
                                std::function<void(std::uint64_t offset, std::string_view epoch)> ordered);

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
  std::size_t home_channel_count() const noexcept { return _home.size(); }

 private:
  // Home side.
  void on_register(unsigned from, compact_string channel, local_channel* lc);
  void on_sync(unsigned from, compact_string channel, local_channel* lc, subscription* s, std::uint64_t since,
               compact_string epoch);
  home_channel* make_home(std::string_view channel);
  history_answer answer_history(std::string_view channel, const history_query& q);
  presence_answer answer_presence(std::string_view channel, bool counts_only);
  void on_presence(publication_ptr event);
  void send_presence(publication_ptr event);
  bool try_send_presence(const publication_ptr& event);
  void trim_history(home_channel* hc, std::int64_t now_ms);
  void drop_history_front(channel_history& h);
  void enforce_history_bound();
  void set_idle(home_channel* hc, bool idle);
  void erase_home(home_channel* hc);
  void on_unregister(unsigned from, std::string_view channel);
  const home_channel* on_publish(publication_ptr pub);  // its record after ordering; null when dropped
  // Subscriber side.
  void on_registered(local_channel* lc, std::uint64_t offset, stream_epoch epoch);
  void on_synced(local_channel* lc, subscription* s, std::uint64_t offset, stream_epoch epoch, bool recovered,
                 std::vector<publication_ptr> pubs);
  void on_deliver(const publication_ptr& pub);
  void on_position(std::string_view channel, std::uint64_t offset);
  void stream_gap(local_channel* lc);
  void forward(home_channel* hc, const publication_ptr& pub);
  void release_if_unused(local_channel* lc);
  bool send(unsigned to, task t);

  const unsigned _id;
  mesh& _mesh;
  const std::vector<router*>& _all;
  frame_pool& _frames;
  push_encoder _encode;
  router_stats _stats;
  // Pooled records found by the name they hold (8-byte slots).
  keyed_set<local_channel, &local_channel_name> _local;
  keyed_set<home_channel, &home_channel_name> _home;
  object_pool<local_channel> _local_pool;
  object_pool<home_channel> _home_pool;
  object_pool<subscription> _sub_pool;
  const channel_rules* _rules;
  std::uint64_t _history_max_bytes;  // this shard's share of history_max_bytes; 0: no bound
  boost::intrusive::list<channel_history,
                         boost::intrusive::member_hook<channel_history, boost::intrusive::list_member_hook<>,
                                                       &channel_history::lru>,
                         boost::intrusive::constant_time_size<false>>
      _history_lru;
  std::vector<home_channel*> _idle;  // home records with no subscriber shard, kept for their history
  // Home side: (channel, shard) whose publication forward the mesh shed;
  // sweep_history sends each the stream's position so that a gap at the end
  // of a stream is found too (a later publication would show it anyway).
  static constexpr std::size_t shed_limit = 1u << 16;
  std::vector<std::pair<compact_string, std::uint16_t>> _shed;
  // Subscriber side: joins/leaves the mesh refused, oldest first; resent by
  // sweep_history. Bounded: past the limit they are dropped and counted.
  static constexpr std::size_t presence_backlog_limit = 1u << 20;
  std::deque<publication_ptr> _presence_backlog;
  std::uint64_t _epoch_seed;
};

}  // namespace sb::routing
