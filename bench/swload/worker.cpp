// swload worker: one process, one raw epoll loop (level-triggered,
// non-blocking sockets) driving a share of the fleet. Per connection it keeps
// a 48-byte struct in one vector; input is read into one scratch buffer
// shared by all connections, and only an incomplete frame (or HTTP head) is
// kept per connection, on the heap, until the rest arrives; likewise only
// output the socket did not take. That keeps swload's own memory per client
// far under the 1 KiB the gateway is held to, so one machine can hold both.
//
// Phases: connect (ramped at the worker's share of --rate, at most its share
// of --inflight handshakes outstanding) → report `ready` → wait for the
// parent's `go` (start time) → run the scenario → drain → report `final`
// with the latency histogram, then exit (the kernel closes the sockets).
// In the api scenario the clients only receive: after `go` the worker holds
// until the parent announces a round, counts that round's deliveries until
// its clients have them all (or --drain passes), reports the round, and
// after the last round exits as above. In the reconnect scenario each client
// also keeps the channel's last offset (8 bytes; the epoch, the same for all,
// once per worker): after `go` the worker holds until the parent says `drop`,
// resets the dropped clients' sockets (no close frame) and reports
// `dropped`; on `reconnect` it connects them again, ramped as at the start,
// and subscribes them with recover from their offset, reports `back` once
// all are subscribed again (or failed), and on `settle` drains until every
// client has the final offset.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <set>
#include <string_view>
#include <vector>

#include "swload.hpp"
#include "wire.hpp"

namespace swload {

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

long vm_rss_kib(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/status", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      v = std::atol(line + 6);
      break;
    }
  }
  std::fclose(f);
  return v;
}

std::vector<long> pick_targets(long n, long k) {
  // Floyd's sampling: k distinct values without a permutation of all n.
  k = std::min(k, n);
  std::mt19937_64 rng(20240607);
  std::set<long> picked;
  for (long j = n - k; j < n; ++j) {
    long v = std::uniform_int_distribution<long>(0, j)(rng);
    if (!picked.insert(v).second) picked.insert(j);
  }
  return {picked.begin(), picked.end()};
}

namespace {

constexpr std::int64_t ms_ns = 1'000'000;
constexpr std::int64_t s_ns = 1'000'000'000;
constexpr std::uint32_t parent_tag = 0xffffffff;  // epoll tag of the command pipe
constexpr std::size_t read_chunk = 64 * 1024;      // bytes read per readable event
constexpr std::size_t max_tail = 16 << 20;         // an incomplete frame larger than this is an error
constexpr int publish_batch = 512;                 // publications per loop turn before polling again

enum class state : std::uint8_t { idle, connecting, upgrading, connecting_cf, subscribing, ready, dead };

struct conn {
  std::int64_t started_ns = 0;  // connect() time, for the handshake timeout
  char* tail = nullptr;         // unparsed input (partial frame or HTTP head), malloc'd only when needed
  char* out = nullptr;          // output the socket did not take, malloc'd only when needed
  std::uint32_t tail_len = 0;
  std::uint32_t out_len = 0;
  std::uint32_t last_seq = 0;   // broadcast: last sequence number seen (one publisher)
  std::uint32_t pub_seq = 0;    // publications sent by this connection
  int fd = -1;
  state st = state::idle;
};
static_assert(sizeof(conn) <= 48);

enum class phase : std::uint8_t { connecting, waiting_go, running, draining, reconnecting };

class worker {
 public:
  worker(const options& o, const worker_plan& plan)
      : _o(o),
        _plan(plan),
        _clients(plan.last - plan.first),
        _total(_clients + (plan.publisher ? 1 : 0)),
        _chat(o.scen == scenario::chat),
        _reconnect(o.scen == scenario::reconnect),
        _upgrade(wire::upgrade_request(o.host, o.port, o.path)) {}

  int run();

 private:
  long global(long i) const { return i < _clients ? _plan.first + i : _o.n; }
  bool subscribes(long i) const { return i < _clients; }
  std::string channel_for(long i) const {
    return _chat ? "chat:room" + std::to_string(global(i) / _o.room_size) : _o.channel;
  }

