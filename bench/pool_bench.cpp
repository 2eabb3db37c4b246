// ns per operation of the pool/ primitives, against the obvious alternative:
// object_pool acquire/release vs new/delete, frame_ref copy/release (what a
// fan-out does per recipient), and the timer wheel's schedule, cancel and
// advance with 100k and 1M timers armed. Results: bench/RESULTS.md.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "pool/frame_buffer.hpp"
#include "pool/object_pool.hpp"
#include "pool/timer_wheel.hpp"

namespace {

// About the size of a session record.
struct session_like {
  explicit session_like(std::uint64_t i) noexcept : id(i) {}
  std::uint64_t id;
  std::uint64_t state[27] = {};
};
static_assert(sizeof(session_like) == 224);

// ---- object_pool vs new/delete -------------------------------------------

// Keeps `live` objects, then cycles: release one, acquire one (the pattern of
// connection churn on a shard with a steady population).
void BM_object_pool_churn(benchmark::State& state) {
  const auto live = static_cast<std::size_t>(state.range(0));
  sb::object_pool<session_like> pool;
  std::vector<session_like*> v;
  for (std::size_t i = 0; i < live; ++i) v.push_back(pool.acquire(i));
  std::size_t k = 0;
  for (auto _ : state) {
    pool.release(v[k]);
    v[k] = pool.acquire(k);
    benchmark::DoNotOptimize(v[k]);
    k = (k + 7919) & (live - 1);  // live is a power of two: no division in the loop
  }
  for (auto* p : v) pool.release(p);
  state.SetItemsProcessed(state.iterations());
}

void BM_new_delete_churn(benchmark::State& state) {
  const auto live = static_cast<std::size_t>(state.range(0));
  std::vector<session_like*> v;
  for (std::size_t i = 0; i < live; ++i) v.push_back(new session_like(i));
  std::size_t k = 0;
  for (auto _ : state) {
    delete v[k];
    v[k] = new session_like(k);
    benchmark::DoNotOptimize(v[k]);
    k = (k + 7919) & (live - 1);
  }
  for (auto* p : v) delete p;
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_object_pool_churn)->Arg(1)->Arg(1 << 17);
BENCHMARK(BM_new_delete_churn)->Arg(1)->Arg(1 << 17);

// ---- frame_ref --------------------------------------------------------------

// One fan-out: encode once, hand a reference to N subscribers' queues, then
// every queue drops its reference (last one recycles the buffer).
void BM_frame_fanout(benchmark::State& state) {
  const auto subscribers = static_cast<std::size_t>(state.range(0));
  sb::frame_pool pool;
  std::vector<sb::frame_ref> queues(subscribers);
  for (auto _ : state) {
    sb::frame_ref f = pool.make_copy("{\"push\":{\"channel\":\"chat\",\"pub\":{\"data\":{}}}}");
    for (auto& q : queues) q = f;
    f.reset();
    for (auto& q : queues) q.reset();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(subscribers));
  state.SetLabel("items = references copied and released");
}
BENCHMARK(BM_frame_fanout)->Arg(1)->Arg(100)->Arg(10000);

// Baseline for the same fan-out with shared_ptr<const std::string> (atomic count).
void BM_shared_ptr_fanout(benchmark::State& state) {
  const auto subscribers = static_cast<std::size_t>(state.range(0));
  std::vector<std::shared_ptr<const std::string>> queues(subscribers);
  for (auto _ : state) {
    auto f = std::make_shared<const std::string>("{\"push\":{\"channel\":\"chat\",\"pub\":{\"data\":{}}}}");
    for (auto& q : queues) q = f;
    f.reset();
    for (auto& q : queues) q.reset();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(subscribers));
}
BENCHMARK(BM_shared_ptr_fanout)->Arg(1)->Arg(100)->Arg(10000);

// make + release of a pooled frame (steady state: from the free list).
void BM_frame_make_release(benchmark::State& state) {
  sb::frame_pool pool;
  for (auto _ : state) {
    sb::frame_ref f = pool.make(static_cast<std::size_t>(state.range(0)));
    benchmark::DoNotOptimize(f.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_frame_make_release)->Arg(200)->Arg(4000);

// ---- timer wheel ------------------------------------------------------------

using namespace std::chrono_literals;
const sb::timer_wheel::clock::time_point t0{std::chrono::hours(1)};

struct wheel_fixture {
  explicit wheel_fixture(std::size_t n) : nodes(n), wheel(100ms, 4096, t0) {
    for (std::size_t i = 0; i < n; ++i) wheel.schedule(nodes[i], delay(i));
  }
  // Deadlines spread over 0.1..60 s, like pings and idle timeouts.
  static std::chrono::milliseconds delay(std::size_t i) { return std::chrono::milliseconds(100 + (i * 7919) % 60000); }
  std::vector<sb::timer_node> nodes;
  sb::timer_wheel wheel;
};

// Re-arming an armed node (what a session does on every read: push its idle
// deadline out) costs one unlink + one link.
void BM_wheel_schedule(benchmark::State& state) {
  wheel_fixture f(static_cast<std::size_t>(state.range(0)));
  std::size_t k = 0;
  const std::size_t n = f.nodes.size();
  for (auto _ : state) {
    f.wheel.schedule(f.nodes[k], wheel_fixture::delay(k + 1));
    k = (k + 7919) % n;
  }
  state.SetItemsProcessed(state.iterations());
}

// Cancels armed nodes in a scattered order; when all are cancelled, re-arms
// them untimed (one pause per n cancels, so the pause's cost is amortised).
void BM_wheel_cancel(benchmark::State& state) {
  wheel_fixture f(static_cast<std::size_t>(state.range(0)));
  std::size_t k = 0, done = 0;
  const std::size_t n = f.nodes.size();
  for (auto _ : state) {
    f.wheel.cancel(f.nodes[k]);
    k = (k + 7919) % n;  // 7919 is prime and n is not a multiple: visits all
    if (++done == n) {
      state.PauseTiming();
      for (std::size_t i = 0; i < n; ++i) f.wheel.schedule(f.nodes[i], wheel_fixture::delay(i));
      done = 0;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}

sb::timer_wheel* rearm_wheel = nullptr;
struct rearm : sb::timer_node {
  rearm() : sb::timer_node(&fire) {}
  static void fire(sb::timer_node& node) { rearm_wheel->schedule(node, 60s); }
};

// One tick of advance() with n armed timers: the expiries due in that tick
// fire (about n/600 with deadlines spread over 60 s) and re-arm themselves
// 60 s out, so the population stays n. Items = timers fired.
void BM_wheel_advance_tick(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<rearm> nodes(n);
  sb::timer_wheel wheel(100ms, 4096, t0);
  rearm_wheel = &wheel;
  for (std::size_t i = 0; i < n; ++i) wheel.schedule(nodes[i], wheel_fixture::delay(i));
  auto now = t0;
  std::size_t fired = 0;
  for (auto _ : state) {
    now += 100ms;
    fired += wheel.advance(now);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(fired));
  state.counters["fired_per_tick"] = static_cast<double>(fired) / static_cast<double>(state.iterations());
}

// advance() over empty ticks (the per-tick floor when nothing is due).
void BM_wheel_advance_empty_tick(benchmark::State& state) {
  sb::timer_wheel wheel(100ms, 4096, t0);
  sb::timer_node far;
  wheel.schedule(far, 1h);
  auto now = t0;
  for (auto _ : state) {
    now += 100ms;
    benchmark::DoNotOptimize(wheel.advance(now));
  }
  wheel.cancel(far);
}

BENCHMARK(BM_wheel_schedule)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_wheel_cancel)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_wheel_advance_tick)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_wheel_advance_empty_tick);

}  // namespace

BENCHMARK_MAIN();
