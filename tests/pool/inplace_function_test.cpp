// inplace_function (and sb::task, the mesh's message type): inline and heap
// targets, move-only captures, arguments and results, and that every
// capture is destroyed exactly once however the callable is moved.
#include "pool/inplace_function.hpp"
#include "pool/task.hpp"

#include "tests/pool/counted.hpp"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>

namespace sb {
namespace {

using test::counted;
using inplace_test = test::counted_test;

TEST_F(inplace_test, inline_target_with_move_only_capture) {
  auto p = std::make_unique<int>(41);
  task t = [p = std::move(p)] { ++*p; };
  ASSERT_TRUE(t);
  t();
  t();  // stays valid after a call
  task moved = std::move(t);
  EXPECT_FALSE(t);  // NOLINT(bugprone-use-after-move): moved-from is empty, by contract
  EXPECT_TRUE(moved);
  moved();
  moved.reset();
  EXPECT_FALSE(moved);
}

TEST_F(inplace_test, captures_are_destroyed_once_inline_and_on_the_heap) {
  {
    counted small(1);
    inplace_function<std::uint64_t(), 56> f = [c = std::move(small)] { return c.value; };
    EXPECT_EQ(f(), 1u);
    inplace_function<std::uint64_t(), 56> g = std::move(f);
    EXPECT_EQ(g(), 1u);
    f = std::move(g);
    EXPECT_EQ(f(), 1u);
  }
  EXPECT_EQ(counted::alive(), 0);
  {
    // Larger than the inline storage: one heap block, moved by pointer.
    std::array<std::uint64_t, 16> big{};
    big[15] = 7;
    counted c(2);
    inplace_function<std::uint64_t(), 24> f = [big, c = std::move(c)] { return big[15] + c.value; };
    long moves_before = counted::moves;
    inplace_function<std::uint64_t(), 24> g = std::move(f);
    EXPECT_EQ(counted::moves, moves_before);  // the heap target did not move
    EXPECT_EQ(g(), 9u);
  }
  EXPECT_EQ(counted::alive(), 0);
}

TEST_F(inplace_test, arguments_and_results) {
  inplace_function<std::string(std::string&&, int), 24> f = [suffix = std::string("!")](std::string&& s, int n) {
    return std::move(s) + std::to_string(n) + suffix;
  };
  EXPECT_EQ(f(std::string("a"), 3), "a3!");
  inplace_function<void(counted&&), 16> sink = [](counted&& c) {
    counted taken(std::move(c));
    EXPECT_EQ(taken.value, 5u);
  };
  sink(counted(5));
  EXPECT_EQ(counted::alive(), 0);
}

static_assert(sizeof(inplace_function<void(), 24>) == 32);
static_assert(sizeof(task) == 64);

}  // namespace
}  // namespace sb
