#include "gateway/drain.hpp"

#include "gateway/shard.hpp"
#include "ops/log.hpp"
#include "session/session.hpp"

namespace sb {

drain_control::drain_control(boost::asio::io_context& io, const std::vector<std::unique_ptr<shard>>& shards,
                             std::chrono::milliseconds period, std::chrono::milliseconds close_timeout,
                             std::function<void()> done)
    : _shards(shards), _period(period), _close_timeout(close_timeout), _done(std::move(done)), _timer(io) {}

std::uint64_t drain_control::sessions() const noexcept {
  std::uint64_t n = 0;
  for (const auto& s : _shards) {
    if (const session_stats* st = s->sessions()) n += st->open.get() + st->handshaking.get();
  }
  return n;
}

void drain_control::begin(const std::string& why) {
  if (_draining) return;
  _draining = true;
  log::info("draining ({}): {} sessions closed over {} ms, then exit", why, sessions(), _period.count());
  for (const auto& s : _shards) s->drain(_period);
  // The period, then each last session's close handshake, and a margin.
  _deadline = std::chrono::steady_clock::now() + _period + _close_timeout + std::chrono::seconds(1);
  check();
}

void drain_control::check() {
  // The shards run the drain; this only watches for its end. A first look
  // comes after one tick so that the shards have taken the request.
  _timer.expires_after(std::chrono::milliseconds(100));
  _timer.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    std::uint64_t left = sessions();
    if (left == 0 || std::chrono::steady_clock::now() >= _deadline) {
      if (left) log::warn("drain: {} sessions still closing at the deadline; closing them now", left);
      else log::info("drain: every session closed");
      return _done();
    }
    check();
  });
}

}  // namespace sb
