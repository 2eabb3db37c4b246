#pragma once
// A keep-alive HTTP/1.1 client for one backend endpoint on one shard (the
// backend proxy's transport, gateway/proxy.hpp): POSTs JSON bodies over at
// most `max_connections` connections kept open between requests, with a
// bounded queue of requests waiting for one. Every request has one deadline
// covering connect, write and the whole response. Beast does the HTTP; its
// headers stay in http_pool.cpp.
//
// Threading: one pool per shard and endpoint, used on that shard's thread
// only; callbacks run there too, never inside post().

#include "gateway/proxy_config.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sb {

struct http_result {
  enum class outcome : std::uint8_t {
    ok,           // a complete response (any status: see `status`)
    timeout,      // no complete response within the deadline
    unavailable,  // could not connect, or the connection failed
    bad_response  // not HTTP, or a body over max_response_bytes
  };
  outcome what = outcome::unavailable;
  unsigned status = 0;
  std::string body;
};

class http_pool {
 public:
  using callback = std::function<void(http_result&&)>;
  struct options {
    http_url where;
    std::chrono::milliseconds timeout{1000};
    std::uint32_t max_connections = 16;
    std::uint32_t max_pending = 1024;
    std::uint32_t max_response_bytes = 1u << 20;
  };

  /// Resolves the host now (once: a name is looked up at start only);
  /// throws std::runtime_error when it cannot.
  http_pool(boost::asio::io_context& io, options o);
  ~http_pool();
  http_pool(const http_pool&) = delete;
  http_pool& operator=(const http_pool&) = delete;

  /// Sends `body` as a POST; `done` runs once with the outcome. False (and
  /// `done` is dropped) when max_connections are busy and max_pending wait.
  bool post(std::string body, callback done);
  /// Shard shutdown: closes every connection; requests in flight and
  /// waiting complete as unavailable. No request is taken afterwards.
  void close();

  std::uint32_t in_flight() const noexcept { return _busy; }
  std::size_t pending() const noexcept { return _queue.size(); }
  std::uint32_t connections() const noexcept { return static_cast<std::uint32_t>(_conns.size()); }

 private:
  struct conn;
  struct job {
    std::string body;
    callback done;
  };
  void start(conn& c, job&& j);
  void do_connect(conn& c);
  void do_write(conn& c);
  void finish(conn& c, http_result&& r);
  void next(conn& c);

  boost::asio::io_context& _io;
  options _o;
  std::string _host_header;
  std::vector<std::unique_ptr<conn>> _conns;  // live until the pool ends (handlers point at them)
  std::deque<job> _queue;
  std::uint32_t _busy = 0;
  bool _closed = false;
  struct resolved;
  std::unique_ptr<resolved> _ep;
};

}  // namespace sb
