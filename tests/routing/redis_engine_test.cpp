// The Redis engine through routers over a real mesh, against a real
// redis-server: two "nodes" (two clusters of shards, as two processes
// would be) on one Redis. Publications reach both nodes once and in order,
// recovery works across nodes and splices with the live stream, history
// and presence are the cluster's, and a Redis that dies answers 100 at once
// and, back without its data, moves positioned subscribers to recovery.

#include "routing/redis_engine.hpp"

#include "routing/router_stats.hpp"
#include "tests/routing/cluster.hpp"
#include "tests/routing/redis_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace sb::routing;
using namespace sb::routing::test;

channel_rules cluster_rules() {
  channel_options h;
  h.history_size = 100;
  h.history_ttl = std::chrono::seconds(60);
  h.force_recovery = true;
  h.presence = true;
  h.join_leave = true;
  channel_options small = h;
  small.history_size = 3;
  return channel_rules({}, {{"h", h}, {"small", small}});
}

// One node: `n` shards with Redis engines on `servers`.
std::unique_ptr<cluster> node(unsigned n, const channel_rules& rules, std::vector<std::string> servers,
                              std::chrono::milliseconds presence_ttl = std::chrono::seconds(60)) {
  auto c = std::make_unique<cluster>(n, &rules, 0, 64, 1u << 22, [&rules, servers, presence_ttl](unsigned i, asio::io_context& io) {
    redis_engine_options o;
    for (const auto& url : servers) {
      auto ep = sb::redis::parse_endpoint(url);
      sb::redis::resolve(ep);
      o.servers.push_back(ep);
    }
    o.prefix = "sbtest";
    o.presence_ttl = presence_ttl;
    o.connection.backoff_min = std::chrono::milliseconds(20);
    o.connection.backoff_max = std::chrono::milliseconds(200);
    return std::unique_ptr<engine>(std::make_unique<redis_engine>(io, &rules, o, 77 + i));
  });
  // As the gateway does before it accepts clients: every connection up.
  for (unsigned i = 0; i < n; ++i) {
    EXPECT_TRUE(c->wait_until(i, [&c, i] {
      for (const auto& srv : static_cast<const redis_engine&>(*c->engines[i]).servers()) {
        if (!srv.commands->up() || !srv.pubsub->up()) return false;
      }
      return true;
    }));
  }
  return c;
}

