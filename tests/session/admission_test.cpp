// Admission (session/admission.cpp) with a clock the test moves: the rate
// gate's burst then one per interval, the in-flight cap checked before the
// rate (a refusal for it spends no token), the jittered Retry-After staying
// in its range and following what the rate refused, and the 503 a refused
// upgrade gets.

#include "session/admission.hpp"
#include "session/http_upgrade.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

namespace {

using sb::admission_gate;
using sb::admission_options;
constexpr std::int64_t ms = 1'000'000;

TEST(admission_gate, off_admits_everything) {
  admission_gate g{admission_options{}};
  EXPECT_FALSE(g.any());
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(g.check(0, 1'000'000), nullptr);
}

TEST(admission_gate, a_burst_then_one_per_interval) {
  admission_options o;
  o.connect_rate = 10;  // one per 100 ms
  o.connect_burst = 3;
  admission_gate g(o);
  EXPECT_TRUE(g.any());
  std::int64_t t = 1'000 * ms;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g.check(t, 0), nullptr) << i;
  EXPECT_STREQ(g.check(t, 0), "admission_rate");
  EXPECT_STREQ(g.check(t + 50 * ms, 0), "admission_rate");
  EXPECT_EQ(g.check(t + 100 * ms, 0), nullptr);
  EXPECT_STREQ(g.check(t + 100 * ms, 0), "admission_rate");
  // A quiet second refills the burst, not more.
  t += 2'000 * ms;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g.check(t, 0), nullptr) << i;
  EXPECT_STREQ(g.check(t, 0), "admission_rate");
}

TEST(admission_gate, burst_defaults_to_one_seconds_worth_and_fractions_work) {
  admission_options o;
  o.connect_rate = 5;
  admission_gate g(o);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(g.check(0, 0), nullptr) << i;
  EXPECT_STREQ(g.check(0, 0), "admission_rate");

  admission_options slow;
  slow.connect_rate = 0.5;  // one every 2 s, one at once
  admission_gate s(slow);
  EXPECT_EQ(s.check(0, 0), nullptr);
  EXPECT_STREQ(s.check(1'999 * ms, 0), "admission_rate");
  EXPECT_EQ(s.check(2'000 * ms, 0), nullptr);
}

TEST(admission_gate, in_flight_cap_refuses_without_spending_the_rate) {
  admission_options o;
  o.connect_rate = 1;
  o.connect_burst = 1;
  o.max_in_flight = 2;
  admission_gate g(o);
  EXPECT_STREQ(g.check(0, 2), "admission_in_flight");
  EXPECT_STREQ(g.check(0, 5), "admission_in_flight");
  EXPECT_EQ(g.check(0, 1), nullptr);  // the token was still there
  EXPECT_STREQ(g.check(0, 0), "admission_rate");
}

TEST(admission_gate, retry_after_is_spread_over_its_range) {
  admission_options o;
  o.max_in_flight = 1;
  o.retry_after_max = std::chrono::milliseconds(8'000);
  admission_gate g(o);
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 2000; ++i) {
    std::uint32_t s = g.retry_after_s();
    ASSERT_GE(s, 1u);
    ASSERT_LE(s, 8u);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 8u);  // every second of the range is drawn
}

TEST(admission_gate, retry_after_follows_what_the_rate_refused) {
  admission_options o;
  o.connect_rate = 100;  // 10 ms each
  o.connect_burst = 1;
  o.retry_after_max = std::chrono::milliseconds(30'000);
  admission_gate g(o);
  std::int64_t t = 5'000 * ms;
  EXPECT_EQ(g.check(t, 0), nullptr);
  // 50 refused: half a second of the rate, so everyone is told 1 s.
  for (int i = 0; i < 50; ++i) {
    ASSERT_STREQ(g.check(t, 0), "admission_rate");
    ASSERT_EQ(g.retry_after_s(), 1u);
  }
  // 1,600 refused within the second: 16 s of the rate, spread over [1, 16].
  EXPECT_EQ(g.check(t + 500 * ms, 0), nullptr);  // refilled meanwhile
  for (int i = 0; i < 1550; ++i) ASSERT_STREQ(g.check(t + 500 * ms, 0), "admission_rate");
  std::uint32_t most = 0;
  for (int i = 0; i < 200; ++i) {
    std::uint32_t s = g.retry_after_s();
    ASSERT_GE(s, 1u);
    ASSERT_LE(s, 16u);
    most = std::max(most, s);
  }
  EXPECT_GT(most, 12u);  // drawn over the whole span (all <= 12: p = 0.75^200)
  // A storm far past the rate stops at retry_after_max.
  for (int i = 0; i < 10'000; ++i) (void)g.check(t + 600 * ms, 0);
  std::uint32_t top = 0;
  for (int i = 0; i < 1000; ++i) {
    (void)g.check(t + 600 * ms, 0);
    top = std::max(top, g.retry_after_s());
  }
  EXPECT_EQ(top, 30u);
}

TEST(admission_gate, busy_response_is_a_503_with_retry_after) {
  sb::ws::upgrade_result r = sb::ws::busy_response("admission_rate", 7);
  EXPECT_EQ(r.status, sb::ws::upgrade_status::rejected);
  EXPECT_STREQ(r.reason, "admission_rate");
  EXPECT_EQ(r.response.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u);
  EXPECT_NE(r.response.find("\r\nRetry-After: 7\r\n"), std::string::npos);
  EXPECT_NE(r.response.find("\r\nConnection: close\r\n"), std::string::npos);
}

}  // namespace
