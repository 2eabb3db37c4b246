// The backend proxy in the protocol (gateway/proxy.hpp is the transport):
// a connect without a token, a subscribe without a token in a namespace
// with proxy_subscribe, every publish in a namespace with proxy_publish,
// every rpc, and the server-side refresh of a proxied connection ask the
// backend and carry on when it answers. Until then the command is a wait
// keyed like the history queries; a client that ends first is forgotten,
// so a late answer finds nobody. Shard thread only.
#include "gateway/client.hpp"

#include "gateway/client_state.hpp"

#include <boost/unordered/unordered_flat_map.hpp>

namespace sb {

proxy_request proxy_fields(const client& c, const std::array<char, 36>& id) {
  proxy_request r;
  r.client = std::string_view(id.data(), id.size());
  r.user = c.user;
  r.binary = c.format() == proto::format::protobuf;
  return r;
}

void centrifuge_handler::stop() {
  if (_proxy) _proxy->close();
}

void centrifuge_handler::forget_waits(client& c) {
  boost::unordered::erase_if(_queries, [&c](const auto& q) { return q.second.first == &c; });
  if (!_proxied.empty()) boost::unordered::erase_if(_proxied, [&c](const auto& w) { return w.second.c == &c; });
  if (!_connect_data.empty()) _connect_data.erase(&c);
}

void centrifuge_handler::proxy_call(client& c, proxy_wait&& w, const proxy_request& req) {
  std::uint64_t key = ++_next_query;
  proxy_kind kind = w.kind;
  w.c = &c;
  _proxied.emplace(key, std::move(w));
  ++c.pending_queries;
  _proxy->call(kind, proxy_request_body(req), [this, key](proxy_reply&& a) { answer_proxy(key, std::move(a)); });
}

void centrifuge_handler::answer_proxy(std::uint64_t key, proxy_reply&& r) {
  auto it = _proxied.find(key);
  if (it == _proxied.end()) return;  // the client is gone
  proxy_wait w = std::move(it->second);
  _proxied.erase(it);
  client& c = *w.c;
  --c.pending_queries;
  if (c.st == client::state::closing) return;
  if (w.kind == proxy_kind::connect) return connect_answered(c, w.id, std::move(r));
  if (w.kind == proxy_kind::refresh) return refresh_answered(c, std::move(r));
  if (c.st != client::state::connected) return;
  _out.clear();
  using o_t = proxy_reply::outcome;
  if (r.what == o_t::disconnect) return disconnect(c, static_cast<std::uint16_t>(r.code), r.message);
  if (r.what == o_t::error) {
    if (w.kind == proxy_kind::subscribe) _stats.subscribe_errors.inc();
    if (w.kind == proxy_kind::publish) _stats.publish_errors.inc();
    c.encoder().error_reply(_out, w.id, r.code, r.message, r.temporary);
  } else if (r.failed()) {
    if (w.kind == proxy_kind::subscribe) _stats.subscribe_errors.inc();
    if (w.kind == proxy_kind::publish) _stats.publish_errors.inc();
    proxy_failed(c, w.id, r);
  } else {
    switch (w.kind) {
      case proxy_kind::subscribe: {
        // Checked again: the client may have subscribed meanwhile.
        if (c.find(w.channel)) {
          _stats.subscribe_errors.inc();
          c.encoder().error_reply(_out, w.id, proto::error_code::already_subscribed);
        } else if (c.sub_count >= _opts.client_channel_limit) {
          _stats.subscribe_errors.inc();
          c.encoder().error_reply(_out, w.id, proto::error_code::limit_exceeded);
        } else {
          proto::subscribe_request req = w.sub;
          req.channel = w.channel;
          req.epoch = w.epoch;
          req.token = {};
          req.data_json = {};
          req.delta = {};
          subscribe_allowed(c, w.id, req, std::move(r.data));
        }
        break;
      }
      case proxy_kind::publish:
        publish_allowed(c, w.id, w.channel, r.data.empty() ? std::string_view(w.data) : std::string_view(r.data));
        break;
      case proxy_kind::rpc:
        c.encoder().rpc_reply(_out, w.id, r.data);
        break;
      default: break;
    }
  }
  reply_frame(c);
}

void centrifuge_handler::proxy_failed(client& c, std::uint32_t id, const proxy_reply& r) {
  // Temporary errors: centrifuge-js retries a connect or subscribe with its
  // backoff; 111 when our own bound refused it, 100 when the backend failed
  // (or its breaker is open).
  using o_t = proxy_reply::outcome;
  std::uint32_t code = r.what == o_t::overloaded ? proto::error_code::too_many_requests : proto::error_code::internal;
  c.encoder().error_reply(_out, id, code);
}

void centrifuge_handler::proxy_connect(client& c, const proto::command& cmd) {
  const auto& req = cmd.connect;
  c.id = new_client_id();
  c.connect_id = cmd.id;
  c.st = client::state::connect_pending;  // a second connect is a bad request; stale_timeout still runs
  proxy_wait w;
  w.id = cmd.id;
  w.kind = proxy_kind::connect;
  auto id_chars = c.id_text();
  proxy_request pr;
  pr.client = std::string_view(id_chars.data(), id_chars.size());
  pr.name = req.name;
  pr.version = req.version;
  pr.data = req.data_json;
  proxy_call(c, std::move(w), pr);
}

void centrifuge_handler::connect_answered(client& c, std::uint32_t id, proxy_reply&& r) {
  using o_t = proxy_reply::outcome;
  if (c.st != client::state::connect_pending) return;
  _out.clear();
  if (r.what != o_t::result) {
    _stats.connect_errors.inc();
    if (r.what == o_t::disconnect) return disconnect(c, static_cast<std::uint16_t>(r.code), r.message);
    if (r.what == o_t::error) {
      c.encoder().error_reply(_out, id, r.code, r.message, r.temporary);
    } else {
      proxy_failed(c, id, r);
    }
    c.st = client::state::connecting;  // it may send connect again (stale_timeout still runs)
    return reply_frame(c);
  }
  if (r.user.empty() && !_opts.allow_anonymous_connect) {
    // The backend let an anonymous client in: allowed only as the token
    // path allows it.
    _stats.connect_errors.inc();
    return disconnect(c, proto::disconnect_code::permission_denied, "permission denied");
  }
  c.st = client::state::connecting;
  c.user = compact_string(r.user);
  if (!r.info.empty()) c.conn_info = std::make_unique<const std::string>(std::move(r.info));
  c.exp = r.expire_at;
  c.proxy_refresh = r.expire_at > 0 && proxied(proxy_kind::refresh);
  if (!r.data.empty()) _connect_data[&c] = std::move(r.data);
  start_connected(c, r.channels);
  reply_frame(c);
}

void centrifuge_handler::proxy_refresh(client& c) {
  c.refreshing = true;
  proxy_wait w;
  w.kind = proxy_kind::refresh;
  auto id_chars = c.id_text();
  proxy_request pr = proxy_fields(c, id_chars);
  proxy_call(c, std::move(w), pr);
}

void centrifuge_handler::refresh_answered(client& c, proxy_reply&& r) {
  using o_t = proxy_reply::outcome;
  c.refreshing = false;
  if (c.st != client::state::connected) return;
  if (r.what == o_t::disconnect) return disconnect(c, static_cast<std::uint16_t>(r.code), r.message);
  // An error or a failure: tried again at the next ping, as Centrifugo
  // retries; the connection stays meanwhile.
  if (r.what != o_t::result) return;
  if (r.expired) return disconnect(c, proto::disconnect_code::expired, "connection expired");
  _stats.refreshes.inc();
  c.exp = r.expire_at;  // 0: no longer expires
  if (!r.info.empty()) c.conn_info = std::make_unique<const std::string>(std::move(r.info));
}

void centrifuge_handler::handle_rpc(client& c, const proto::command& cmd) {
  if (!proxied(proxy_kind::rpc)) return error(c, cmd, proto::error_code::not_available, "not available");
  proxy_wait w;
  w.id = cmd.id;
  w.kind = proxy_kind::rpc;
  auto id_chars = c.id_text();
  proxy_request pr = proxy_fields(c, id_chars);
  pr.method = cmd.rpc.method_name;
  pr.data = cmd.rpc.data_json;
  proxy_call(c, std::move(w), pr);
}

}  // namespace sb