// Publishes through shard `from`, waits for the engine's answer.
std::pair<std::uint32_t, std::uint64_t> publish(cluster& c, unsigned from, const std::string& channel,
                                                const std::string& data) {
  std::atomic<bool> done{false};
  std::atomic<std::uint32_t> error{~0u};
  std::atomic<std::uint64_t> offset{0};
  c.on(from, [&](router& r) {
    r.publish(make_pub(channel, data), [&](std::uint32_t e, std::uint64_t off, std::string_view) {
      error = e;
      offset = off;
      done = true;
    });
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(done) << "no answer to publish";
  return {error.load(), offset.load()};
}

bool subscribed(cluster& c, unsigned shard, recorder& who) {
  return c.wait_until(shard, [&] { return who.subscribed || who.failed > 0; }) && who.subscribed;
}

TEST(redis_engine, publications_reach_every_node_once_and_in_order) {
  sb::test::redis_server redis;
  auto rules = cluster_rules();
  // Before the nodes: they outlive the shard threads that deliver to them.
  recorder a0, a1, b0, b1;
  recorder plain_a, plain_b;
  auto a = node(2, rules, {redis.url()});
  auto b = node(2, rules, {redis.url()});
  a->on(0, [&](router& r) { r.subscribe(a0, "h:room"); });
  a->on(1, [&](router& r) { r.subscribe(a1, "h:room"); });
  b->on(0, [&](router& r) { r.subscribe(b0, "h:room"); });
  b->on(1, [&](router& r) { r.subscribe(b1, "h:room"); });
  ASSERT_TRUE(subscribed(*a, 0, a0) && subscribed(*a, 1, a1) && subscribed(*b, 0, b0) && subscribed(*b, 1, b1));
  // Publishers on both nodes, interleaved: one order for everyone.
  for (int k = 1; k <= 100; ++k) {
    cluster& via = k % 2 ? *a : *b;
    via.on(k % 3 == 0 ? 1 : 0, [&, k](router& r) { r.publish(make_pub("h:room", std::to_string(k))); });
  }
  auto all = [](recorder& who) { return who.offsets.size() >= 100; };
  ASSERT_TRUE(a->wait_until(0, [&] { return all(a0); }));
  ASSERT_TRUE(a->wait_until(1, [&] { return all(a1); }));
  ASSERT_TRUE(b->wait_until(0, [&] { return all(b0); }));
  ASSERT_TRUE(b->wait_until(1, [&] { return all(b1); }));
  std::vector<std::string> reference;
  a->on(0, [&](router&) { reference = a0.data; });
  for (auto [c, shard, who] : {std::tuple{a.get(), 0u, &a0}, {a.get(), 1u, &a1}, {b.get(), 0u, &b0}, {b.get(), 1u, &b1}}) {
    c->on(shard, [&, who = who](router&) {
      ASSERT_EQ(who->offsets.size(), 100u);
      for (std::size_t i = 0; i < 100; ++i) EXPECT_EQ(who->offsets[i], who->start + 1 + i);
      EXPECT_EQ(who->data, reference);
      EXPECT_EQ(who->insufficient, 0);
    });
  }
  // A channel without history: PUBLISH, offset 0, still everywhere.
  a->on(0, [&](router& r) { r.subscribe(plain_a, "plain"); });
  b->on(1, [&](router& r) { r.subscribe(plain_b, "plain"); });
  ASSERT_TRUE(subscribed(*a, 0, plain_a) && subscribed(*b, 1, plain_b));
  auto [err, off] = publish(*b, 0, "plain", "x");
  EXPECT_EQ(err, 0u);
  EXPECT_EQ(off, 0u);
  EXPECT_TRUE(a->wait_until(0, [&] { return plain_a.data.size() == 1; }));
  EXPECT_TRUE(b->wait_until(1, [&] { return plain_b.data.size() == 1; }));
}

TEST(redis_engine, recovery_on_another_node_joins_the_live_stream_without_gap_or_repeat) {
  sb::test::redis_server redis;
  auto rules = cluster_rules();
  // Before the nodes: they outlive the shard threads that deliver to them.
  recorder early, gone;
  recorder back;
  recorder keep;
  recorder too_old, other_epoch, current;
  auto a = node(2, rules, {redis.url()});
  auto c = node(2, rules, {redis.url()});
  a->on(1, [&](router& r) { r.subscribe(early, "h:move"); });
  a->on(0, [&](router& r) { r.subscribe(gone, "h:move"); });
  ASSERT_TRUE(subscribed(*a, 1, early) && subscribed(*a, 0, gone));
  for (int k = 1; k <= 5; ++k) publish(*a, 0, "h:move", std::to_string(k));
  ASSERT_TRUE(a->wait_until(0, [&] { return gone.offsets.size() == 5; }));
  std::string epoch;
  a->on(0, [&](router& r) {
    epoch = gone.epoch;
    r.unsubscribe(gone.sub);
  });
  ASSERT_EQ(epoch.size(), 8u);
  for (int k = 6; k <= 15; ++k) publish(*a, 1, "h:move", std::to_string(k));
  // Back on node C while node A keeps publishing.
  std::thread publisher([&] {
    for (int k = 16; k <= 150; ++k) a->on(k % 2, [&, k](router& r) { r.publish(make_pub("h:move", std::to_string(k))); });
  });
  c->on(1, [&](router& r) {
    recovery_request rec{5, epoch};
    ASSERT_NE(r.subscribe(back, "h:move", &rec, {true, false, true, 0}), nullptr);
  });
  publisher.join();
  ASSERT_TRUE(c->wait_until(1, [&] { return back.offsets.size() >= 145; }));
  ASSERT_TRUE(a->wait_until(1, [&] { return early.offsets.size() >= 150; }));
  c->on(1, [&](router&) {
    EXPECT_TRUE(back.recovered);
    EXPECT_EQ(back.epoch, epoch);
    ASSERT_EQ(back.offsets.size(), 145u);
    for (std::size_t i = 0; i < back.offsets.size(); ++i) EXPECT_EQ(back.offsets[i], 6 + i) << i;
    EXPECT_EQ(back.data.front(), "6");
    EXPECT_EQ(back.data.back(), "150");
  });
  // Positions the stream no longer holds, or another epoch: recovered false.
  a->on(0, [&](router& r) { r.subscribe(keep, "small:x"); });
  ASSERT_TRUE(subscribed(*a, 0, keep));
  for (int k = 1; k <= 10; ++k) publish(*a, 1, "small:x", std::to_string(k));
  ASSERT_TRUE(a->wait_until(0, [&] { return keep.offsets.size() == 10; }));
  std::string small_epoch;
  a->on(0, [&](router&) { small_epoch = keep.epoch; });
  c->on(0, [&](router& r) {
    recovery_request old{2, small_epoch};  // 3..7 are gone: history_size 3 keeps 8..10
    r.subscribe(too_old, "small:x", &old);
    recovery_request other{9, "deadbeef"};
    r.subscribe(other_epoch, "small:x", &other);
    recovery_request now{7, small_epoch};
    r.subscribe(current, "small:x", &now);
  });
  ASSERT_TRUE(subscribed(*c, 0, too_old) && subscribed(*c, 0, other_epoch) && subscribed(*c, 0, current));
  c->on(0, [&](router&) {
    EXPECT_FALSE(too_old.recovered);
    EXPECT_TRUE(too_old.offsets.empty());
    EXPECT_FALSE(other_epoch.recovered);
    EXPECT_TRUE(current.recovered);
    EXPECT_EQ(current.offsets, (std::vector<std::uint64_t>{8, 9, 10}));
  });
}

TEST(redis_engine, history_and_presence_are_the_clusters) {
  sb::test::redis_server redis;
  auto rules = cluster_rules();
  // Before the nodes: they outlive the shard threads that deliver to them.
  recorder watch_a, on_b;
  auto a = node(2, rules, {redis.url()});
  auto b = node(2, rules, {redis.url()}, std::chrono::seconds(3));
  for (int k = 1; k <= 10; ++k) publish(*a, 0, "small:h", std::to_string(k));
  auto history = [&](cluster& n, history_query q) {
    history_answer out;
    std::atomic<bool> done{false};
    n.on(0, [&](router&) {
      router::query_history(*n.m, 0, n.routers, "small:h", q, [&](history_answer&& h) {
        out = std::move(h);
        done = true;
      });
    });
    for (int i = 0; i < 20000 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_TRUE(done);
    return out;
  };
  history_query all;
  all.limit = -1;
  history_answer ha = history(*a, all), hb = history(*b, all);
  EXPECT_EQ(ha.offset, 10u);
  EXPECT_EQ(hb.offset, 10u);
  EXPECT_EQ(ha.epoch, hb.epoch);
  ASSERT_EQ(hb.publications.size(), 3u);  // history_size 3
  EXPECT_EQ(hb.publications[0]->offset, 8u);
  EXPECT_EQ(hb.publications[2]->data, "10");
  history_query rev = all;
  rev.reverse = true;
  rev.limit = 2;
  history_answer newest = history(*b, rev);
  ASSERT_EQ(newest.publications.size(), 2u);
  EXPECT_EQ(newest.publications[0]->offset, 10u);
  history_query since = all;
  since.has_since = true;
  since.since_offset = 2;  // 3..7 gone
  since.since_epoch = ha.epoch;
  EXPECT_EQ(history(*a, since).error, 112u);
  since.since_offset = 8;
  history_answer s = history(*a, since);
  EXPECT_EQ(s.error, 0u);
  ASSERT_EQ(s.publications.size(), 2u);
  EXPECT_EQ(s.publications[0]->offset, 9u);

  // Presence: clients of both nodes; joins pushed to the other node.
  a->on(0, [&](router& r) { r.subscribe(watch_a, "h:p", nullptr, {false, true, false, 0}); });
  ASSERT_TRUE(subscribed(*a, 0, watch_a));
  a->on(0, [&](router& r) { r.join("h:p", {"alice", "c-a", "", ""}); });
  b->on(1, [&](router& r) {
    r.subscribe(on_b, "h:p", nullptr, {false, true, false, 0});
    r.join("h:p", {"bob", "c-b", "", ""});
  });
  auto presence = [&](cluster& n) {
    presence_answer out;
    std::atomic<bool> done{false};
    n.on(0, [&](router&) {
      router::query_presence(*n.m, 0, n.routers, "h:p", false, [&](presence_answer&& got) {
        out = std::move(got);
        done = true;
      });
    });
    for (int i = 0; i < 20000 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return out;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (presence(*a).num_clients < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  presence_answer p = presence(*b);
  EXPECT_EQ(p.num_clients, 2u);
  EXPECT_EQ(p.num_users, 2u);
  // watch_a got bob's join from node B (frames of joins carry the client's data, empty here).
  EXPECT_TRUE(a->wait_until(0, [&] { return watch_a.data.size() >= 2; }));
  // Node B goes away without a word (as with kill -9): its entry expires
  // after presence_ttl (3 s), alice's stays (node A refreshes it).
  b.reset();
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (presence(*a).num_clients != 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  p = presence(*a);
  ASSERT_EQ(p.num_clients, 1u);
  EXPECT_EQ(p.clients.at(0).user, "alice");
}

TEST(redis_engine, a_dead_redis_answers_100_at_once_and_its_return_sends_subscribers_to_recovery) {
  sb::test::redis_server redis;
  auto rules = cluster_rules();
  // Before the nodes: they outlive the shard threads that deliver to them.
  recorder live;
  recorder late;
  auto a = node(2, rules, {redis.url()});
  a->on(0, [&](router& r) { r.subscribe(live, "h:f", nullptr, {true, false, true, 0}); });
  ASSERT_TRUE(subscribed(*a, 0, live));
  EXPECT_EQ(publish(*a, 1, "h:f", "1").first, 0u);
  ASSERT_TRUE(a->wait_until(0, [&] { return live.offsets.size() == 1; }));
  redis.stop(SIGKILL);
  // Every shard notices; then publish fails at once, a new subscription fails.
  ASSERT_TRUE(a->wait_until(router::home_of("h:f", 2), [&] {
    return static_cast<const redis_engine&>(*a->engines[router::home_of("h:f", 2)]).servers()[0].commands->up() == false;
  }));
  EXPECT_EQ(publish(*a, 1, "h:f", "lost").first, 100u);
  a->on(1, [&](router& r) { r.subscribe(late, "h:other"); });
  ASSERT_TRUE(a->wait_until(1, [&] { return late.failed > 0; }));
  EXPECT_FALSE(late.subscribed);
  redis.start();  // empty: a new epoch
  // The subscriber is told it missed publications (a positioned client
  // then resubscribes and recovers, or learns recovered: false).
  ASSERT_TRUE(a->wait_until(0, [&] { return live.insufficient > 0; }, 30));
  std::uint32_t err = 100;
  for (int i = 0; i < 200 && err != 0; ++i) {
    err = publish(*a, 1, "h:f", "after").first;
    if (err) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(err, 0u);
}

TEST(redis_engine, unsubscribe_then_subscribe_again_at_once_keeps_receiving) {
  sb::test::redis_server redis;
  auto rules = cluster_rules();
  // Before the nodes: they outlive the shard threads that deliver to them.
  recorder first, second;
  auto a = node(1, rules, {redis.url()});
  a->on(0, [&](router& r) { r.subscribe(first, "h:flip"); });
  ASSERT_TRUE(subscribed(*a, 0, first));
  // UNSUBSCRIBE and SUBSCRIBE in the same turn: the old SUBSCRIBE's
  // acknowledgement must not be taken for the new one's.
  a->on(0, [&](router& r) {
    r.unsubscribe(first.sub);
    r.subscribe(second, "h:flip");
  });
  ASSERT_TRUE(subscribed(*a, 0, second));
  for (int k = 1; k <= 20; ++k) publish(*a, 0, "h:flip", std::to_string(k));
  EXPECT_TRUE(a->wait_until(0, [&] { return second.offsets.size() == 20; }));
}

TEST(redis_engine, two_servers_share_the_channels) {
  sb::test::redis_server r1, r2;
  auto rules = cluster_rules();
  std::vector<std::unique_ptr<recorder>> subs;  // before the nodes, as above
  auto a = node(2, rules, {r1.url(), r2.url()});
  auto b = node(2, rules, {r1.url(), r2.url()});
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) names.push_back("h:s" + std::to_string(i));
  for (const auto& ch : names) {
    subs.push_back(std::make_unique<recorder>());
    b->on(0, [&, s = subs.back().get()](router& r) { r.subscribe(*s, ch); });
  }
  for (auto& s : subs) ASSERT_TRUE(subscribed(*b, 0, *s));
  for (const auto& ch : names) EXPECT_EQ(publish(*a, 1, ch, ch).first, 0u);
  for (auto& s : subs) EXPECT_TRUE(b->wait_until(0, [&] { return s->data.size() == 1; }));
  unsigned on1 = 0;
  for (const auto& ch : names) on1 += redis_engine::server_of(ch, 2) == 0;
  EXPECT_GT(on1, 0u);
  EXPECT_LT(on1, names.size());
  EXPECT_NE(r1.command("EXISTS sbtest.meta." + names[0]) == "1", r2.command("EXISTS sbtest.meta." + names[0]) == "1");
}

}  // namespace