  void start_due(std::int64_t now);
  void start(long i, std::int64_t now);
  void check_timeouts(std::int64_t now);
  void on_event(long i, std::uint32_t events);
  void on_readable(long i);
  void on_upgraded(long i);
  bool on_frame(long i, const wire::frame& f, const char* payload, std::int64_t now);
  void on_text(long i, std::string_view text, std::int64_t now);
  void on_reply(long i, std::string_view line, std::int64_t now);
  bool on_subscribed(long i, std::string_view line, std::int64_t now);
  void on_delivery(long i, std::string_view text, std::int64_t now);
  void on_offset(long i, std::uint64_t offset, bool delivery, std::int64_t now);
  void set_target(std::uint64_t offset, bool dropped_only, std::int64_t now);
  void drop_clients();
  void begin_reconnect(std::uint64_t missed_offset, std::int64_t now);
  void end_reconnect();
  long to_start() const { return _reconnecting ? static_cast<long>(_redo.size()) : _total; }
  long slot(long k) const { return _reconnecting ? static_cast<long>(_redo[static_cast<std::size_t>(k)]) : k; }
  void on_command();
  void begin_run(std::int64_t t0);
  void begin_round(int round, std::int64_t now);
  void end_round();
  void publish_due(std::int64_t now);
  void publish(long i);
  void end_publishing();
  void mark_ready(long i);
  void fail(long i, reason why, int err = 0);
  void send_text(long i, std::string_view text);
  void send_raw(long i, const char* data, std::size_t len);
  void flush(long i);
  void keep_tail(long i, const char* p, std::size_t n);
  void watch(long i, std::uint32_t events);
  void send_report(report_kind kind);
  int next_timeout_ms(std::int64_t now) const;

  const options& _o;
  const worker_plan& _plan;
  const long _clients;  // local indices [0, _clients) are clients; _clients is the publisher, if any
  const long _total;
  const bool _chat;
  const bool _reconnect;
  const std::string _upgrade;

  std::vector<conn> _conns;
  std::vector<std::uint32_t> _room_seq;  // chat: last sequence per (client, publisher's slot in the room)
  std::vector<char> _scratch = std::vector<char>(2 * read_chunk);
  std::vector<char> _frame;              // outgoing frame being built
  int _ep = -1;
  counters _c;
  histogram _hist;

  phase _phase = phase::connecting;
  long _next_start = 0;
  long _inflight = 0;  // connections between connect() and ready
  long _pending = 0;   // connections neither ready nor failed
  double _rate = 0;    // connects per second for this worker
  long _inflight_max = 0;
  std::int64_t _ramp_start = 0;
  std::uint32_t _src_first = 0, _src_count = 1, _src_start = 0;
  sockaddr_in _dst{};

  std::int64_t _t0 = 0, _run_end = 0, _drain_end = 0;
  std::vector<long> _order;              // publishers in publication order (chat: shuffled ready clients)
  std::uint64_t _pub_next = 0, _pub_total = 0;
  double _pub_interval_ns = 0;
  bool _expected_known = false;
  std::vector<std::uint32_t> _room_ready;  // chat: ready members per local room at `go`
  int _round = 0;                          // api: the round being received (0: none)

