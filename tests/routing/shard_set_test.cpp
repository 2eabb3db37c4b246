// The shard set: bits below 64, a sorted list above.
#include "routing/shard_set.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace {

std::vector<std::uint16_t> members(const sb::routing::shard_set& s) {
  std::vector<std::uint16_t> out;
  s.for_each([&](std::uint16_t id) { out.push_back(id); });
  return out;
}

TEST(shard_set, bits_below_64_and_a_sorted_list_above) {
  sb::routing::shard_set s;
  EXPECT_TRUE(s.empty());
  for (std::uint16_t id : {70, 3, 0, 63, 64, 1023, 3}) s.insert(id);
  EXPECT_FALSE(s.insert(70));
  EXPECT_EQ(members(s), (std::vector<std::uint16_t>{0, 3, 63, 64, 70, 1023}));
  EXPECT_TRUE(s.erase(63));
  EXPECT_FALSE(s.erase(63));
  EXPECT_TRUE(s.erase(64));
  EXPECT_TRUE(s.erase(70));
  EXPECT_TRUE(s.erase(1023));
  EXPECT_FALSE(s.erase(500));
  EXPECT_EQ(members(s), (std::vector<std::uint16_t>{0, 3}));
  s.erase(0);
  s.erase(3);
  EXPECT_TRUE(s.empty());
}

}  // namespace
