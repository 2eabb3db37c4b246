// The wheel is driven with synthetic time points only: no test here sleeps or
// reads the clock, so a noisy machine cannot make it flaky.

#include "pool/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

namespace sb::test {
namespace {

using namespace std::chrono_literals;
using clock_t_ = timer_wheel::clock;
const clock_t_::time_point t0{std::chrono::hours(1000)};

// A session-like owner that counts its constructions and destructions and
// records its expiries. It derives from timer_node, so the callback recovers
// it with a static_cast.
struct fake_session : timer_node {
  static inline long alive = 0;
  static inline std::vector<int>* log = nullptr;
  explicit fake_session(int i) : timer_node(&on_expire), id(i) { ++alive; }
  ~fake_session() { --alive; }
  static void on_expire(timer_node& n) {
    auto& s = static_cast<fake_session&>(n);
    ++s.fired;
    if (log) log->push_back(s.id);
  }
  int id;
  int fired = 0;
};

class wheel_test : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_session::alive = 0;
    fake_session::log = &log;
  }
  void TearDown() override {
    EXPECT_EQ(fake_session::alive, 0);
    fake_session::log = nullptr;
  }
  std::vector<int> log;
};

TEST_F(wheel_test, fires_after_delay_not_before) {
  timer_wheel w(100ms, 512, t0);
  fake_session s(1);
  w.schedule(s, 250ms);
  EXPECT_TRUE(w.armed(s));
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.next_deadline(), t0 + 300ms);
  EXPECT_EQ(w.advance(t0 + 100ms), 0u);
  EXPECT_EQ(w.advance(t0 + 299ms), 0u);
  EXPECT_EQ(s.fired, 0);
  EXPECT_EQ(w.advance(t0 + 300ms), 1u);
  EXPECT_EQ(s.fired, 1);
  EXPECT_FALSE(w.armed(s));
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.next_deadline(), clock_t_::time_point::max());
}

TEST_F(wheel_test, delay_counts_from_last_advance) {
  timer_wheel w(100ms, 512, t0);
  fake_session s(1);
  w.advance(t0 + 150ms);
  w.schedule(s, 100ms);  // due at 250 ms, fires at the 300 ms tick
  EXPECT_EQ(w.advance(t0 + 299ms), 0u);
  EXPECT_EQ(w.advance(t0 + 300ms), 1u);
}

TEST_F(wheel_test, zero_delay_fires_next_tick) {
  timer_wheel w(100ms, 8, t0);
  fake_session s(1);
  w.schedule(s, 0ms);
  EXPECT_EQ(w.advance(t0 + 99ms), 0u);
  EXPECT_EQ(w.advance(t0 + 100ms), 1u);
}

TEST_F(wheel_test, cancel_and_reschedule) {
  timer_wheel w(100ms, 512, t0);
  fake_session a(1), b(2);
  w.cancel(a);  // not armed: no-op
  w.schedule(a, 100ms);
  w.schedule(b, 100ms);
  w.cancel(a);
  EXPECT_FALSE(w.armed(a));
  EXPECT_EQ(w.size(), 1u);
  w.schedule(b, 500ms);  // re-arm moves it
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.advance(t0 + 400ms), 0u);
  EXPECT_EQ(w.advance(t0 + 500ms), 1u);
  EXPECT_EQ(a.fired, 0);
  EXPECT_EQ(b.fired, 1);
}

TEST_F(wheel_test, fires_in_expiry_order_across_ticks) {
  timer_wheel w(10ms, 64, t0);
  std::vector<std::unique_ptr<fake_session>> s;
  for (int i = 0; i < 20; ++i) s.push_back(std::make_unique<fake_session>(i));
  for (int i = 19; i >= 0; --i) w.schedule(*s[static_cast<std::size_t>(i)], std::chrono::milliseconds(10 * (i + 1)));
  EXPECT_EQ(w.advance(t0 + 1s), 20u);
  ASSERT_EQ(log.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(log[static_cast<std::size_t>(i)], i);
}

TEST_F(wheel_test, timers_beyond_one_revolution_wait_their_round) {
  timer_wheel w(100ms, 8, t0);  // one revolution = 800 ms
  fake_session near(1), far(2);
  w.schedule(near, 300ms);
  w.schedule(far, 300ms + 3 * 800ms);  // same bucket, three rounds later
  EXPECT_EQ(w.advance(t0 + 300ms), 1u);
  EXPECT_EQ(near.fired, 1);
  for (int step = 4; step < 27; ++step) {
    EXPECT_EQ(w.advance(t0 + step * 100ms), 0u) << step;
  }
  EXPECT_EQ(w.advance(t0 + 2700ms), 1u);
  EXPECT_EQ(far.fired, 1);
}

TEST_F(wheel_test, catch_up_after_long_stall) {
  timer_wheel w(100ms, 8, t0);
  std::vector<std::unique_ptr<fake_session>> s;
  for (int i = 0; i < 30; ++i) {
    s.push_back(std::make_unique<fake_session>(i));
    w.schedule(*s.back(), std::chrono::milliseconds(100 * (i + 1)));
  }
  // 2 s later: 20 due; 10 are still in the future.
  EXPECT_EQ(w.advance(t0 + 2s), 20u);
  EXPECT_EQ(w.size(), 10u);
  EXPECT_EQ(w.advance(t0 + 3s), 10u);
}

TEST_F(wheel_test, destroyed_node_unlinks_itself) {
  timer_wheel w(100ms, 16, t0);
  auto a = std::make_unique<fake_session>(1);
  fake_session b(2);
  w.schedule(*a, 100ms);
  w.schedule(b, 100ms);
  a.reset();
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.advance(t0 + 1s), 1u);
  EXPECT_EQ(b.fired, 1);
}

