#include "gateway/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace sb {

namespace {
constexpr std::int64_t second_ns = 1'000'000'000;
}  // namespace

const char* limited_name(limited k) noexcept {
  switch (k) {
    case limited::publish: return "publish";
    case limited::subscribe: return "subscribe";
    case limited::history: return "history";
    case limited::presence: return "presence";
    case limited::rpc: return "rpc";
    case limited::read_bytes: return "read_bytes";
    case limited::count: break;
  }
  return "?";
}

rate_limiter::rate_limiter(const rate_limits& limits) { reconfigure(limits); }

void rate_limiter::reconfigure(const rate_limits& limits) {
  _disconnect_after = limits.disconnect_after;
  _any = limits.any();
  if (!_any) _states = {};  // all off: nothing would sweep them
  _interval_ns = {};
  _tolerance_ns = {};
  for (std::size_t i = 0; i < limited_count; ++i) {
    const rate& r = limits.of[i];
    if (r.per_second <= 0) continue;
    _interval_ns[i] = 1e9 / r.per_second;
    _tolerance_ns[i] = static_cast<double>(std::max<std::uint64_t>(r.burst, 1) - 1) * _interval_ns[i];
  }
}

rate_limiter::verdict rate_limiter::take(const void* who, limited kind, std::int64_t now_ns, std::uint64_t cost) {
  auto k = static_cast<std::size_t>(kind);
  if (_interval_ns[k] <= 0) return verdict::allow;
  auto it = _states.find(who);
  std::int64_t tat = it == _states.end() ? now_ns : std::max(it->second.tat[k], now_ns);
  // The arrival may start at most `tolerance` before its theoretical time;
  // a cost of more than one unit must fit as a whole.
  double need = static_cast<double>(cost > 0 ? cost - 1 : 0) * _interval_ns[k];
  if (static_cast<double>(tat - now_ns) + need <= _tolerance_ns[k]) {
    if (it == _states.end()) it = _states.try_emplace(who).first;
    it->second.tat[k] = tat + static_cast<std::int64_t>(std::ceil(static_cast<double>(cost) * _interval_ns[k]));
    return verdict::allow;
  }
  if (it == _states.end()) it = _states.try_emplace(who).first;  // a first arrival larger than the burst
  state& s = it->second;
  if (now_ns - s.window_start >= second_ns) {
    s.window_start = now_ns;
    s.refusals = 0;
  }
  ++s.refusals;
  if (_disconnect_after > 0 && s.refusals > _disconnect_after) return verdict::disconnect;
  return verdict::refuse;
}

void rate_limiter::sweep(std::int64_t now_ns) {
  boost::unordered::erase_if(_states, [now_ns](const auto& entry) {
    const state& s = entry.second;
    if (now_ns - s.window_start < second_ns) return false;
    for (std::int64_t t : s.tat) {
      if (t > now_ns) return false;
    }
    return true;
  });
  // A connect storm filled the table; once it is mostly empty again the
  // memory goes back (an idle node holds next to nothing here).
  if (_states.bucket_count() > 1024 && _states.size() * 8 < _states.bucket_count()) _states.rehash(0);
}

}  // namespace sb
