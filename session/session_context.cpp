// session_context: a shard's sessions and what they share (pools, the timer
// wheel, the scratch buffer, the cork list); session.cpp is one connection.

#include "session/session.hpp"

#include <boost/asio/post.hpp>
#include <unistd.h>

namespace sb {

namespace asio = boost::asio;

namespace {
// Bytes each read may bring beyond a partial frame kept from the last one.
constexpr std::size_t read_space = 64 * 1024;
}  // namespace

session_context::session_context(asio::io_context& io, const session_options& opts, session_handler* handler)
    : _io(io),
      _opts(opts),
      _handler(handler),
      _frames(opts.frame_cache_bytes),
      _wheel(std::chrono::milliseconds(100), 4096),
      _wheel_timer(io),
      _admission(opts.admission),
      _drain_timer(io),
      _deflater(opts.deflate, _stats.deflate),
      _inflater(_stats.deflate),
      _scratch_size(opts.max_message_size + ws::max_header_size + 4 + read_space + opts.upgrade.header_limit),
      _scratch(new std::uint8_t[_scratch_size]),
      _poller(io, &session_context::on_io) {
  _dirty.reserve(1024);
}

session_context::~session_context() {
  close_all();
  // The loop no longer runs (shutdown drained it, or a test stopped it):
  // handlers still pending will be destroyed uninvoked with the io_context,
  // so the sessions they point at can go now.
  for (session* s : _graveyard) {
    s->_reading = s->_writing = s->_dirty = false;
    _sessions.release(s);
  }
  _graveyard.clear();
}

void session_context::accept(int fd) {
  if (_closing_all || _draining) {
    ::close(fd);
    return;
  }
  ssl_st* ssl = nullptr;
  if (_tls) {
    ssl = _tls->accept(fd);
    if (!ssl) {  // out of memory
      ::close(fd);
      _stats.ended[static_cast<std::size_t>(end_reason::tls_error)].inc();
      return;
    }
  }
  session* s = nullptr;
  try {
    s = _sessions.acquire(*this, fd, ssl);
  } catch (...) {
    if (ssl) tls::close(ssl, false);
    ::close(fd);
    throw;
  }
  _live.push_back(*s);
  _stats.handshaking.inc();
  s->start();
}

void session_context::close_all() {
  _closing_all = true;
  while (!_live.empty()) {
    session& s = _live.front();
    if (s._phase == session::phase::open) {
      // Best effort: the close frame (1001, or the protocol's own code) goes
      // out if the socket takes it now.
      s.drop_unsent();
      s.enqueue(ws::make_close_frame(_frames, _opts.shutdown_close_code, _opts.shutdown_close_reason));
      s._why = end_reason::server_closed;
      s.flush();
    }
    s.end(end_reason::server_closed);  // unlinks it from _live
  }
  _wheel_timer.cancel();
  _drain_timer.cancel();
  _poller.stop();
}

void session_context::on_io(void* target, std::uint32_t events) { static_cast<session*>(target)->on_io(events); }

void session_context::drain(std::chrono::milliseconds period) {
  if (_draining || _closing_all) return;
  _draining = true;
  _drain_end = std::chrono::steady_clock::now() + period;
  for (const session& s : _live) _drain_left += s._phase == session::phase::open;
  drain_tick();
}

void session_context::drain_tick() {
  if (_closing_all) return;
  constexpr auto tick = std::chrono::milliseconds(100);
  auto now = std::chrono::steady_clock::now();
  if (now + tick >= _drain_end) {
    // The end: every session left, including handshakes that finished meanwhile.
    for (auto it = _live.begin(); it != _live.end();) {
      session& s = *it++;
      if (s._phase == session::phase::open) s.close(_opts.shutdown_close_code, _opts.shutdown_close_reason);
      else if (s._phase == session::phase::handshake) s.end(end_reason::server_closed);  // unlinks it
    }
    return;
  }
  // This tick's share of the sessions still open: an even spread over the
  // ticks left (each visited one moves to the back, so the front is always
  // the ones not yet visited). Fractions carry over, so 10 sessions over
  // 60 s close one every 6 s.
  auto ticks_left = static_cast<std::uint64_t>((_drain_end - now) / tick) + 1;
  _drain_credit += static_cast<double>(_drain_left) / static_cast<double>(ticks_left);
  auto quota = static_cast<std::uint64_t>(_drain_credit);
  _drain_credit -= static_cast<double>(quota);
  std::size_t visits = 0, seen_limit = _stats.open.get() + _stats.handshaking.get();  // >= the list's length
  while (quota > 0 && visits < seen_limit && !_live.empty()) {
    session& s = _live.front();
    ++visits;
    _live.erase(_live.iterator_to(s));
    _live.push_back(s);
    if (s._phase != session::phase::open) continue;
    s.close(_opts.shutdown_close_code, _opts.shutdown_close_reason);
    --quota;
    if (_drain_left > 0) --_drain_left;
  }
  _drain_timer.expires_after(tick);
  _drain_timer.async_wait([this](boost::system::error_code ec) {
    if (!ec) drain_tick();
  });
}

void session_context::schedule(session& s, std::chrono::milliseconds delay) { schedule_timer(s, delay); }

void session_context::schedule_timer(timer_node& n, std::chrono::milliseconds delay) {
  // The wheel counts delays from its last advance. While it is empty its
  // Asio timer is not armed and its clock stands still, so bring it to now
  // first, or the delay would count from when it went idle and the timer
  // would fire at once. (Empty: advancing fires nothing, so this is safe
  // from inside any callback.)
  if (_wheel.empty()) _wheel.advance(std::chrono::steady_clock::now());
  _wheel.schedule(n, delay);
  arm_wheel();
}

void session_context::arm_wheel() {
  if (_wheel_armed || _wheel.empty()) return;
  _wheel_armed = true;
  // One Asio timer per shard drives every session deadline.
  _wheel_timer.expires_after(_wheel.tick());
  _wheel_timer.async_wait([this](boost::system::error_code ec) {
    _wheel_armed = false;
    if (ec) return;
    _wheel.advance(std::chrono::steady_clock::now());
    arm_wheel();
  });
}

void session_context::add_dirty(session& s) {
  _dirty.push_back(&s);
  if (!_flush_posted) {
    _flush_posted = true;
    // Cork: every frame queued while handling this turn's events goes out
    // in one writev per session, after them.
    asio::post(_io, [this] { flush_dirty(); });
  }
}

void session_context::flush_dirty() {
  _flush_posted = false;
  // flush() may end sessions (which may queue to others): iterate by index.
  for (std::size_t i = 0; i < _dirty.size(); ++i) {
    session* s = _dirty[i];
    s->_dirty = false;
    if (s->_phase != session::phase::dead && !s->_writing) s->flush();
  }
  _dirty.clear();
  if (!_graveyard.empty()) reap_later();
}

void session_context::bury(session& s) {
  if (s.is_linked()) _live.erase(_live.iterator_to(s));
  _graveyard.push_back(&s);
  reap_later();
}

void session_context::reap_later() {
  if (_reap_posted) return;
  _reap_posted = true;
  asio::post(_io, [this] { reap(); });
}

void session_context::reap() {
  _reap_posted = false;
  // Free only sessions the flush list no longer points at; the others are
  // freed by the reap flush_dirty asks for. (Ended sessions are out of the
  // epoll set and wait for nothing else.)
  std::size_t keep = 0;
  for (session* s : _graveyard) {
    if (s->_reading || s->_writing || s->_dirty) {
      _graveyard[keep++] = s;
    } else {
      _sessions.release(s);
    }
  }
  _graveyard.resize(keep);
}

}  // namespace sb