  // reconnect
  std::vector<std::uint64_t> _offsets;  // per client: the channel's last offset it has
  std::string _epoch;                   // the channel's epoch, from the first subscribe reply
  std::vector<std::uint32_t> _redo;     // the dropped clients (local indices)
  bool _reconnecting = false;           // starting the dropped clients again (slot() maps into _redo)
  std::int64_t _reconnect_ns = 0;
  // Clients whose offset reached _target (dropped ones only, or all): when
  // all _relevant have, the missed publications are all recovered / the
  // live ones all delivered.
  std::uint64_t _target = 0;
  bool _target_dropped_only = false;
  long _reached = 0, _relevant = 0;
};

int worker::run() {
  // One token first: OpenSSL sets up its digest tables on first use, a
  // one-off cost that is not per connection.
  if (_o.proto == protocol::centrifuge) wire::connect_command(_o.secret, "warm-up", "");
  long rss0 = vm_rss_kib(getpid());
  _ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event pev{};
  pev.events = EPOLLIN;
  pev.data.u32 = parent_tag;
  if (_ep < 0 || epoll_ctl(_ep, EPOLL_CTL_ADD, _plan.from_parent, &pev) != 0) return 1;
  // Per-connection memory starts here, so the RSS delta below includes it.
  _conns.resize(static_cast<std::size_t>(_total));
  if (_chat) _room_seq.assign(static_cast<std::size_t>(_clients * _o.room_size), 0);
  if (_reconnect) _offsets.assign(static_cast<std::size_t>(_clients), 0);

  _dst.sin_family = AF_INET;
  _dst.sin_port = htons(static_cast<std::uint16_t>(_o.port));
  inet_pton(AF_INET, _o.host.c_str(), &_dst.sin_addr);
  _src_first = _o.src_first;
  _src_count = _o.src_last - _o.src_first + 1;
  _src_start = static_cast<std::uint32_t>(static_cast<std::uint64_t>(_src_count) * _plan.index / _plan.procs);
  _rate = _o.rate / _plan.procs;
  _inflight_max = std::max<long>(1, _o.inflight / _plan.procs);
  _pending = _total;
  _ramp_start = now_ns();
  _c.first_connect_ns = _ramp_start;

  std::vector<epoll_event> events(1024);
  std::int64_t next_report = _ramp_start + 250 * ms_ns;
  std::int64_t next_timeout_check = _ramp_start + 500 * ms_ns;
  while (true) {
    std::int64_t now = now_ns();
    switch (_phase) {
      case phase::connecting:
      case phase::reconnecting:
        start_due(now);
        if (now >= next_timeout_check) {
          check_timeouts(now);
          next_timeout_check = now + 500 * ms_ns;
        }
        if (_next_start == to_start() && _pending == 0) {
          if (_reconnecting) {
            end_reconnect();
            break;
          }
          _c.all_ready_ns = now;
          _c.rss_delta_kib = vm_rss_kib(getpid()) - rss0;
          send_report(report_kind::ready);
          _phase = phase::waiting_go;
        }
        break;
      case phase::waiting_go:
        break;
      case phase::running:
        if (_o.scen == scenario::api || _reconnect) break;  // holding until the parent's next command
        if (_o.scen == scenario::idle) {
          if (now >= _t0 + static_cast<std::int64_t>(_o.hold * s_ns)) {
            send_report(report_kind::final);
            return 0;
          }
          break;
        }
        publish_due(now);
        if (_pub_next >= _pub_total && now >= _run_end) end_publishing();
        break;
      case phase::draining:
        if (_reconnect) {
          if (_reached < _relevant && now < _drain_end) break;
          // Whatever a live client still misses of the final offset is lost.
          for (long i = 0; i < _clients; ++i) {
            std::uint64_t last = _offsets[static_cast<std::size_t>(i)];
            if (_conns[static_cast<std::size_t>(i)].st == state::ready && last < _target) _c.lost += _target - last;
          }
          _c.expected = _c.delivered - _c.dup + _c.lost;
          send_report(report_kind::final);
          return 0;
        }
        if ((_expected_known && _c.delivered - _c.dup >= _c.expected) || now >= _drain_end) {
          if (_o.scen == scenario::api && _round < api_rounds(_o)) {
            end_round();
            break;
          }
          send_report(report_kind::final);
          return 0;
        }
        break;
    }
    if (now >= next_report) {
      send_report(report_kind::progress);
      next_report = now + 250 * ms_ns;
    }
    int timeout = std::min<int>(next_timeout_ms(now), static_cast<int>((next_report - now + ms_ns - 1) / ms_ns));
    int n = epoll_wait(_ep, events.data(), static_cast<int>(events.size()), std::max(timeout, 0));
    // Commands first: an api round is announced before it is published, and
    // its first deliveries may come in the same batch.
    for (int j = 0; j < n; ++j) {
      if (events[static_cast<std::size_t>(j)].data.u32 == parent_tag) on_command();
    }
    for (int j = 0; j < n; ++j) {
      const auto& ev = events[static_cast<std::size_t>(j)];
      if (ev.data.u32 != parent_tag) on_event(static_cast<long>(ev.data.u32), ev.events);
    }
  }
}

int worker::next_timeout_ms(std::int64_t now) const {
  auto until = [now](std::int64_t t) { return static_cast<int>(std::clamp<std::int64_t>((t - now + ms_ns - 1) / ms_ns, 0, 100)); };
  switch (_phase) {
    case phase::connecting:
    case phase::reconnecting: return _next_start < to_start() && _inflight < _inflight_max ? 1 : 100;
    case phase::waiting_go: return 100;
    case phase::running:
      if (_o.scen == scenario::api || _reconnect) return 100;
      if (_o.scen == scenario::idle) return until(_t0 + static_cast<std::int64_t>(_o.hold * s_ns));
      if (_pub_next < _pub_total) return until(_t0 + static_cast<std::int64_t>(static_cast<double>(_pub_next) * _pub_interval_ns));
      return until(_run_end);
    case phase::draining: return until(_drain_end);
  }
  return 100;
}

// Starts connections while the rate allows and fewer than --inflight
// handshakes are outstanding: a burst of SYNs overflows the listener's
// backlog and turns into 1 s retransmit delays.
void worker::start_due(std::int64_t now) {
  auto allowed = static_cast<long>(static_cast<double>(now - _ramp_start) * _rate / s_ns) + 1;
  while (_next_start < to_start() && _next_start < allowed && _inflight < _inflight_max) start(slot(_next_start++), now);
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
    if (k.st != state::ready && k.st != state::dead && now - k.started_ns > limit) fail(i, r_timeout);
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
    if (size < 12 || std::memcmp(p, "HTTP/1.1 101", 12) != 0) return fail(i, r_upgrade);
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

void worker::on_upgraded(long i) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (_o.proto == protocol::centrifuge) {
    long g = global(i);
    std::string personal = _o.personal.empty() ? std::string() : wire::expand(_o.personal, g);
    k.st = state::connecting_cf;
    send_text(i, wire::connect_command(_o.secret, wire::expand(_o.user, g), personal));
  } else if (subscribes(i)) {
    k.st = state::subscribing;
    send_text(i, "sub " + channel_for(i));
  } else {
    mark_ready(i);
  }
}

// One complete server frame; false when the connection is gone.
bool worker::on_frame(long i, const wire::frame& f, const char* payload, std::int64_t now) {
  // Neither server fragments its small messages; swload does not reassemble.
  if (!f.fin || f.opcode == 0x0 || f.opcode == 0x2) {
    fail(i, r_protocol);
    return false;
  }
  switch (f.opcode) {
    case 0x1:
      on_text(i, std::string_view(payload, f.length), now);
      break;
    case 0x8: {
      const auto* u = reinterpret_cast<const unsigned char*>(payload);
      _c.last_close_code = f.length >= 2 ? static_cast<std::uint32_t>(u[0] << 8 | u[1]) : 1005;
      fail(i, r_closed);
      return false;
    }
    case 0x9: {  // ping → pong with the same payload
      char pong[6 + 125];
      send_raw(i, pong, wire::control_frame(pong, 0xA, std::string_view(payload, std::min<std::uint64_t>(f.length, 125))));
      break;
    }
    default:  // pong
      break;
  }
  return _conns[static_cast<std::size_t>(i)].st != state::dead;
}

void worker::on_text(long i, std::string_view text, std::int64_t now) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (_o.proto == protocol::raw) {
    if (k.st == state::subscribing && text == "ok") return mark_ready(i);
    return on_delivery(i, text, now);
  }
  // Centrifuge: one JSON object per line; look only at what swload needs.
  while (!text.empty() && k.st != state::dead) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line == "{}") {
      send_text(i, "{}");  // protocol ping
    } else if (line.starts_with(R"({"push":)")) {
      if (_reconnect) {
        std::uint64_t offset = 0;
        std::string_view pub = wire::member(wire::member(line, "push"), "pub");
        if (wire::to_u64(wire::member(pub, "offset"), offset)) on_offset(i, offset, true, now);
        continue;
      }
      auto pos = line.find(R"("pub":)");
      if (pos != std::string_view::npos) on_delivery(i, line.substr(pos), now);
    } else if (line.starts_with(R"({"id":)")) {
      on_reply(i, line, now);
    }
  }
}

