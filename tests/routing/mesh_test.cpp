// The mesh under load: every shard sends to every shard (itself included)
// through deliberately small rings, so full rings, overflow and retries are
// exercised. Counts and per-pair order are checked on the receiving thread.
// Built in the TSan build too (label tsan).

#include "routing/mesh.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;

struct receiver {
  std::vector<std::uint64_t> next_seq;  // per source; touched only by the owning shard thread
  std::uint64_t total = 0;
  std::uint64_t out_of_order = 0;
};

constexpr unsigned shards = 4;
constexpr std::uint64_t per_pair = 50'000;
constexpr std::uint64_t chunk = 1'000;

TEST(mesh, all_pairs_deliver_every_task_once_in_order) {
  std::vector<std::unique_ptr<asio::io_context>> ctxs;
  std::vector<asio::io_context*> raw;
  for (unsigned i = 0; i < shards; ++i) {
    ctxs.push_back(std::make_unique<asio::io_context>(1));
    raw.push_back(ctxs.back().get());
  }
  asio::io_context main_ctx(1);
  sb::mesh m(raw, &main_ctx, /*ring_capacity=*/64, /*overflow_limit=*/1u << 22);

  std::vector<receiver> recv(shards);
  for (auto& r : recv) r.next_seq.assign(shards, 0);
  std::atomic<unsigned> finished{0};
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& c : ctxs) guards.push_back(asio::make_work_guard(*c));

  // Each sender pushes `chunk` tasks per loop turn to every destination, so
  // flushes interleave with drains as in a real shard.
  std::function<void(unsigned, std::uint64_t)> send_chunk = [&](unsigned from, std::uint64_t start) {
    std::uint64_t end = std::min(start + chunk, per_pair);
    for (std::uint64_t seq = start; seq < end; ++seq) {
      for (unsigned to = 0; to < shards; ++to) {
        bool ok = m.invoke_on(to, [&recv, &finished, from, to, seq] {
          receiver& r = recv[to];
          if (r.next_seq[from] != seq) ++r.out_of_order;
          r.next_seq[from] = seq + 1;
          if (++r.total == std::uint64_t{shards} * per_pair) finished.fetch_add(1);
        });
        ASSERT_TRUE(ok);
      }
    }
    if (end < per_pair) asio::post(*ctxs[from], [&, from, end] { send_chunk(from, end); });
  };

  std::vector<std::thread> threads;
  for (unsigned i = 0; i < shards; ++i) {
    threads.emplace_back([&, i] {
      sb::set_this_shard_id(i);
      asio::post(*ctxs[i], [&, i] { send_chunk(i, 0); });
      ctxs[i]->run();
    });
  }
  // Wait (bounded by the test runner's timeout) until every receiver has all.
  while (finished.load() < shards) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (unsigned i = 0; i < shards; ++i) asio::post(*ctxs[i], [&guards, i] { guards[i].reset(); });
  for (auto& t : threads) t.join();

  std::uint64_t deferred = 0;
  for (unsigned i = 0; i < shards; ++i) {
    EXPECT_EQ(recv[i].total, shards * per_pair);
    EXPECT_EQ(recv[i].out_of_order, 0u);
    for (unsigned from = 0; from < shards; ++from) EXPECT_EQ(recv[i].next_seq[from], per_pair);
    EXPECT_EQ(m.source_stats(i).sent.get(), shards * per_pair);
    EXPECT_EQ(m.source_stats(i).shed.get(), 0u);
    EXPECT_EQ(m.dest_stats(i).received.get(), shards * per_pair);
    deferred += m.source_stats(i).deferred.get();
  }
  // 64-slot rings and 1,000-task bursts: the full-ring path must have run.
  EXPECT_GT(deferred, 0u);
}

TEST(mesh, sheds_beyond_the_overflow_limit_and_counts_it) {
  asio::io_context a(1), b(1), main_ctx(1);
  sb::mesh m({&a, &b}, &main_ctx, /*ring_capacity=*/16, /*overflow_limit=*/4);
  int ran = 0;
  int accepted = 0;
  for (int i = 0; i < 30; ++i) accepted += m.send(0, 1, [&ran] { ++ran; }) ? 1 : 0;
  EXPECT_EQ(accepted, 16 + 4);
  EXPECT_EQ(m.source_stats(0).shed.get(), 10u);
  EXPECT_EQ(m.source_stats(0).deferred.get(), 4u);
  // Source 0's flush publishes the ring; destination 1 drains it; the
  // overflow follows on the retry. Bounded turns, no timing assertion.
  for (int turn = 0; turn < 2000 && ran < 20; ++turn) {
    a.poll();
    a.restart();
    b.poll();
    b.restart();
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  EXPECT_EQ(ran, 20);
  EXPECT_EQ(m.dest_stats(1).received.get(), 20u);
}

TEST(mesh, main_thread_is_a_source_of_its_own) {
  asio::io_context a(1), main_ctx(1);
  sb::mesh m({&a}, &main_ctx, 16, 16);
  int ran = 0;
  ASSERT_TRUE(m.invoke_on(0, [&ran] { ++ran; }));  // not a shard thread: main source
  main_ctx.poll();
  a.poll();
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(m.source_stats(m.main_source()).sent.get(), 1u);
}

TEST(mesh, undelivered_tasks_are_destroyed_with_the_mesh) {
  auto alive = std::make_shared<int>(0);
  {
    asio::io_context a(1), b(1), main_ctx(1);
    sb::mesh m({&a, &b}, &main_ctx, 16, 64);
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(m.send(0, 1, [alive] { ++*alive; }));
    EXPECT_EQ(alive.use_count(), 41);
  }
  EXPECT_EQ(alive.use_count(), 1);
}

}  // namespace
