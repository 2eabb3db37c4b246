// Lean channels (engine::lean, decisions §18): a channel with no history,
// presence or join/leave has no home record, only the bits of its
// subscriber shards. Publications still go through the home in order and
// reach every subscriber once; the state goes when the last one leaves; and
// a reload that gives the namespace history mid-life loses nothing. Built
// in the TSan build too (label tsan), like router_test.cpp.

#include "routing/router.hpp"

#include "tests/routing/cluster.hpp"

#include <gtest/gtest.h>

#include <unordered_map>

namespace {

using namespace sb::routing;
using namespace sb::routing::test;

channel_rules lean_rules(bool personal_history = false) {
  channel_options personal;
  if (personal_history) {
    personal.history_size = 10;
    personal.history_ttl = std::chrono::seconds(60);
  }
  channel_options presence;
  presence.presence = true;
  return channel_rules({}, {{"personal", personal}, {"p", presence}});
}

std::size_t total(cluster& c, std::size_t (router::*count)() const noexcept) {
  std::size_t n = 0;
  for (unsigned i = 0; i < c.shards; ++i) c.on(i, [&](router& r) { n += (r.*count)(); });
  return n;
}

TEST(lean_channel, reaches_every_shard_once_in_order_without_a_home_record) {
  constexpr unsigned shards = 3;
  channel_rules rules = lean_rules();
  cluster c(shards, &rules);
  std::vector<recorder> subs(shards * 2);
  for (unsigned i = 0; i < shards; ++i) {
    c.on(i, [&, i](router& r) {
      r.subscribe(subs[2 * i], "personal:#42");
      r.subscribe(subs[2 * i + 1], "personal:#42");
    });
  }
  c.settle();
  EXPECT_EQ(total(c, &router::home_channel_count), 1u);
  EXPECT_EQ(total(c, &router::lean_channel_count), 1u);
  constexpr int n = 300;
  for (int k = 0; k < n; ++k) {
    c.on(static_cast<unsigned>(k) % shards, [&, k](router& r) {
      // The answer has no offset and no epoch: the channel has no stream.
      r.publish(make_pub("personal:#42", std::to_string(k)), [](std::uint32_t error, std::uint64_t offset,
                                                              std::string_view epoch) {
        EXPECT_EQ(error, 0u);
        EXPECT_EQ(offset, 0u);
        EXPECT_TRUE(epoch.empty());
      });
    });
  }
  c.settle();
  for (unsigned i = 0; i < shards; ++i) {
    c.on(i, [&, i](router&) {
      for (unsigned j = 2 * i; j < 2 * i + 2; ++j) {
        EXPECT_TRUE(subs[j].subscribed);
        EXPECT_EQ(subs[j].start, 0u);
        ASSERT_EQ(subs[j].data.size(), static_cast<std::size_t>(n)) << "subscriber " << j;
        // Publications entered on three shards: each shard's own stay in
        // the order it sent them, and every subscriber saw the same order.
        EXPECT_EQ(subs[j].data, subs[0].data);
        for (std::uint64_t off : subs[j].offsets) EXPECT_EQ(off, 0u);
      }
    });
  }
}

TEST(lean_channel, presence_and_history_channels_keep_their_records) {
  channel_rules rules = lean_rules(true);
  cluster c(2, &rules);
  recorder a, b;
  c.on(0, [&](router& r) {
    r.subscribe(a, "personal:#1");  // history now
    r.subscribe(b, "p:room");
  });
  c.settle();
  EXPECT_EQ(total(c, &router::home_channel_count), 2u);
  EXPECT_EQ(total(c, &router::lean_channel_count), 0u);
}

TEST(lean_channel, all_state_is_released_when_the_last_subscriber_leaves) {
  constexpr unsigned shards = 4;
  channel_rules rules = lean_rules();
  cluster c(shards, &rules);
  std::vector<std::unique_ptr<recorder>> subs;
  for (int round = 0; round < 20; ++round) {
    // Each channel on two shards, so a shard leaving while the other stays
    // is exercised too.
    for (unsigned i = 0; i < shards; ++i) {
      c.on(i, [&, i, round](router& r) {
        for (int k = 0; k < 25; ++k) {
          subs.push_back(std::make_unique<recorder>());
          subs.back()->sub = r.subscribe(*subs.back(), "personal:#" + std::to_string(round * 100 + k + 25 * (i / 2)));
          ASSERT_NE(subs.back()->sub, nullptr);
        }
      });
    }
    c.settle();
    std::size_t base = subs.size() - shards * 25;
    for (unsigned i = 0; i < shards; ++i) {
      c.on(i, [&, i, base](router& r) {
        for (std::size_t k = base + i * 25; k < base + (i + 1) * 25; ++k) r.unsubscribe(subs[k]->sub);
      });
      c.settle();
    }
  }
  EXPECT_EQ(total(c, &router::local_channel_count), 0u);
  EXPECT_EQ(total(c, &router::home_channel_count), 0u);
  std::uint64_t gauge = 0;
  for (unsigned i = 0; i < shards; ++i) c.on(i, [&](router& r) { gauge += r.stats().home_channels.get(); });
  EXPECT_EQ(gauge, 0u);
  // Nobody left: a publication is dropped at the home.
  c.on(0, [](router& r) { r.publish(make_pub("personal:#1", "x")); });
  c.settle();
  std::uint64_t dropped = 0;
  for (unsigned i = 0; i < shards; ++i) c.on(i, [&](router& r) { dropped += r.stats().publications_dropped.get(); });
  EXPECT_EQ(dropped, 1u);
}

TEST(lean_channel, a_shard_that_left_gets_no_more_forwards) {
  channel_rules rules = lean_rules();
  cluster c(2, &rules);
  std::string ch = channel_homed_on(0, 2, "personal:#");
  recorder home_sub, other_sub;
  c.on(0, [&](router& r) { r.subscribe(home_sub, ch); });
  c.on(1, [&](router& r) { r.subscribe(other_sub, ch); });
  c.settle();
  c.on(1, [&](router& r) { r.unsubscribe(other_sub.sub); });
  c.settle();
  // Tasks that reach shard 1 through the mesh (c.on() posts around it).
  std::uint64_t reached_before = c.m->dest_stats(1).received.get();
  for (int k = 0; k < 10; ++k) c.on(0, [&, k](router& r) { r.publish(make_pub(ch, std::to_string(k))); });
  c.settle();
  c.on(0, [&](router&) { EXPECT_EQ(home_sub.data.size(), 10u); });
  EXPECT_EQ(c.m->dest_stats(1).received.get(), reached_before) << "the home forwarded to a shard that left";
  c.on(1, [&](router& r) {
    EXPECT_EQ(r.local_channel_count(), 0u);
    EXPECT_TRUE(other_sub.data.empty());
  });
}

TEST(lean_channel, channels_whose_keys_collide_keep_their_own_subscribers) {
  // Two channels with the same home and the same 32-bit key share an entry
  // at the home. Shard 1 subscribes to both and leaves one: the other must
  // still get its publications there, and both leaving clears the entry.
  std::unordered_map<std::uint32_t, std::string> seen;
  std::string a, b;
  for (int i = 0; a.empty(); ++i) {
    std::string ch = "personal:#c" + std::to_string(i);
    if (router::home_of(ch, 2) != 0) continue;
    auto [it, fresh] = seen.try_emplace(router::lean_key(ch), ch);
    if (!fresh) {
      a = it->second;
      b = ch;
    }
  }
  channel_rules rules = lean_rules();
  cluster c(2, &rules);
  recorder sub_a, sub_b;
  c.on(1, [&](router& r) {
    r.subscribe(sub_a, a);
    r.subscribe(sub_b, b);
  });
  c.settle();
  EXPECT_EQ(total(c, &router::lean_channel_count), 1u);
  c.on(1, [&](router& r) { r.unsubscribe(sub_a.sub); });
  c.settle();
  c.on(0, [&](router& r) {
    r.publish(make_pub(b, "to b"));
    r.publish(make_pub(a, "to a"));
  });
  c.settle();
  c.on(1, [&](router&) {
    ASSERT_EQ(sub_b.data.size(), 1u);
    EXPECT_EQ(sub_b.data[0], "to b");
    EXPECT_TRUE(sub_a.data.empty());
  });
  c.on(1, [&](router& r) { r.unsubscribe(sub_b.sub); });
  c.settle();
  EXPECT_EQ(total(c, &router::lean_channel_count), 0u);
  EXPECT_EQ(total(c, &router::home_channel_count), 0u);
}

TEST(lean_channel, a_reload_that_adds_history_loses_no_subscriber) {
  // Shard 0 registers while the namespace has no history (lean); a reload
  // gives it history; shard 1 registers after (a record). A publication
  // reaches both once; both leaving leaves no lean state behind.
  channel_rules rules = lean_rules();
  cluster c(2, &rules);
  std::string ch = channel_homed_on(1, 2, "personal:#");
  recorder before, after;
  c.on(0, [&](router& r) { r.subscribe(before, ch); });
  c.settle();
  EXPECT_EQ(total(c, &router::lean_channel_count), 1u);
  rules = lean_rules(true);  // the shards are idle: the next task sees it
  c.on(1, [&](router& r) { r.subscribe(after, ch); });
  c.settle();
  for (int k = 0; k < 5; ++k) c.on(k % 2, [&, k](router& r) { r.publish(make_pub(ch, std::to_string(k))); });
  c.settle();
  c.on(0, [&](router&) { EXPECT_EQ(before.data.size(), 5u); });
  c.on(1, [&](router&) {
    EXPECT_EQ(after.data.size(), 5u);
    // The stream's offsets, from the record made after the reload.
    ASSERT_EQ(after.offsets.size(), 5u);
    EXPECT_EQ(after.offsets.back(), 5u);
  });
  c.on(0, [&](router& r) { r.unsubscribe(before.sub); });
  c.on(1, [&](router& r) { r.unsubscribe(after.sub); });
  c.settle();
  EXPECT_EQ(total(c, &router::lean_channel_count), 0u);
  EXPECT_EQ(total(c, &router::local_channel_count), 0u);
}

}  // namespace
