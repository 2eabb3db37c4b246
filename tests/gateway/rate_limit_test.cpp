// The per-connection rate limiter (gateway/rate_limit.cpp) with a clock the
// test moves: a burst then one per interval, costs in bytes, independent
// kinds and clients, the refusals' one-second window that disconnects, and
// the sweep that forgets clients whose buckets are full again (an idle
// client costs nothing). Plus the config keys that set it, and admission's
// (session/admission.hpp, tested in tests/session/admission_test.cpp).

#include "gateway/rate_limit.hpp"

#include "gateway/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace {

using sb::limited;
using sb::rate_limiter;
using verdict = rate_limiter::verdict;
constexpr std::int64_t ms = 1'000'000;

sb::rate_limits limits(limited k, double per_second, std::uint64_t burst, std::uint32_t disconnect_after = 0) {
  sb::rate_limits l;
  l.of[static_cast<std::size_t>(k)] = {per_second, burst};
  l.disconnect_after = disconnect_after;
  return l;
}

TEST(rate_limiter, a_burst_then_one_per_interval) {
  rate_limiter r(limits(limited::publish, 10, 5));  // 100 ms apart, 5 at once
  int a = 0;
  std::int64_t t = 1'000 * ms;
  for (int i = 0; i < 8; ++i) a += r.take(&a, limited::publish, t) == verdict::allow;
  EXPECT_EQ(a, 5);
  EXPECT_EQ(r.take(&a, limited::publish, t + 99 * ms), verdict::refuse);
  EXPECT_EQ(r.take(&a, limited::publish, t + 100 * ms), verdict::allow);   // one token back
  EXPECT_EQ(r.take(&a, limited::publish, t + 100 * ms), verdict::refuse);
  // A long pause refills to the burst, not beyond it.
  int later = 0;
  for (int i = 0; i < 8; ++i) later += r.take(&a, limited::publish, t + 60'000 * ms) == verdict::allow;
  EXPECT_EQ(later, 5);
}

TEST(rate_limiter, kinds_and_clients_have_their_own_buckets) {
  sb::rate_limits l = limits(limited::publish, 1, 1);
  l.of[static_cast<std::size_t>(limited::history)] = {1, 2};
  rate_limiter r(l);
  int a = 0, b = 0;
  std::int64_t t = 5'000 * ms;
  EXPECT_EQ(r.take(&a, limited::publish, t), verdict::allow);
  EXPECT_EQ(r.take(&a, limited::publish, t), verdict::refuse);
  EXPECT_EQ(r.take(&b, limited::publish, t), verdict::allow);  // another client
  EXPECT_EQ(r.take(&a, limited::history, t), verdict::allow);  // another kind
  EXPECT_EQ(r.take(&a, limited::history, t), verdict::allow);
  EXPECT_EQ(r.take(&a, limited::history, t), verdict::refuse);
  EXPECT_EQ(r.take(&a, limited::subscribe, t), verdict::allow);  // not limited at all
  EXPECT_TRUE(r.enabled(limited::publish));
  EXPECT_FALSE(r.enabled(limited::subscribe));
}

TEST(rate_limiter, bytes_cost_what_they_weigh) {
  rate_limiter r(limits(limited::read_bytes, 1000, 4000));  // 1 KB/s, 4 KB at once
  int a = 0;
  std::int64_t t = 1'000 * ms;
  EXPECT_EQ(r.take(&a, limited::read_bytes, t, 3000), verdict::allow);
  EXPECT_EQ(r.take(&a, limited::read_bytes, t, 1500), verdict::refuse);  // 1000 left
  EXPECT_EQ(r.take(&a, limited::read_bytes, t, 1000), verdict::allow);
  EXPECT_EQ(r.take(&a, limited::read_bytes, t + 2000 * ms, 2000), verdict::allow);  // two seconds refilled 2000
  EXPECT_EQ(r.take(&a, limited::read_bytes, t + 2000 * ms, 1), verdict::refuse);
  int b = 0;
  EXPECT_EQ(r.take(&b, limited::read_bytes, t, 4001), verdict::refuse);  // more than the burst never fits
}

TEST(rate_limiter, refusals_past_the_threshold_within_a_second_disconnect) {
  rate_limiter r(limits(limited::publish, 1, 1, 3));
  int a = 0;
  std::int64_t t = 1'000 * ms;
  EXPECT_EQ(r.take(&a, limited::publish, t), verdict::allow);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.take(&a, limited::publish, t + i * ms), verdict::refuse) << i;
  EXPECT_EQ(r.take(&a, limited::publish, t + 10 * ms), verdict::disconnect);
  // Three refusals a second, second after second: never the fourth in one.
  int b = 0;
  std::int64_t u = 100'000 * ms;
  for (int sec = 0; sec < 5; ++sec) {
    std::int64_t s0 = u + sec * 1'000 * ms;
    EXPECT_EQ(r.take(&b, limited::publish, s0), verdict::allow) << sec;
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(r.take(&b, limited::publish, s0 + i * ms), verdict::refuse) << sec;
  }
}

