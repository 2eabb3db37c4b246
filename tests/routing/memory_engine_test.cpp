// The memory engine: directly, under a recording host (ordering, drops,
// epochs, history reads, recovery, presence, what a record keeps), and
// through routers over a real mesh (recovery joined with the live stream,
// history outliving its subscribers, history_max_bytes). Built in the TSan
// build too (label tsan).

#include "routing/memory_engine.hpp"

#include "routing/channel_rules.hpp"
#include "routing/router_stats.hpp"
#include "tests/routing/cluster.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace sb::routing;
using namespace sb::routing::test;

// The router's part, reduced to what the engine asks for: records by name,
// and a log of what was dispatched.
struct recording_host final : engine_host {
  engine* streams = nullptr;
  std::map<std::string, std::unique_ptr<home_channel>, std::less<>> records;
  std::vector<publication_ptr> dispatched;
  int erased = 0;

  home_channel* find_home(std::string_view channel) override {
    auto it = records.find(channel);
    return it == records.end() ? nullptr : it->second.get();
  }
  home_channel* make_home(std::string_view channel) override {
    auto& slot = records[std::string(channel)];
    slot = std::make_unique<home_channel>(channel);
    streams->on_make(*slot);
    return slot.get();
  }
  void erase_home(home_channel* hc) override {
    streams->on_erase(*hc);
    records.erase(std::string(hc->name.view()));
    ++erased;
  }
  void dispatch(home_channel&, const publication_ptr& pub) override { dispatched.push_back(pub); }
  void reset_stream(home_channel&, std::uint64_t, stream_epoch) override { ++resets; }
  int resets = 0;
};

struct engine_fixture {
  explicit engine_fixture(const channel_rules* rules, std::uint64_t max_bytes = 0) : e(rules, max_bytes, 42) {
    host.streams = &e;
    e.attach(host, stats);
  }
  ~engine_fixture() {
    while (!host.records.empty()) host.erase_home(host.records.begin()->second.get());
  }
  // A channel a shard subscribes to: made and opened, as on_register does.
  home_channel& subscribed(std::string_view channel) {
    home_channel* hc = host.find_home(channel);
    if (!hc) hc = host.make_home(channel);
    hc->shards.insert(0);
    e.open(*hc, [](home_channel&, std::uint32_t, std::uint64_t, stream_epoch) {});
    return *hc;
  }
  // Publishes and returns what the engine answered.
  std::pair<std::uint64_t, std::string> publish(std::string channel, std::string data) {
    std::pair<std::uint64_t, std::string> got{~0ull, "unset"};
    e.publish(make_pub(std::move(channel), std::move(data)),
              [&got](std::uint32_t, std::uint64_t offset, std::string_view epoch) { got = {offset, std::string(epoch)}; });
    return got;
  }
  history_answer history(std::string_view channel, history_query q) {
    history_answer out;
    e.history(channel, q, [&out](history_answer&& a) { out = std::move(a); });
    return out;
  }
  presence_answer presence(std::string_view channel, bool counts_only) {
    presence_answer out;
    e.presence(channel, counts_only, [&out](presence_answer&& a) { out = std::move(a); });
    return out;
  }
  router_stats stats;
  recording_host host;
  memory_engine e;
};

channel_rules engine_rules() {
  channel_options h;
  h.history_size = 3;
  h.history_ttl = std::chrono::seconds(60);
  channel_options p;
  p.presence = true;
  p.join_leave = true;
  channel_options quick = h;
  quick.history_ttl = std::chrono::milliseconds(20);
  return channel_rules({}, {{"h", h}, {"p", p}, {"quick", quick}});
}

publication_ptr presence_event(publication::kind what, std::string channel, std::string user, std::string client) {
  publication_ptr e = make_pub(std::move(channel), "");
  e->what = what;
  e->has_info = true;
  e->info.user = std::move(user);
  e->info.client = std::move(client);
  return e;
}

