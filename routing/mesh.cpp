#include "routing/mesh.hpp"

#include <boost/asio/post.hpp>

#include <cassert>

namespace sb {

namespace {
thread_local unsigned t_shard_id = not_a_shard;
}

unsigned this_shard_id() noexcept { return t_shard_id; }
void set_this_shard_id(unsigned id) noexcept { t_shard_id = id; }

mesh::mesh(std::vector<boost::asio::io_context*> shard_ctxs, boost::asio::io_context* main_ctx,
           std::uint32_t ring_capacity, std::uint32_t overflow_limit)
    : _shards(static_cast<unsigned>(shard_ctxs.size())),
      _sources(_shards + 1),
      _dests(_shards + 1),
      _overflow_limit(overflow_limit),
      _src(new source[_sources]),
      _dst(new dest[_dests]) {
  _rings.reserve(std::size_t{_sources} * _dests);
  for (unsigned i = 0; i < _sources * _dests; ++i) _rings.push_back(std::make_unique<spsc_ring<task>>(ring_capacity));
  for (unsigned s = 0; s < _sources; ++s) {
    _src[s].ctx = s < _shards ? shard_ctxs[s] : main_ctx;
    // Timers need no fd of their own (the reactor's timerfd serves them), so
    // creating them here, on the main thread, is safe for every shard.
    _src[s].retry_timer = std::make_unique<boost::asio::steady_timer>(*_src[s].ctx);
    _src[s].overflow.resize(_dests);
    _src[s].is_touched.assign(_dests, false);
    _src[s].touched.reserve(_dests);
  }
  for (unsigned d = 0; d < _dests; ++d) _dst[d].ctx = d < _shards ? shard_ctxs[d] : main_ctx;
}

mesh::~mesh() = default;

bool mesh::invoke_on(unsigned to, task t) {
  unsigned from = this_shard_id();
  return send(from == not_a_shard ? main_source() : from, to, std::move(t));
}

bool mesh::send(unsigned from, unsigned to, task t) {
  assert(from < _sources && to < _dests);
  source& s = _src[from];
  auto& over = s.overflow[to];
  // Order per pair is kept: once something waits in overflow, later tasks
  // queue behind it instead of overtaking it through a freed slot.
  if (!over.empty() || !ring(from, to).try_stage(std::move(t))) {
    if (over.size() >= _overflow_limit) {
      s.stats.shed.inc();
      return false;
    }
    over.push_back(std::move(t));
    s.overflow_total.inc();
    s.stats.deferred.inc();
  }
  s.stats.sent.inc();
  if (!s.is_touched[to]) {
    s.is_touched[to] = true;
    s.touched.push_back(to);
  }
  if (!s.flush_scheduled) {
    s.flush_scheduled = true;
    // Runs after the handlers already queued on this loop turn: everything
    // sent while handling them goes out in one publish per ring.
    boost::asio::post(*s.ctx, [this, from] { flush(from); });
  }
  return true;
}

void mesh::flush(unsigned from) {
  source& s = _src[from];
  s.flush_scheduled = false;
  bool retry = false;
  std::size_t keep = 0;
  for (std::size_t i = 0; i < s.touched.size(); ++i) {
    unsigned to = s.touched[i];
    auto& r = ring(from, to);
    auto& over = s.overflow[to];
    while (!over.empty() && r.try_stage(std::move(over.front()))) {
      over.pop_front();
      s.overflow_total.dec();
    }
    if (r.publish()) wake(to);
    if (!over.empty()) {
      retry = true;
      s.touched[keep++] = to;  // still has work next turn
    } else {
      s.is_touched[to] = false;
    }
  }
  s.touched.resize(keep);
  s.stats.flushes.inc();
  if (retry && !s.retry_armed && !s.stopped) {
    // The destination is behind (it was woken above); retry shortly.
    s.retry_armed = true;
    s.retry_timer->expires_after(retry_delay);
    s.retry_timer->async_wait([this, from](boost::system::error_code ec) {
      source& src = _src[from];
      src.retry_armed = false;
      if (!ec && !src.flush_scheduled && !src.touched.empty()) flush(from);
    });
  }
}

void mesh::stop_source(unsigned from) {
  source& s = _src[from];
  s.stopped = true;
  s.retry_timer->cancel();
  for (auto& over : s.overflow) {
    s.overflow_total.sub(over.size());
    over.clear();
  }
}

void mesh::wake(unsigned to) {
  // acq_rel: the release half publishes our ring store to the drain that
  // resets the flag with its own exchange; only the false→true transition
  // posts, so a destination already scheduled costs no post.
  if (!_dst[to].wake_pending.exchange(true, std::memory_order_acq_rel)) {
    boost::asio::post(*_dst[to].ctx, [this, to] { drain(to); });
  }
}

void mesh::drain(unsigned to) {
  dest& d = _dst[to];
  // acq_rel exchange (not a plain store): it reads the `true` of the last
  // producer's exchange, which synchronises with it, so every ring publish
  // made before that producer's wake() is visible to the consume() below. A
  // publish after this point flips the flag again and posts another drain.
  d.wake_pending.exchange(false, std::memory_order_acq_rel);
  d.stats.drains.inc();
  bool more = false;
  for (unsigned from = 0; from < _sources; ++from) {
    std::size_t n = ring(from, to).consume([](task&& t) { t(); }, drain_batch);
    d.stats.received.add(n);
    if (n == drain_batch) more = true;
  }
  if (more) wake(to);  // let I/O handlers run between batches
}

}  // namespace sb
