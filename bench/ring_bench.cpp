// Items/s through sb::spsc_ring vs boost::lockfree::spsc_queue, batched (the
// mesh's use: publish once per 16/64 items, drain everything visible) and
// unbatched (push/pop one at a time), with producer and consumer on the same
// CPU and on different CPUs. Results and verdict: bench/RESULTS.md.
//
// Item type: a 64-byte message shaped like sb::task (an ops pointer plus 56
// bytes of inline captures). Boost 1.81's spsc_queue only copies on push
// (no T&& overload), so the comparison uses a trivially copyable 64-byte
// message for both; BM_sb_task_* additionally runs our ring with the real
// move-only sb::task, which boost's queue cannot carry at all.

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <array>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstdint>
#include <thread>

#include "pool/spsc_ring.hpp"
#include "pool/task.hpp"

namespace {

constexpr std::size_t ring_capacity = 1024;
constexpr std::uint64_t items_per_run = 1 << 20;

// A trivially copyable 64-byte "callable": function pointer + inline captures.
struct msg {
  void (*fn)(const msg&, std::uint64_t&);
  std::uint64_t payload[7];
};
static_assert(sizeof(msg) == 64);

void msg_fn(const msg& m, std::uint64_t& sum) { sum += m.payload[0]; }

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// Runs producer() on this thread and consumer() on a new one, pinned to
// cpus (0,0) or (0,1); each returns when items_per_run items went through.
template <typename Producer, typename Consumer>
void run_pair(benchmark::State& state, Producer producer, Consumer consumer) {
  const bool same_core = state.range(1) == 0;
  pin(0);
  std::uint64_t check = 0;
  for (auto _ : state) {
    std::thread c([&] {
      pin(same_core ? 0 : 1);
      check = consumer();
    });
    producer();
    c.join();
    benchmark::DoNotOptimize(check);
  }
  if (check != items_per_run * (items_per_run - 1) / 2) state.SkipWithError("lost or reordered items");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * items_per_run));
  state.SetLabel(same_core ? "same cpu" : "cpu0->cpu1");
}

// ---- sb::spsc_ring with msg ---------------------------------------------------

void BM_sb_ring(benchmark::State& state) {
  const std::size_t batch = static_cast<std::size_t>(state.range(0));
  sb::spsc_ring<msg> ring(ring_capacity);
  run_pair(
      state,
      [&] {
        for (std::uint64_t i = 0; i < items_per_run;) {
          std::size_t staged = 0;
          while (staged < batch && i < items_per_run) {
            if (ring.try_stage(msg{&msg_fn, {i, 0, 0, 0, 0, 0, 0}})) {
              ++i;
              ++staged;
            } else {
              ring.publish();
              std::this_thread::yield();
            }
          }
          ring.publish();
        }
      },
      [&] {
        std::uint64_t sum = 0, got = 0;
        while (got < items_per_run) {
          const std::size_t n = ring.consume([&](msg&& m) { m.fn(m, sum); });
          got += n;
          if (n == 0) std::this_thread::yield();
        }
        return sum;
      });
}

void BM_sb_ring_unbatched(benchmark::State& state) {
  sb::spsc_ring<msg> ring(ring_capacity);
  run_pair(
      state,
      [&] {
        for (std::uint64_t i = 0; i < items_per_run;) {
          if (ring.try_push(msg{&msg_fn, {i, 0, 0, 0, 0, 0, 0}})) ++i;
          else std::this_thread::yield();
        }
      },
      [&] {
        std::uint64_t sum = 0;
        for (std::uint64_t got = 0; got < items_per_run;) {
          if (msg* m = ring.front()) {
            m->fn(*m, sum);
            ring.pop();
            ++got;
          } else {
            std::this_thread::yield();
          }
        }
        return sum;
      });
}

// ---- boost::lockfree::spsc_queue with msg ---------------------------------------

void BM_boost_queue(benchmark::State& state) {
  const std::size_t batch = static_cast<std::size_t>(state.range(0));
  boost::lockfree::spsc_queue<msg> q(ring_capacity);
  run_pair(
      state,
      [&] {
        // Batched boost: build the batch, then push(array, n) publishes it
        // with one index store.
        std::array<msg, 64> buf;
        for (std::uint64_t i = 0; i < items_per_run;) {
          const std::size_t n = std::min<std::uint64_t>(batch, items_per_run - i);
          for (std::size_t k = 0; k < n; ++k) buf[k] = msg{&msg_fn, {i + k, 0, 0, 0, 0, 0, 0}};
          std::size_t done = 0;
          while (done < n) {
            const std::size_t p = q.push(buf.data() + done, n - done);
            done += p;
            if (done < n) std::this_thread::yield();
          }
          i += n;
        }
      },
      [&] {
        std::uint64_t sum = 0, got = 0;
        while (got < items_per_run) {
          const std::size_t n = q.consume_all([&](const msg& m) { m.fn(m, sum); });
          got += n;
          if (n == 0) std::this_thread::yield();
        }
        return sum;
      });
}

void BM_boost_queue_unbatched(benchmark::State& state) {
  boost::lockfree::spsc_queue<msg> q(ring_capacity);
  run_pair(
      state,
      [&] {
        for (std::uint64_t i = 0; i < items_per_run;) {
          if (q.push(msg{&msg_fn, {i, 0, 0, 0, 0, 0, 0}})) ++i;
          else std::this_thread::yield();
        }
      },
      [&] {
        std::uint64_t sum = 0;
        for (std::uint64_t got = 0; got < items_per_run;) {
          if (q.consume_one([&](const msg& m) { m.fn(m, sum); })) ++got;
          else std::this_thread::yield();
        }
        return sum;
      });
}

// ---- sb::spsc_ring with the real item, sb::task (move-only) ----------------

void BM_sb_ring_task(benchmark::State& state) {
  const std::size_t batch = static_cast<std::size_t>(state.range(0));
  sb::spsc_ring<sb::task> ring(ring_capacity);
  std::uint64_t sum = 0;  // consumer-only
  run_pair(
      state,
      [&] {
        for (std::uint64_t i = 0; i < items_per_run;) {
          std::size_t staged = 0;
          while (staged < batch && i < items_per_run) {
            if (ring.try_stage([&sum, i] { sum += i; })) {
              ++i;
              ++staged;
            } else {
              ring.publish();
              std::this_thread::yield();
            }
          }
          ring.publish();
        }
      },
      [&] {
        sum = 0;
        std::uint64_t got = 0;
        while (got < items_per_run) {
          const std::size_t n = ring.consume([](sb::task&& t) { t(); });
          got += n;
          if (n == 0) std::this_thread::yield();
        }
        return sum;
      });
}

// Args: {batch, 0 = same cpu / 1 = different cpus}
void batched_args(benchmark::internal::Benchmark* b) {
  for (int cores : {1, 0})
    for (int batch : {16, 64}) b->Args({batch, cores});
}
void unbatched_args(benchmark::internal::Benchmark* b) {
  for (int cores : {1, 0}) b->Args({1, cores});
}

BENCHMARK(BM_sb_ring)->Apply(batched_args)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_boost_queue)->Apply(batched_args)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sb_ring_unbatched)->Apply(unbatched_args)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_boost_queue_unbatched)->Apply(unbatched_args)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sb_ring_task)->Apply(batched_args)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