TEST(memory_engine, publications_without_a_record_or_history_are_dropped) {
  auto rules = engine_rules();
  engine_fixture f(&rules);
  EXPECT_EQ(f.publish("plain", "1"), (std::pair<std::uint64_t, std::string>{0, ""}));
  EXPECT_EQ(f.stats.publications_dropped.get(), 1u);
  EXPECT_TRUE(f.host.records.empty());
  EXPECT_TRUE(f.host.dispatched.empty());
}

TEST(memory_engine, orders_and_dispatches_in_offset_order) {
  auto rules = engine_rules();
  engine_fixture f(&rules);
  home_channel& plain = f.subscribed("plain");
  for (std::uint64_t k = 1; k <= 5; ++k) {
    // No history: the offset, no epoch (nothing to recover from).
    EXPECT_EQ(f.publish("plain", std::to_string(k)), (std::pair<std::uint64_t, std::string>{k, ""}));
  }
  ASSERT_EQ(f.host.dispatched.size(), 5u);
  for (std::uint64_t k = 0; k < 5; ++k) EXPECT_EQ(f.host.dispatched[k]->offset, k + 1);
  EXPECT_EQ(plain.offset, 5u);
  EXPECT_EQ(f.stats.publications_home.get(), 5u);
  // With history the answer names the stream.
  home_channel& h = f.subscribed("h:a");
  auto [offset, epoch] = f.publish("h:a", "x");
  EXPECT_EQ(offset, 1u);
  EXPECT_EQ(epoch, std::string(h.epoch.view()));
  EXPECT_EQ(epoch.size(), 8u);
}

TEST(memory_engine, every_new_record_is_a_new_epoch) {
  auto rules = engine_rules();
  engine_fixture f(&rules);
  std::string a(f.subscribed("h:a").epoch.view()), b(f.subscribed("h:b").epoch.view());
  EXPECT_NE(a, b);
  f.host.erase_home(f.host.find_home("h:a"));
  EXPECT_NE(std::string(f.subscribed("h:a").epoch.view()), a);
}

TEST(memory_engine, open_answers_where_the_stream_stands) {
  auto rules = engine_rules();
  engine_fixture f(&rules);
  home_channel& hc = f.subscribed("h:a");
  f.publish("h:a", "1");
  f.publish("h:a", "2");
  std::uint64_t at = 0;
  std::string ep;
  f.e.open(hc, [&](home_channel& h, std::uint32_t error, std::uint64_t offset, stream_epoch epoch) {
    EXPECT_EQ(error, 0u);
    EXPECT_EQ(&h, &hc);
    at = offset;
    ep = std::string(epoch.view());
  });
  EXPECT_EQ(at, 2u);  // answered inside the call
  EXPECT_EQ(ep, std::string(hc.epoch.view()));
}

TEST(memory_engine, a_record_is_kept_after_its_last_shard_only_with_history) {
  auto rules = engine_rules();
  engine_fixture f(&rules);
  home_channel& plain = f.subscribed("plain");
  plain.shards.erase(0);
  EXPECT_FALSE(f.e.release(plain));  // nothing kept: the router erases it
  home_channel& quick = f.subscribed("quick:a");
  f.publish("quick:a", "1");
  quick.shards.erase(0);
  EXPECT_TRUE(f.e.release(quick));  // kept for history_ttl
  f.e.sweep();
  EXPECT_NE(f.host.find_home("quick:a"), nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));  // past the 20 ms TTL
  f.e.sweep();
  EXPECT_EQ(f.host.find_home("quick:a"), nullptr);
  EXPECT_EQ(f.stats.history_publications.get(), 0u);
  EXPECT_EQ(f.stats.history_bytes.get(), 0u);
}

