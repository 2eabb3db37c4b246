#include "pool/spsc_ring.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "tests/pool/counted.hpp"

namespace sb::test {
namespace {

using ring_test = counted_test;

TEST_F(ring_test, capacity_rounds_up_to_power_of_two) {
  EXPECT_EQ(spsc_ring<counted>(1).capacity(), 2u);
  EXPECT_EQ(spsc_ring<counted>(5).capacity(), 8u);
  EXPECT_EQ(spsc_ring<counted>(64).capacity(), 64u);
}

TEST_F(ring_test, push_front_pop_in_order) {
  spsc_ring<counted> r(4);
  EXPECT_EQ(r.front(), nullptr);
  for (std::uint64_t i = 0; i < 4; ++i) EXPECT_TRUE(r.try_push(i));
  EXPECT_FALSE(r.try_push(99u)) << "full";
  EXPECT_EQ(r.size_approx(), 4u);
  for (std::uint64_t i = 0; i < 4; ++i) {
    counted* c = r.front();
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->value, i);
    r.pop();
  }
  EXPECT_EQ(r.front(), nullptr);
  EXPECT_EQ(counted::alive(), 0);
}

TEST_F(ring_test, staged_items_are_invisible_until_publish) {
  spsc_ring<counted> r(8);
  EXPECT_FALSE(r.publish()) << "nothing staged";
  ASSERT_TRUE(r.try_stage(1u));
  ASSERT_TRUE(r.try_stage(2u));
  EXPECT_EQ(r.staged(), 2u);
  EXPECT_EQ(r.front(), nullptr);
  EXPECT_EQ(r.consume([](counted&&) {}), 0u);
  EXPECT_TRUE(r.publish());
  EXPECT_EQ(r.staged(), 0u);
  std::vector<std::uint64_t> got;
  EXPECT_EQ(r.consume([&](counted&& c) { got.push_back(c.value); }), 2u);
  EXPECT_EQ(got, (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(ring_test, consume_respects_max_and_wraps) {
  spsc_ring<counted> r(8);
  std::uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 50; ++round) {
    while (r.try_stage(next_in)) ++next_in;  // fill to capacity
    r.publish();
    const std::size_t take = 1 + static_cast<std::size_t>(round % 7);
    const std::size_t n = r.consume(
        [&](counted&& c) {
          EXPECT_EQ(c.value, next_out);
          ++next_out;
        },
        take);
    EXPECT_EQ(n, take);
  }
  r.consume([&](counted&& c) { EXPECT_EQ(c.value, next_out++); });
  EXPECT_EQ(next_in, next_out);
  EXPECT_EQ(counted::alive(), 0);
}

TEST_F(ring_test, consumer_may_move_the_item_out) {
  spsc_ring<counted> r(4);
  ASSERT_TRUE(r.try_push(7u));
  std::vector<counted> out;
  out.reserve(1);
  r.consume([&](counted&& c) { out.emplace_back(std::move(c)); });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].value, 7u);
  EXPECT_GE(counted::moves, 1);
}

TEST_F(ring_test, destructor_destroys_published_and_staged_items) {
  {
    spsc_ring<counted> r(8);
    ASSERT_TRUE(r.try_push(1u));
    ASSERT_TRUE(r.try_push(2u));
    r.consume([](counted&&) {}, 1);
    ASSERT_TRUE(r.try_stage(3u));  // staged, never published
    EXPECT_EQ(counted::alive(), 2);
  }
  EXPECT_EQ(counted::alive(), 0);
}

TEST_F(ring_test, move_only_items) {
  spsc_ring<std::unique_ptr<counted>> r(4);
  ASSERT_TRUE(r.try_push(std::make_unique<counted>(5)));
  std::unique_ptr<counted> got;
  r.consume([&](std::unique_ptr<counted>&& p) { got = std::move(p); });
  ASSERT_TRUE(got);
  EXPECT_EQ(got->value, 5u);
}

}  // namespace
}  // namespace sb::test