// id 1: connect, id 2: subscribe, higher: publications.
void worker::on_reply(long i, std::string_view line, std::int64_t now) {
  std::uint64_t id = 0;
  wire::find_number(line, "id", id);
  bool error = line.find(R"("error":)") != std::string_view::npos;
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (id == 1 && k.st == state::connecting_cf) {
    if (error) return fail(i, r_connect_error);
    if (!subscribes(i)) return mark_ready(i);
    k.st = state::subscribing;
    std::string recover;
    if (_reconnecting) {
      recover = R"(,"recover":true,"offset":)" + std::to_string(_offsets[static_cast<std::size_t>(i)]) +
                R"(,"epoch":")" + _epoch + '"';
    }
    send_text(i, R"({"id":2,"subscribe":{"channel":")" + channel_for(i) + '"' + recover + "}}");
  } else if (id == 2 && k.st == state::subscribing) {
    if (error) return fail(i, r_subscribe_error);
    if (_reconnect && !on_subscribed(i, line, now)) return;
    mark_ready(i);
  } else if (error) {
    ++_c.pub_errors;
  }
}

// A publication {"t":<ns>,"s":<seq>,"p":<publisher>}, possibly inside a push.
void worker::on_delivery(long i, std::string_view text, std::int64_t now) {
  std::uint64_t t = 0, s = 0, p = 0;
  if (!wire::find_number(text, "t", t) || !wire::find_number(text, "s", s)) return;
  wire::find_number(text, "p", p);
  ++_c.delivered;
  if (_o.scen == scenario::api && s != static_cast<std::uint64_t>(_round)) {
    ++_c.dup;  // a publication of another round
    return;
  }
  _c.last_delivery_ns = now;
  _hist.add(static_cast<std::uint64_t>(now) > t ? (static_cast<std::uint64_t>(now) - t) / 1000 : 0);
  std::uint32_t* last = &_conns[static_cast<std::size_t>(i)].last_seq;
  if (_chat) {
    // The publisher's slot in the receiver's room; a stray publication counts as a duplicate.
    long room_first = global(i) / _o.room_size * _o.room_size;
    auto slot = static_cast<long>(p) - room_first;
    if (slot < 0 || slot >= _o.room_size) {
      ++_c.dup;
      return;
    }
    last = &_room_seq[static_cast<std::size_t>(i * _o.room_size + slot)];
  }
  if (s <= *last) {
    ++_c.dup;
  } else {
    *last = static_cast<std::uint32_t>(s);
  }
}