TEST(memory_engine, history_reads) {
  auto rules = engine_rules();
  engine_fixture f(&rules);
  for (int k = 1; k <= 5; ++k) f.publish("h:a", std::to_string(k));  // kept with nobody subscribed
  history_query all;
  all.limit = -1;
  history_answer a = f.history("h:a", all);
  EXPECT_EQ(a.error, 0u);
  EXPECT_EQ(a.offset, 5u);
  ASSERT_EQ(a.publications.size(), 3u);  // history_size 3
  EXPECT_EQ(a.publications.front()->offset, 3u);
  history_query rev = all;
  rev.reverse = true;
  rev.limit = 2;
  a = f.history("h:a", rev);
  ASSERT_EQ(a.publications.size(), 2u);
  EXPECT_EQ(a.publications[0]->offset, 5u);
  EXPECT_EQ(a.publications[1]->offset, 4u);
  history_query since = all;
  since.has_since = true;
  since.since_offset = 3;
  since.since_epoch = a.epoch;
  a = f.history("h:a", since);
  EXPECT_EQ(a.error, 0u);
  ASSERT_EQ(a.publications.size(), 2u);
  EXPECT_EQ(a.publications[0]->offset, 4u);
  since.since_offset = 1;  // 2 is gone
  EXPECT_EQ(f.history("h:a", since).error, 112u);
  since.since_offset = 4;
  since.since_epoch = "other";
  EXPECT_EQ(f.history("h:a", since).error, 112u);
  EXPECT_EQ(f.history("plain", all).error, 108u);  // no history in that namespace
  history_query remove;
  remove.remove = true;
  EXPECT_EQ(f.history("h:a", remove).error, 0u);
  EXPECT_EQ(f.host.find_home("h:a"), nullptr);  // nobody here and nothing kept
  EXPECT_EQ(f.stats.history_publications.get(), 0u);
}

TEST(memory_engine, recovery) {
  auto rules = engine_rules();
  engine_fixture f(&rules);
  home_channel& hc = f.subscribed("h:a");
  for (int k = 1; k <= 5; ++k) f.publish("h:a", std::to_string(k));
  std::string epoch(hc.epoch.view());
  auto recover = [&](std::uint64_t since, std::string_view ep) {
    recovery_answer out;
    f.e.recover(hc, since, ep, [&out](home_channel&, recovery_answer&& a) { out = std::move(a); });
    return out;
  };
  recovery_answer a = recover(3, epoch);
  EXPECT_TRUE(a.recovered);
  EXPECT_EQ(a.offset, 5u);
  ASSERT_EQ(a.publications.size(), 2u);
  EXPECT_EQ(a.publications[0]->offset, 4u);
  a = recover(5, epoch);
  EXPECT_TRUE(a.recovered);
  EXPECT_TRUE(a.publications.empty());
  EXPECT_FALSE(recover(1, epoch).recovered);  // 2 is no longer retained
  EXPECT_FALSE(recover(4, "deadbeef").recovered);
  EXPECT_FALSE(recover(9, epoch).recovered);  // ahead of the stream
  EXPECT_EQ(f.stats.recoveries.get(), 5u);
  EXPECT_EQ(f.stats.recoveries_failed.get(), 3u);
}

TEST(memory_engine, presence_counts_clients_and_users_and_dispatches_join_leave) {
  auto rules = engine_rules();
  engine_fixture f(&rules);
  home_channel& hc = f.subscribed("p:room");
  f.e.presence_event(presence_event(publication::kind::join, "p:room", "u1", "c1"));
  f.e.presence_event(presence_event(publication::kind::join, "p:room", "u1", "c1"));  // again: no change
  f.e.presence_event(presence_event(publication::kind::join, "p:room", "u1", "c2"));
  f.e.presence_event(presence_event(publication::kind::join, "p:room", "u2", "c3"));
  presence_answer a = f.presence("p:room", true);
  EXPECT_EQ(a.num_clients, 3u);
  EXPECT_EQ(a.num_users, 2u);
  EXPECT_TRUE(a.clients.empty());
  EXPECT_EQ(f.presence("p:room", false).clients.size(), 3u);
  EXPECT_EQ(f.host.dispatched.size(), 3u);  // join_leave: each change, once
  for (const char* c : {"c1", "c2", "c3"}) f.e.presence_event(presence_event(publication::kind::leave, "p:room", "", c));
  EXPECT_EQ(f.presence("p:room", true).num_clients, 0u);
  EXPECT_EQ(f.stats.presence_entries.get(), 0u);
  EXPECT_EQ(hc.store, nullptr);  // nobody present and no history: nothing kept beside the record
  EXPECT_EQ(f.presence("plain", true).error, 108u);
}

