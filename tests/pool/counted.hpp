#pragma once
// Element type that counts its constructions, destructions and moves, so a
// test can assert that a container neither leaked nor double-destroyed
// anything (rigtorp's SPSCQueue tests do the same).

#include <cstdint>
#include <gtest/gtest.h>

namespace sb::test {

/// Test-thread only (the counters are plain ints).
struct counted {
  static inline long constructed = 0;  // every constructor, moves included
  static inline long destroyed = 0;
  static inline long moves = 0;
  static long alive() { return constructed - destroyed; }
  static void reset() { constructed = destroyed = moves = 0; }

  explicit counted(std::uint64_t v = 0) noexcept : value(v) { ++constructed; }
  counted(counted&& o) noexcept : value(o.value), payload{o.payload[0], o.payload[1]} {
    ++constructed;
    ++moves;
    o.value = ~std::uint64_t{0};
  }
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  counted& operator=(counted&&) = delete;
  ~counted() {
    ++destroyed;
    EXPECT_NE(state, dead) << "destroyed twice";
    state = dead;
  }

  static constexpr std::uint32_t live_tag = 0x600DF00Du, dead = 0xDEADBEEFu;
  std::uint64_t value;
  std::uint64_t payload[2] = {1, 2};
  std::uint32_t state = live_tag;
};

/// Fixture that checks the balance after each test.
class counted_test : public ::testing::Test {
 protected:
  void SetUp() override { counted::reset(); }
  void TearDown() override {
    EXPECT_EQ(counted::alive(), 0) << "leaked or destroyed twice";
  }
};

}  // namespace sb::test
