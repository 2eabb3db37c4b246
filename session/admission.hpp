#pragma once
// Node admission (issue 16, part 2): how many new WebSocket sessions a
// shard takes on, checked when an upgrade request has been parsed, before
// the 101 and so before any JWT or backend work. Two gates: a GCRA on
// upgrades per second, and a cap on sessions upgraded whose application
// handshake (Centrifuge's connect) is not answered yet. A refused client
// gets 503 with a Retry-After drawn uniformly from [1 s, S], so a reconnect
// storm comes back spread out rather than in step. S follows the load: the
// seconds the rate gate needs to admit what it refused over the last second
// (a storm of 20,000 against 2,000/s is spread over 10 s, a handful over
// 1 s), at most retry_after_max; refusals of the in-flight gate alone use
// retry_after_max. One per shard; shard thread only.

#include <chrono>
#include <cstdint>

namespace sb {

struct admission_options {
  double connect_rate = 0;          // upgrades admitted per second per shard; 0: unlimited
  std::uint32_t connect_burst = 0;  // admitted at once; 0: the rate (at least 1)
  std::uint32_t max_in_flight = 0;  // upgraded, application handshake not done; 0: unlimited
  std::chrono::milliseconds retry_after_max{10'000};  // Retry-After's largest value
  // True: a session counts as established once upgraded. False: only when
  // the application calls session::established() (Centrifuge: the connect
  // reply), so the in-flight cap covers the connect command too.
  bool established_on_open = true;
};

class admission_gate {
 public:
  explicit admission_gate(const admission_options& o) noexcept;

  /// nullptr admits (and takes the rate's token); otherwise the refusal's
  /// metric label: "admission_rate" or "admission_in_flight".
  const char* check(std::int64_t now_ns, std::uint64_t in_flight) noexcept;
  /// Seconds for the Retry-After of the refusal check() just made (see the
  /// top of this file for its range).
  std::uint32_t retry_after_s() noexcept;

  bool any() const noexcept { return _interval_ns > 0 || _max_in_flight > 0; }

 private:
  double _interval_ns = 0;   // per upgrade; 0: no rate gate
  double _tolerance_ns = 0;  // (burst - 1) intervals
  std::int64_t _tat = 0;     // theoretical arrival time of the next upgrade
  std::uint32_t _max_in_flight;
  // Rate refusals in this one-second window and the one before it.
  std::int64_t _window_start = 0;
  std::uint32_t _refused_now = 0, _refused_before = 0;
  bool _last_was_rate = false;
  std::uint32_t _retry_max_s;
  std::uint64_t _rng;  // xorshift64*: jitter only, no need for more
};

}  // namespace sb
