// The commands a Centrifuge client sends (connect, subscribe, unsubscribe,
// publish, refresh, sub_refresh, ping, send, history, presence, rpc): each
// checks the namespace's rules and the client's rights, then either replies
// at once (into the frame's replies, _out) or asks the channel's home and
// replies when it answers. Shard thread only.
#include "gateway/client.hpp"

#include "gateway/client_state.hpp"
#include "routing/mesh.hpp"

#include <string>
#include <vector>

namespace sb {

void centrifuge_handler::bad_request(client& c) {
  _stats.bad_requests.inc();
  _out.clear();
  disconnect(c, proto::disconnect_code::bad_request, "bad request");
}

void centrifuge_handler::error(client& c, const proto::command& cmd, std::uint32_t code, std::string_view message) {
  c.encoder().error_reply(_out, cmd.id, code, message, proto::error_temporary(code));
}

// History and presence reads are answered when the channel's home has
// answered: the reply goes out in a frame of its own. `send(query, origin,
// mesh)` sends the read; false when the mesh refused it.
template <typename Send>
void centrifuge_handler::ask_home(client& c, std::uint32_t id, Send&& send) {
  std::uint64_t query = ++_next_query;
  _queries.emplace(query, std::make_pair(&c, id));
  ++c.pending_queries;
  if (send(query, _router.id(), _router.shard_mesh())) return;
  _queries.erase(query);
  --c.pending_queries;
  c.encoder().error_reply(_out, id, proto::error_code::too_many_requests);
}

void centrifuge_handler::handle(client& c, const proto::command& cmd) {
  using proto::method;
  if (cmd.m == method::none) {  // {}: the answer to our ping
    c.awaiting_pong = false;
    return;
  }
  if (cmd.m != method::connect && cmd.m != method::send && cmd.id == 0) return bad_request(c);
  if (cmd.m != method::connect && c.st != client::state::connected) {
    // Anything but connect before connecting is a protocol violation.
    return bad_request(c);
  }
  if ((_refuse_message || _limiter.any()) && !admit(c, cmd)) return;
  switch (cmd.m) {
    case method::connect: return handle_connect(c, cmd);
    case method::subscribe: return handle_subscribe(c, cmd);
    case method::unsubscribe:
      if (auto* sub = c.find(cmd.unsubscribe.channel)) {
        c.remove(sub);
        unsubscribe_client(c, sub);
        _stats.unsubscribes.inc();
      }
      c.encoder().empty_reply(_out, cmd.id, method::unsubscribe);
      return;
    case method::publish: return handle_publish(c, cmd);
    case method::refresh: return handle_refresh(c, cmd);
    case method::sub_refresh: return handle_sub_refresh(c, cmd);
    case method::ping:
      c.encoder().empty_reply(_out, cmd.id, method::ping);
      return;
    case method::send:
      // An asynchronous message with no handler on the server side: as
      // Centrifuge does, close with 3508 (there is no reply to put an error in).
      return disconnect(c, proto::disconnect_code::not_available, "not available");
    case method::history: return handle_history(c, cmd);
    case method::presence:
    case method::presence_stats: return handle_presence(c, cmd);
    case method::rpc: return handle_rpc(c, cmd);
    case method::none: return;
  }
}

bool centrifuge_handler::admit(client& c, const proto::command& cmd) {
  using proto::method;
  if (c.st == client::state::closing) return false;  // flooding: disconnected meanwhile
  auto refuse = [&] {
    _stats.rate_limited.inc();
    if (cmd.id != 0) error(c, cmd, proto::error_code::too_many_requests, "too many requests");
    _stats.rate_limit_tracked.set(_limiter.tracked());
    return false;
  };
  if (_refuse_message) return refuse();
  limited kind;
  switch (cmd.m) {
    case method::publish: kind = limited::publish; break;
    case method::subscribe: kind = limited::subscribe; break;
    case method::history: kind = limited::history; break;
    case method::presence:
    case method::presence_stats: kind = limited::presence; break;
    case method::rpc: kind = limited::rpc; break;
    default: return true;
  }
  if (!_limiter.enabled(kind)) return true;
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  switch (_limiter.take(&c, kind, now)) {
    case rate_limiter::verdict::allow: return true;
    case rate_limiter::verdict::refuse: return refuse();
    case rate_limiter::verdict::disconnect: break;
  }
  _stats.rate_limit_disconnects.inc();
  reply_frame(c);  // the answers so far go out before the close frame
  disconnect(c, proto::disconnect_code::too_many_requests, "too many requests");
  return false;
}

void centrifuge_handler::sweep() {
  if (!_limiter.any()) return;
  _limiter.sweep(std::chrono::steady_clock::now().time_since_epoch().count());
  _stats.rate_limit_tracked.set(_limiter.tracked());
}

void centrifuge_handler::options_changed() {
  _limiter.reconfigure(_opts.limits);
  _stats.rate_limit_tracked.set(_limiter.tracked());
}

void centrifuge_handler::handle_connect(client& c, const proto::command& cmd) {
  using proto::method;
  using namespace proto::error_code;
  if (c.st != client::state::connecting) return bad_request(c);
  const auto& req = cmd.connect;
  auth::connect_claims claims;
  if (req.token.empty() && proxied(proxy_kind::connect)) return proxy_connect(c, cmd);
  if (req.token.empty()) {
    if (!_opts.allow_anonymous_without_token) {
      _stats.connect_errors.inc();
      return disconnect(c, proto::disconnect_code::bad_request, "bad request");
    }
  } else {
    auto v = _opts.verifier->verify_connect(req.token, unix_now(), claims);
    if (v == auth::verify_error::expired) {
      _stats.connect_errors.inc();
      return error(c, cmd, token_expired, "token expired");
    }
    if (v != auth::verify_error::none) {
      _stats.connect_errors.inc();
      return disconnect(c, proto::disconnect_code::invalid_token, "invalid token");
    }
    if (claims.user.empty() && !_opts.allow_anonymous_connect) {
      _stats.connect_errors.inc();
      return disconnect(c, proto::disconnect_code::invalid_token, "invalid token");
    }
  }
  c.user = compact_string(claims.user);
  c.id = new_client_id();
  if (!claims.info_json.empty()) c.conn_info = std::make_unique<const std::string>(std::move(claims.info_json));
  c.exp = claims.expires_at();
  c.connect_id = cmd.id;
  start_connected(c, claims.channels);
}

// A client is who it says (token or backend): indexed, its server-side
// subscriptions made (live before the reply), pinged from now on.
void centrifuge_handler::start_connected(client& c, const std::vector<std::string>& channels) {
  index_user(c);
  _stats.connects.inc();
  c.st = client::state::connect_pending;
  for (const auto& ch : channels) {
    if (c.find(ch) || c.sub_count >= _opts.client_channel_limit) continue;
    if (_opts.rules.check_name(ch) != routing::name_check::ok) continue;
    routing::subscription* sub = subscribe_client(c, ch, nullptr, subscription_flags(_opts.rules, ch, nullptr, c.push_format()));
    if (!sub) return disconnect(c, proto::disconnect_code::server_error, "internal server error");
    c.add(sub, 0, true);
    if (!sub->active) ++c.connect_waiting;
  }
  c.sess.set_timer(_opts.ping_interval);
  // Subscriptions already active (this shard receives the channel)
  // were confirmed inside subscribe(), before their entry existed, so
  // only the pending ones are waited for.
  if (c.connect_waiting == 0) c.finish_connect(_out);
}

void centrifuge_handler::handle_subscribe(client& c, const proto::command& cmd) {
  using proto::method;
  using namespace proto::error_code;
  const auto& req = cmd.subscribe;
  switch (_opts.rules.check_name(req.channel)) {
    case routing::name_check::ok: break;
    case routing::name_check::empty: return bad_request(c);
    case routing::name_check::too_long: _stats.subscribe_errors.inc(); return error(c, cmd, limit_exceeded, "limit exceeded");
    case routing::name_check::bad_character: _stats.subscribe_errors.inc(); return error(c, cmd, proto::error_code::bad_request, "bad request");
  }
  const routing::channel_options* ns = _opts.rules.resolve(req.channel);
  if (!ns) {
    _stats.subscribe_errors.inc();
    return error(c, cmd, unknown_channel, "unknown channel");
  }
  if (c.find(req.channel)) {
    _stats.subscribe_errors.inc();
    return error(c, cmd, already_subscribed, "already subscribed");
  }
  if (c.sub_count >= _opts.client_channel_limit) {
    _stats.subscribe_errors.inc();
    return error(c, cmd, limit_exceeded, "limit exceeded");
  }
  bool allowed = false;
  if (req.token.empty() && ns->proxy_subscribe && !routing::channel_rules::is_user_limited(req.channel)) {
    // The backend decides (subscribe proxy); the answer subscribes.
    proxy_wait w;
    w.id = cmd.id;
    w.kind = proxy_kind::subscribe;
    w.channel = req.channel;
    w.epoch = req.epoch;
    w.sub = req;
    auto id_chars = c.id_text();
    proxy_request pr = proxy_fields(c, id_chars);
    pr.channel = req.channel;
    pr.data = req.data_json;
    return proxy_call(c, std::move(w), pr);
  }
  if (!req.token.empty()) {
    auth::subscribe_claims sc;
    auto v = _opts.verifier->verify_subscribe(req.token, unix_now(), sc);
    if (v == auth::verify_error::expired) {
      _stats.subscribe_errors.inc();
      return error(c, cmd, token_expired, "token expired");
    }
    if (v != auth::verify_error::none || sc.channel != req.channel || sc.user != c.user) {
      _stats.subscribe_errors.inc();
      return disconnect(c, proto::disconnect_code::invalid_token, "invalid token");
    }
    allowed = true;
  } else if (routing::channel_rules::is_user_limited(req.channel)) {
    allowed = ns->allow_user_limited_channels && routing::channel_rules::user_in_channel(req.channel, c.user);
  } else if (c.user.empty()) {
    allowed = ns->allow_subscribe_for_anonymous;
  } else {
    allowed = ns->allow_subscribe_for_client;
  }
  if (!allowed) {
    _stats.subscribe_errors.inc();
    return error(c, cmd, permission_denied, "permission denied");
  }
  subscribe_allowed(c, cmd.id, req, {});
}

// `data`: the subscribe result's data (from the subscribe proxy), or empty.
void centrifuge_handler::subscribe_allowed(client& c, std::uint32_t id, const proto::subscribe_request& req,
                                           std::string data) {
  using namespace proto::error_code;
  // Recovery: the client knew this stream at {offset, epoch} and asks
  // for what it missed; the home answers in stream order.
  routing::subscribe_flags flags = subscription_flags(_opts.rules, req.channel, &req, c.push_format());
  routing::recovery_request rec{req.offset, req.epoch};
  routing::subscription* sub =
      subscribe_client(c, req.channel, flags.recoverable && req.recover ? &rec : nullptr, flags);
  if (!sub) {
    _stats.subscribe_errors.inc();
    c.encoder().error_reply(_out, id, internal);
    return;
  }
  _stats.subscribes.inc();
  c.add(sub, sub->active ? 0u : id, false);
  if (!sub->active && !data.empty()) _subscribe_data[sub] = std::move(data);
  if (sub->active) {
    // Already active: on_subscribed ran during subscribe() with no
    // reply id recorded; answer here.
    routing::position pos;
    pos.offset = sub->channel->last_offset;
    pos.epoch = sub->channel->epoch;
    pos.was_recovering = req.recover;  // asked on a channel without recovery
    proto::subscribe_result r;
    std::vector<proto::publication_view> none;
    fill_subscribe_result(r, pos, sub->recoverable, sub->positioned, none);
    r.data_json = data;
    c.encoder().subscribe_reply(_out, id, r);
  }
}

void centrifuge_handler::handle_publish(client& c, const proto::command& cmd) {
  using proto::method;
  using namespace proto::error_code;
  const auto& req = cmd.publish;
  if (_opts.rules.check_name(req.channel) != routing::name_check::ok) {
    _stats.publish_errors.inc();
    return error(c, cmd, proto::error_code::bad_request, "bad request");
  }
  const routing::channel_options* ns = _opts.rules.resolve(req.channel);
  if (!ns) {
    _stats.publish_errors.inc();
    return error(c, cmd, unknown_channel, "unknown channel");
  }
  if (ns->proxy_publish) {
    // The backend decides, and may replace the data (publish proxy).
    proxy_wait w;
    w.id = cmd.id;
    w.kind = proxy_kind::publish;
    w.channel = req.channel;
    w.data = req.data_json;
    auto id_chars = c.id_text();
    proxy_request pr = proxy_fields(c, id_chars);
    pr.channel = req.channel;
    pr.data = req.data_json.empty() ? std::string_view("null") : req.data_json;
    return proxy_call(c, std::move(w), pr);
  }
  bool subscribed = c.find(req.channel) != nullptr;
  bool allowed = c.user.empty() ? ns->allow_publish_for_anonymous
                                : (ns->allow_publish_for_client || (ns->allow_publish_for_subscriber && subscribed));
  if (c.user.empty() && ns->allow_publish_for_subscriber && subscribed) allowed = true;
  if (!allowed) {
    _stats.publish_errors.inc();
    return error(c, cmd, permission_denied, "permission denied");
  }
  publish_allowed(c, cmd.id, req.channel, req.data_json);
}

void centrifuge_handler::publish_allowed(client& c, std::uint32_t id, std::string_view channel, std::string_view data) {
  using namespace proto::error_code;
  routing::publication_ptr pub(new routing::publication);
  pub->channel.assign(channel);
  pub->data.assign(data.empty() ? std::string_view("null") : data);
  pub->has_info = true;
  pub->info.user = c.user;
  auto id_chars = c.id_text();
  pub->info.client.assign(id_chars.data(), id_chars.size());
  pub->info.conn_info = c.conn_info_view();
  if (_opts.publish_waits_for_engine) {
    // A shared store orders publications (the Redis engine): the reply
    // waits for its answer, so that a refused publication says so.
    _stats.publishes.inc();
    return ask_home(c, id, [&](std::uint64_t query, unsigned origin, mesh& m) {
      return _router.publish(std::move(pub), [self = this, query, origin, &m](std::uint32_t err, std::uint64_t,
                                                                              std::string_view) {
        (void)m.invoke_on(origin, [self, query, err] { self->answer_publish(query, err); });
      });
    });
  }
  if (!_router.publish(std::move(pub))) {
    _stats.publish_errors.inc();
    c.encoder().error_reply(_out, id, too_many_requests);
    return;
  }
  _stats.publishes.inc();
  c.encoder().empty_reply(_out, id, proto::method::publish);
}

void centrifuge_handler::handle_refresh(client& c, const proto::command& cmd) {
  using proto::method;
  using namespace proto::error_code;
  auth::connect_claims claims;
  auto v = _opts.verifier->verify_connect(cmd.refresh.token, unix_now(), claims);
  if (v == auth::verify_error::expired) return error(c, cmd, token_expired, "token expired");
  if (v != auth::verify_error::none || claims.user != c.user) {
    return disconnect(c, proto::disconnect_code::invalid_token, "invalid token");
  }
  c.exp = claims.expires_at();
  _stats.refreshes.inc();
  proto::refresh_result r;
  auto id_chars = c.id_text();
  r.client = std::string_view(id_chars.data(), id_chars.size());
  r.version = _opts.version;
  r.expires = c.exp > 0;
  r.ttl = c.exp > 0 ? ttl_until(c.exp) : 0;
  c.encoder().refresh_reply(_out, cmd.id, r);
}

void centrifuge_handler::handle_sub_refresh(client& c, const proto::command& cmd) {
  using proto::method;
  using namespace proto::error_code;
  const auto& req = cmd.sub_refresh;
  if (!c.find(req.channel)) return error(c, cmd, permission_denied, "permission denied");
  auth::subscribe_claims sc;
  auto v = _opts.verifier->verify_subscribe(req.token, unix_now(), sc);
  if (v == auth::verify_error::expired) return error(c, cmd, token_expired, "token expired");
  if (v != auth::verify_error::none || sc.channel != req.channel || sc.user != c.user) {
    return disconnect(c, proto::disconnect_code::invalid_token, "invalid token");
  }
  std::int64_t exp = sc.expires_at();
  c.encoder().sub_refresh_reply(_out, cmd.id, exp > 0, exp > 0 ? ttl_until(exp) : 0);
}

void centrifuge_handler::handle_history(client& c, const proto::command& cmd) {
  using proto::method;
  using namespace proto::error_code;
  const auto& req = cmd.history;
  if (_opts.rules.check_name(req.channel) != routing::name_check::ok) {
    return error(c, cmd, proto::error_code::bad_request, "bad request");
  }
  const routing::channel_options* ns = _opts.rules.resolve(req.channel);
  if (!ns) return error(c, cmd, unknown_channel, "unknown channel");
  if (ns->history_size == 0 || ns->history_ttl.count() == 0) return error(c, cmd, not_available, "not available");
  bool allowed = ns->allow_history_for_client || (ns->allow_history_for_subscriber && c.find(req.channel));
  if (!allowed) return error(c, cmd, permission_denied, "permission denied");
  routing::history_query q;
  q.limit = req.limit;
  q.has_since = req.has_since;
  q.since_offset = req.since_offset;
  q.since_epoch = std::string(req.since_epoch);
  q.reverse = req.reverse;
  ask_home(c, cmd.id, [&](std::uint64_t query, unsigned origin, mesh& m) {
    return routing::router::query_history(
        m, origin, _router.all(), req.channel, std::move(q), [self = this, query, origin, &m](routing::history_answer&& a) {
          // On the home shard: back to the client's shard.
          (void)m.invoke_on(origin,
                            [self, query, a = std::move(a)]() mutable { self->answer_history(query, std::move(a)); });
        });
  });
}

void centrifuge_handler::handle_presence(client& c, const proto::command& cmd) {
  using proto::method;
  using namespace proto::error_code;
  std::string_view channel = cmd.m == method::presence ? cmd.presence.channel : cmd.presence_stats.channel;
  if (_opts.rules.check_name(channel) != routing::name_check::ok) {
    return error(c, cmd, proto::error_code::bad_request, "bad request");
  }
  const routing::channel_options* ns = _opts.rules.resolve(channel);
  if (!ns) return error(c, cmd, unknown_channel, "unknown channel");
  if (!ns->presence) return error(c, cmd, not_available, "not available");
  bool allowed = ns->allow_presence_for_client || (ns->allow_presence_for_subscriber && c.find(channel));
  if (!allowed) return error(c, cmd, permission_denied, "permission denied");
  bool counts_only = cmd.m == method::presence_stats;
  ask_home(c, cmd.id, [&](std::uint64_t query, unsigned origin, mesh& m) {
    return routing::router::query_presence(
        m, origin, _router.all(), channel, counts_only,
        [self = this, query, origin, counts_only, &m](routing::presence_answer&& a) {
          (void)m.invoke_on(origin, [self, query, counts_only, a = std::move(a)]() mutable {
            self->answer_presence(query, counts_only, std::move(a));
          });
        });
  });
}

}  // namespace sb