// reconnect: a subscribe reply {"id":2,"subscribe":{"recoverable":true,
// "epoch":"…","publications":[{"data":…,"offset":K},…],"recovered":true,
// "offset":K,…}} (offset 0 is left out). The first one sets the client's
// offset; a recovery's publications are deliveries, and its offset is the
// stream's position: whatever the client still misses up to it is lost. A
// client not recovered lost what it missed and starts over at the position.
// Every client recovers with the epoch of the first subscribe (all clients
// subscribed before the drop); another epoch in a reply is counted.
// False when the client failed.
bool worker::on_subscribed(long i, std::string_view line, std::int64_t now) {
  std::string_view sub = wire::member(line, "subscribe"), epoch;
  if (wire::member(sub, "recoverable") != "true" || !wire::to_str(wire::member(sub, "epoch"), epoch)) {
    fail(i, r_unrecoverable);
    return false;
  }
  if (_epoch.empty()) _epoch = epoch;
  else if (epoch != _epoch) ++_c.epoch_changes;
  std::uint64_t offset = 0;
  wire::to_u64(wire::member(sub, "offset"), offset);
  std::uint64_t& last = _offsets[static_cast<std::size_t>(i)];
  if (!_reconnecting) {
    last = offset;
    return true;
  }
  if (wire::member(sub, "recovered") != "true") {
    ++_c.not_recovered;
    if (_target > last) _c.lost += _target - last;
    last = offset;
    return true;
  }
  std::string_view pubs = wire::member(sub, "publications"), pub;
  for (std::size_t pos = 0; wire::next_element(pubs, pos, pub);) {
    std::uint64_t o = 0;
    if (!wire::to_u64(wire::member(pub, "offset"), o)) continue;
    ++_c.recovered;
    on_offset(i, o, true, now);
  }
  on_offset(i, offset, false, now);
  return true;
}

// reconnect: client i has offset `offset`, in a publication (delivery) or
// as a position. The next offset is due; an older one is a duplicate, a
// later one means the ones between are lost.
void worker::on_offset(long i, std::uint64_t offset, bool delivery, std::int64_t now) {
  std::uint64_t& last = _offsets[static_cast<std::size_t>(i)];
  if (delivery) {
    ++_c.delivered;
    _c.last_delivery_ns = now;
  }
  if (offset <= last) {
    if (delivery) ++_c.dup;
    return;
  }
  _c.lost += offset - last - (delivery ? 1 : 0);
  bool crossed = last < _target && offset >= _target;
  last = offset;
  if (crossed && (!_target_dropped_only || dropped_client(_o.drop, global(i))) && ++_reached == _relevant &&
      _target_dropped_only) {
    _c.all_recovered_ns = now;
  }
}

