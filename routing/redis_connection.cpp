#include "routing/redis_connection.hpp"

#include "pool/frame_buffer.hpp"  // steady_now_ns

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <charconv>
#include <random>
#include <stdexcept>

namespace sb::redis {

namespace asio = boost::asio;

// ---------------------------------------------------------------------------
// endpoints

endpoint parse_endpoint(std::string_view url) {
  endpoint ep;
  std::string_view rest = url;
  if (rest.substr(0, 8) == "redis://") rest.remove_prefix(8);
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    // "user:password" or ":password" (Redis 6 ACL users are not supported: the user part must be empty).
    auto colon = cred.find(':');
    ep.password = std::string(colon == std::string_view::npos ? cred : cred.substr(colon + 1));
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      auto r = std::from_chars(db.data(), db.data() + db.size(), ep.db);
      if (r.ec != std::errc() || r.ptr != db.data() + db.size()) {
        throw std::invalid_argument("bad database number '" + std::string(db) + "'");
      }
    }
  }
  std::string_view host = rest, port;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    auto close = rest.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("unterminated [ in host");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty()) throw std::invalid_argument("no host");
  ep.host = std::string(host);
  if (!port.empty()) {
    unsigned p = 0;
    auto r = std::from_chars(port.data(), port.data() + port.size(), p);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || p == 0 || p > 65535) {
      throw std::invalid_argument("bad port '" + std::string(port) + "'");
    }
    ep.port = static_cast<std::uint16_t>(p);
  }
  ep.url = "redis://" + std::string(ep.password.empty() ? "" : ":***@") + std::string(rest) +
           (ep.db ? "/" + std::to_string(ep.db) : "");
  return ep;
}

void resolve(endpoint& ep) {
  asio::io_context io;
  asio::ip::tcp::resolver r(io);
  boost::system::error_code ec;
  auto results = r.resolve(ep.host, std::to_string(ep.port), ec);
  if (ec || results.empty()) throw std::runtime_error("cannot resolve " + ep.host + ": " + ec.message());
  ep.resolved = results.begin()->endpoint();
}

// ---------------------------------------------------------------------------
// replies

namespace {
const redisReply* as_reply(const void* r) { return static_cast<const redisReply*>(r); }
}  // namespace

reply::kind reply::type() const noexcept {
  switch (as_reply(_r)->type) {
    case REDIS_REPLY_STRING: return kind::string;
    case REDIS_REPLY_ARRAY: return kind::array;
    case REDIS_REPLY_INTEGER: return kind::integer;
    case REDIS_REPLY_STATUS: return kind::status;
    case REDIS_REPLY_ERROR: return kind::error;
    default: return kind::nil;
  }
}

std::string_view reply::str() const noexcept {
  const redisReply* r = as_reply(_r);
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) {
    return {r->str, r->len};
  }
  return {};
}

long long reply::integer() const noexcept {
  const redisReply* r = as_reply(_r);
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type == REDIS_REPLY_STRING) {
    long long v = 0;
    std::from_chars(r->str, r->str + r->len, v);
    return v;
  }
  return 0;
}

