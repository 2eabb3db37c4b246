#pragma once
// The shards that have subscribers of one channel, as its home records
// them: a bit per shard below 64 (16 bytes per channel, no allocation), a
// sorted list beyond. Owner thread only (the home shard's).

#include <cstdint>
#include <memory>
#include <vector>

namespace sb::routing {

/// Iterates in increasing shard order.
class shard_set {
 public:
  bool insert(std::uint16_t shard);  // false when already present
  bool erase(std::uint16_t shard);   // false when absent
  bool empty() const noexcept { return _low == 0 && (!_high || _high->empty()); }
  template <typename F>
  void for_each(F&& f) const {
    for (std::uint64_t bits = _low; bits != 0; bits &= bits - 1) {
      f(static_cast<std::uint16_t>(__builtin_ctzll(bits)));
    }
    if (_high) {
      for (std::uint16_t s : *_high) f(s);
    }
  }

 private:
  std::uint64_t _low = 0;
  std::unique_ptr<std::vector<std::uint16_t>> _high;  // shards >= 64, sorted
};

}  // namespace sb::routing
