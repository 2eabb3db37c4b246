#include "routing/shard_set.hpp"

#include <algorithm>

namespace sb::routing {

bool shard_set::insert(std::uint16_t shard) {
  if (shard < 64) {
    std::uint64_t bit = std::uint64_t{1} << shard;
    bool added = (_low & bit) == 0;
    _low |= bit;
    return added;
  }
  if (!_high) _high = std::make_unique<std::vector<std::uint16_t>>();
  auto pos = std::lower_bound(_high->begin(), _high->end(), shard);
  if (pos != _high->end() && *pos == shard) return false;
  _high->insert(pos, shard);
  return true;
}

bool shard_set::erase(std::uint16_t shard) {
  if (shard < 64) {
    std::uint64_t bit = std::uint64_t{1} << shard;
    bool had = (_low & bit) != 0;
    _low &= ~bit;
    return had;
  }
  if (!_high) return false;
  auto pos = std::lower_bound(_high->begin(), _high->end(), shard);
  if (pos == _high->end() || *pos != shard) return false;
  _high->erase(pos);
  if (_high->empty()) _high.reset();
  return true;
}


}  // namespace sb::routing
