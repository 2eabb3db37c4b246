// A session's TLS transport (issue 15, part 1): the handshake on OpenSSL,
// then, for TLS 1.3, our own record layer (session/tls_record.hpp) so the
// SSL object can be freed; TLS 1.2 stays on OpenSSL's SSL_read/SSL_write.
// session.cpp calls in here wherever a plain session would touch its socket.

#include "session/session.hpp"

#include <openssl/crypto.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace sb {

namespace {
constexpr std::size_t records_per_write = 4;  // sealed records gathered into one send()
constexpr std::size_t sealed_max = tls::max_record + tls::record_overhead;
constexpr std::size_t in_capacity = 4 * (tls::max_ciphertext + tls::record_header);
constexpr std::uint8_t handshake_key_update = 24;
constexpr std::uint8_t alert_close_notify = 0;
constexpr std::uint8_t alert_user_canceled = 90;
}  // namespace

/// A handed-off TLS 1.3 connection: its keys, a record that arrived only in
/// part, and sealed bytes the socket did not take. Idle, both are empty.
struct session::tls_own : tls::keys {
  frame_ref in_partial;   // ciphertext not opened yet (an incomplete record, or records past the read's room)
  frame_ref out_pending;  // sealed records not yet on the wire: they go before anything else
  std::uint32_t out_offset = 0;
};

bool session::read_some(std::uint8_t* buf, std::size_t space, std::size_t& n) {
  if (_tls_own) return read_records(buf, space, n);
  if (!_ssl) {
    switch (recv_some(buf, space, n)) {
      case io::done: return true;
      case io::blocked: return false;
      case io::eof: end(end_reason::eof); return false;
      case io::failed: end(end_reason::io_error); return false;
    }
  }
  if (!_tls_up) {
    if (!tls_established()) return false;
    if (_tls_own) return read_records(buf, space, n);
  }
  switch (tls::read(_ssl, buf, space, n)) {
    case tls::io::done: return true;
    case tls::io::want_read: return false;
    case tls::io::want_write: _tls_read_wants_write = true; return false;
    case tls::io::closed: end(end_reason::eof); return false;
    case tls::io::failed: break;
  }
  end(end_reason::tls_error);
  return false;
}

bool session::tls_established() {
  switch (tls::handshake(_ssl)) {
    case tls::io::done: break;
    case tls::io::want_read: return false;
    case tls::io::want_write: _tls_read_wants_write = true; return false;
    case tls::io::closed: end(end_reason::eof); return false;
    case tls::io::failed:
      // Plain HTTP or a plain WebSocket upgrade to the TLS port, a broken
      // ClientHello, no shared cipher, an alert: the connection ends, and
      // nothing is answered in the clear.
      end(end_reason::tls_error);
      return false;
  }
  _tls_up = true;
  bool resumed = false;
  (void)tls::established(_ssl, resumed);
  _ctx._stats.tls_handshakes.inc();
  if (resumed) _ctx._stats.tls_resumed.inc();
  if (!_ctx._tls_in) {
    _ctx._tls_plain.reset(new std::uint8_t[tls::max_record]);
    _ctx._tls_out.reset(new std::uint8_t[records_per_write * sealed_max]);
    _ctx._tls_in.reset(new std::uint8_t[in_capacity]);
  }
  auto* own = new (std::nothrow) tls_own;
  if (own && tls::handoff(_ssl, *own)) {
    tls::close(_ssl, false);  // frees OpenSSL's state; the socket stays ours
    _own = own;
    _tls_own = true;
  } else if (own) {
    OPENSSL_cleanse(static_cast<tls::keys*>(own), sizeof(tls::keys));  // a handoff refused half way may hold keys
    delete own;  // TLS 1.2: OpenSSL keeps the connection
  }
  return true;
}

