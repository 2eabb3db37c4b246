#include "session/admission.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace sb {

admission_gate::admission_gate(const admission_options& o) noexcept
    : _max_in_flight(o.max_in_flight),
      _retry_max_s(static_cast<std::uint32_t>(std::max<std::int64_t>(1, o.retry_after_max.count() / 1000))),
      _rng(std::random_device{}() | 1) {
  if (o.connect_rate > 0) {
    _interval_ns = 1e9 / o.connect_rate;
    double burst = o.connect_burst > 0 ? o.connect_burst : std::max(1.0, std::floor(o.connect_rate));
    _tolerance_ns = (burst - 1) * _interval_ns;
  }
}

const char* admission_gate::check(std::int64_t now_ns, std::uint64_t in_flight) noexcept {
  // In-flight first: a refusal for it must not spend a rate token.
  _last_was_rate = false;
  if (_max_in_flight > 0 && in_flight >= _max_in_flight) return "admission_in_flight";
  if (_interval_ns > 0) {
    std::int64_t tat = std::max(_tat, now_ns);
    if (static_cast<double>(tat - now_ns) > _tolerance_ns) {
      constexpr std::int64_t second_ns = 1'000'000'000;
      if (now_ns - _window_start >= second_ns) {
        _refused_before = now_ns - _window_start < 2 * second_ns ? _refused_now : 0;
        _refused_now = 0;
        _window_start = now_ns;
      }
      ++_refused_now;
      _last_was_rate = true;
      return "admission_rate";
    }
    _tat = tat + static_cast<std::int64_t>(std::ceil(_interval_ns));
  }
  return nullptr;
}

std::uint32_t admission_gate::retry_after_s() noexcept {
  std::uint32_t spread = _retry_max_s;
  if (_last_was_rate) {
    // What was refused over the last second, admitted at the rate, takes
    // this long: come back over that span, not all in its first second.
    double backlog = static_cast<double>(std::max(_refused_now, _refused_before));
    double seconds = std::ceil(backlog * _interval_ns / 1e9);
    spread = static_cast<std::uint32_t>(std::clamp(seconds, 1.0, static_cast<double>(_retry_max_s)));
  }
  _rng ^= _rng >> 12;
  _rng ^= _rng << 25;
  _rng ^= _rng >> 27;
  std::uint64_t r = _rng * 0x2545F4914F6CDD1Dull;
  return 1 + static_cast<std::uint32_t>((r >> 32) % spread);
}

}  // namespace sb
