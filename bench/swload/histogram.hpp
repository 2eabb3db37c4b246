// Log-linear latency histogram for swload: exact below 128, then 64
// sub-buckets per power of two (≤ 1.6 % relative error), values in µs,
// clamped at 2^40 µs. Fixed size and plain data, so a worker sends it to the
// parent through a pipe as raw bytes and the parent merges by adding counts.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace swload {

class histogram {
 public:
  static constexpr int sub_bits = 6;                     // 64 sub-buckets per power of two
  static constexpr int max_bits = 40;                    // values clamp at 2^40 - 1
  static constexpr int buckets = (max_bits - sub_bits + 1) << sub_bits;  // 2240

  void add(std::uint64_t v) {
    v = std::min<std::uint64_t>(v, (std::uint64_t{1} << max_bits) - 1);
    ++_counts[index(v)];
    ++_total;
    _max = std::max(_max, v);
  }

  void merge(const histogram& o) {
    for (int i = 0; i < buckets; ++i) _counts[i] += o._counts[i];
    _total += o._total;
    _max = std::max(_max, o._max);
  }

  std::uint64_t total() const { return _total; }
  std::uint64_t max() const { return _max; }

  // The value at quantile q (0..1): the middle of the bucket holding it,
  // never above the exact maximum.
  std::uint64_t percentile(double q) const {
    if (_total == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(_total - 1)) + 1;
    std::uint64_t seen = 0;
    for (int i = 0; i < buckets; ++i) {
      seen += _counts[i];
      if (seen >= rank) return std::min(low(i) + width(i) / 2, _max);
    }
    return _max;
  }

 private:
  // Below 2^(sub_bits+1) a bucket per value; above, the top sub_bits+1 bits
  // of v (mantissa 64..127) plus 64 per extra power of two.
  static int index(std::uint64_t v) {
    if (v < (1u << (sub_bits + 1))) return static_cast<int>(v);
    int msb = 63 - std::countl_zero(v);
    int shift = msb - sub_bits;
    return (shift << sub_bits) + static_cast<int>(v >> shift);
  }
  static std::uint64_t low(int i) {
    if (i < (1 << (sub_bits + 1))) return static_cast<std::uint64_t>(i);
    int shift = (i >> sub_bits) - 1;
    return static_cast<std::uint64_t>((i & ((1 << sub_bits) - 1)) + (1 << sub_bits)) << shift;
  }
  static std::uint64_t width(int i) {
    if (i < (1 << (sub_bits + 1))) return 1;
    return std::uint64_t{1} << ((i >> sub_bits) - 1);
  }

  std::array<std::uint64_t, buckets> _counts{};
  std::uint64_t _total = 0;
  std::uint64_t _max = 0;
};

}  // namespace swload