bool session::read_records(std::uint8_t* buf, std::size_t space, std::size_t& n) {
  tls_own& t = *_own;
  std::uint8_t* in = _ctx._tls_in.get();
  n = 0;
  std::size_t have = 0;
  if (t.in_partial) {
    have = t.in_partial.size();
    std::memcpy(in, t.in_partial.data(), have);
    t.in_partial.reset();
  }
  for (;;) {
    std::size_t got = 0;
    const io r = have < in_capacity ? recv_some(in + have, in_capacity - have, got) : io::done;
    const bool blocked = r == io::blocked;
    const bool eof = r == io::eof;
    if (r == io::failed) {
      end(end_reason::io_error);
      return false;
    }
    have += got;
    std::size_t pos = 0;
    bool peer_closed = false;
    // Open whole records while a record's plaintext still fits.
    while (!peer_closed && space - n >= tls::max_ciphertext) {
      tls::opened o = tls::open(t, in + pos, have - pos, buf + n);
      if (o.what == tls::opened::need_more) break;
      if (o.what != tls::opened::ok) {
        end(end_reason::tls_error);  // garbage, a record too long, or one that does not decrypt
        return false;
      }
      pos += o.consumed;
      const std::uint8_t* p = buf + n;
      if (o.type == tls::type_application_data) {
        n += o.len;
      } else if (o.type == tls::type_alert && o.len == 2 && (p[1] == alert_close_notify || p[1] == alert_user_canceled)) {
        peer_closed = p[1] == alert_close_notify;
      } else if (o.type == tls::type_handshake && o.len == 5 && p[0] == handshake_key_update && p[1] == 0 &&
                 p[2] == 0 && p[3] == 1 && p[4] <= 1) {
        // KeyUpdate (RFC 8446 4.6.3): the client's next records use its
        // next key; if it asks, ours follows before our next record.
        if (!tls::update(t, t.read)) {
          end(end_reason::tls_error);
          return false;
        }
        if (p[4] == 1 && !t.key_update_due) {
          t.key_update_due = true;
          mark_dirty();
        }
      } else {
        end(end_reason::tls_error);  // another alert, a handshake message we do not take, an unknown type
        return false;
      }
    }
    if (n == 0 && (peer_closed || eof)) {
      end(end_reason::eof);
      return false;
    }
    if (n == 0 && !blocked && (got > 0 || pos > 0)) {
      // Bytes came but no plaintext yet (a part of a record, a KeyUpdate):
      // read on until the socket is empty, the unopened rest first.
      std::memmove(in, in + pos, have - pos);
      have -= pos;
      continue;
    }
    // Kept for the next call (or the next readable event); pooled only
    // while a record is incomplete, so an idle session holds nothing.
    if (pos < have) t.in_partial = _ctx._frames.make_copy(in + pos, have - pos);
    return n > 0;
  }
}

std::size_t session::gather_record(std::uint8_t* dst) const noexcept {
  // A record's plaintext: the queue from the head's unsent part, at most
  // max_record bytes, copied (next to encrypting them, the copy is small).
  std::size_t len = 0;
  std::size_t offset = _out_offset;
  for (out_node* n = _out_head; n && len < tls::max_record; n = n->next) {
    std::size_t take = std::min(n->frame.size() - offset, tls::max_record - len);
    std::memcpy(dst + len, n->frame.data() + offset, take);
    len += take;
    offset = 0;
  }
  return len;
}

void session::flush_tls() {
  // TLS 1.2 on OpenSSL: one record per SSL_write, the queue's bytes
  // gathered into the shard's buffer. A record the socket did not take
  // stays with OpenSSL; the next call gathers the same bytes again from
  // the same place, as OpenSSL requires.
  std::uint8_t* buf = _ctx._tls_plain.get();
  std::int64_t now_ns = 0;
  while (_out_head && _phase != phase::dead) {
    const std::size_t len = gather_record(buf);
    std::size_t written = 0;
    switch (tls::write(_ssl, buf, len, written)) {
      case tls::io::done: break;
      case tls::io::want_write:
        _tls_committed = static_cast<std::uint16_t>(len);
        return wait_writable();
      case tls::io::want_read:
        _tls_committed = static_cast<std::uint16_t>(len);
        _tls_write_wants_read = true;  // on_readable tries again
        return;
      case tls::io::closed: return end(end_reason::eof);
      case tls::io::failed: return end(end_reason::io_error);
    }
    _tls_committed = 0;
    _ctx._stats.writes.inc();
    advance(written, now_ns);
  }
  if (!_out_head && _shutdown_after_write && _phase != phase::dead) end(_why);
}