TEST(memory_engine_routed, recovery_returns_the_missed_publications_then_the_live_ones_in_one_order) {
  auto rules = history_rules();
  cluster c(3, &rules);
  recorder early;  // subscribed from the start; the reference stream
  recorder gone;   // saw the first 5, then "lost its connection"
  c.on(1, [&](router& r) { r.subscribe(early, "h:room"); });
  c.on(2, [&](router& r) { r.subscribe(gone, "h:room"); });
  c.settle();
  for (int k = 1; k <= 5; ++k) c.on(0, [&, k](router& r) { r.publish(make_pub("h:room", std::to_string(k))); });
  c.settle();
  std::string epoch;
  c.on(2, [&](router& r) {
    ASSERT_EQ(gone.offsets.size(), 5u);
    epoch = gone.epoch;
    r.unsubscribe(gone.sub);
  });
  ASSERT_EQ(epoch.size(), 8u);
  for (int k = 6; k <= 15; ++k) c.on(0, [&, k](router& r) { r.publish(make_pub("h:room", std::to_string(k))); });
  // Back on shard 2 (which no longer receives the channel) while shard 0
  // keeps publishing: the recovered and the live publications must join
  // without a gap or a repeat.
  recorder back;
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    for (int k = 16; k <= 200; ++k) c.on(0, [&, k](router& r) { r.publish(make_pub("h:room", std::to_string(k))); });
    stop = true;
  });
  c.on(2, [&](router& r) {
    recovery_request rec{5, epoch};
    ASSERT_NE(r.subscribe(back, "h:room", &rec), nullptr);
  });
  publisher.join();
  c.settle();
  c.on(2, [&](router&) {
    EXPECT_TRUE(back.subscribed);
    EXPECT_TRUE(back.recovered);
    EXPECT_EQ(back.epoch, epoch);
    ASSERT_EQ(back.offsets.size(), 195u);
    for (std::size_t i = 0; i < back.offsets.size(); ++i) EXPECT_EQ(back.offsets[i], 6 + i) << i;
  });
  c.on(1, [&](router&) { ASSERT_EQ(early.offsets.size(), 200u); });
}

TEST(memory_engine_routed, unrecoverable_positions_say_so) {
  auto rules = history_rules();
  cluster c(2, &rules);
  recorder keep;  // keeps the channels registered
  c.on(1, [&](router& r) {
    r.subscribe(keep, "small:x");
  });
  c.settle();
  for (int k = 1; k <= 10; ++k) c.on(0, [&, k](router& r) { r.publish(make_pub("small:x", std::to_string(k))); });
  c.settle();
  std::string epoch;
  c.on(1, [&](router&) { epoch = keep.epoch; });
  recorder too_old, wrong_epoch, current;
  c.on(0, [&](router& r) {
    recovery_request old{2, epoch};  // 3..7 are gone: history_size 3 keeps 8..10
    r.subscribe(too_old, "small:x", &old);
    recovery_request other{9, "deadbeef"};
    r.subscribe(wrong_epoch, "small:x", &other);
    recovery_request now{7, epoch};  // 8..10 retained
    r.subscribe(current, "small:x", &now);
  });
  c.settle();
  c.on(0, [&](router&) {
    EXPECT_TRUE(too_old.subscribed);
    EXPECT_FALSE(too_old.recovered);
    EXPECT_TRUE(too_old.offsets.empty());
    EXPECT_FALSE(wrong_epoch.recovered);
    EXPECT_TRUE(current.recovered);
    EXPECT_EQ(current.offsets, (std::vector<std::uint64_t>{8, 9, 10}));
  });
}

