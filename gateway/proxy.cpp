#include "gateway/proxy.hpp"

#include "gateway/config.hpp"
#include "gateway/http_pool.hpp"
#include "session/json_writer.hpp"

#include <boost/asio/post.hpp>
#include <fmt/core.h>
#include <openssl/evp.h>
#include <simdjson.h>

#include <charconv>
#include <limits>

namespace sb {

const char* proxy_kind_name(proxy_kind k) noexcept {
  switch (k) {
    case proxy_kind::connect: return "connect";
    case proxy_kind::refresh: return "refresh";
    case proxy_kind::subscribe: return "subscribe";
    case proxy_kind::publish: return "publish";
    case proxy_kind::rpc: return "rpc";
    case proxy_kind::count: break;
  }
  return "?";
}

const char* proxy_outcome_name(proxy_reply::outcome o) noexcept {
  using o_t = proxy_reply::outcome;
  switch (o) {
    case o_t::result: return "result";
    case o_t::error: return "error";
    case o_t::disconnect: return "disconnect";
    case o_t::timeout: return "timeout";
    case o_t::unavailable: return "unavailable";
    case o_t::bad_response: return "bad_response";
    case o_t::breaker_open: return "breaker_open";
    case o_t::overloaded: return "overloaded";
    case o_t::count: break;
  }
  return "?";
}

http_url parse_http_url(const std::string& text, const std::string& what) {
  constexpr std::string_view scheme = "http://";
  if (text.rfind("https://", 0) == 0) {
    throw config_error(fmt::format("{}: https:// endpoints are not supported yet (TLS is not built); use http://", what));
  }
  if (text.rfind(scheme, 0) != 0) throw config_error(fmt::format("{}: '{}' is not an http:// URL", what, text));
  std::string_view rest = std::string_view(text).substr(scheme.size());
  http_url u;
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) u.target = std::string(rest.substr(slash));
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) throw config_error(fmt::format("{}: '{}' has an unclosed '['", what, text));
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw config_error(fmt::format("{}: '{}' is not an http:// URL", what, text));
      port_text = after.substr(1);
    }
  } else {
    std::size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw config_error(fmt::format("{}: '{}' has no host", what, text));
  if (authority.find('@') != std::string_view::npos) {
    throw config_error(fmt::format("{}: '{}': credentials in the URL are not supported", what, text));
  }
  if (!port_text.empty() || (slash == std::string_view::npos && authority.back() == ':')) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      throw config_error(fmt::format("{}: '{}' has a bad port", what, text));
    }
    u.port = static_cast<std::uint16_t>(port);
  }
  return u;
}

std::string proxy_request_body(const proxy_request& r) {
  std::string out;
  out.reserve(160 + r.data.size() + r.channel.size());
  out += '{';
  bool first = true;
  auto str = [&](std::string_view k, std::string_view v, bool always = false) {
    if (v.empty() && !always) return;
    if (!first) out += ',';
    first = false;
    proto::append_json_string(out, k);
    out += ':';
    proto::append_json_string(out, v);
  };
  str("client", r.client, true);
  str("transport", "websocket");
  str("protocol", r.binary ? "protobuf" : "json");
  str("encoding", r.binary ? "binary" : "json");
  str("user", r.user, true);
  str("channel", r.channel);
  str("method", r.method);
  str("name", r.name);
  str("version", r.version);
  str("token", r.token);
  if (!r.data.empty() && r.binary) {
    // Bytes in JSON: base64, as Centrifugo's proxy does for binary clients.
    std::string b64(4 * ((r.data.size() + 2) / 3), '\0');
    EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), reinterpret_cast<const unsigned char*>(r.data.data()),
                    static_cast<int>(r.data.size()));
    str("b64data", b64);
  } else if (!r.data.empty()) {
    out += ",\"data\":";
    out += r.data;
  }
  out += '}';
  return out;
}