void session::flush_own() {
  // TLS 1.3 on our record layer: up to four records sealed from the queue
  // into the shard's buffer and sent with one send(). Sealed bytes are
  // committed (their sequence numbers are spent): what the socket does not
  // take waits in out_pending and goes first next time.
  tls_own& t = *_own;
  std::int64_t now_ns = 0;
  for (;;) {
    if (t.out_pending) {
      const std::size_t left = t.out_pending.size() - t.out_offset;
      const iovec iov{const_cast<std::uint8_t*>(t.out_pending.data()) + t.out_offset, left};
      std::size_t w = 0;
      const io r = send_some(&iov, 1, w);
      if (r == io::blocked) return wait_writable();
      if (r != io::done) return end(end_reason::io_error);
      _ctx._stats.writes.inc();
      if (w < left) {
        t.out_offset += static_cast<std::uint32_t>(w);
        return wait_writable();
      }
      t.out_pending.reset();
      t.out_offset = 0;
    }
    if ((!_out_head && !t.key_update_due) || _phase == phase::dead) break;
    std::uint8_t* out = _ctx._tls_out.get();
    std::uint8_t* plain = _ctx._tls_plain.get();
    std::size_t olen = 0;
    if (t.key_update_due) {
      static constexpr std::uint8_t key_update[5] = {handshake_key_update, 0, 0, 1, 0};  // update_not_requested
      std::size_t r = tls::seal(t, tls::type_handshake, key_update, sizeof(key_update), out);
      if (r == 0 || !tls::update(t, t.write)) return end(end_reason::tls_error);
      olen += r;
      t.key_update_due = false;
    }
    for (std::size_t rec = 0; rec < records_per_write && _out_head; ++rec) {
      const std::size_t len = gather_record(plain);
      std::size_t r = tls::seal(t, tls::type_application_data, plain, len, out + olen);
      if (r == 0) return end(end_reason::tls_error);
      olen += r;
      advance(len, now_ns);
    }
    const iovec iov{out, olen};
    std::size_t w = 0;
    const io r = send_some(&iov, 1, w);
    if (r == io::blocked) {
      w = 0;
    } else if (r != io::done) {
      return end(end_reason::io_error);
    } else {
      _ctx._stats.writes.inc();
    }
    if (w < olen) {
      t.out_pending = _ctx._frames.make_copy(out + w, olen - w);
      t.out_offset = 0;
      return wait_writable();
    }
  }
  if (!_out_head && _shutdown_after_write && _phase != phase::dead) end(_why);
}

void session::end_tls(end_reason why) {
  // close_notify where the connection ended in order (not after a TLS or
  // socket error, nor to a peer that already closed TCP).
  const bool orderly = why != end_reason::io_error && why != end_reason::tls_error && why != end_reason::eof;
  if (_tls_own) {
    tls_own* t = _own;
    if (orderly && !t->out_pending) {
      static constexpr std::uint8_t close_notify[2] = {1, alert_close_notify};
      std::uint8_t rec[2 + tls::record_overhead];
      if (std::size_t r = tls::seal(*t, tls::type_alert, close_notify, sizeof(close_notify), rec)) {
        (void)::send(_fd, rec, r, MSG_NOSIGNAL | MSG_DONTWAIT);  // best effort, never waited for
      }
    }
    OPENSSL_cleanse(static_cast<tls::keys*>(t), sizeof(tls::keys));
    delete t;
    _own = nullptr;
    _tls_own = false;
  } else {
    tls::close(_ssl, orderly);
    _ssl = nullptr;
  }
}

}  // namespace sb
