// Two threads push at least 10,000,000 items through a small ring in batches
// of varying size; the consumer checks strict order and the total. Built in
// the TSan build too: TSan checks the memory orders, the counts check the
// logic. Never asserts on time.

#include "pool/spsc_ring.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

namespace sb::test {
namespace {

// Not trivially copyable on purpose (owns nothing, but has a destructor that
// checks it is destroyed once), so the ring's construct/destroy paths run.
struct item {
  explicit item(std::uint64_t s) noexcept : seq(s), check(~s) {}
  item(item&& o) noexcept : seq(o.seq), check(o.check) { o.check = o.seq; }
  ~item() { check = 0; }
  std::uint64_t seq;
  std::uint64_t check;  // ~seq while the item is whole
};

constexpr std::uint64_t total = 10'000'000;

TEST(spsc_ring_stress, ten_million_items_in_order_in_batches) {
  spsc_ring<item> ring(1024);
  std::uint64_t bad_order = 0, bad_item = 0, received = 0;

  std::thread consumer([&] {
    std::uint64_t expect = 0;
    std::uint64_t turn = 0;
    while (expect < total) {
      // Vary the drain size as the mesh's drain_batch would.
      const std::size_t max = (turn++ % 5 == 0) ? 7 : SIZE_MAX;
      const std::size_t n = ring.consume(
          [&](item&& it) {
            if (it.seq != expect) ++bad_order;
            if (it.check != ~it.seq) ++bad_item;
            expect = it.seq + 1;
          },
          max);
      received += n;
      if (n == 0) std::this_thread::yield();
    }
  });

  std::uint64_t next = 0;
  std::uint64_t rng = 0x9E3779B97F4A7C15ull;
  while (next < total) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    // Batches of 1..100 items, staged then published once.
    std::uint64_t batch = 1 + rng % 100;
    if (batch > total - next) batch = total - next;
    std::uint64_t staged = 0;
    while (staged < batch) {
      if (ring.try_stage(next)) {
        ++next;
        ++staged;
      } else {
        // Full: publish what we have so the consumer can make room.
        ring.publish();
        std::this_thread::yield();
      }
    }
    ring.publish();
  }
  consumer.join();

  EXPECT_EQ(received, total);
  EXPECT_EQ(bad_order, 0u);
  EXPECT_EQ(bad_item, 0u);
  EXPECT_EQ(ring.front(), nullptr);
  EXPECT_EQ(ring.staged(), 0u);
}

TEST(spsc_ring_stress, unbatched_push_front_pop) {
  spsc_ring<item> ring(64);
  constexpr std::uint64_t n = 1'000'000;
  std::uint64_t bad = 0;
  std::thread consumer([&] {
    for (std::uint64_t expect = 0; expect < n;) {
      item* it = ring.front();
      if (!it) {
        std::this_thread::yield();
        continue;
      }
      if (it->seq != expect || it->check != ~it->seq) ++bad;
      ring.pop();
      ++expect;
    }
  });
  for (std::uint64_t i = 0; i < n;) {
    if (ring.try_push(i)) ++i;
    else std::this_thread::yield();
  }
  consumer.join();
  EXPECT_EQ(bad, 0u);
}

}  // namespace
}  // namespace sb::test
