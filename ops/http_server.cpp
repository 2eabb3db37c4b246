#include "ops/http_server.hpp"

#include "ops/log.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>

#include <system_error>

namespace sb::ops {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct http_server::connection_base {
  virtual ~connection_base() = default;
  virtual void close() = 0;
};

namespace {
using tls_stream = beast::ssl_stream<beast::tcp_stream>;
constexpr std::uint32_t tls_handshake_timeout_s = 10;
}  // namespace

// One keep-alive connection, plain or TLS (Stream). shared_ptr is fine
// here: the ops port sees a handful of connections, and Beast's async ops
// want a stable owner.
template <class Stream>
struct http_server::connection : connection_base, std::enable_shared_from_this<connection<Stream>> {
  connection(http_server& srv, asio::ip::tcp::socket sock) : server(srv), stream(std::move(sock)) {}
  connection(http_server& srv, asio::ip::tcp::socket sock, std::shared_ptr<asio::ssl::context> tls)
      : server(srv), ctx(std::move(tls)), stream(std::move(sock), *ctx) {}

  void start() {
    if constexpr (std::is_same_v<Stream, tls_stream>) {
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(tls_handshake_timeout_s));
      stream.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->close();  // plain HTTP to the TLS port, garbage, a timeout
        self->read_next();
      });
    } else {
      read_next();
    }
  }

  void read_next() {
    parser.emplace();
    parser->body_limit(server._opts.max_body);
    parser->header_limit(16 * 1024);
    buffer.clear();  // keep-alive clients send one request at a time here
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(server._opts.idle_timeout_s));
    http::async_read(stream, buffer, *parser,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted || ec == beast::error::timeout ||
        ec.category() == asio::error::get_ssl_category() || ec == asio::ssl::error::stream_truncated) {
      return close();
    }
    http_response res;
    bool keep_alive = false;
    unsigned version = 11;
    if (ec == http::error::body_limit) {
      res.status = 413;
      res.body = "request body too large\n";
    } else if (ec == http::error::header_limit) {
      res.status = 431;
      res.body = "request header fields too large\n";
    } else if (ec) {
      if (ec == asio::error::eof || ec == asio::error::connection_reset) return close();
      res.status = 400;
      res.body = "bad request\n";
    } else {
      auto& req = parser->get();
      keep_alive = req.keep_alive();
      version = req.version();
      http_request hr;
      hr.method = std::string_view(req.method_string().data(), req.method_string().size());
      hr.target = std::string_view(req.target().data(), req.target().size());
      hr.path = hr.target.substr(0, hr.target.find('?'));
      hr.body = req.body();
      hr.header = [&req](std::string_view name) -> std::string_view {
        auto it = req.find(beast::string_view(name.data(), name.size()));
        if (it == req.end()) return {};
        return {it->value().data(), it->value().size()};
      };
      if (auto* async = server.find_prefix_route(hr.path)) {
        // Answered later, once: the reply keeps the connection alive.
        (*async)(hr, [self = this->shared_from_this(), keep_alive, version](http_response r) {
          self->write(std::move(r), keep_alive, version);
        });
        return;
      }
      server.dispatch(hr, res);
    }
    write(std::move(res), keep_alive, version);
  }

  void write(http_response res, bool keep_alive, unsigned version) {
    auto msg = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), version);
    msg->set(http::field::server, "switchboard");
    msg->set(http::field::content_type, res.content_type);
    msg->set(http::field::cache_control, "no-store");
    msg->keep_alive(keep_alive);
    msg->body() = std::move(res.body);
    msg->prepare_payload();
    http::async_write(stream, *msg, [self = this->shared_from_this(), msg, keep_alive](beast::error_code ec, std::size_t) {
      if (ec || !keep_alive || self->server._stopped) return self->close();
      self->read_next();
    });
  }

  void close() override {
    beast::error_code ignored;
    auto& tcp = beast::get_lowest_layer(stream);
    tcp.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp.close();
  }

  http_server& server;
  std::shared_ptr<asio::ssl::context> ctx;  // TLS: the certificate this connection started with
  Stream stream;
  beast::flat_buffer buffer;
  std::optional<http::request_parser<http::string_body>> parser;
};

http_server::http_server(asio::io_context& ctx, options opts) : _ctx(ctx), _opts(opts), _acceptor(ctx) {}

http_server::~http_server() { stop(); }

void http_server::route(std::string path, http_handler h) { _routes[std::move(path)] = std::move(h); }

void http_server::route_prefix(std::string prefix, http_async_handler h) {
  _prefix_routes.emplace_back(std::move(prefix), std::move(h));
}

const http_async_handler* http_server::find_prefix_route(std::string_view path) const {
  if (_routes.count(std::string(path))) return nullptr;
  for (const auto& [prefix, h] : _prefix_routes) {
    if (path.substr(0, prefix.size()) == prefix) return &h;
  }
  return nullptr;
}

void http_server::listen(const asio::ip::tcp::endpoint& ep) {
  beast::error_code ec;
  _acceptor.open(ep.protocol(), ec);
  if (!ec) _acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) _acceptor.bind(ep, ec);
  if (!ec) _acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::system_error(ec, fmt::format("ops listener {}:{}", ep.address().to_string(), ep.port()));
  }
  do_accept();
}

asio::ip::tcp::endpoint http_server::local_endpoint() const { return _acceptor.local_endpoint(); }

void http_server::do_accept() {
  _acceptor.async_accept([this](beast::error_code ec, asio::ip::tcp::socket sock) {
    if (ec == asio::error::operation_aborted || _stopped) return;
    if (!ec) {
      std::shared_ptr<connection_base> c;
      if (_tls) {
        auto t = std::make_shared<connection<tls_stream>>(*this, std::move(sock), _tls);
        t->start();
        c = t;
      } else {
        auto p = std::make_shared<connection<beast::tcp_stream>>(*this, std::move(sock));
        p->start();
        c = p;
      }
      // Forget connections that are gone so the list stays as small as the live set.
      std::erase_if(_conns, [](const std::weak_ptr<connection_base>& w) { return w.expired(); });
      _conns.push_back(c);
    }
    do_accept();
  });
}

void http_server::dispatch(const http_request& req, http_response& res) {
  auto it = _routes.find(std::string(req.path));
  if (it == _routes.end()) {
    res.status = 404;
    res.body = "not found\n";
    return;
  }
  it->second(req, res);
}

void http_server::set_tls(ssl_ctx_st* ctx) {
  if (!ctx) {
    _tls.reset();
    return;
  }
  SSL_CTX_up_ref(ctx);  // asio's context frees its handle
  _tls = std::make_shared<asio::ssl::context>(ctx);
}

void http_server::stop() {
  if (_stopped) return;
  _stopped = true;
  beast::error_code ignored;
  _acceptor.close(ignored);
  for (auto& w : _conns) {
    if (auto c = w.lock()) c->close();
  }
  _conns.clear();
}

}  // namespace sb::ops
