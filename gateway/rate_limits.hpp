#pragma once
// What the per-connection rate limits are (config; the limiter is
// gateway/rate_limit.hpp). Plain types: config.hpp includes this.

#include <array>
#include <cstddef>
#include <cstdint>

namespace sb {

/// What is limited: one bucket each.
enum class limited : std::uint8_t { publish, subscribe, history, presence, rpc, read_bytes, count };
inline constexpr std::size_t limited_count = static_cast<std::size_t>(limited::count);
/// Config and metric label of each kind.
const char* limited_name(limited k) noexcept;

struct rate {
  double per_second = 0;    // 0: unlimited
  std::uint64_t burst = 0;  // what may arrive at once (at least 1 when limited)
};

struct rate_limits {
  std::array<rate, limited_count> of{};
  std::uint32_t disconnect_after = 0;  // refusals within one second; 0: never disconnect
  bool any() const noexcept {
    for (const rate& r : of) {
      if (r.per_second > 0) return true;
    }
    return false;
  }
};

}  // namespace sb
