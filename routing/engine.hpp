#pragma once
// The engine: where a channel's stream is kept — who orders publications
// (offsets and epochs), the retained history, presence — behind one
// interface, so that the router (routing/router.hpp: which shards of this
// node subscribe, forwarding, the subscriber side) does not care whether the
// stream lives in this process (memory_engine, the default) or in a shared
// store that several nodes use (Redis, DESIGN.md "Scaling past one machine").
//
// One engine per shard, used by that shard's router for the channels the
// shard is home of; every call and every callback runs on that shard's
// thread. A callback may run inside the call (the memory engine answers at
// once) or later (an engine that waits for a server), so callers must not
// hold anything across the call that the callback invalidates.
//
// Ordering contract (what makes subscribe and recovery exact, decision 5):
//  - open() answers for one channel come in the order they were asked for,
//    and a recover() answer comes after the answer to every open() of the
//    channel asked before it (a shard registers before it recovers);
//  - an open()/recover() answer at offset N comes before the engine
//    dispatches the publication N+1 of that channel, and no publication at
//    or below N is dispatched after it;
//  - dispatches of a channel come in offset order (offset 0: a publication
//    of a channel without a stream, which has no order to check).
//
// Errors: an engine that cannot serve a call (its store is unreachable)
// answers at once with Centrifuge's internal error (100), never hangs.

#include "pool/inplace_function.hpp"
#include "routing/home_channel.hpp"
#include "routing/stream.hpp"

#include <cstdint>
#include <string_view>

namespace sb::routing {

struct router_stats;

/// Answer to publish(): 0 or an error code (100: the engine cannot order
/// it now); the publication's offset (0: dropped, nobody subscribes and
/// nothing is kept, or a channel without history in a shared store) and its
/// epoch when the channel keeps history (empty otherwise). May be empty (a
/// client's publish that waits for nothing).
using publish_done = inplace_function<void(std::uint32_t error, std::uint64_t offset, std::string_view epoch), 24>;
/// Answer to open(): where the stream stands for a shard that joins it, or
/// an error (100) when the stream cannot be joined now.
using open_done =
    inplace_function<void(home_channel& hc, std::uint32_t error, std::uint64_t offset, stream_epoch epoch), 32>;
/// Answer to recover().
using recover_done = inplace_function<void(home_channel& hc, recovery_answer&& a), 32>;
/// Answers to history() and presence().
using history_done = inplace_function<void(history_answer&& a), 48>;
using presence_done = inplace_function<void(presence_answer&& a), 48>;

/// What an engine may ask of its shard's router. Home shard thread only.
class engine_host {
 public:
  /// The home record of a channel, or null.
  virtual home_channel* find_home(std::string_view channel) = 0;
  /// A new home record (the engine's on_make runs inside).
  virtual home_channel* make_home(std::string_view channel) = 0;
  /// Erases a record no shard subscribes to (the engine's on_erase runs inside).
  virtual void erase_home(home_channel* hc) = 0;
  /// `pub` (a publication the engine ordered, or a join/leave event) goes
  /// to every shard of this node that subscribes to `hc`.
  virtual void dispatch(home_channel& hc, const publication_ptr& pub) = 0;
  /// The stream moved without its publications being dispatched (the
  /// engine lost them: a store outage, or a store that lost its data and
  /// began a new epoch): subscriber shards take `offset`/`epoch` as their
  /// position and tell positioned subscriptions they missed publications.
  virtual void reset_stream(home_channel& hc, std::uint64_t offset, stream_epoch epoch) = 0;

 protected:
  ~engine_host() = default;
};

/// The engine interface; see the file comment for threads and ordering.
class engine {
 public:
  virtual ~engine() = default;

  /// Once, before any other call: the router it serves and the figures it
  /// writes (the history, recovery and presence counters of router_stats).
  virtual void attach(engine_host& host, router_stats& stats) = 0;

  /// Whether `channel` needs no stream at all: no offsets, no history, no
  /// presence and no join/leave, now and for this engine (the memory engine
  /// and a namespace with none of them). The router then keeps no home
  /// record for it, only which shards subscribe (decisions §18); the engine
  /// is not asked about it again until a record exists. Any answer is
  /// correct; true saves memory per channel. Home shard thread.
  virtual bool lean(std::string_view channel) const {
    (void)channel;
    return false;
  }

  /// A new home record: its epoch, and what the engine keeps for it.
  virtual void on_make(home_channel& hc) = 0;
  /// A record is being erased: drop what the engine keeps for it.
  virtual void on_erase(home_channel& hc) = 0;

  /// A shard of this node joins `hc`'s stream (it registers): answer where
  /// the stream stands.
  virtual void open(home_channel& hc, open_done done) = 0;
  /// No shard of this node subscribes to `hc` any more. True: the engine
  /// keeps the record (it erases it later through the host); false: the
  /// router erases it now.
  virtual bool release(home_channel& hc) = 0;
  /// A subscription that knew the stream at (since, epoch) asks for what it
  /// missed; `hc` is open for its shard.
  virtual void recover(home_channel& hc, std::uint64_t since, std::string_view epoch, recover_done done) = 0;

  /// Orders `pub` in its channel's stream (and keeps it, when the channel
  /// has history), then dispatches it to the node's subscriber shards.
  virtual void publish(publication_ptr pub, publish_done done) = 0;
  /// A join or leave event (`what` says which; `info` who): kept in the
  /// channel's presence and, with join_leave, dispatched like a publication.
  virtual void presence_event(publication_ptr event) = 0;

  /// Reads (or, with q.remove, drops) a channel's history.
  virtual void history(std::string_view channel, const history_query& q, history_done done) = 0;
  /// Reads a channel's presence (counts only, or the clients too).
  virtual void presence(std::string_view channel, bool counts_only, presence_done done) = 0;

  /// About once a second: expire what the engine keeps.
  virtual void sweep() = 0;
  /// Shutdown, before the shard's loop ends: close what keeps it running.
  /// It may finish asynchronously on the shard's loop (the Redis engine
  /// first removes this node's presence, for at most 2 s); the loop ends
  /// when it has.
  virtual void stop() {}
};

}  // namespace sb::routing
