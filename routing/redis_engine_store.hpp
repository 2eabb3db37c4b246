#pragma once
// What the Redis engine keeps per channel on its home shard
// (routing/redis_engine.hpp): where the channel's subscription to Redis
// stands, who waits for it, and what is held or kept while it settles.
// Shard thread only; included by the engine's own files.

#include "pool/frame_buffer.hpp"  // steady_now_ns
#include "routing/channel_rules.hpp"
#include "routing/engine.hpp"
#include "routing/home_channel.hpp"

#include <cstdint>
#include <memory>
#include <vector>

namespace sb::routing {

/// An open() or a recover() asked before the channel was live.
struct redis_waiter {
  open_done open;        // set: an open
  recover_done recover;  // set: a recovery
  std::uint64_t since = 0;
  stream_epoch epoch;
};

/// A recovery from further than this node dispatched yet.
struct redis_deferred {
  std::uint64_t since = 0;
  stream_epoch epoch;
  recover_done done;
  std::int64_t deadline_ms = 0;
};

/// A publication that arrived while the channel was being positioned.
struct held_publication {
  publication_ptr pub;
  stream_epoch epoch;
};

/// What a channel needs only while it settles (subscribing, positioning,
/// recovering): allocated then, freed once it is live and idle, so a live
/// channel's store stays at 40 bytes (a personal channel per client).
struct redis_transient {
  std::vector<redis_waiter> waiters;     // in the order they came
  std::vector<held_publication> held;    // arrived while positioning
  std::vector<publication_ptr> recent;   // dispatched while recovering > 0
  std::vector<redis_deferred> deferred;  // recoveries from further than dispatched

  bool empty() const noexcept { return waiters.empty() && held.empty() && recent.empty() && deferred.empty(); }
};

struct redis_store final : channel_store {
  enum class phase : std::uint8_t {
    idle,         // made; nothing asked of Redis yet (or unsubscribed)
    subscribing,  // SUBSCRIBE sent, not acknowledged
    positioning,  // subscribed; the position script is on its way (publications are held)
    live,         // publications are dispatched as they come
    lost,         // its server went away (or positioning failed): calls answer 100
  };
  phase ph = phase::idle;
  bool history : 1 = false;          // its namespace keeps history: it has a stream
  bool subscribed : 1 = false;       // Redis acknowledged the SUBSCRIBE
  bool held_overflow : 1 = false;    // too much arrived while positioning: position again
  bool recent_overflow : 1 = false;  // continuity lost while recovering: those recoveries fail
  bool release_wanted : 1 = false;   // released while answers were due: goes when they came
  std::uint16_t server = 0;
  std::uint32_t index = 0;       // in the engine's record list
  std::uint32_t recovering = 0;  // recoveries waiting for Redis
  std::uint64_t serial = 0;      // tells a record from one made again under the same name
  std::unique_ptr<redis_transient> t;

  redis_transient& side() {
    if (!t) t = std::make_unique<redis_transient>();
    return *t;
  }
  bool has_waiters() const noexcept { return t && !t->waiters.empty(); }
  bool has_deferred() const noexcept { return t && !t->deferred.empty(); }
  bool busy() const noexcept { return has_waiters() || recovering > 0 || has_deferred(); }
  /// Frees the transient part when nothing is in it.
  void trim() noexcept {
    if (t && recovering == 0 && t->empty()) t.reset();
  }
};

inline constexpr std::size_t held_limit = 10'000;
inline constexpr std::size_t recent_limit = 4096;
inline constexpr std::int64_t deferred_wait_ms = 5'000;

inline bool keeps_history(const channel_options* o) noexcept {
  return o && o->history_size > 0 && o->history_ttl.count() > 0;
}

inline std::int64_t engine_now_ms() noexcept { return steady_now_ns() / 1'000'000; }

}  // namespace sb::routing
