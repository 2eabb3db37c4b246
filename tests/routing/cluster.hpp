#pragma once
// Test harness for routing: N shards, each an io_context on its own thread
// with an engine (the memory engine unless a factory makes another), a
// router and a frame pool, over a real mesh; and a subscriber that records
// what it got. Shared by router_test.cpp, memory_engine_test.cpp and
// redis_engine_test.cpp.

#include "routing/channel_rules.hpp"
#include "routing/memory_engine.hpp"
#include "routing/mesh.hpp"
#include "routing/router.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace sb::routing::test {

namespace asio = boost::asio;

// Frames carry "offset|data" so subscribers can check what they got.
inline sb::frame_ref encode(void*, sb::frame_pool& pool, const publication& pub) {
  std::string text = std::to_string(pub.offset) + "|" + pub.data;
  return pool.make_copy(text);
}

struct recorder final : subscriber {
  std::vector<std::uint64_t> offsets;
  std::vector<std::string> data;
  std::uint64_t start = 0;
  bool subscribed = false;
  subscription* sub = nullptr;
  bool recovered = false;
  std::string epoch;
  int insufficient = 0;  // on_insufficient_state calls
  void on_subscribed(subscription& s, const position& pos) override {
    subscribed = true;
    start = pos.offset;
    sub = &s;
    recovered = pos.recovered;
    epoch = std::string(pos.epoch);
    // Recovered publications come first, in order, as if delivered.
    for (const auto& p : pos.publications) {
      offsets.push_back(p->offset);
      data.push_back(p->data);
    }
  }
  void deliver(const sb::frame_ref& f) override {
    std::string_view v = f.view();
    auto bar = v.find('|');
    std::uint64_t off = 0;
    std::from_chars(v.data(), v.data() + bar, off);
    offsets.push_back(off);
    data.emplace_back(v.substr(bar + 1));
  }
  void on_insufficient_state(subscription&) override { ++insufficient; }
  int failed = 0;  // on_subscribe_failed calls
  void on_subscribe_failed(subscription&, std::uint32_t) override {
    ++failed;
    sub = nullptr;
  }
};

// N shards, each an io_context on its own thread with a router and a frame pool.
struct cluster {
  /// Makes shard i's engine on its io_context (the memory engine when empty).
  using engine_factory = std::function<std::unique_ptr<engine>(unsigned i, asio::io_context& io)>;

  explicit cluster(unsigned n, const sb::routing::channel_rules* rules = nullptr, std::uint64_t history_max_bytes = 0,
                   std::uint32_t ring_capacity = 64, std::uint32_t overflow_limit = 1u << 22, engine_factory make = {})
      : shards(n) {
    for (unsigned i = 0; i < n; ++i) {
      ctxs.push_back(std::make_unique<asio::io_context>(1));
      raw.push_back(ctxs.back().get());
    }
    m = std::make_unique<sb::mesh>(raw, &main_ctx, ring_capacity, overflow_limit);
    routers.resize(n);
    frames.resize(n);
    for (unsigned i = 0; i < n; ++i) {
      frames[i] = std::make_unique<sb::frame_pool>();
      if (make) engines.push_back(make(i, *ctxs[i]));
      else engines.push_back(std::make_unique<memory_engine>(rules, history_max_bytes, 1000 + i));
      routers[i] = new router(i, *m, routers, *frames[i], push_encoders{push_encoder{&encode, nullptr}}, *engines[i]);
    }
    for (auto& c : ctxs) guards.push_back(asio::make_work_guard(*c));
    for (unsigned i = 0; i < n; ++i) {
      threads.emplace_back([this, i] {
        sb::set_this_shard_id(i);
        ctxs[i]->run();
      });
    }
  }
  // Runs fn on shard i and waits for it.
  void on(unsigned i, std::function<void(router&)> fn) {
    std::atomic<bool> done{false};
    asio::post(*ctxs[i], [&] {
      fn(*routers[i]);
      done = true;
    });
    while (!done) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  // Lets every in-flight task settle: a few round trips through every shard.
  void settle() {
    for (int round = 0; round < 4; ++round)
      for (unsigned i = 0; i < shards; ++i) on(i, [](router&) {});
  }
  // Polls until pred() holds on shard i (answers from a server come when
  // they come); false after `seconds`.
  bool wait_until(unsigned i, std::function<bool()> pred, int seconds = 20) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      bool ok = false;
      on(i, [&](router&) { ok = pred(); });
      if (ok) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  ~cluster() {
    // Engines close what keeps them running (server connections) while the
    // routers still exist, as a shard does when it stops.
    for (unsigned i = 0; i < shards; ++i) on(i, [this, i](router&) { engines[i]->stop(); });
    for (unsigned i = 0; i < shards; ++i) asio::post(*ctxs[i], [this, i] { guards[i].reset(); });
    for (auto& t : threads) t.join();
    for (auto* r : routers) delete r;
  }
  unsigned shards;
  asio::io_context main_ctx;
  std::vector<std::unique_ptr<asio::io_context>> ctxs;
  std::vector<asio::io_context*> raw;
  std::unique_ptr<sb::mesh> m;
  std::vector<std::unique_ptr<engine>> engines;  // outlive the routers
  std::vector<router*> routers;
  std::vector<std::unique_ptr<sb::frame_pool>> frames;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
};

inline publication_ptr make_pub(std::string channel, std::string data) {
  publication_ptr p(new publication);
  p->channel = std::move(channel);
  p->data = std::move(data);
  return p;
}

inline sb::routing::channel_rules history_rules() {
  sb::routing::channel_options h;
  h.history_size = 100;
  h.history_ttl = std::chrono::seconds(60);
  h.force_recovery = true;
  sb::routing::channel_options small = h;
  small.history_size = 3;
  return sb::routing::channel_rules({}, {{"h", h}, {"small", small}});
}

inline std::string channel_homed_on(unsigned home, unsigned shards, const std::string& prefix) {
  std::string ch;
  for (int i = 0; ch.empty() || router::home_of(ch, shards) != home; ++i) ch = prefix + std::to_string(i);
  return ch;
}

}  // namespace sb::routing::test
