#pragma once
// A fixed-bucket histogram owned by one shard and read by the ops endpoint:
// one single-writer counter per bucket (see counter.hpp), so recording is a
// few relaxed stores and reading never locks. Bucket upper bounds are fixed
// at compile time (Prometheus-style `le`), shared by every shard so the ops
// endpoint can add shards' buckets together.

#include "pool/counter.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace sb {

template <std::size_t Bounds>
class bucket_histogram {
 public:
  /// `bounds`: increasing upper bounds; values above the last go to +Inf.
  explicit constexpr bucket_histogram(const std::array<std::uint64_t, Bounds>& bounds) noexcept : _bounds(bounds) {}

  /// Owner thread.
  void record(std::uint64_t v) noexcept {
    std::size_t i = 0;
    while (i < Bounds && v > _bounds[i]) ++i;
    _buckets[i].inc();
    _sum.add(v);
  }

  /// Any thread: per-bucket counts (not cumulative); the last is +Inf.
  std::uint64_t bucket(std::size_t i) const noexcept { return _buckets[i].get(); }
  std::uint64_t sum() const noexcept { return _sum.get(); }
  static constexpr std::size_t bounds_count = Bounds;
  const std::array<std::uint64_t, Bounds>& bounds() const noexcept { return _bounds; }

 private:
  const std::array<std::uint64_t, Bounds>& _bounds;
  std::array<counter, Bounds + 1> _buckets{};
  counter _sum;
};

/// The upper bound of the bucket holding quantile q (0..1) of counts that
/// were added together from several histograms: the figure a dashboard shows
/// ("p99 <= 2.5 ms"). 0 when empty; the last finite bound + 1 when the
/// quantile falls in +Inf.
template <std::size_t Bounds>
std::uint64_t bucket_quantile(const std::array<std::uint64_t, Bounds>& bounds,
                              const std::array<std::uint64_t, Bounds + 1>& counts, double q) noexcept {
  std::uint64_t total = 0;
  for (auto c : counts) total += c;
  if (total == 0) return 0;
  auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.5);
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < Bounds; ++i) {
    seen += counts[i];
    if (seen >= rank) return bounds[i];
  }
  return bounds[Bounds - 1] + 1;
}

}  // namespace sb