TEST(rate_limiter, idle_clients_are_forgotten) {
  rate_limiter r(limits(limited::subscribe, 10, 20));
  int clients[100];
  std::int64_t t = 1'000 * ms;
  for (int& c : clients) EXPECT_EQ(r.take(&c, limited::subscribe, t), verdict::allow);
  EXPECT_EQ(r.tracked(), 100u);
  r.sweep(t + 50 * ms);  // one subscribe each is 100 ms of budget: not full yet
  EXPECT_EQ(r.tracked(), 100u);
  r.sweep(t + 100 * ms);
  EXPECT_EQ(r.tracked(), 0u);
  // A client refused just now is kept for its one-second window.
  int f = 0;
  for (int i = 0; i < 21; ++i) (void)r.take(&f, limited::subscribe, t);
  r.sweep(t + 2'000 * ms - 1);
  EXPECT_EQ(r.tracked(), 1u);  // refused at t: its window ends at t + 1 s, its bucket fills at t + 2 s
  r.sweep(t + 2'001 * ms);
  EXPECT_EQ(r.tracked(), 0u);
  r.take(&f, limited::subscribe, t + 3'000 * ms);
  r.forget(&f);
  EXPECT_EQ(r.tracked(), 0u);
}

std::string write_temp(const std::string& text) {
  std::string path = testing::TempDir() + "sb_rate_config_test.toml";
  std::ofstream(path) << text;
  return path;
}

TEST(rate_limit_config, keys_defaults_and_errors) {
  sb::config cfg;
  sb::load_config_file(write_temp("client_publish_rate = 20\nclient_history_rate = 0.5\nclient_history_burst = 3\n"
                                  "client_read_bytes_rate = 1000\nclient_rate_disconnect_after = 50\n"),
                       cfg);
  const auto& l = cfg.client_limits;
  EXPECT_EQ(l.of[static_cast<std::size_t>(limited::publish)].per_second, 20);
  EXPECT_EQ(l.of[static_cast<std::size_t>(limited::publish)].burst, 20u);  // one second's worth
  EXPECT_EQ(l.of[static_cast<std::size_t>(limited::history)].per_second, 0.5);
  EXPECT_EQ(l.of[static_cast<std::size_t>(limited::history)].burst, 3u);
  EXPECT_EQ(l.of[static_cast<std::size_t>(limited::read_bytes)].burst, cfg.max_message_size);  // one largest message
  EXPECT_EQ(l.of[static_cast<std::size_t>(limited::subscribe)].per_second, 0);  // off unless set
  EXPECT_EQ(l.disconnect_after, 50u);
  EXPECT_TRUE(l.any());
  EXPECT_FALSE(sb::config{}.client_limits.any());

  for (const char* bad : {"client_publish_rate = -1\n", "client_publish_rate = \"10/s\"\n", "client_rpc_burst = 0\n",
                          "client_read_bytes_rate = 100\nclient_read_bytes_burst = 1000\n"}) {
    sb::config c;
    EXPECT_THROW(sb::load_config_file(write_temp(bad), c), sb::config_error) << bad;
  }
}

TEST(admission_config, keys_defaults_and_errors) {
  sb::config off;
  EXPECT_EQ(off.connect_rate_limit, 0);
  EXPECT_EQ(off.max_handshakes_in_flight, 0u);
  sb::config cfg;
  sb::load_config_file(write_temp("connect_rate_limit = 0.5\nconnect_rate_burst = 4\nmax_handshakes_in_flight = 100\n"
                                  "admission_retry_after_max = \"30s\"\n"),
                       cfg);
  EXPECT_EQ(cfg.connect_rate_limit, 0.5);
  EXPECT_EQ(cfg.connect_rate_burst, 4u);
  EXPECT_EQ(cfg.max_handshakes_in_flight, 100u);
  EXPECT_EQ(cfg.admission_retry_after_max_ms, 30'000u);
  for (const char* bad : {"connect_rate_limit = -3\n", "max_handshakes_in_flight = -1\n", "admission_retry_after_max = \"500ms\"\n",
                          "admission_retry_after_max = 5\n"}) {
    sb::config c;
    EXPECT_THROW(sb::load_config_file(write_temp(bad), c), sb::config_error) << bad;
  }
}

}  // namespace
