// swload worker, connection I/O: connects (ramped, source addresses
// rotated, bounded handshakes), the handshake timeout, reading into the
// shared scratch buffer and keeping only an incomplete tail, the HTTP
// upgrade answer, server WebSocket frames (close, ping), writes and what the
// socket did not take, and a connection's end. The worker class is in
// worker.hpp; what the frames' text means is worker_protocol.cpp's.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "worker.hpp"

namespace swload::in_worker {

// Starts connections while the rate allows and fewer than --inflight
// handshakes are outstanding: a burst of SYNs overflows the listener's
// backlog and turns into 1 s retransmit delays.
void worker::start_due(std::int64_t now) {
  start_retries(now);
  auto allowed = static_cast<long>(static_cast<double>(now - _ramp_start) * _rate / s_ns) + 1;
  while (_next_start < to_start() && _next_start < allowed && _inflight < _inflight_max)
    start(slot(_next_start++), now);
}

void worker::start(long i, std::int64_t now) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  k.st = state::connecting;
  k.started_ns = now;
  ++_inflight;
  ++_c.started;
  k.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (k.fd < 0) return fail(i, r_connect, errno);
  int one = 1;
  // The source port is picked at connect() time, per destination, so each
  // source address offers the whole ephemeral range to this port.
  setsockopt(k.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  setsockopt(k.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(_src_first + (_src_start + static_cast<std::uint32_t>(i)) % _src_count);
  if (::bind(k.fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) return fail(i, r_connect, errno);
  if (::connect(k.fd, reinterpret_cast<sockaddr*>(&_dst), sizeof(_dst)) != 0 && errno != EINPROGRESS) {
    return fail(i, r_connect, errno);
  }
  epoll_event ev{};
  ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
  ev.data.u32 = static_cast<std::uint32_t>(i);
  if (epoll_ctl(_ep, EPOLL_CTL_ADD, k.fd, &ev) != 0) fail(i, r_connect, errno);
}

void worker::check_timeouts(std::int64_t now) {
  auto limit = static_cast<std::int64_t>(_o.handshake_timeout * s_ns);
  for (long j = 0; j < _next_start; ++j) {
    long i = slot(j);
    const conn& k = _conns[static_cast<std::size_t>(i)];
    // idle: waiting for its Retry-After (or dropped, not started again yet).
    if (k.st != state::ready && k.st != state::dead && k.st != state::idle && now - k.started_ns > limit) {
      fail(i, r_timeout);
    }
  }
}

void worker::watch(long i, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u32 = static_cast<std::uint32_t>(i);
  epoll_ctl(_ep, EPOLL_CTL_MOD, _conns[static_cast<std::size_t>(i)].fd, &ev);
}

void worker::on_event(long i, std::uint32_t events) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  // idle: dropped (reconnect) earlier in this batch of events, not started again yet.
  if (k.st == state::dead || k.st == state::idle) return;
  if (k.st == state::connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(k.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return fail(i, r_connect, err);
    if (!(events & EPOLLOUT)) return;
    k.st = state::upgrading;
    watch(i, EPOLLIN | EPOLLRDHUP);
    send_raw(i, _upgrade.data(), _upgrade.size());
    return;  // level-triggered: input already there is reported again
  }
  if (events & EPOLLOUT) flush(i);
  if (k.st != state::dead && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) on_readable(i);
}

void worker::on_readable(long i) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  std::size_t have = k.tail_len;
  if (_scratch.size() < have + read_chunk) _scratch.resize(have + read_chunk);
  if (have) std::memcpy(_scratch.data(), k.tail, have);
  ssize_t r = ::read(k.fd, _scratch.data() + have, _scratch.size() - have);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;  // the tail stays as it was
  if (r <= 0) return fail(i, r_closed, r < 0 ? errno : 0);
  std::free(k.tail);
  k.tail = nullptr;
  k.tail_len = 0;
  std::int64_t now = now_ns();
  const char* p = _scratch.data();
  std::size_t size = have + static_cast<std::size_t>(r), used = 0;
  if (k.st == state::upgrading) {
    auto end = std::string_view(p, size).find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (size > 16384) return fail(i, r_upgrade);
      return keep_tail(i, p, size);
    }
    if (size >= 12 && std::memcmp(p, "HTTP/1.1 503", 12) == 0) return retry_later(i, std::string_view(p, end), now);
    if (size < 12 || std::memcmp(p, "HTTP/1.1 101", 12) != 0) return fail(i, r_upgrade);
    if (_o.deflate && std::string_view(p, end).find("\r\nSec-WebSocket-Extensions: permessage-deflate") ==
                          std::string_view::npos) {
      return fail(i, r_upgrade);  // asked for compression and did not get it
    }
    used = end + 4;
    on_upgraded(i);
  }
  while (k.st != state::dead && used < size) {
    wire::frame f;
    if (!wire::parse_header(reinterpret_cast<const unsigned char*>(p + used), size - used, f) ||
        f.header + f.length > size - used) {
      break;
    }
    const char* payload = p + used + f.header;
    used += f.header + f.length;
    if (!on_frame(i, f, payload, now)) return;
  }
  if (k.st != state::dead && used < size) keep_tail(i, p + used, size - used);
}

void worker::keep_tail(long i, const char* p, std::size_t n) {
  if (n > max_tail) return fail(i, r_protocol);
  conn& k = _conns[static_cast<std::size_t>(i)];
  k.tail = static_cast<char*>(std::malloc(n));
  std::memcpy(k.tail, p, n);
  k.tail_len = static_cast<std::uint32_t>(n);
}

// One complete server frame; false when the connection is gone.
bool worker::on_frame(long i, const wire::frame& f, const char* payload, std::int64_t now) {
  // Neither server fragments its small messages; swload does not reassemble.
  if (!f.fin || f.opcode == 0x0 || f.opcode == 0x2) {
    fail(i, r_protocol);
    return false;
  }
  switch (f.opcode) {
    case 0x1: {
      std::string_view text(payload, f.length);
      _c.wire_bytes += f.length;
      if (f.rsv1) {
        ++_c.compressed;
        if (!inflate(payload, f.length, text)) {
          fail(i, r_protocol);
          return false;
        }
      }
      _c.text_bytes += text.size();
      on_text(i, text, now);
      break;
    }
    case 0x8: {
      const auto* u = reinterpret_cast<const unsigned char*>(payload);
      _c.last_close_code = f.length >= 2 ? static_cast<std::uint32_t>(u[0] << 8 | u[1]) : 1005;
      fail(i, r_closed);
      return false;
    }
    case 0x9: {  // ping → pong with the same payload
      char pong[6 + 125];
      send_raw(i, pong,
               wire::control_frame(pong, 0xA, std::string_view(payload, std::min<std::uint64_t>(f.length, 125))));
      break;
    }
    default:  // pong
      break;
  }
  return _conns[static_cast<std::size_t>(i)].st != state::dead;
}

// A compressed message's payload inflated (RFC 7692 7.2.2: the 00 00 FF FF
// tail the sender removed goes back first); false on bad data.
bool worker::inflate(const char* payload, std::size_t n, std::string_view& out) {
  if (!_z) {
    _z = {new z_stream_s{}, [](z_stream_s* z) {
            inflateEnd(z);
            delete z;
          }};
    if (inflateInit2(_z.get(), -15) != Z_OK) return false;
  } else {
    inflateReset(_z.get());
  }
  static const unsigned char tail[4] = {0x00, 0x00, 0xFF, 0xFF};
  if (_inflated.size() < 4 * n + 4096) _inflated.resize(4 * n + 4096);
  std::size_t produced = 0;
  for (int part = 0; part < 2; ++part) {
    _z->next_in = part == 0 ? reinterpret_cast<Bytef*>(const_cast<char*>(payload)) : const_cast<Bytef*>(tail);
    _z->avail_in = static_cast<uInt>(part == 0 ? n : sizeof(tail));
    do {
      if (produced == _inflated.size()) _inflated.resize(2 * _inflated.size());
      _z->next_out = reinterpret_cast<Bytef*>(_inflated.data() + produced);
      _z->avail_out = static_cast<uInt>(_inflated.size() - produced);
      int rc = ::inflate(_z.get(), Z_SYNC_FLUSH);
      produced = _inflated.size() - _z->avail_out;
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
    } while (_z->avail_in > 0 || _z->avail_out == 0);
  }
  out = std::string_view(_inflated.data(), produced);
  return true;
}

void worker::mark_ready(long i) {
  _conns[static_cast<std::size_t>(i)].st = state::ready;
  --_inflight;
  --_pending;
  if (_reconnecting) {
    std::int64_t now = now_ns();
    ++_c.back;
    _c.all_back_ns = now;
    _hist.add(static_cast<std::uint64_t>(now - _reconnect_ns) / 1000);
    _attempt_hist.add(static_cast<std::uint64_t>(now - _conns[static_cast<std::size_t>(i)].started_ns) / 1000);
  } else if (i < _clients) {
    ++_c.ready;
  }
}

namespace {
bool later(const retry& a, const retry& b) { return a.due_ns > b.due_ns; }
}  // namespace

// The server's admission refused the upgrade (503): the connection closes
// and starts again after the Retry-After it was given (1 s if none) and a
// random fraction of a second, as a well-behaved client would; it stays
// pending, so the run waits for it.
void worker::retry_later(long i, std::string_view head, std::int64_t now) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  long seconds = 1;
  auto at = head.find("\r\nRetry-After:");
  if (at != std::string_view::npos) {
    long v = std::strtol(head.data() + at + 14, nullptr, 10);
    if (v > 0 && v < 3600) seconds = v;
  }
  ::close(k.fd);
  std::free(k.tail);
  std::free(k.out);
  k = conn{};  // idle until started again
  --_inflight;
  ++_c.refused;
  // Retry-After counts whole seconds: a fraction of one added here keeps
  // the clients refused in one instant from all coming back in another.
  _retry_jitter = _retry_jitter * 6364136223846793005ull + 1442695040888963407ull;
  std::int64_t fraction = static_cast<std::int64_t>((_retry_jitter >> 33) % 1000) * ms_ns;
  _retries.push_back({now + seconds * s_ns + fraction, static_cast<std::uint32_t>(i)});
  std::push_heap(_retries.begin(), _retries.end(), later);
}