namespace {

namespace dom = simdjson::dom;
using o_t = proxy_reply::outcome;

proxy_reply bad() {
  proxy_reply r;
  r.what = o_t::bad_response;
  return r;
}

bool get_string(dom::object obj, const char* key, std::string& out) {
  dom::element e;
  if (obj.at_key(key).get(e) != simdjson::SUCCESS) return true;  // absent: fine
  std::string_view s;
  if (e.get(s) != simdjson::SUCCESS) return false;
  out.assign(s);
  return true;
}

bool get_raw(dom::object obj, const char* key, std::string& out) {
  dom::element e;
  if (obj.at_key(key).get(e) != simdjson::SUCCESS) return true;
  out = simdjson::minify(e);
  return true;
}

// "b64data": a payload for a binary (Protobuf) client, base64 in the JSON;
// false when it is not a string of valid base64.
bool get_b64(dom::object obj, const char* key, std::string& out) {
  dom::element e;
  if (obj.at_key(key).get(e) != simdjson::SUCCESS) return true;
  std::string_view s;
  if (e.get(s) != simdjson::SUCCESS || s.size() % 4 != 0) return false;
  std::string bytes(s.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts the padding as data: drop one byte per '='.
  std::size_t len = static_cast<std::size_t>(n);
  for (std::size_t i = s.size(); i > 0 && s[i - 1] == '=' && len > 0; --i) --len;
  bytes.resize(len);
  out = std::move(bytes);
  return true;
}

}  // namespace

proxy_reply parse_proxy_reply(proxy_kind k, std::string_view body) {
  static thread_local dom::parser parser;
  dom::element root;
  if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS) return bad();
  dom::object top;
  if (root.get(top) != simdjson::SUCCESS) return bad();
  proxy_reply r;
  dom::object o;
  if (top.at_key("disconnect").get(o) == simdjson::SUCCESS) {
    std::uint64_t code = 0;
    if (o.at_key("code").get(code) != simdjson::SUCCESS || code < 3000 || code > 4999) return bad();
    if (!get_string(o, "reason", r.message)) return bad();
    if (r.message.size() > 122) r.message.resize(122);  // a close frame's reason fits 123 bytes
    r.what = o_t::disconnect;
    r.code = static_cast<std::uint32_t>(code);
    return r;
  }
  if (top.at_key("error").get(o) == simdjson::SUCCESS) {
    std::uint64_t code = 0;
    if (o.at_key("code").get(code) != simdjson::SUCCESS || code == 0 ||
        code > std::numeric_limits<std::uint32_t>::max()) {
      return bad();
    }
    if (!get_string(o, "message", r.message)) return bad();
    bool temporary = false;
    dom::element t;
    if (o.at_key("temporary").get(t) == simdjson::SUCCESS && t.get(temporary) != simdjson::SUCCESS) return bad();
    r.what = o_t::error;
    r.code = static_cast<std::uint32_t>(code);
    r.temporary = temporary;
    return r;
  }
  dom::element res;
  if (top.at_key("result").get(res) != simdjson::SUCCESS) {
    // No result object: as Centrifugo, an empty answer is an empty result
    // for the kinds whose result may be empty.
    if (k == proxy_kind::connect || k == proxy_kind::refresh) return bad();
    r.what = o_t::result;
    return r;
  }
  if (res.get(o) != simdjson::SUCCESS) return bad();
  r.what = o_t::result;
  if (!get_string(o, "user", r.user)) return bad();
  dom::element e;
  if (o.at_key("expire_at").get(e) == simdjson::SUCCESS) {
    std::int64_t v = 0;
    if (e.get(v) != simdjson::SUCCESS || v < 0) return bad();
    r.expire_at = v;
  }
  if (o.at_key("expired").get(e) == simdjson::SUCCESS && e.get(r.expired) != simdjson::SUCCESS) return bad();
  if (!get_raw(o, "info", r.info) || !get_raw(o, "data", r.data) || !get_b64(o, "b64data", r.data)) return bad();
  dom::array chans;
  if (o.at_key("channels").get(e) == simdjson::SUCCESS) {
    if (e.get(chans) != simdjson::SUCCESS) return bad();
    for (dom::element c : chans) {
      std::string_view s;
      if (c.get(s) != simdjson::SUCCESS) return bad();
      r.channels.emplace_back(s);
    }
  }
  if (k == proxy_kind::connect && o.at_key("user").error() != simdjson::SUCCESS) return bad();
  return r;
}

