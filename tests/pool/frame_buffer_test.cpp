#include "pool/frame_buffer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace sb::test {
namespace {

constexpr std::size_t hdr = sizeof(detail::frame_block);

// Every test ends with nothing live: the pool's own counters are the
// construction/destruction balance of its buffers.
class frame_test : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(pool.live_buffers(), 0u);
    EXPECT_EQ(pool.bytes_in_use(), 0u);
  }
  frame_pool pool{1 << 20};
};

TEST_F(frame_test, size_classes) {
  EXPECT_EQ(frame_pool::capacity_for(0), 256u);
  EXPECT_EQ(frame_pool::capacity_for(256), 256u);
  EXPECT_EQ(frame_pool::capacity_for(257), 2048u);
  EXPECT_EQ(frame_pool::capacity_for(16384), 16384u);
  EXPECT_EQ(frame_pool::capacity_for(16385), 16385u);
  frame_ref a = pool.make(100), b = pool.make(3000), c = pool.make(100000);
  EXPECT_EQ(a.capacity(), 256u);
  EXPECT_EQ(b.capacity(), 16384u);
  EXPECT_EQ(c.capacity(), 100000u);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(pool.live_buffers(), 3u);
  EXPECT_EQ(pool.bytes_in_use(), 3 * hdr + 256 + 16384 + 100000);
}

TEST_F(frame_test, copy_shares_and_counts) {
  frame_ref a = pool.make_copy("hello");
  EXPECT_EQ(a.view(), "hello");
  EXPECT_EQ(a.use_count(), 1u);
  {
    frame_ref b = a;
    frame_ref c;
    c = b;
    EXPECT_EQ(a.use_count(), 3u);
    EXPECT_EQ(b.data(), a.data()) << "shared bytes, not a copy";
    EXPECT_EQ(pool.live_buffers(), 1u);
  }
  EXPECT_EQ(a.use_count(), 1u);
  frame_ref d = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(d.use_count(), 1u);
  const frame_ref& alias = d;
  d = alias;  // self-assignment keeps the buffer
  EXPECT_EQ(d.view(), "hello");
  d.reset();
  EXPECT_EQ(pool.live_buffers(), 0u);
  EXPECT_EQ(pool.bytes_cached(), hdr + 256);
}

TEST_F(frame_test, last_reference_recycles_and_steady_state_reuses) {
  const unsigned char* first;
  {
    frame_ref a = pool.make(10);
    first = a.data();
    std::vector<frame_ref> subscribers(1000, a);
    EXPECT_EQ(a.use_count(), 1001u);
  }
  EXPECT_EQ(pool.cached_buffers(), 1u);
  for (int i = 0; i < 100; ++i) {
    frame_ref b = pool.make(200);
    EXPECT_EQ(b.data(), first) << "a cached buffer of the class is reused";
  }
  EXPECT_EQ(pool.cached_buffers(), 1u);
}

TEST_F(frame_test, append_resize_and_growth) {
  frame_ref a = pool.make(4);
  a.append("abc");
  a.append(std::string(300, 'x'));  // outgrows the 256 class
  EXPECT_EQ(a.size(), 303u);
  EXPECT_EQ(a.capacity(), 2048u);
  EXPECT_EQ(a.view().substr(0, 4), "abcx");
  EXPECT_EQ(pool.live_buffers(), 1u) << "the small buffer went back";
  a.resize(3);
  EXPECT_EQ(a.view(), "abc");
  a.resize(2048);
  EXPECT_EQ(a.size(), 2048u);
}

TEST_F(frame_test, large_buffers_are_exact_and_not_cached) {
  { frame_ref big = pool.make(50000); }
  EXPECT_EQ(pool.bytes_cached(), 0u);
  EXPECT_EQ(pool.cached_buffers(), 0u);
}

TEST_F(frame_test, cache_is_bounded) {
  frame_pool small(3 * (hdr + 2048));
  {
    std::vector<frame_ref> v;
    for (int i = 0; i < 10; ++i) v.push_back(small.make(1000));
    EXPECT_EQ(small.live_buffers(), 10u);
  }
  EXPECT_EQ(small.live_buffers(), 0u);
  EXPECT_EQ(small.cached_buffers(), 3u);
  EXPECT_EQ(small.bytes_cached(), 3 * (hdr + 2048));
  small.trim(hdr + 2048);
  EXPECT_EQ(small.cached_buffers(), 1u);
  small.set_max_cached_bytes(0);
  EXPECT_EQ(small.bytes_cached(), 0u);
  { frame_ref f = small.make(1); }
  EXPECT_EQ(small.cached_buffers(), 0u) << "a zero budget caches nothing";
}

TEST_F(frame_test, make_copy_of_empty) {
  frame_ref e = pool.make_copy("", 0);
  EXPECT_EQ(e.size(), 0u);
  EXPECT_EQ(e.view(), "");
}

#ifndef NDEBUG
TEST(frame_death_test, resize_of_shared_buffer_asserts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        frame_pool p;
        frame_ref a = p.make(10);
        frame_ref b = a;
        a.resize(1);
      },
      "shared buffer");
}
#endif

}  // namespace
}  // namespace sb::test
