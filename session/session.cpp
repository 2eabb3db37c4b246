#include "session/session.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>

namespace sb {

namespace {
constexpr std::size_t max_iov = 64;            // frames gathered into one sendmsg
}  // namespace

const char* to_string(end_reason r) noexcept {
  switch (r) {
    case end_reason::peer_closed: return "peer_closed";
    case end_reason::server_closed: return "server_closed";
    case end_reason::eof: return "eof";
    case end_reason::io_error: return "io_error";
    case end_reason::handshake_timeout: return "handshake_timeout";
    case end_reason::handshake_rejected: return "handshake_rejected";
    case end_reason::protocol_error: return "protocol_error";
    case end_reason::invalid_payload: return "invalid_payload";
    case end_reason::message_too_big: return "message_too_big";
    case end_reason::no_pong: return "no_pong";
    case end_reason::slow_consumer: return "slow_consumer";
    case end_reason::close_timeout: return "close_timeout";
    case end_reason::tls_error: return "tls_error";
    case end_reason::count: break;
  }
  return "unknown";
}

void session_stats::count_rejection(const char* reason) noexcept {
  // Reasons are static strings from the upgrade parser; a handful exist, so
  // a linear scan of a fixed table beats a map and never allocates.
  for (auto& r : rejected) {
    const char* label = r.reason.load(std::memory_order_relaxed);  // this thread is the only writer
    if (label == nullptr) {
      label = reason;
      r.reason.store(label, std::memory_order_release);
    }
    if (label == reason || std::strcmp(label, reason) == 0) {
      r.n.inc();
      return;
    }
  }
  rejected.back().n.inc();  // table full: counted under the last label
}

void echo_handler::on_message(session& s, ws::opcode op, std::span<const std::uint8_t> payload) {
  (void)s.send_message(op, std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()));
}

// ---------------------------------------------------------------------------
// session

session::session(session_context& ctx, int fd, ssl_st* ssl)
    : timer_node(&session::on_deadline), _ctx(ctx), _fd(fd), _ssl(ssl) {}

session::~session() {
  assert(_phase == phase::dead && !_reading && !_writing && !_ssl && !_tls_own);
  while (_out_head) {
    out_node* n = _out_head;
    _out_head = n->next;
    _ctx._out_nodes.release(n);
  }
}