backend_proxy::backend_proxy(boost::asio::io_context& io, const proxy_config& cfg, proxy_stats& stats)
    : _io(io), _stats(stats), _breakers(proxy_kind_count, circuit_breaker(cfg.breaker)) {
  for (std::size_t i = 0; i < proxy_kind_count; ++i) {
    const proxy_endpoint& e = cfg.of[i];
    if (e.url.empty()) continue;
    http_pool::options o;
    o.where = e.where;
    o.timeout = std::chrono::milliseconds(e.timeout_ms);
    o.max_connections = cfg.max_connections;
    o.max_pending = cfg.max_pending;
    o.max_response_bytes = cfg.max_response_bytes;
    _pools[i] = std::make_unique<http_pool>(io, std::move(o));
  }
}

backend_proxy::~backend_proxy() = default;

void backend_proxy::call(proxy_kind k, std::string body, callback done) {
  auto i = static_cast<std::size_t>(k);
  circuit_breaker& b = _breakers[i];
  auto refuse = [&](o_t why) {
    _stats.outcomes[i][static_cast<std::size_t>(why)].inc();
    boost::asio::post(_io, [done = std::move(done), why] {
      proxy_reply r;
      r.what = why;
      done(std::move(r));
    });
  };
  // No pool: an endpoint a reload added (restart-only) to go with a
  // namespace's new proxy_subscribe / proxy_publish. Refused, not sent.
  if (!_pools[i]) return refuse(o_t::unavailable);
  auto now = circuit_breaker::clock::now();
  if (!b.allow(now)) return refuse(o_t::breaker_open);
  _stats.breaker_state[i].set(static_cast<std::uint64_t>(b.current()));
  bool half_open = b.current() == circuit_breaker::state::half_open;
  auto shared = std::make_shared<callback>(std::move(done));
  bool sent = _pools[i]->post(std::move(body), [this, k, shared](http_result&& h) {
    proxy_reply r;
    switch (h.what) {
      case http_result::outcome::ok:
        r = h.status == 200 ? parse_proxy_reply(k, h.body) : bad();
        break;
      case http_result::outcome::timeout: r.what = o_t::timeout; break;
      case http_result::outcome::unavailable: r.what = o_t::unavailable; break;
      case http_result::outcome::bad_response: r.what = o_t::bad_response; break;
    }
    answered(k, std::move(r), *shared);
  });
  if (!sent) {
    // Not a backend failure but our own bound: a probe it reserved is
    // given back, and nothing is recorded.
    if (half_open) b.release_probe();
    done = std::move(*shared);
    return refuse(o_t::overloaded);
  }
  _stats.in_flight[i].inc();
}

void backend_proxy::answered(proxy_kind k, proxy_reply&& r, const callback& done) {
  auto i = static_cast<std::size_t>(k);
  _stats.in_flight[i].dec();
  _stats.outcomes[i][static_cast<std::size_t>(r.what)].inc();
  circuit_breaker& b = _breakers[i];
  auto before = b.opened_count();
  b.record(!r.failed(), circuit_breaker::clock::now());
  if (b.opened_count() != before) _stats.breaker_opened[i].inc();
  _stats.breaker_state[i].set(static_cast<std::uint64_t>(b.current()));
  done(std::move(r));
}

void backend_proxy::close() {
  for (auto& p : _pools) {
    if (p) p->close();
  }
}

}  // namespace sb
