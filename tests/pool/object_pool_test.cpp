#include "pool/object_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <vector>

#include "tests/pool/counted.hpp"

namespace sb::test {
namespace {

using pool_test = counted_test;

TEST_F(pool_test, starts_empty) {
  object_pool<counted> p;
  EXPECT_EQ(p.live(), 0u);
  EXPECT_EQ(p.capacity(), 0u);
  EXPECT_EQ(p.bytes_reserved(), 0u);
}

TEST_F(pool_test, acquire_constructs_release_destroys) {
  object_pool<counted, 64> p;
  counted* a = p.acquire(42u);
  EXPECT_EQ(a->value, 42u);
  EXPECT_EQ(counted::constructed, 1);
  EXPECT_EQ(p.live(), 1u);
  EXPECT_EQ(p.capacity(), 64u);
  EXPECT_EQ(p.bytes_reserved(), 64 * decltype(p)::slot_size());
  p.release(a);
  EXPECT_EQ(counted::destroyed, 1);
  EXPECT_EQ(p.live(), 0u);
  p.release(nullptr);  // no-op
}

TEST_F(pool_test, slot_is_reused_lifo) {
  object_pool<counted, 64> p;
  counted* a = p.acquire();
  p.release(a);
  counted* b = p.acquire();
  EXPECT_EQ(a, b) << "the hottest slot comes back first";
  p.release(b);
}

TEST_F(pool_test, grows_by_slabs_and_keeps_them) {
  object_pool<counted, 64> p;
  std::vector<counted*> v;
  for (std::uint64_t i = 0; i < 1000; ++i) v.push_back(p.acquire(i));
  EXPECT_EQ(p.live(), 1000u);
  EXPECT_EQ(p.capacity(), 1024u);  // 16 slabs of 64
  std::set<counted*> distinct(v.begin(), v.end());
  EXPECT_EQ(distinct.size(), 1000u);
  for (std::uint64_t i = 0; i < 1000; ++i) EXPECT_EQ(v[i]->value, i) << "no overlap";
  for (std::size_t i = 0; i < v.size(); i += 2) p.release(v[i]);
  EXPECT_EQ(p.live(), 500u);
  for (std::size_t i = 1; i < v.size(); i += 2) p.release(v[i]);
  EXPECT_EQ(p.live(), 0u);
  EXPECT_EQ(p.capacity(), 1024u) << "slabs are kept until the pool dies";
  // Refill without growing.
  for (std::size_t i = 0; i < 1024; ++i) v[i % 1000] = p.acquire(i), p.release(v[i % 1000]);
  EXPECT_EQ(p.capacity(), 1024u);
}

TEST_F(pool_test, objects_are_aligned) {
  struct alignas(32) wide {
    double d[3];
  };
  object_pool<wide, 16> p;
  std::vector<wide*> v;
  for (int i = 0; i < 40; ++i) {
    v.push_back(p.acquire());
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.back()) % 32, 0u);
  }
  for (wide* w : v) p.release(w);
}

TEST_F(pool_test, small_type_slot_holds_free_pointer) {
  object_pool<char, 8> p;
  EXPECT_GE(decltype(p)::slot_size(), sizeof(void*));
  std::vector<char*> v;
  for (int i = 0; i < 20; ++i) v.push_back(p.acquire(static_cast<char>('a' + i)));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(*v[i], 'a' + i);
  for (char* c : v) p.release(c);
}

TEST_F(pool_test, zero_overhead_in_release_builds) {
  if constexpr (!object_pool<counted>::checks) {
    EXPECT_EQ(object_pool<counted>::slot_size(), sizeof(counted));
  } else {
    EXPECT_GT(object_pool<counted>::slot_size(), sizeof(counted));
  }
}

struct throws_on_ctor {
  explicit throws_on_ctor(bool t) {
    if (t) throw std::runtime_error("no");
  }
};

TEST_F(pool_test, throwing_constructor_returns_the_slot) {
  object_pool<throws_on_ctor, 4> p;
  EXPECT_THROW((void)p.acquire(true), std::runtime_error);
  EXPECT_EQ(p.live(), 0u);
  throws_on_ctor* a = p.acquire(false);
  EXPECT_EQ(p.live(), 1u);
  EXPECT_EQ(p.capacity(), 4u);
  p.release(a);
}

#if SB_POOL_CHECKS_ENABLED
using pool_death_test = counted_test;

TEST_F(pool_death_test, double_release_aborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        object_pool<counted> p;
        counted* a = p.acquire();
        p.release(a);
        p.release(a);
      },
      "double release");
}

TEST_F(pool_death_test, write_after_release_is_caught_on_acquire) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        object_pool<counted> p;
        counted* a = p.acquire();
        p.release(a);
        a->payload[1] = 7;  // use after release (deliberate)
        (void)p.acquire();
      },
      "use after release");
}

TEST_F(pool_death_test, foreign_pointer_aborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        object_pool<counted> p;
        object_pool<counted> q;
        counted* a = q.acquire();
        p.release(a);
      },
      "not from this pool");
}

TEST_F(pool_death_test, destroying_pool_with_live_objects_aborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        object_pool<counted> p;
        (void)p.acquire();
      },
      "live objects");
}
#endif

}  // namespace
}  // namespace sb::test
