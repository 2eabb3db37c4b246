#pragma once
// Per-connection rate limits (issue 16, part 1): a GCRA (the "virtual
// scheduling" form of a token bucket: one theoretical arrival time per kind,
// no refill arithmetic) for each command kind and for the bytes a client
// sends. A client's state exists only while one of its buckets is not full:
// an idle session costs nothing here, and sweep() drops those that filled up
// again. Over a budget the command is refused (error 111); a client refused
// more than `disconnect_after` times within one second is disconnected
// (3013 "too many requests", which SDKs follow with a backoff). One per
// shard; shard thread only.

#include "gateway/rate_limits.hpp"

#include <boost/unordered/unordered_flat_map.hpp>

#include <array>
#include <cstdint>

namespace sb {

class rate_limiter {
 public:
  explicit rate_limiter(const rate_limits& limits);
  /// New budgets (a config reload); clients' states stay, so a client over
  /// its old budget is judged by the new one from now on.
  void reconfigure(const rate_limits& limits);

  enum class verdict : std::uint8_t { allow, refuse, disconnect };
  /// Takes `cost` (1 per command, the byte count for read_bytes) from
  /// `who`'s bucket of `kind` at `now_ns` (steady clock).
  verdict take(const void* who, limited kind, std::int64_t now_ns, std::uint64_t cost = 1);
  /// The client is gone.
  void forget(const void* who) { _states.erase(who); }
  /// Drops the states whose buckets are all full again (about once a second).
  void sweep(std::int64_t now_ns);

  bool enabled(limited kind) const noexcept { return _interval_ns[static_cast<std::size_t>(kind)] > 0; }
  bool any() const noexcept { return _any; }
  /// Clients with a state now (a bucket not full, or refused this second).
  std::size_t tracked() const noexcept { return _states.size(); }

 private:
  struct state {
    std::array<std::int64_t, limited_count> tat{};  // theoretical arrival time, ns; <= now: full
    std::int64_t window_start = 0;                  // of the refusals' one-second window
    std::uint32_t refusals = 0;
  };

  std::array<double, limited_count> _interval_ns{};   // per unit of cost
  std::array<double, limited_count> _tolerance_ns{};  // (burst - 1) units
  std::uint32_t _disconnect_after = 0;
  bool _any = false;
  boost::unordered_flat_map<const void*, state> _states;
};

}  // namespace sb
