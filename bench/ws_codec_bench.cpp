// session/ws_codec micro-benchmarks (issue 3); figures in bench/RESULTS.md.
//
// Decode throughput counts frame bytes (header + payload) through decode()
// including unmasking and, for text, UTF-8 validation. decode() unmasks in
// place, so each iteration restores a ~256 KiB batch of masked frames first,
// outside the timed region; the batch is large enough (tens of microseconds
// of work) that PauseTiming's own cost does not skew the figure.
#include "session/ws_codec.hpp"

#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace sb::ws;

struct sink {
  std::size_t bytes = 0;
  bool on_data(opcode, std::span<std::uint8_t> p, bool, bool) {
    bytes += p.size();
    return true;
  }
  bool on_ping(std::span<std::uint8_t>) { return true; }
  bool on_pong(std::span<std::uint8_t>) { return true; }
  bool on_close(std::uint16_t, std::string_view) { return true; }
};

constexpr std::uint8_t key_bytes[4] = {0x37, 0xfa, 0x21, 0x3d};

/// Appends a masked client frame.
void append_frame(std::vector<std::uint8_t>& out, opcode op, const std::string& payload) {
  std::uint8_t h[max_header_size];
  const std::size_t hl = encode_header(h, op, payload.size());
  h[1] |= 0x80;
  out.insert(out.end(), h, h + hl);
  out.insert(out.end(), key_bytes, key_bytes + 4);
  const std::size_t at = out.size();
  out.insert(out.end(), payload.begin(), payload.end());
  std::uint32_t key;
  std::memcpy(&key, key_bytes, 4);
  unmask(out.data() + at, payload.size(), key);
}

/// Mixed text: mostly ASCII with some 2- and 3-byte sequences, like chat.
std::string text_payload(std::size_t n) {
  std::string s;
  const char* pieces[] = {"hello ", "caf\xc3\xa9 ", ("\xe2\x82\xac" "5 "), "message "};
  for (std::size_t i = 0; s.size() < n; ++i) s += pieces[i % 4];
  while (s.size() > n) s.pop_back();
  while (!s.empty() && (static_cast<std::uint8_t>(s.back()) & 0xC0) == 0x80) s.pop_back();
  if (!s.empty() && static_cast<std::uint8_t>(s.back()) >= 0xC0) s.pop_back();
  s.resize(n, 'x');
  return s;
}

void BM_decode(benchmark::State& state, opcode op, bool ascii) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::string payload = op == opcode::text && !ascii ? text_payload(size) : std::string(size, '\x5a');
  // About 256 KiB of frames per batch: fits L2, amortises the re-mask.
  const std::size_t frames = std::max<std::size_t>(1, (256 * 1024) / (size + 14));
  std::vector<std::uint8_t> master;
  for (std::size_t i = 0; i < frames; ++i) append_frame(master, op, payload);
  std::vector<std::uint8_t> buf = master;
  decode_limits lim{1 << 20};
  sink h;
  for (auto _ : state) {
    state.PauseTiming();
    std::memcpy(buf.data(), master.data(), master.size());
    state.ResumeTiming();
    decoder_state st;
    auto r = decode(st, buf.data(), buf.size(), lim, h);
    if (r.error || r.consumed != buf.size()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(h.bytes);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * master.size()));
  state.counters["frames/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * frames), benchmark::Counter::kIsRate);
}
// text: mixed ASCII / 2- / 3-byte UTF-8; text_ascii: ASCII only (takes the
// short-ASCII shortcut up to 64 bytes); binary: no validation.
BENCHMARK_CAPTURE(BM_decode, text, opcode::text, false)->Arg(16)->Arg(125)->Arg(1024)->Arg(16384)->Arg(65536);
BENCHMARK_CAPTURE(BM_decode, text_ascii, opcode::text, true)->Arg(16)->Arg(125)->Arg(1024);
BENCHMARK_CAPTURE(BM_decode, binary, opcode::binary, false)->Arg(16)->Arg(125)->Arg(1024)->Arg(16384)->Arg(65536);

void BM_unmask(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint8_t> buf(size + 1, 0x42);
  std::uint32_t key;
  std::memcpy(&key, key_bytes, 4);
  for (auto _ : state) {
    unmask(buf.data() + 1, size, key, 1);  // unaligned, non-zero phase: the general case
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_unmask)->Arg(16)->Arg(125)->Arg(1024)->Arg(16384)->Arg(65536);

void BM_valid_utf8(benchmark::State& state, bool ascii) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::string s = ascii ? std::string(size, 'a') : text_payload(size);
  for (auto _ : state) benchmark::DoNotOptimize(valid_utf8(s));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
}
BENCHMARK_CAPTURE(BM_valid_utf8, mixed, false)->Arg(16)->Arg(1024)->Arg(65536);
BENCHMARK_CAPTURE(BM_valid_utf8, ascii, true)->Arg(16)->Arg(64)->Arg(65536);

/// The library alone, for the shortcut's comparison.
void BM_simdjson_validate_utf8(benchmark::State& state) {
  const std::string s(static_cast<std::size_t>(state.range(0)), 'a');
  for (auto _ : state) benchmark::DoNotOptimize(simdjson::validate_utf8(s.data(), s.size()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
}
BENCHMARK(BM_simdjson_validate_utf8)->Arg(16)->Arg(64)->Arg(65536);

void BM_encode_header(benchmark::State& state) {
  std::uint8_t h[max_header_size];
  std::uint64_t len = static_cast<std::uint64_t>(state.range(0));
  for (auto _ : state) {
    benchmark::DoNotOptimize(len);
    benchmark::DoNotOptimize(encode_header(h, opcode::text, len));
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_encode_header)->Arg(16)->Arg(1024)->Arg(65536);

void BM_make_frame(benchmark::State& state) {
  sb::frame_pool pool;
  const std::string payload = text_payload(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    // Steady path: the previous buffer goes back to the free list, so this
    // is a pooled make + header + memcpy, no allocation (except > 16 KiB).
    auto f = make_frame(pool, opcode::text, payload);
    benchmark::DoNotOptimize(f.data());
  }
}
BENCHMARK(BM_make_frame)->Arg(16)->Arg(125)->Arg(1024)->Arg(16384);

void BM_make_close_frame(benchmark::State& state) {
  sb::frame_pool pool;
  for (auto _ : state) {
    auto f = make_close_frame(pool, close_code::policy_violation, "slow consumer: queue over limit");
    benchmark::DoNotOptimize(f.data());
  }
}
BENCHMARK(BM_make_close_frame);

}  // namespace

BENCHMARK_MAIN();
