#pragma once
// The ops listener's HTTP server (Beast): health, stats, later the server API
// and metrics. It runs on the main thread's io_context, never on a shard, so a
// slow scraper or backend can not stall client traffic; it reads shard
// figures through relaxed counters and reaches shards through the mesh.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

struct ssl_ctx_st;
namespace boost::asio::ssl {
class context;
}

namespace sb::ops {

/// What a route handler sees of a request.
struct http_request {
  std::string_view method;
  std::string_view target;  // path and query, as sent
  std::string_view path;    // without the query
  std::string_view body;
  std::function<std::string_view(std::string_view)> header;  // "" when absent
};

/// What a route handler answers.
struct http_response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// Handler for one path; runs on the main thread.
using http_handler = std::function<void(const http_request&, http_response&)>;

/// Sends the answer to a deferred request. Main thread; call it exactly
/// once (the connection reads its next request only after the answer).
using http_reply = std::function<void(http_response)>;
/// Handler that may answer later (after a round trip to the shards). The
/// request's views are valid only during the call.
using http_async_handler = std::function<void(const http_request&, http_reply)>;

/// HTTP/1.1 server with keep-alive for the ops port. Main thread only.
class http_server {
 public:
  struct options {
    std::size_t max_body = 1 << 20;      // larger bodies get 413
    std::uint32_t idle_timeout_s = 60;   // idle keep-alive connections are closed
  };

  http_server(boost::asio::io_context& ctx, options opts);
  ~http_server();

  /// Registers the handler for an exact path (any method; the handler checks).
  void route(std::string path, http_handler h);
  /// Registers a deferred handler for every path that starts with `prefix`
  /// (exact routes win).
  void route_prefix(std::string prefix, http_async_handler h);

  /// Binds and listens; throws std::system_error with a clear message on failure.
  void listen(const boost::asio::ip::tcp::endpoint& ep);

  /// The bound endpoint (after listen).
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  /// Stops accepting and closes every open connection.
  void stop();

  /// HTTPS for the connections accepted from now on with this OpenSSL
  /// context (the server keeps a reference; `ops_tls`, gateway/); null:
  /// plain HTTP. Open connections keep what they started with.
  void set_tls(ssl_ctx_st* ctx);

  struct connection_base;  // internal
  template <class Stream>
  struct connection;

 private:
  void do_accept();
  void dispatch(const http_request& req, http_response& res);
  const http_async_handler* find_prefix_route(std::string_view path) const;

  boost::asio::io_context& _ctx;
  options _opts;
  boost::asio::ip::tcp::acceptor _acceptor;
  std::unordered_map<std::string, http_handler> _routes;
  std::vector<std::pair<std::string, http_async_handler>> _prefix_routes;
  std::list<std::weak_ptr<connection_base>> _conns;
  std::shared_ptr<boost::asio::ssl::context> _tls;
  bool _stopped = false;
};

}  // namespace sb::ops