// reconnect: from now on count the clients (the dropped ones, or all live
// ones) whose offset reaches `offset`.
void worker::set_target(std::uint64_t offset, bool dropped_only, std::int64_t now) {
  _target = offset;
  _target_dropped_only = dropped_only;
  _reached = _relevant = 0;
  for (long i = 0; i < _clients; ++i) {
    auto st = _conns[static_cast<std::size_t>(i)].st;
    if (dropped_only ? st == state::dead || !dropped_client(_o.drop, global(i)) : st != state::ready) continue;
    ++_relevant;
    std::uint64_t last = _offsets[static_cast<std::size_t>(i)];
    if (last >= offset) ++_reached;
    else if (dropped_only) _c.missed += offset - last;
  }
  if (dropped_only && _reached == _relevant) _c.all_recovered_ns = now;
}

// reconnect: resets the connections of the dropped clients at once (RST,
// no close frame: SO_LINGER 0), keeping their offsets.
void worker::drop_clients() {
  for (long i = 0; i < _clients; ++i) {
    conn& k = _conns[static_cast<std::size_t>(i)];
    if (k.st != state::ready || !dropped_client(_o.drop, global(i))) continue;
    linger lg{1, 0};
    setsockopt(k.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    ::close(k.fd);
    std::free(k.tail);
    std::free(k.out);
    k = conn{};  // state::idle until started again
    _redo.push_back(static_cast<std::uint32_t>(i));
    ++_c.dropped;
  }
  send_report(report_kind::dropped);
}

// reconnect: the dropped clients connect again, ramped like the first
// connects; they are all recovered once their offsets reach missed_offset.
void worker::begin_reconnect(std::uint64_t missed_offset, std::int64_t now) {
  _reconnecting = true;
  _next_start = 0;
  _inflight = 0;
  _pending = static_cast<long>(_redo.size());
  _ramp_start = _reconnect_ns = now;
  set_target(missed_offset, true, now);
  _phase = phase::reconnecting;
}

void worker::end_reconnect() {
  _reconnecting = false;
  send_report(report_kind::back);
  _phase = phase::running;
}

void worker::on_command() {
  command cmd{};
  ssize_t r = ::read(_plan.from_parent, &cmd, sizeof(cmd));
  if (r == 0) _exit(1);  // the parent is gone
  if (r != static_cast<ssize_t>(sizeof(cmd))) return;
  if (cmd.kind == command_kind::go && _phase == phase::waiting_go) {
    begin_run(cmd.value);
  } else if (cmd.kind == command_kind::expect && !_plan.publisher) {
    _c.expected = static_cast<std::uint64_t>(cmd.value) * _c.ready;
    _expected_known = true;
  } else if (cmd.kind == command_kind::round && _phase == phase::running && _o.scen == scenario::api) {
    begin_round(static_cast<int>(cmd.value), now_ns());
  } else if (_reconnect && _phase == phase::running) {
    auto value = static_cast<std::uint64_t>(cmd.value);
    std::int64_t now = now_ns();
    if (cmd.kind == command_kind::drop) {
      drop_clients();
    } else if (cmd.kind == command_kind::reconnect) {
      begin_reconnect(value, now);
    } else if (cmd.kind == command_kind::settle) {
      set_target(value, false, now);
      _drain_end = now + static_cast<std::int64_t>(_o.drain * s_ns);
      _phase = phase::draining;
    }
  }
}

// api: a round starts; the counters and the histogram start over, and the
// worker works out what its ready clients are owed.
void worker::begin_round(int round, std::int64_t now) {
  _round = round;
  _c.delivered = _c.dup = 0;
  _c.last_delivery_ns = 0;
  _hist = histogram{};
  _c.expected = 0;
  if (round == broadcast_round) {
    _c.expected = _c.ready;
  } else {
    for (long g : pick_targets(_o.n, _o.targets)) {
      if (g >= _plan.first && g < _plan.last && _conns[static_cast<std::size_t>(g - _plan.first)].st == state::ready) {
        ++_c.expected;
      }
    }
  }
  _expected_known = true;
  _drain_end = now + static_cast<std::int64_t>(_o.drain * s_ns);
  _phase = phase::draining;
}

void worker::end_round() {
  send_report(report_kind::round);
  _expected_known = false;
  _phase = phase::running;
}

void worker::begin_run(std::int64_t t0) {
  _t0 = t0;
  _run_end = t0 + static_cast<std::int64_t>(_o.duration * s_ns);
  _drain_end = _run_end + static_cast<std::int64_t>(_o.drain * s_ns);
  _phase = phase::running;
  if (_o.scen == scenario::broadcast && _plan.publisher) {
    _order.push_back(_clients);
    _pub_total = static_cast<std::uint64_t>(std::ceil(_o.duration * _o.pub_rate));
    _pub_interval_ns = s_ns / _o.pub_rate;
  } else if (_chat) {
    // Every ready client publishes msg_rate per second; the publications of
    // all clients are spread evenly over time, in a shuffled order so that
    // room members do not publish back to back.
    _room_ready.assign(static_cast<std::size_t>((_clients + _o.room_size - 1) / _o.room_size), 0);
    for (long i = 0; i < _clients; ++i) {
      if (_conns[static_cast<std::size_t>(i)].st != state::ready) continue;
      _order.push_back(i);
      ++_room_ready[static_cast<std::size_t>(i / _o.room_size)];
    }
    std::shuffle(_order.begin(), _order.end(), std::mt19937(static_cast<unsigned>(_plan.index) + 1));
    _pub_total = static_cast<std::uint64_t>(std::llround(_o.duration * _o.msg_rate * static_cast<double>(_order.size())));
    _pub_interval_ns = _order.empty() ? 0 : s_ns / (_o.msg_rate * static_cast<double>(_order.size()));
  }
}

void worker::publish_due(std::int64_t now) {
  for (int b = 0; b < publish_batch && _pub_next < _pub_total; ++b) {
    if (_t0 + static_cast<std::int64_t>(static_cast<double>(_pub_next) * _pub_interval_ns) > now) return;
    publish(_order[_pub_next % _order.size()]);
    ++_pub_next;
  }
}

void worker::publish(long i) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (k.st != state::ready) return;
  std::uint32_t seq = ++k.pub_seq;
  char data[96];
  std::snprintf(data, sizeof(data), R"({"t":%lld,"s":%u,"p":%ld})", static_cast<long long>(now_ns()), seq, global(i));
  std::string ch = channel_for(i);
  char msg[512];
  if (_o.proto == protocol::centrifuge) {
    std::snprintf(msg, sizeof(msg), R"({"id":%u,"publish":{"channel":"%s","data":%s}})", seq + 2, ch.c_str(), data);
  } else {
    std::snprintf(msg, sizeof(msg), "pub %s %s", ch.c_str(), data);
  }
  ++_c.pubs;
  send_text(i, msg);
}

