#pragma once
// Graceful drain (docs/ops.md "Drain"): on the first SIGTERM/SIGINT or a
// POST /drain, the node stops accepting on every shard at once (/readyz says
// 503 from the same moment), each shard closes its sessions spread over
// shutdown_drain_period (session_context::drain), and when none is left, or
// the period plus close_timeout has passed, `done` runs (the main loop
// stops and the usual shutdown closes whatever remains). Main thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sb {

class shard;

class drain_control {
 public:
  drain_control(boost::asio::io_context& io, const std::vector<std::unique_ptr<shard>>& shards,
                std::chrono::milliseconds period, std::chrono::milliseconds close_timeout, std::function<void()> done);

  /// Starts the drain (again: nothing); `why` goes to the log.
  void begin(const std::string& why);
  bool draining() const noexcept { return _draining; }
  std::chrono::milliseconds period() const noexcept { return _period; }
  /// Sessions (open or in their handshake) on every shard now.
  std::uint64_t sessions() const noexcept;

 private:
  void check();

  const std::vector<std::unique_ptr<shard>>& _shards;
  std::chrono::milliseconds _period, _close_timeout;
  std::function<void()> _done;
  boost::asio::steady_timer _timer;
  std::chrono::steady_clock::time_point _deadline{};
  bool _draining = false;
};

}  // namespace sb
