#include "gateway/http_pool.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/core.h>

#include <optional>
#include <stdexcept>

namespace sb {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

struct http_pool::resolved {
  tcp::resolver::results_type endpoints;
};

// One connection and the request it carries. `gen` tells a stale timer or
// completion (of an earlier request) from the current one.
struct http_pool::conn {
  explicit conn(asio::io_context& io) : sock(io), timer(io) {}
  tcp::socket sock;
  asio::steady_timer timer;
  boost::beast::flat_buffer buf;
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
  callback done;
  std::uint64_t gen = 0;
  bool busy = false;
  bool open = false;       // connected (kept alive between requests)
  bool reused = false;     // this request went out on a kept connection
  bool retried = false;    // ... and was sent again on a fresh one
  bool timed_out = false;
};

http_pool::http_pool(asio::io_context& io, options o) : _io(io), _o(std::move(o)), _ep(new resolved) {
  _host_header = _o.where.port == 80 ? _o.where.host : fmt::format("{}:{}", _o.where.host, _o.where.port);
  if (_o.where.host.find(':') != std::string::npos) _host_header = fmt::format("[{}]:{}", _o.where.host, _o.where.port);
  error_code ec;
  tcp::resolver r(io);
  _ep->endpoints = r.resolve(_o.where.host, std::to_string(_o.where.port), ec);
  if (ec || _ep->endpoints.empty()) {
    throw std::runtime_error(fmt::format("proxy endpoint host '{}': {}", _o.where.host, ec ? ec.message() : "no address"));
  }
}

http_pool::~http_pool() = default;

bool http_pool::post(std::string body, callback done) {
  if (_closed) return false;
  job j{std::move(body), std::move(done)};
  for (auto& c : _conns) {
    if (!c->busy) {
      start(*c, std::move(j));
      return true;
    }
  }
  if (_conns.size() < _o.max_connections) {
    _conns.push_back(std::make_unique<conn>(_io));
    start(*_conns.back(), std::move(j));
    return true;
  }
  if (_queue.size() >= _o.max_pending) return false;
  _queue.push_back(std::move(j));
  return true;
}

void http_pool::start(conn& c, job&& j) {
  c.busy = true;
  ++_busy;
  ++c.gen;
  c.done = std::move(j.done);
  c.reused = c.open;
  c.retried = false;
  c.timed_out = false;
  c.req = {};
  c.req.method(http::verb::post);
  c.req.target(_o.where.target);
  c.req.version(11);
  c.req.set(http::field::host, _host_header);
  c.req.set(http::field::user_agent, "switchboard");
  c.req.set(http::field::content_type, "application/json");
  c.req.body() = std::move(j.body);
  c.req.prepare_payload();
  c.timer.expires_after(_o.timeout);
  c.timer.async_wait([this, &c, gen = c.gen](error_code ec) {
    if (ec || gen != c.gen || !c.busy) return;
    // The deadline: closing the socket ends whatever is in progress, and
    // its completion reports the timeout.
    c.timed_out = true;
    error_code ignored;
    c.sock.close(ignored);
  });
  if (c.open) {
    do_write(c);
  } else {
    do_connect(c);
  }
}

void http_pool::do_connect(conn& c) {
  asio::async_connect(c.sock, _ep->endpoints, [this, &c, gen = c.gen](error_code ec, const tcp::endpoint&) {
    if (gen != c.gen) return;
    if (ec) return finish(c, {c.timed_out ? http_result::outcome::timeout : http_result::outcome::unavailable, 0, {}});
    c.open = true;
    error_code ignored;
    c.sock.set_option(tcp::no_delay(true), ignored);
    do_write(c);
  });
}

void http_pool::do_write(conn& c) {
  c.buf.clear();
  http::async_write(c.sock, c.req, [this, &c, gen = c.gen](error_code ec, std::size_t) {
    if (gen != c.gen) return;
    if (ec) return finish(c, {c.timed_out ? http_result::outcome::timeout : http_result::outcome::unavailable, 0, {}});
    c.parser.emplace();
    c.parser->body_limit(_o.max_response_bytes);
    c.parser->header_limit(16 * 1024);
    http::async_read(c.sock, c.buf, *c.parser, [this, &c, gen](error_code ec2, std::size_t) {
      if (gen != c.gen) return;
      if (ec2) {
        // A kept connection the backend closed while idle fails at once
        // (end of stream, reset, broken pipe) with nothing read: send the
        // request once more on a fresh connection.
        bool stale = c.reused && !c.retried && !c.timed_out && !c.parser->got_some() &&
                     (ec2 == http::error::end_of_stream || ec2 == asio::error::connection_reset ||
                      ec2 == asio::error::broken_pipe || ec2 == asio::error::eof);
        error_code ignored;
        c.sock.close(ignored);
        c.open = false;
        if (stale) {
          c.retried = true;
          c.reused = false;
          return do_connect(c);
        }
        // Beast's parse errors share one category: a reply that is not
        // HTTP (or too large) is bad_response; the backend closing early
        // (end of stream, partial message) is unavailable.
        bool malformed = ec2.category() == http::make_error_code(http::error::bad_target).category() &&
                         ec2 != http::error::end_of_stream && ec2 != http::error::partial_message;
        http_result::outcome o = c.timed_out ? http_result::outcome::timeout
                                 : malformed ? http_result::outcome::bad_response
                                             : http_result::outcome::unavailable;
        return finish(c, {o, 0, {}});
      }
      auto res = c.parser->release();
      if (!res.keep_alive()) {
        error_code ignored;
        c.sock.close(ignored);
        c.open = false;
      }
      finish(c, {http_result::outcome::ok, res.result_int(), std::move(res.body())});
    });
  });
}

void http_pool::finish(conn& c, http_result&& r) {
  c.timer.cancel();
  if (r.what != http_result::outcome::ok && c.open) {
    error_code ignored;
    c.sock.close(ignored);
    c.open = false;
  }
  if (c.timed_out || !c.sock.is_open()) c.open = false;
  callback done = std::move(c.done);
  c.done = nullptr;
  ++c.gen;  // late handlers of this request find a newer generation
  c.busy = false;
  --_busy;
  next(c);
  if (done) done(std::move(r));
}

void http_pool::next(conn& c) {
  if (_closed || _queue.empty()) return;
  job j = std::move(_queue.front());
  _queue.pop_front();
  start(c, std::move(j));
}

void http_pool::close() {
  if (_closed) return;
  _closed = true;
  for (auto& c : _conns) {
    error_code ignored;
    c->timer.cancel();
    c->sock.close(ignored);  // a request in flight completes with an error: unavailable
    c->open = false;
  }
  // Waiting requests: answered from the loop, not from inside close().
  while (!_queue.empty()) {
    callback done = std::move(_queue.front().done);
    _queue.pop_front();
    asio::post(_io, [done = std::move(done)] { done({http_result::outcome::unavailable, 0, {}}); });
  }
}

}  // namespace sb
