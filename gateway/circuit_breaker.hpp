#pragma once
// A circuit breaker for one backend endpoint on one shard: closed (requests
// pass, outcomes counted over a sliding window of ten buckets), open (every
// request refused at once, for open_ms), half-open (a few probes pass; one
// success closes it, one failure opens it again). Time is passed in, so the
// unit test drives it without sleeping. Shard thread only: each shard has
// its own breakers, as it has its own connections to the backend.

#include "gateway/proxy_config.hpp"

#include <array>
#include <chrono>
#include <cstdint>

namespace sb {

class circuit_breaker {
 public:
  using clock = std::chrono::steady_clock;
  enum class state : std::uint8_t { closed, open, half_open };

  explicit circuit_breaker(const breaker_options& o) : _o(o) {}

  /// Whether a request may go to the backend now. While half-open, a true
  /// answer reserves a probe: report its outcome with record().
  bool allow(clock::time_point now) {
    if (_state == state::open) {
      if (now - _opened < std::chrono::milliseconds(_o.open_ms)) return false;
      _state = state::half_open;
      _probes = 0;
    }
    if (_state == state::half_open) {
      if (_probes >= _o.half_open_probes) return false;
      ++_probes;
    }
    return true;
  }

  /// The outcome of a request allow() let through.
  void record(bool ok, clock::time_point now) {
    if (_state == state::half_open) {
      if (ok) {
        _state = state::closed;
        _buckets = {};
      } else {
        trip(now);
      }
      return;
    }
    if (_state == state::open) return;  // a request from before it opened
    bucket& b = at(now);
    (ok ? b.ok : b.failed)++;
    if (ok) return;
    std::uint32_t total = 0, failed = 0;
    for (const auto& x : _buckets) {
      if (now - x.start < window()) {
        total += x.ok + x.failed;
        failed += x.failed;
      }
    }
    if (total >= _o.min_requests && static_cast<double>(failed) >= _o.failure_ratio * total) trip(now);
  }

  /// A probe allow() reserved was not sent after all (our own bound, not
  /// the backend): it may be taken again.
  void release_probe() noexcept {
    if (_state == state::half_open && _probes > 0) --_probes;
  }

  state current() const noexcept { return _state; }
  std::uint64_t opened_count() const noexcept { return _trips; }
  /// Until when it stays open (meaningful while open).
  clock::time_point reopens_at() const noexcept { return _opened + std::chrono::milliseconds(_o.open_ms); }
  void reconfigure(const breaker_options& o) { _o = o; }

 private:
  struct bucket {
    clock::time_point start{};
    std::uint32_t ok = 0, failed = 0;
  };
  std::chrono::nanoseconds window() const { return std::chrono::milliseconds(_o.window_ms); }
  bucket& at(clock::time_point now) {
    auto width = window() / _buckets.size();
    if (width.count() <= 0) width = std::chrono::nanoseconds(1);
    auto slot = static_cast<std::size_t>((now.time_since_epoch() / width) % _buckets.size());
    bucket& b = _buckets[slot];
    auto start = clock::time_point(now.time_since_epoch() / width * width);
    if (b.start != start) b = bucket{start, 0, 0};  // a bucket from an earlier lap
    return b;
  }
  void trip(clock::time_point now) {
    _state = state::open;
    _opened = now;
    _buckets = {};
    ++_trips;
  }

  breaker_options _o;
  state _state = state::closed;
  clock::time_point _opened{};
  std::uint32_t _probes = 0;
  std::uint64_t _trips = 0;
  std::array<bucket, 10> _buckets{};
};

}  // namespace sb