void session::start() {
  // Frames are corked per loop turn already; Nagle would only add delay.
  int one = 1;
  (void)::setsockopt(_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  _ctx.schedule(*this, _ctx._opts.handshake_timeout);
  if (!_ctx._poller.add(_fd, this)) return end(end_reason::io_error);
  wait_readable();  // the set reports input already there when the socket is added
}

void session::on_io(std::uint32_t events) {
  // Edge-triggered: an event says the socket changed, once. Reading goes on
  // until the socket is dry before it waits again, and writing stops only on
  // a refusal (EAGAIN), so no edge is missed. Errors and hang-ups count as
  // both: the next read or write finds out what happened.
  if (_phase == phase::dead) return;
  const bool broken = (events & (EPOLLERR | EPOLLHUP)) != 0;
  if (_reading && (broken || (events & (EPOLLIN | EPOLLRDHUP)))) {
    _reading = false;
    on_readable();
    if (_phase == phase::dead) return;
  }
  if (_writing && (broken || (events & EPOLLOUT))) on_writable();
}

session::io session::recv_some(std::uint8_t* buf, std::size_t space, std::size_t& n) noexcept {
  for (;;) {
    ssize_t r = ::recv(_fd, buf, space, 0);
    if (r > 0) {
      n = static_cast<std::size_t>(r);
      return io::done;
    }
    if (r == 0) return io::eof;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? io::blocked : io::failed;
  }
}

session::io session::send_some(const iovec* iov, std::size_t count, std::size_t& n) noexcept {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = count;
  for (;;) {
    ssize_t r = ::sendmsg(_fd, &msg, MSG_NOSIGNAL);
    if (r >= 0) {
      n = static_cast<std::size_t>(r);
      return io::done;
    }
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? io::blocked : io::failed;
  }
}

void session::on_readable() {
  if (_tls_write_wants_read) {
    // A TLS write waited for input: try the queue again after this read.
    _tls_write_wants_read = false;
    mark_dirty();
  }
  std::uint8_t* scratch = _ctx._scratch.get();
  for (;;) {
    // The partial frame (or handshake) kept from the last read goes first,
    // then new bytes right after it: one contiguous buffer to decode.
    const std::size_t kept = _leftover ? _leftover.size() : 0;
    const std::size_t space = _ctx._scratch_size - kept;
    std::size_t n = 0;
    if (!read_some(scratch + kept, space, n)) {
      if (_phase == phase::dead) return;
      if (_tls_read_wants_write) {
        // The TLS handshake's flight did not fit the socket: go on
        // reading once it is writable (on_writable).
        wait_writable();
        return;
      }
      break;
    }
    _ctx._stats.bytes_in.add(n);
    _received = true;
    if (kept) {
      std::memcpy(scratch, _leftover.data(), kept);
      _leftover.reset();
    }
    bool go_on = _phase == phase::handshake ? handle_handshake(scratch, kept + n) : handle_frames(scratch, kept + n);
    if (!go_on || _phase == phase::dead) return;
    // A plain read short of the space drained the socket. A TLS read
    // returns one record at a time: go on until OpenSSL wants more input,
    // or the edge-triggered set would never report what is left.
    if (!_tls_own && !_ssl && n < space) break;
  }
  if (_phase == phase::dead) return;
  if (_shutdown_after_write) return;  // failing: no more input wanted
  wait_readable();
}

bool session::handle_handshake(std::uint8_t* data, std::size_t n) {
  const auto& opts = _ctx._opts;
  auto r = ws::parse_upgrade(std::string_view(reinterpret_cast<const char*>(data), n), opts.upgrade);
  if (r.status == ws::upgrade_status::need_more) return keep_leftover(data, n, 0);

  if (r.status == ws::upgrade_status::accepted && _ctx._admission.any()) {
    // Admission: decided on a valid request (so a refusal is a proper 503
    // the client can act on), before the 101 and any application work.
    if (const char* why = _ctx._admission.check(steady_now_ns(), _ctx._stats.connecting.get())) {
      r = ws::busy_response(why, _ctx._admission.retry_after_s());
    }
  }
  frame_ref answer = _ctx._frames.make_copy(r.response);
  if (r.status == ws::upgrade_status::rejected) {
    _ctx._stats.count_rejection(r.reason);
    _why = end_reason::handshake_rejected;
    _phase = phase::closing;
    _shutdown_after_write = true;
    enqueue(std::move(answer));
    _ctx.schedule(*this, opts.close_timeout);
    return false;
  }

  _phase = phase::open;
  _opened = true;
  _ctx._stats.handshaking.dec();
  _ctx._stats.open.inc();
  _ctx._stats.upgrades.inc();
  if (opts.admission.established_on_open) {
    _established = true;
  } else {
    _ctx._stats.connecting.inc();
  }
  enqueue(std::move(answer));
  _decoder.deflate = r.deflate;
  if (r.deflate) _ctx._stats.deflate.sessions.inc();
  _received = false;
  if (opts.ping_interval.count() > 0) {
    _ctx.schedule(*this, opts.ping_interval);
  } else {
    _ctx._wheel.cancel(*this);
  }
  _ctx._handler->on_open(*this, r);
  if (_phase != phase::open) return false;
  // Bytes after the request are the client's first frames.
  if (r.consumed < n) return handle_frames(data + r.consumed, n - r.consumed);
  return true;
}

// Adapts decoder callbacks to the session (the ws::decode Handler concept).
struct session::frame_events {
  session& s;

  bool on_data(ws::opcode op, std::span<std::uint8_t> payload, bool first, bool last) {
    if (s._phase != phase::open) return s._phase != phase::dead;  // closing: drain and ignore
    if (first && last) return deliver(op, payload);
    // A fragmented message: assemble it in one pooled buffer (compressed
    // ones stay compressed until the end). The decoder has already checked
    // the total against max_message_size.
    if (first) s._message = s._ctx._frames.make(payload.size() < 256 ? 256 : payload.size());
    s._message.append(payload.data(), payload.size());
    if (!last) return true;
    frame_ref msg = std::move(s._message);
    return deliver(op, std::span<const std::uint8_t>(msg.data(), msg.size()));
  }

  // A whole message to the handler; a compressed one is inflated first (by
  // the shard's inflater, held to the size limit as it inflates) and its
  // text checked then.
  bool deliver(ws::opcode op, std::span<const std::uint8_t> payload) {
    if (s._decoder.compressed) {
      switch (s._ctx._inflater.inflate(payload, s._ctx._opts.max_message_size, payload)) {
        case ws::inflate_status::ok: break;
        case ws::inflate_status::too_big:
          s.fail(ws::close_code::message_too_big, "message too big", end_reason::message_too_big);
          return false;
        case ws::inflate_status::bad_data:
          s.fail(ws::close_code::invalid_payload, "invalid compressed data", end_reason::invalid_payload);
          return false;
      }
      if (op == ws::opcode::text &&
          !ws::valid_utf8(std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()))) {
        s.fail(ws::close_code::invalid_payload, "invalid utf-8", end_reason::invalid_payload);
        return false;
      }
    }
    s._ctx._stats.messages_in.inc();
    s._ctx._handler->on_message(s, op, payload);
    return s._phase == phase::open;
  }

  bool on_ping(std::span<std::uint8_t> payload) {
    if (s._phase == phase::open) {
      s.enqueue(ws::make_frame(s._ctx._frames, ws::opcode::pong,
                               std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size())));
    }
    return s._phase != phase::dead;
  }

  bool on_pong(std::span<std::uint8_t>) {
    s._awaiting_pong = false;
    return true;
  }

  bool on_close(std::uint16_t code, std::string_view reason) {
    if (s._close_sent) {
      // The peer answered our close: the handshake is complete and the
      // server closes the TCP connection first (RFC 6455 7.1.1).
      s.end(s._why);
      return false;
    }
    // Echo the peer's code (none → an empty close frame), then close TCP.
    (void)reason;
    s._why = end_reason::peer_closed;
    s.enqueue(code == ws::close_code::no_status ? ws::make_frame(s._ctx._frames, ws::opcode::close, {})
                                                : ws::make_close_frame(s._ctx._frames, code, {}));
    s._close_sent = true;
    s._phase = phase::closing;
    s._shutdown_after_write = true;
    s._ctx.schedule(s, s._ctx._opts.close_timeout);
    return false;
  }
};