// Publishing is over: work out the deliveries this worker's clients are owed.
void worker::end_publishing() {
  _phase = phase::draining;
  if (_o.scen == scenario::broadcast && _plan.publisher) {
    _c.expected = _c.pubs * _c.ready;
    _expected_known = true;
    send_report(report_kind::published);  // the parent tells the other workers
  } else if (_chat) {
    // Rooms never straddle workers, so every member of a local room is local.
    _c.expected = 0;
    for (long i : _order) {
      _c.expected += static_cast<std::uint64_t>(_conns[static_cast<std::size_t>(i)].pub_seq) *
                     _room_ready[static_cast<std::size_t>(i / _o.room_size)];
    }
    _expected_known = true;
  }
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
  } else if (i < _clients) {
    ++_c.ready;
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

void worker::send_report(report_kind kind) {
  report r{kind, static_cast<std::uint32_t>(_plan.index), _c};
  // Small reports are atomic pipe writes; the final one (with the
  // histogram) is larger and the parent reads it whole.
  auto write_all = [this](const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(_plan.to_parent, c, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) _exit(1);
      c += w;
      n -= static_cast<std::size_t>(w);
    }
  };
  write_all(&r, sizeof(r));
  if (kind == report_kind::round || kind == report_kind::final) write_all(&_hist, sizeof(_hist));
}

}  // namespace

int run_worker(const options& o, const worker_plan& plan) {
  worker w(o, plan);
  return w.run();
}

}  // namespace swload