TEST_F(wheel_test, wheel_destroyed_first_disarms_nodes) {
  fake_session a(1);
  {
    timer_wheel w(100ms, 16, t0);
    w.schedule(a, 100ms);
  }
  EXPECT_FALSE(a.armed());
}

// Callbacks that reach into the wheel while it is firing.
struct actor : timer_node {
  static void run(timer_node& n) { static_cast<actor&>(n).act(); }
  actor() : timer_node(&run) {}
  std::function<void()> act;
  int fired = 0;
};

TEST_F(wheel_test, callback_reschedules_itself) {
  timer_wheel w(100ms, 8, t0);
  actor a;
  a.act = [&] {
    if (++a.fired < 5) w.schedule(a, 100ms);
  };
  w.schedule(a, 100ms);
  EXPECT_EQ(w.advance(t0 + 700ms), 5u) << "one fire per tick, no loop within a tick";
  EXPECT_EQ(a.fired, 5);
  EXPECT_FALSE(w.armed(a));
}

TEST_F(wheel_test, callback_zero_delay_reschedule_does_not_spin) {
  timer_wheel w(100ms, 8, t0);
  actor a;
  a.act = [&] {
    ++a.fired;
    w.schedule(a, 0ms);
  };
  w.schedule(a, 0ms);
  EXPECT_EQ(w.advance(t0 + 100ms), 1u);
  EXPECT_EQ(w.advance(t0 + 150ms), 0u);
  EXPECT_EQ(w.advance(t0 + 200ms), 1u);
  w.cancel(a);
}

TEST_F(wheel_test, callback_cancels_and_reschedules_others_due_in_same_tick) {
  timer_wheel w(100ms, 8, t0);
  actor a, b, c, d;
  for (actor* x : {&a, &b, &c, &d}) w.schedule(*x, 100ms);
  // Whichever of a/b fires first cancels the other; c's callback re-arms d.
  a.act = [&] { ++a.fired, w.cancel(b); };
  b.act = [&] { ++b.fired, w.cancel(a); };
  c.act = [&] { ++c.fired, w.schedule(d, 300ms); };
  d.act = [&] { ++d.fired; };
  const std::size_t n = w.advance(t0 + 100ms);
  EXPECT_EQ(a.fired + b.fired, 1);
  EXPECT_EQ(c.fired, 1);
  // d fired before c (then re-armed) or was moved by c before firing.
  EXPECT_EQ(n, static_cast<std::size_t>(2 + d.fired));
  EXPECT_TRUE(w.armed(d));
  EXPECT_EQ(w.advance(t0 + 400ms), 1u);
  EXPECT_EQ(d.fired >= 1, true);
  EXPECT_EQ(w.size(), 0u);
}

TEST_F(wheel_test, callback_destroys_another_due_node) {
  timer_wheel w(100ms, 8, t0);
  auto victim = std::make_unique<fake_session>(7);
  actor killer;
  killer.act = [&] {
    ++killer.fired;
    victim.reset();
  };
  w.schedule(*victim, 100ms);
  w.schedule(killer, 100ms);
  const std::size_t n = w.advance(t0 + 100ms);
  EXPECT_EQ(killer.fired, 1);
  EXPECT_TRUE(n == 1 || n == 2);
  EXPECT_EQ(w.size(), 0u);
}

TEST_F(wheel_test, time_going_backwards_is_ignored) {
  timer_wheel w(100ms, 8, t0);
  fake_session s(1);
  w.advance(t0 + 500ms);
  w.schedule(s, 100ms);
  EXPECT_EQ(w.advance(t0 + 100ms), 0u);
  EXPECT_EQ(w.now(), t0 + 500ms);
  EXPECT_EQ(w.advance(t0 + 600ms), 1u);
}

TEST_F(wheel_test, many_timers) {
  timer_wheel w(100ms, 4096, t0);
  std::vector<std::unique_ptr<fake_session>> s;
  fake_session::log = nullptr;
  for (int i = 0; i < 100000; ++i) {
    s.push_back(std::make_unique<fake_session>(i));
    w.schedule(*s.back(), std::chrono::milliseconds(1 + (i * 7919) % 600000));
  }
  EXPECT_EQ(w.size(), 100000u);
  for (int i = 0; i < 100000; i += 3) w.cancel(*s[static_cast<std::size_t>(i)]);
  std::size_t fired = 0;
  for (int ms = 100; ms <= 601000; ms += 100) fired += w.advance(t0 + std::chrono::milliseconds(ms));
  EXPECT_EQ(fired, 100000u - 33334u);
  EXPECT_EQ(w.size(), 0u);
}

}  // namespace
}  // namespace sb::test