bool session::handle_frames(std::uint8_t* data, std::size_t n) {
  ws::decode_limits lim{_ctx._opts.max_message_size};
  frame_events ev{*this};
  auto r = ws::decode(_decoder, data, n, lim, ev);
  if (_phase == phase::dead) return false;
  if (r.error) {
    end_reason why = r.error == ws::close_code::invalid_payload   ? end_reason::invalid_payload
                     : r.error == ws::close_code::message_too_big ? end_reason::message_too_big
                                                                  : end_reason::protocol_error;
    fail(r.error, r.reason ? r.reason : "", why);
    return false;
  }
  if (r.stopped) return _phase == phase::open || (_phase == phase::closing && !_shutdown_after_write);
  if (r.consumed < n) return keep_leftover(data + r.consumed, n - r.consumed, r.frame_bytes_needed);
  return true;
}

bool session::keep_leftover(const std::uint8_t* data, std::size_t n, std::size_t need) {
  _leftover = _ctx._frames.make(std::max(n, need));
  _leftover.append(data, n);
  return true;
}

void session::enqueue(frame_ref frame) {
  const auto size = static_cast<std::uint32_t>(frame.size());
  out_node* added = _ctx._out_nodes.acquire(std::move(frame));
  if (_out_tail) {
    _out_tail->next = added;
  } else {
    _out_head = added;
  }
  _out_tail = added;
  _queued_bytes += size;
  _ctx._stats.queued_bytes.add(size);
  _ctx._stats.frames_out.inc();
  mark_dirty();
}

send_status session::send_message(ws::opcode op, std::string_view payload) {
  if (_phase != phase::open) return send_status::dropped_closed;
  return send(_decoder.deflate ? _ctx._deflater.frame(_ctx._frames, op, payload)
                               : ws::make_frame(_ctx._frames, op, payload));
}