void worker::start_retries(std::int64_t now) {
  while (!_retries.empty() && _retries.front().due_ns <= now && _inflight < _inflight_max) {
    std::pop_heap(_retries.begin(), _retries.end(), later);
    long i = _retries.back().i;
    _retries.pop_back();
    start(i, now);
  }
}

void worker::fail(long i, reason why, int err) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (k.st == state::dead) return;
  if (k.st != state::ready) {
    --_inflight;
    --_pending;
    if (_reconnecting) ++_c.back_failed;
  }
  ++_c.failed[why];
  if (err) _c.last_errno = err;
  if (k.fd >= 0) ::close(k.fd);  // also leaves the epoll set
  std::free(k.tail);
  std::free(k.out);
  k = conn{};
  k.st = state::dead;
}

void worker::send_text(long i, std::string_view text) {
  if (_frame.size() < text.size() + wire::max_client_header) _frame.resize(text.size() + wire::max_client_header);
  send_raw(i, _frame.data(), wire::text_frame(_frame.data(), text));
}

// Writes at once when nothing is queued; what the socket does not take waits
// in the connection's out buffer until EPOLLOUT.
void worker::send_raw(long i, const char* data, std::size_t len) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (k.st == state::dead) return;
  if (k.out_len == 0) {
    ssize_t w = ::send(k.fd, data, len, MSG_NOSIGNAL);
    if (w == static_cast<ssize_t>(len)) return;
    if (w < 0) {
      if (errno != EAGAIN) return fail(i, r_closed, errno);
      w = 0;
    }
    data += w;
    len -= static_cast<std::size_t>(w);
    watch(i, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
  }
  k.out = static_cast<char*>(std::realloc(k.out, k.out_len + len));
  std::memcpy(k.out + k.out_len, data, len);
  k.out_len += static_cast<std::uint32_t>(len);
}

void worker::flush(long i) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (k.out_len == 0) return;
  ssize_t w = ::send(k.fd, k.out, k.out_len, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno != EAGAIN) fail(i, r_closed, errno);
    return;
  }
  k.out_len -= static_cast<std::uint32_t>(w);
  if (k.out_len > 0) {
    std::memmove(k.out, k.out + w, k.out_len);
    return;
  }
  std::free(k.out);
  k.out = nullptr;
  watch(i, EPOLLIN | EPOLLRDHUP);
}

}  // namespace swload::in_worker
