// What a reload builds (gateway/reload.cpp) without a running process: the
// keys that need a restart are found, a token key that does not load is a
// config error (a rejection, not a crash), the options carry the new rules
// and limits, and the rate limiter takes new budgets while keeping its
// clients' states. The process-level reload (SIGHUP, shards, connected
// clients) is tests/integration/centrifuge_js/reload.test.mjs.

#include "gateway/reload.hpp"

#include "gateway/jwt.hpp"
#include "gateway/rate_limit.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace {

TEST(reload, restart_only_keys_are_named) {
  sb::config a, b;
  EXPECT_TRUE(sb::restart_only_changes(a, b).empty());
  b.max_message_size = 1024;
  b.listen.port = 9999;
  b.token_hmac_secret_key = "changed";  // reloadable: not named
  b.client_limits.of[0].per_second = 3;  // reloadable
  auto keys = sb::restart_only_changes(a, b);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"listen", "max_message_size"}));
}

TEST(reload, a_key_that_does_not_load_is_a_config_error) {
  sb::config c;
  c.token_rsa_public_key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
  EXPECT_THROW(sb::make_verifier(c), sb::config_error);
  c.token_rsa_public_key.clear();
  c.token_hmac_secret_key = "s";
  auto v = sb::make_verifier(c);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->enabled());
}

TEST(reload, options_carry_rules_limits_and_admission) {
  sb::config c;
  c.namespaces.push_back({"news", {}});
  c.client_limits.of[static_cast<std::size_t>(sb::limited::publish)] = {2, 2};
  c.connect_rate_limit = 7;
  c.max_handshakes_in_flight = 9;
  auto p = sb::make_protocol_options(c, sb::make_verifier(c), true);
  EXPECT_NE(p.rules.resolve("news:x"), nullptr);
  EXPECT_EQ(p.rules.resolve("sports:x"), nullptr);
  EXPECT_TRUE(p.limits.any());
  EXPECT_TRUE(p.publish_waits_for_engine);
  auto a = sb::make_admission_options(c);
  EXPECT_EQ(a.connect_rate, 7);
  EXPECT_EQ(a.max_in_flight, 9u);
}

TEST(reload, the_rate_limiter_takes_new_budgets_and_keeps_states) {
  using verdict = sb::rate_limiter::verdict;
  sb::rate_limits one;
  one.of[static_cast<std::size_t>(sb::limited::publish)] = {1, 1};
  sb::rate_limiter l(one);
  int who = 0;
  EXPECT_EQ(l.take(&who, sb::limited::publish, 0), verdict::allow);
  EXPECT_EQ(l.take(&who, sb::limited::publish, 0), verdict::refuse);
  sb::rate_limits more = one;
  more.of[static_cast<std::size_t>(sb::limited::publish)] = {1000, 1000};
  l.reconfigure(more);
  // The state stayed (the old bucket was empty until 1 s), judged by the new
  // budget's tolerance: 999 ms.
  EXPECT_EQ(l.take(&who, sb::limited::publish, 0), verdict::refuse);
  EXPECT_EQ(l.take(&who, sb::limited::publish, 10'000'000), verdict::allow);
  EXPECT_GE(l.tracked(), 1u);
  l.reconfigure(sb::rate_limits{});  // all off: nothing is kept
  EXPECT_FALSE(l.any());
  EXPECT_EQ(l.tracked(), 0u);
  EXPECT_EQ(l.take(&who, sb::limited::publish, 0), verdict::allow);
}

}  // namespace