send_status session::send(frame_ref frame) {
  if (_phase != phase::open) return send_status::dropped_closed;
  if (_queued_bytes + frame.size() > _ctx._opts.max_queued_bytes) {
    // The client does not read fast enough. Drop what it has not started
    // receiving and tell it why; nothing else waits for it.
    drop_unsent();
    _why = end_reason::slow_consumer;
    enqueue(ws::make_close_frame(_ctx._frames, _ctx._opts.slow_close_code, _ctx._opts.slow_close_reason));
    _close_sent = true;
    _phase = phase::closing;
    _shutdown_after_write = true;
    _ctx.schedule(*this, _ctx._opts.close_timeout);
    return send_status::slow_consumer;
  }
  enqueue(std::move(frame));
  return send_status::queued;
}

void session::drop_unsent() {
  // Keep what has started going out: a partly written head (a frame cut in
  // half would corrupt the stream) and, on TLS, every frame with bytes in
  // the record OpenSSL holds unsent (its retry must pass them again).
  out_node* keep = nullptr;
  if (_out_head && (_out_offset > 0 || _tls_committed > 0)) {
    keep = _out_head;
    std::size_t covered = keep->frame.size() - _out_offset;
    while (covered < _tls_committed && keep->next) {
      keep = keep->next;
      covered += keep->frame.size();
    }
  }
  out_node* n = keep ? keep->next : _out_head;
  while (n) {
    out_node* next = n->next;
    _queued_bytes -= static_cast<std::uint32_t>(n->frame.size());
    _ctx._stats.queued_bytes.sub(n->frame.size());
    _ctx._out_nodes.release(n);
    n = next;
  }
  if (keep) {
    keep->next = nullptr;
    _out_tail = keep;
  } else {
    _out_head = _out_tail = nullptr;
  }
}

void session::close(std::uint16_t code, std::string_view reason) {
  if (_phase != phase::open) return;
  _why = end_reason::server_closed;
  enqueue(ws::make_close_frame(_ctx._frames, code, reason));
  _close_sent = true;
  _phase = phase::closing;
  // Keep reading: the peer's close frame completes the handshake.
  _ctx.schedule(*this, _ctx._opts.close_timeout);
}

void session::fail(std::uint16_t code, const char* reason, end_reason why) {
  // Failing the connection (RFC 6455 7.1.7): send a close frame if we can,
  // then close TCP without waiting for the peer's answer.
  _why = why;
  if (_phase == phase::open) {
    enqueue(ws::make_close_frame(_ctx._frames, code, reason));
    _close_sent = true;
    _phase = phase::closing;
    _shutdown_after_write = true;
    _ctx.schedule(*this, _ctx._opts.close_timeout);
  } else {
    end(why);
  }
}

void session::abort(end_reason why) { end(why); }

void session::mark_dirty() {
  if (_dirty || _writing) return;  // a pending write wait flushes everything when it fires
  _dirty = true;
  _ctx.add_dirty(*this);
}

void session::flush() {
  if (_out_head) _ctx._stats.queue_at_write_bytes.record(_queued_bytes);
  if (_tls_own) return flush_own();
  if (_ssl) return _tls_up ? flush_tls() : void();  // nothing is written before the handshake is done
  std::int64_t now_ns = 0;  // read once, when the first stamped frame completes
  while (_out_head && _phase != phase::dead) {
    std::array<iovec, max_iov> bufs;
    std::size_t count = 0;
    std::size_t offset = _out_offset;
    for (out_node* n = _out_head; n && count < max_iov; n = n->next) {
      bufs[count++] = iovec{const_cast<std::uint8_t*>(n->frame.data()) + offset, n->frame.size() - offset};
      offset = 0;
    }
    std::size_t written = 0;
    switch (send_some(bufs.data(), count, written)) {
      case io::done: break;
      case io::blocked: return wait_writable();
      case io::eof:
      case io::failed: return end(end_reason::io_error);
    }
    _ctx._stats.writes.inc();
    advance(written, now_ns);
  }
  if (!_out_head && _shutdown_after_write && _phase != phase::dead) end(_why);
}

