#pragma once
// The subscriber side of routing: a session's subscription to a channel and
// the channel as one subscriber shard knows it. Shard thread only: every
// record here belongs to the shard whose sessions subscribed.

#include "pool/compact_string.hpp"
#include "pool/frame_buffer.hpp"
#include "routing/stream.hpp"

#include <boost/intrusive/list.hpp>

#include <cstdint>
#include <string_view>

namespace sb::routing {

struct local_channel;
class subscription;

/// Push frames are encoded once per publication per shard for each of these
/// (a wire format, later also compressed or not); a subscription says which
/// one its owner reads.
inline constexpr std::size_t max_push_formats = 4;

/// How a subscription follows its channel (the namespace's options and the
/// client's request, decided by gateway/).
struct subscribe_flags {
  bool positioned = false;   // told of gaps in the stream (on_insufficient_state)
  bool join_leave = false;   // receives join and leave pushes
  bool recoverable = false;  // may recover (the router does not read it; its owner does)
  std::uint8_t push_format = 0;  // which push frames it takes (< max_push_formats)
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
  /// A pending subscription could not be made (`code`: 100, the channel's
  /// stream cannot be joined now). The owner drops its pointer during the
  /// call; the router frees the subscription after it.
  virtual void on_subscribe_failed(subscription& s, std::uint32_t code) = 0;

 protected:
  ~subscriber() = default;
};

/// One session's subscription to one channel on its shard. Owned by the
/// router's pool; the subscriber keeps the pointer until it unsubscribes.
/// 48 bytes: there is one per session per channel.
class subscription : public boost::intrusive::list_base_hook<> {
 public:
  subscription(local_channel* c, subscriber* o, subscribe_flags f)
      : channel(c),
        owner(o),
        positioned(f.positioned),
        join_leave(f.join_leave),
        recoverable(f.recoverable),
        push_format(f.push_format) {}
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
  unsigned push_format : 2;
  /// The channel's name (valid while the subscription exists).
  std::string_view name() const noexcept;
};

/// A channel as one subscriber shard knows it; 72 bytes (one per personal
/// channel, so one per session: the flags share the pending count's word).
struct local_channel {
  explicit local_channel(std::string_view n) : name(n) {}
  compact_string name;
  boost::intrusive::list<subscription, boost::intrusive::constant_time_size<false>> subs;
  std::uint32_t active = 0;        // active subscriptions
  std::uint32_t pending : 30 = 0;  // waiting for the home's answer
  bool registered : 1 = false;     // the home has recorded this shard
  bool registering : 1 = false;    // a register is on its way
  std::uint64_t last_offset = 0;   // offset of the last publication delivered here
  stream_epoch epoch;              // the stream's epoch, from the home
};

inline std::string_view subscription::name() const noexcept { return channel->name; }
inline std::string_view local_channel_name(const local_channel& c) noexcept { return c.name; }

}  // namespace sb::routing
