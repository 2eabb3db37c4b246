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
  if (_max_in_flight > 0 && in_flight >= _max_in_flight) return "admission_in_flight";
  if (_interval_ns > 0) {
    std::int64_t tat = std::max(_tat, now_ns);
    if (static_cast<double>(tat - now_ns) > _tolerance_ns) return "admission_rate";
    _tat = tat + static_cast<std::int64_t>(std::ceil(_interval_ns));
  }
  return nullptr;
}

std::uint32_t admission_gate::retry_after_s() noexcept {
  _rng ^= _rng >> 12;
  _rng ^= _rng << 25;
  _rng ^= _rng >> 27;
  std::uint64_t r = _rng * 0x2545F4914F6CDD1Dull;
  return 1 + static_cast<std::uint32_t>((r >> 32) % _retry_max_s);
}

}  // namespace sb