void session::advance(std::size_t written, std::int64_t& now_ns) {
  // `written` bytes of the queue are on the wire (or, on TLS, sealed).
  _ctx._stats.bytes_out.add(written);
  _ctx._stats.queued_bytes.sub(written);
  _queued_bytes -= static_cast<std::uint32_t>(written);
  while (written > 0) {
    std::size_t left = _out_head->frame.size() - _out_offset;
    if (written < left) {
      _out_offset += static_cast<std::uint32_t>(written);
      break;
    }
    written -= left;
    out_node* done = _out_head;
    if (std::int64_t stamp = done->frame.stamp(); stamp != 0) {
      if (now_ns == 0) now_ns = steady_now_ns();  // read once, when the first stamped frame completes
      _ctx._stats.publish_to_write_us.record(now_ns > stamp ? static_cast<std::uint64_t>(now_ns - stamp) / 1000 : 0);
    }
    _out_head = done->next;
    if (!_out_head) _out_tail = nullptr;
    _out_offset = 0;
    _ctx._out_nodes.release(done);
  }
}

void session::on_writable() {
  _writing = false;
  if (_tls_read_wants_write) {
    _tls_read_wants_write = false;
    on_readable();
    if (_phase == phase::dead || _writing) return;
  }
  flush();
}

void session::established() noexcept {
  if (_established || !_opened) return;
  _established = true;
  _ctx._stats.connecting.dec();
}

void session::end(end_reason why) {
  if (_phase == phase::dead) return;
  _phase = phase::dead;
  _ctx._stats.ended[static_cast<std::size_t>(why)].inc();
  if (_opened) {
    _ctx._stats.open.dec();
    established();
  } else {
    _ctx._stats.handshaking.dec();
  }
  _ctx._wheel.cancel(*this);
  _tls_committed = 0;
  drop_unsent();
  // What drop_unsent kept (a partly written head, a TLS record's frames).
  _ctx._stats.queued_bytes.sub(_queued_bytes);
  _queued_bytes = 0;
  while (_out_head) {
    out_node* n = _out_head;
    _out_head = n->next;
    _ctx._out_nodes.release(n);
  }
  _out_tail = nullptr;
  _leftover.reset();
  _message.reset();
  if (_tls_own || _ssl) end_tls(why);
  // Closing takes the socket out of the shard's epoll set; events of this
  // loop turn already taken see the session dead, and it is freed only
  // after the turn (bury).
  ::close(_fd);
  _fd = -1;
  _reading = _writing = false;
  if (_opened) _ctx._handler->on_close(*this);
  _ctx.bury(*this);
}

void session::on_deadline(timer_node& node) {
  session& s = static_cast<session&>(node);
  const auto& opts = s._ctx._opts;
  switch (s._phase) {
    case phase::handshake:
      return s.end(end_reason::handshake_timeout);
    case phase::open:
      if (opts.ping_interval.count() == 0) {
        // No WebSocket ping: the node is the application's (set_timer).
        if (s._ctx._handler) s._ctx._handler->on_timer(s);
        return;
      }
      if (s._awaiting_pong) {
        if (!s._received) return s.end(end_reason::no_pong);  // dead peer or half-open socket
        s._awaiting_pong = false;
      }
      if (s._received) {
        // The peer spoke since the last check: no ping needed yet.
        s._received = false;
        s._ctx.schedule(s, opts.ping_interval);
      } else {
        s.enqueue(ws::make_frame(s._ctx._frames, ws::opcode::ping, {}));
        s._awaiting_pong = true;
        s._ctx.schedule(s, opts.pong_timeout);
      }
      return;
    case phase::closing:
      return s.end(s._why == end_reason::server_closed ? end_reason::close_timeout : s._why);
    case phase::dead:
      return;
  }
}

void session::set_timer(std::chrono::milliseconds delay) {
  assert(_phase == phase::open && _ctx._opts.ping_interval.count() == 0);
  if (_phase != phase::open) return;
  _ctx.schedule(*this, delay);
}

void session::cancel_timer() {
  if (_phase == phase::open) _ctx._wheel.cancel(*this);
}

}  // namespace sb