TEST(memory_engine_routed, history_outlives_the_last_subscriber_until_its_ttl) {
  sb::routing::channel_options h;
  h.history_size = 10;
  h.history_ttl = std::chrono::milliseconds(300);
  h.force_recovery = true;
  sb::routing::channel_rules rules({}, {{"h", h}});
  cluster c(2, &rules);
  // Published with nobody subscribed: kept for the TTL anyway.
  for (int k = 1; k <= 3; ++k) c.on(0, [&, k](router& r) { r.publish(make_pub("h:solo", std::to_string(k))); });
  c.settle();
  unsigned home = router::home_of("h:solo", 2);
  c.on(home, [&](router& r) {
    EXPECT_EQ(r.home_channel_count(), 1u);
    EXPECT_EQ(r.stats().history_publications.get(), 3u);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  c.on(home, [&](router& r) {
    r.sweep_history();
    EXPECT_EQ(r.home_channel_count(), 0u);
    EXPECT_EQ(r.stats().history_publications.get(), 0u);
    EXPECT_EQ(r.stats().history_bytes.get(), 0u);
  });
}

TEST(memory_engine_routed, a_stream_with_nothing_published_yet_outlives_its_last_subscriber) {
  // Everyone leaves a room nobody has written in yet; messages come while
  // they are away; they come back with the position they had (offset 0 and
  // the epoch) and must recover those messages, not find a new stream.
  auto rules = history_rules();
  cluster c(2, &rules);
  recorder first;
  c.on(1, [&](router& r) { r.subscribe(first, "h:quiet"); });
  c.settle();
  std::string epoch;
  c.on(1, [&](router& r) {
    ASSERT_TRUE(first.subscribed);
    EXPECT_EQ(first.start, 0u);
    epoch = first.epoch;
    r.unsubscribe(first.sub);
  });
  c.settle();
  for (unsigned i = 0; i < 2; ++i) c.on(i, [](router& r) { r.sweep_history(); });
  for (int k = 1; k <= 4; ++k) c.on(0, [&, k](router& r) { r.publish(make_pub("h:quiet", std::to_string(k))); });
  c.settle();
  recorder back;
  c.on(1, [&](router& r) {
    recovery_request rec{0, epoch};
    ASSERT_NE(r.subscribe(back, "h:quiet", &rec), nullptr);
  });
  c.settle();
  c.on(1, [&](router&) {
    EXPECT_TRUE(back.recovered);
    EXPECT_EQ(back.epoch, epoch);
    EXPECT_EQ(back.offsets, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  });
}

TEST(memory_engine_routed, history_max_bytes_evicts_the_least_recently_published_channels) {
  auto rules = history_rules();
  const std::uint64_t per_pub = sizeof(publication) + std::string("h:a").size() + 100;
  const std::uint64_t bound = 12 * per_pub;  // room for 12 of the 15 publications below
  cluster c(1, &rules, bound);
  recorder keep;  // h:b keeps a subscriber; h:a and h:c have none
  c.on(0, [&](router& r) { r.subscribe(keep, "h:b"); });
  c.settle();
  for (const char* ch : {"h:a", "h:b", "h:c"}) {
    for (int k = 0; k < 5; ++k) c.on(0, [&, ch](router& r) { r.publish(make_pub(ch, std::string(100, 'x'))); });
  }
  c.settle();
  c.on(0, [&](router& r) {
    EXPECT_LE(r.stats().history_bytes.get(), bound);
    EXPECT_EQ(r.stats().history_evictions.get(), 1u);
    EXPECT_EQ(r.stats().history_publications.get(), 10u);  // h:b and h:c whole; h:a gone
    EXPECT_EQ(r.home_channel_count(), 2u);                  // h:a had nobody: its record went too
  });
  // A client that knew h:a cannot recover it: its stream is gone.
  recorder back;
  c.on(0, [&](router& r) {
    recovery_request rec{2, "whatever"};
    r.subscribe(back, "h:a", &rec);
  });
  c.settle();
  c.on(0, [&](router&) {
    EXPECT_TRUE(back.subscribed);
    EXPECT_FALSE(back.recovered);
  });
}

}  // namespace