std::size_t reply::size() const noexcept {
  const redisReply* r = as_reply(_r);
  return r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

reply reply::at(std::size_t i) const noexcept { return reply(as_reply(_r)->element[i]); }

// ---------------------------------------------------------------------------
// connection

connection::connection(asio::io_context& io, endpoint ep, connection_options o, bool pubsub)
    : _io(io),
      _ep(std::move(ep)),
      _opts(o),
      _pubsub_mode(pubsub),
      _sock(io),
      _timer(io),
      _backoff(o.backoff_min),
      _rbuf(std::make_unique<std::array<char, 16384>>()),
      _alive(std::make_shared<bool>(true)) {}

connection::~connection() {
  stop();
  *_alive = false;
}

void connection::start() {
  if (_state != state::idle) return;
  connect();
}

void connection::stop() {
  if (_state == state::stopped) return;
  bool was_up = _state == state::up;
  _state = state::stopped;
  boost::system::error_code ignored;
  _sock.close(ignored);
  _timer.cancel();
  _stats.up.set(0);
  fail_pending();
  if (_reader) {
    redisReaderFree(_reader);
    _reader = nullptr;
  }
  if (was_up && _on_state) _on_state(false);
}

void connection::connect() {
  _state = state::connecting;
  ++_gen;
  if (_reader) redisReaderFree(_reader);
  _reader = redisReaderCreate();
  _out.clear();
  _flight.clear();
  _writing = false;
  boost::system::error_code ec;
  _sock.close(ec);
  _timer.expires_after(_opts.connect_timeout);
  auto alive = _alive;
  std::uint32_t gen = _gen;
  _timer.async_wait([this, alive, gen](boost::system::error_code e) {
    if (!*alive || e || gen != _gen || _state != state::connecting) return;
    fail("connect timeout");
  });
  _sock.async_connect(_ep.resolved, [this, alive, gen](boost::system::error_code e) {
    if (!*alive || gen != _gen || _state != state::connecting) return;
    if (e) return fail("connect");
    _timer.cancel();
    on_connected();
  });
}

void connection::on_connected() {
  boost::system::error_code ec;
  _sock.set_option(asio::ip::tcp::no_delay(true), ec);
  _stats.connects.inc();
  _state = state::handshake;
  read();
  // AUTH and SELECT go first; the connection is ready when the last answered.
  auto ready = [this](const reply* r) {
    if (_state != state::handshake) return;
    if (!r || r->is_error()) return fail("handshake");
    _state = state::up;
    _backoff = _opts.backoff_min;
    _stats.up.set(1);
    if (_on_state) _on_state(true);
  };
  auto internal = [this](std::initializer_list<std::string_view> args, reply_fn done) {
    append(std::span<const std::string_view>(args.begin(), args.size()));
    _pending.push_back({std::move(done), steady_now_ns(), true});
    schedule_flush();
  };
  if (!_ep.password.empty()) {
    internal({"AUTH", _ep.password}, [this](const reply* r) {
      if (_state == state::handshake && (!r || r->is_error())) fail("AUTH refused");
    });
  }
  if (!_opts.name.empty()) internal({"CLIENT", "SETNAME", _opts.name}, {});
  std::string db = std::to_string(_ep.db);
  if (_ep.db != 0) {
    internal({"SELECT", db}, [this](const reply* r) {
      if (_state == state::handshake && (!r || r->is_error())) fail("SELECT refused");
    });
  }
  internal({"PING"}, std::move(ready));
}

void connection::append(std::span<const std::string_view> args) {
  char num[24];
  auto put_len = [&](char lead, std::size_t n) {
    _out.push_back(lead);
    auto r = std::to_chars(num, num + sizeof num, n);
    _out.append(num, r.ptr);
    _out.append("\r\n");
  };
  put_len('*', args.size());
  for (std::string_view a : args) {
    put_len('$', a.size());
    _out.append(a);
    _out.append("\r\n");
  }
}

void connection::command(std::span<const std::string_view> args, reply_fn done) {
  if (_state != state::up || _pending.size() >= _opts.max_pending || _pubsub_mode) {
    _stats.failed.inc();
    if (done) done(nullptr);
    return;
  }
  append(args);
  _pending.push_back({std::move(done), steady_now_ns(), false});
  _stats.commands.inc();
  _stats.pending.set(_pending.size());
  schedule_flush();
}

void connection::subscribe(std::span<const std::string> channels, bool on) {
  if (!_pubsub_mode || _state != state::up || channels.empty()) return;
  // One command per batch of channels: a reconnect resubscribes thousands.
  constexpr std::size_t batch = 512;
  std::vector<std::string_view> args;
  for (std::size_t i = 0; i < channels.size(); i += batch) {
    args.clear();
    args.push_back(on ? "SUBSCRIBE" : "UNSUBSCRIBE");
    for (std::size_t k = i; k < channels.size() && k < i + batch; ++k) args.push_back(channels[k]);
    append(args);
    _stats.commands.inc();
  }
  schedule_flush();
}

void connection::schedule_flush() {
  if (_flush_posted) return;
  _flush_posted = true;
  auto alive = _alive;
  // Pipelining: everything queued during this loop turn goes in one write.
  asio::post(_io, [this, alive] {
    if (!*alive) return;
    _flush_posted = false;
    flush();
  });
}

void connection::flush() {
  if (_writing || _out.empty() || (_state != state::up && _state != state::handshake)) return;
  _writing = true;
  _flight.swap(_out);
  _stats.bytes_out.add(_flight.size());
  auto alive = _alive;
  std::uint32_t gen = _gen;
  asio::async_write(_sock, asio::buffer(_flight), [this, alive, gen](boost::system::error_code e, std::size_t) {
    if (!*alive || gen != _gen) return;
    _writing = false;
    _flight.clear();
    if (e) return fail("write");
    flush();
  });
}

void connection::read() {
  auto alive = _alive;
  std::uint32_t gen = _gen;
  _sock.async_read_some(asio::buffer(*_rbuf), [this, alive, gen](boost::system::error_code e, std::size_t n) {
    if (!*alive || gen != _gen || (_state != state::up && _state != state::handshake)) return;
    if (e) return fail(e == asio::error::eof ? "closed by the server" : "read");
    _stats.bytes_in.add(n);
    if (redisReaderFeed(_reader, _rbuf->data(), n) != REDIS_OK) return fail("protocol");
    for (;;) {
      void* r = nullptr;
      if (redisReaderGetReply(_reader, &r) != REDIS_OK) return fail("protocol");
      if (!r) break;
      on_reply(r);
      freeReplyObject(r);
      if (!*alive || (_state != state::up && _state != state::handshake)) return;  // a callback stopped us
    }
    read();
  });
}

void connection::on_reply(const void* raw) {
  reply r(raw);
  if (_pubsub_mode && _state == state::up && r.type() == reply::kind::array && r.size() >= 3) {
    std::string_view what = r.at(0).str();
    if (what == "message") {
      _stats.messages.inc();
      if (_pubsub) _pubsub->on_message(r.at(1).str(), r.at(2).str());
      return;
    }
    if (what == "subscribe") {
      if (_pubsub) _pubsub->on_subscribed(r.at(1).str());
      return;
    }
    if (what == "unsubscribe") {
      if (_pubsub && r.at(1).type() != reply::kind::nil) _pubsub->on_unsubscribed(r.at(1).str());
      return;
    }
  }
  if (_pending.empty()) return fail("reply without a command");
  pending p = std::move(_pending.front());
  _pending.pop_front();
  _stats.pending.set(_pending.size());
  if (!p.internal) {
    std::int64_t now = steady_now_ns();
    _stats.rtt_us.record(now > p.sent_ns ? static_cast<std::uint64_t>(now - p.sent_ns) / 1000 : 0);
    if (r.is_error()) _stats.errors.inc();
  }
  if (p.done) p.done(&r);
}

void connection::fail_pending() {
  // Callbacks may queue commands: they fail at once, the connection being down.
  std::deque<pending> failed;
  failed.swap(_pending);
  _stats.pending.set(0);
  for (auto& p : failed) {
    if (!p.internal) _stats.failed.inc();
    if (p.done) p.done(nullptr);
  }
}

void connection::fail(const char* what) {
  if (_state == state::stopped) return;
  _last_error = what;
  bool was_up = _state == state::up;
  _state = state::idle;
  _stats.up.set(0);
  _stats.failures.inc();
  boost::system::error_code ignored;
  _sock.close(ignored);
  _timer.cancel();
  fail_pending();
  if (was_up && _on_state) _on_state(false);
  if (_state != state::idle) return;  // the state handler stopped us
  // Exponential backoff with jitter: a fleet of nodes must not reconnect in step.
  thread_local std::minstd_rand jitter(std::random_device{}());
  auto wait = _backoff / 2 + std::chrono::milliseconds(jitter() % (_backoff.count() / 2 + 1));
  _backoff = std::min(_backoff * 2, _opts.backoff_max);
  _timer.expires_after(wait);
  auto alive = _alive;
  _timer.async_wait([this, alive](boost::system::error_code e) {
    if (!*alive || e || _state != state::idle) return;
    connect();
  });
}

}  // namespace sb::redis
