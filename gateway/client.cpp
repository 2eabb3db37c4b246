// A connection's life in the Centrifuge protocol: the client record, its
// connect result, protocol pings, close, the user index and the server
// API's operations on a user's clients. The commands are in
// client_commands.cpp.
#include "gateway/client.hpp"

#include "gateway/client_state.hpp"
#include "routing/mesh.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace sb {

static_assert(sizeof(client) <= 112, "one client record per session: keep it small (bench/RESULTS.md)");

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::uint32_t ttl_until(std::int64_t exp) {
  return static_cast<std::uint32_t>(std::max<std::int64_t>(exp - unix_now(), 0));
}

// ---------------------------------------------------------------------------
// client: the protocol state of one session

std::array<char, 36> client::id_text() const noexcept {
  static constexpr char hex[] = "0123456789abcdef";
  std::array<char, 36> out;
  std::size_t o = 0;
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[id[i] >> 4];
    out[o++] = hex[id[i] & 0xf];
  }
  return out;
}

std::string_view client_user(const client& c) noexcept { return c.user; }

// How a subscription follows its channel, as Centrifugo decides it:
// recovery and positioning need history; each is on when the namespace
// forces it, or allows it and the client asks (`recoverable`, `positioned`
// in subscribe); recovery implies positioning. Join/leave pushes go to the
// subscriptions that ask for them (or to all with force_push_join_leave).
// `req` is null for server-side subscriptions, which cannot ask.
routing::subscribe_flags subscription_flags(const routing::channel_rules& rules, std::string_view channel,
                                            const proto::subscribe_request* req, std::uint8_t push_format) {
  routing::subscribe_flags f;
  f.push_format = push_format;
  const routing::channel_options* o = rules.resolve(channel);
  if (!o) return f;
  bool history = o->history_size > 0 && o->history_ttl.count() > 0;
  f.recoverable = history && (o->force_recovery || (o->allow_recovery && req && req->recoverable));
  f.positioned = history && (o->force_positioning || f.recoverable || (o->allow_positioning && req && req->positioned));
  f.join_leave = o->join_leave && (o->force_push_join_leave || (req && req->join_leave));
  return f;
}

void fill_subscribe_result(proto::subscribe_result& r, const routing::position& pos, bool recoverable,
                           bool positioned, std::vector<proto::publication_view>& views) {
  r.offset = pos.offset;
  r.epoch = pos.epoch;
  r.recoverable = recoverable;
  r.positioned = positioned;
  r.was_recovering = pos.was_recovering;
  r.recovered = pos.recovered;
  views.clear();
  for (const auto& p : pos.publications) {
    proto::publication_view v;
    v.data = p->data;
    v.offset = p->offset;
    if (p->has_info) {
      v.has_info = true;
      v.info.user = p->info.user;
      v.info.client = p->info.client;
      v.info.conn_info = p->info.conn_info;
      v.info.chan_info = p->info.chan_info;
    }
    views.push_back(v);
  }
  r.publications = views;
}

void client::on_subscribed(routing::subscription& s, const routing::position& pos) {
  auto& h = handler();
  auto& out = h._out;
  if (s.owner_flag) {
    if (st == state::connect_pending && --connect_waiting == 0) {
      // Every server-side subscription is live: now the connect reply.
      out.clear();
      finish_connect(out);
      h.reply_frame(*this);
    } else if (st == state::connected) {
      // Made through the server API after connect.
      push_subscribed(s, pos);
    }
  } else if (s.owner_tag) {
    out.clear();
    proto::subscribe_result r;
    thread_local std::vector<proto::publication_view> views;
    fill_subscribe_result(r, pos, s.recoverable, s.positioned, views);
    std::string data;  // from the subscribe proxy
    if (!h._subscribe_data.empty()) {
      if (auto it = h._subscribe_data.find(&s); it != h._subscribe_data.end()) {
        data = std::move(it->second);
        h._subscribe_data.erase(it);
      }
    }
    r.data_json = data;
    encoder().subscribe_reply(out, s.owner_tag, r);
    s.owner_tag = 0;
    h.reply_frame(*this);
  }
}

void client::on_insufficient_state(routing::subscription&) {
  // The client reconnects and resubscribes from its last offset: recovery
  // fills the gap when the channel keeps enough history.
  handler().disconnect(*this, proto::disconnect_code::insufficient_state, "insufficient state");
}

void client::on_subscribe_failed(routing::subscription& s, std::uint32_t code) {
  auto& h = handler();
  remove(&s);
  h._stats.subscribe_errors.inc();
  if (!h._subscribe_data.empty()) h._subscribe_data.erase(&s);
  // The join sent after the subscribe is undone (the home saw it, in order).
  const routing::channel_options* ns = h._opts.rules.resolve(s.name());
  if (ns && ns->presence) h._router.leave(s.name(), h.presence_info(*this));
  if (s.owner_flag) {
    // A token's channel that cannot be joined: the connect cannot complete
    // as the token asks (Centrifugo disconnects with 3004 too). Made by the
    // server API after connect: nothing was promised to the client.
    if (st == state::connect_pending) h.disconnect(*this, proto::disconnect_code::server_error, "internal server error");
    return;
  }
  if (s.owner_tag == 0 || st != state::connected) return;
  h._out.clear();
  encoder().error_reply(h._out, s.owner_tag, code);  // 100 is temporary: centrifuge-js subscribes again
  h.reply_frame(*this);
}

void client::push_subscribed(routing::subscription& s, const routing::position& pos) {
  auto& h = handler();
  h._out.clear();
  proto::server_subscription p;
  p.offset = pos.offset;
  p.epoch = pos.epoch;
  p.recoverable = s.recoverable;
  p.positioned = s.positioned;
  encoder().subscribe_push(h._out, s.name(), p);
  h.reply_frame(*this);
}

void client::finish_connect(std::string& out) {
  auto& h = handler();
  auto id_chars = id_text();
  proto::connect_result r;
  r.client = std::string_view(id_chars.data(), id_chars.size());
  r.version = h._opts.version;
  // A client the server refreshes (refresh proxy) is not asked to.
  r.expires = exp > 0 && !proxy_refresh;
  r.ttl = r.expires ? ttl_until(exp) : 0;
  std::string data;  // from the connect proxy
  if (!h._connect_data.empty()) {
    if (auto it = h._connect_data.find(this); it != h._connect_data.end()) {
      data = std::move(it->second);
      h._connect_data.erase(it);
    }
  }
  r.data_json = data;
  r.ping = static_cast<std::uint32_t>(h._opts.ping_interval.count() / 1000);
  r.pong = true;
  for (auto* s = subs; s; s = s->next_of_owner) {
    if (!s->owner_flag) continue;
    proto::sub_position pos;
    pos.channel = s->name();
    pos.offset = s->channel->last_offset;
    r.subs.push_back(pos);
  }
  encoder().connect_reply(out, connect_id, r);
  st = state::connected;
  sess.established();  // no longer in flight for admission
}

void client::on_deadline() {
  client& c = *this;
  auto& h = c.handler();
  switch (c.st) {
    case state::connecting:
    case state::connect_pending:
      // No (complete) connect in time.
      return h.disconnect(c, proto::disconnect_code::stale, "stale");
    case state::connected: {
      if (c.pong_check) {
        // pong_timeout after a ping: the answer must have come.
        c.pong_check = false;
        if (c.awaiting_pong) return h.disconnect(c, proto::disconnect_code::no_pong, "no pong");
        auto rest = h._opts.ping_interval - h._opts.pong_timeout;
        c.sess.set_timer(rest > std::chrono::milliseconds(1000) ? rest : std::chrono::milliseconds(1000));
        return;
      }
      if (c.proxy_refresh) {
        // The backend extends it (refresh proxy), checked at each ping.
        if (c.exp > 0 && unix_now() >= c.exp && !c.refreshing) h.proxy_refresh(c);
      } else if (c.exp > 0 && unix_now() > c.exp + h._opts.expired_close_delay.count() / 1000) {
        return h.disconnect(c, proto::disconnect_code::expired, "connection expired");
      }
      // Protocol ping: an empty object; centrifuge-js answers with one.
      h._out.clear();
      c.encoder().ping(h._out);
      h.reply_frame(c);
      c.awaiting_pong = true;
      c.pong_check = true;
      c.sess.set_timer(h._opts.pong_timeout);
      return;
    }
    case state::closing:
      return;
  }
}

// ---------------------------------------------------------------------------
// handler

struct centrifuge_handler::client_pool : object_pool<client> {};

centrifuge_handler::centrifuge_handler(const protocol_options& opts, routing::router& router, session_context& sessions)
    : _opts(opts),
      _router(router),
      _sessions(sessions),
      _clients(new client_pool),
      _rng(std::random_device{}()),
      _limiter(opts.limits) {
  for (std::size_t f = 0; f < proto::format_count; ++f) _decoders[f] = proto::make_decoder(static_cast<proto::format>(f));
  _out.reserve(4096);
  if (opts.proxy && opts.proxy->any()) _proxy = std::make_unique<backend_proxy>(sessions.io(), *opts.proxy, _stats.proxy);
}

// Sessions end before the handler (shard shutdown closes them first), so
// the user index is empty by now.
centrifuge_handler::~centrifuge_handler() = default;

std::array<std::uint8_t, 16> centrifuge_handler::new_client_id() {
  // A random (version 4) UUID, as Centrifugo's client ids are.
  std::uint64_t a = _rng(), b = _rng();
  a = (a & 0xffffffffffff0fffull) | 0x0000000000004000ull;
  b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;
  std::array<std::uint8_t, 16> id;
  for (int i = 0; i < 8; ++i) {
    id[i] = static_cast<std::uint8_t>(a >> (56 - 8 * i));
    id[8 + i] = static_cast<std::uint8_t>(b >> (56 - 8 * i));
  }
  return id;
}

void centrifuge_handler::on_open(session& s, const ws::upgrade_result& req) {
  client* c = _clients->acquire(s);
  // The wire format, as Centrifugo picks it: the `centrifuge-protobuf`
  // subprotocol (centrifuge-js's protobuf build over WebSocket) or
  // ?cf_protocol=protobuf; JSON otherwise.
  if (req.subprotocol == "centrifuge-protobuf" || ws::query_param(req.query, "cf_protocol") == "protobuf") {
    c->wire = static_cast<std::uint8_t>(proto::format::protobuf);
  }
  _stats.client_records.inc();
  s.user = c;
  // The connect command must arrive within the stale timeout.
  s.set_timer(_opts.stale_timeout);
}

routing::client_info centrifuge_handler::presence_info(const client& c) const {
  routing::client_info info;
  info.user.assign(c.user.view());
  auto id = c.id_text();
  info.client.assign(id.data(), id.size());
  info.conn_info.assign(c.conn_info_view());
  return info;
}

routing::subscription* centrifuge_handler::subscribe_client(client& c, std::string_view channel,
                                                            const routing::recovery_request* rec,
                                                            routing::subscribe_flags flags) {
  routing::subscription* sub = _router.subscribe(c, channel, rec, flags);
  // After the subscribe on the same ring: the home has the channel by then.
  if (sub) {
    const routing::channel_options* ns = _opts.rules.resolve(channel);
    if (ns && ns->presence) _router.join(channel, presence_info(c));
  }
  return sub;
}

void centrifuge_handler::unsubscribe_client(client& c, routing::subscription* sub) {
  // Before the unsubscribe, which may tell the home this shard is done.
  const routing::channel_options* ns = _opts.rules.resolve(sub->name());
  if (ns && ns->presence) _router.leave(sub->name(), presence_info(c));
  if (!_subscribe_data.empty()) _subscribe_data.erase(sub);
  _router.unsubscribe(sub);
}

void centrifuge_handler::on_close(session& s) {
  auto* c = static_cast<client*>(s.user);
  if (!c) return;
  s.user = nullptr;
  for (auto* sub = c->subs; sub;) {
    auto* next = sub->next_of_owner;
    unsubscribe_client(*c, sub);
    sub = next;
  }
  c->subs = nullptr;
  c->sub_count = 0;
  if (c->indexed) unindex_user(*c);
  if (c->pending_queries > 0) forget_waits(*c);
  if (_limiter.any()) {
    _limiter.forget(c);
    _stats.rate_limit_tracked.set(_limiter.tracked());
  }
  _clients->release(c);
  _stats.client_records.dec();
}

std::pair<client*, std::uint32_t> centrifuge_handler::take_query(std::uint64_t query) {
  auto it = _queries.find(query);
  if (it == _queries.end()) return {nullptr, 0};  // the client is gone
  auto [c, id] = it->second;
  _queries.erase(it);
  --c->pending_queries;
  if (c->st != client::state::connected) return {nullptr, 0};
  return {c, id};
}

void centrifuge_handler::answer_history(std::uint64_t query, routing::history_answer&& a) {
  auto [c, id] = take_query(query);
  if (!c) return;
  _out.clear();
  if (a.error != 0) {
    c->encoder().error_reply(_out, id, a.error);
  } else {
    std::vector<proto::publication_view> views;
    routing::position pos;
    pos.publications = a.publications;
    proto::subscribe_result unused;
    fill_subscribe_result(unused, pos, false, false, views);
    c->encoder().history_reply(_out, id, views, a.epoch, a.offset);
  }
  reply_frame(*c);
}

void centrifuge_handler::answer_publish(std::uint64_t query, std::uint32_t error) {
  auto [c, id] = take_query(query);
  if (!c) return;
  _out.clear();
  if (error) {
    _stats.publish_errors.inc();
    c->encoder().error_reply(_out, id, error);
  } else {
    c->encoder().empty_reply(_out, id, proto::method::publish);
  }
  reply_frame(*c);
}

void centrifuge_handler::answer_presence(std::uint64_t query, bool counts_only, routing::presence_answer&& a) {
  auto [c, id] = take_query(query);
  if (!c) return;
  _out.clear();
  if (a.error != 0) {
    c->encoder().error_reply(_out, id, a.error);
  } else if (counts_only) {
    c->encoder().presence_stats_reply(_out, id, a.num_clients, a.num_users);
  } else {
    std::vector<proto::client_info_view> views;
    views.reserve(a.clients.size());
    for (const auto& ci : a.clients) views.push_back({ci.user, ci.client, ci.conn_info, ci.chan_info});
    c->encoder().presence_reply(_out, id, views);
  }
  reply_frame(*c);
}

void centrifuge_handler::on_timer(session& s) {
  if (auto* c = static_cast<client*>(s.user)) c->on_deadline();
}

void centrifuge_handler::reply_frame(client& c) {
  if (_out.empty()) return;
  auto op = c.encoder().binary_frames() ? ws::opcode::binary : ws::opcode::text;
  (void)c.sess.send_message(op, _out);
  _out.clear();
}

void centrifuge_handler::disconnect(client& c, std::uint16_t code, std::string_view reason) {
  if (c.st == client::state::closing) return;
  c.st = client::state::closing;
  _stats.disconnects.inc();
  c.sess.cancel_timer();
  // Protocol v2 over WebSocket: the disconnect code and reason travel in
  // the close frame.
  c.sess.close(code, reason);
}

// The user index holds one client per user (the set's element, found by its
// user); the user's other clients on this shard hang off it through
// next_of_user. Most users have one connection per shard, and then the
// index costs one 8-byte slot, nothing else.
void centrifuge_handler::index_user(client& c) {
  c.indexed = true;
  _stats.clients.inc();
  if (c.format() == proto::format::protobuf) _stats.protobuf_clients.inc();
  auto it = _users.find(std::string_view(c.user));
  if (it == _users.end()) {
    _users.insert(&c);
    _stats.users.inc();
    return;
  }
  client* head = *it;
  c.next_of_user = head->next_of_user;
  head->next_of_user = &c;
}

void centrifuge_handler::unindex_user(client& c) {
  c.indexed = false;
  _stats.clients.dec();
  if (c.format() == proto::format::protobuf) _stats.protobuf_clients.dec();
  auto it = _users.find(std::string_view(c.user));
  client* head = *it;
  if (head == &c) {
    _users.erase(it);
    if (c.next_of_user) {
      _users.insert(c.next_of_user);  // the same user: the same key
    } else {
      _stats.users.dec();
    }
  } else {
    client* p = head;
    while (p->next_of_user != &c) p = p->next_of_user;
    p->next_of_user = c.next_of_user;
  }
  c.next_of_user = nullptr;
}

template <typename Fn>
std::size_t centrifuge_handler::for_user(std::string_view user, std::string_view client_id, Fn&& fn) {
  auto it = _users.find(user);
  if (it == _users.end()) return 0;
  // Collected first: fn may start a close, and a later on_close unlinks.
  boost::container::small_vector<client*, 4> targets;
  for (client* c = *it; c; c = c->next_of_user) {
    if (c->st != client::state::connected) continue;
    if (!client_id.empty()) {
      auto id = c->id_text();
      if (std::string_view(id.data(), id.size()) != client_id) continue;
    }
    targets.push_back(c);
  }
  std::size_t n = 0;
  for (client* c : targets) n += fn(*c) ? 1 : 0;
  return n;
}

std::size_t centrifuge_handler::disconnect_user(std::string_view user, std::string_view client_id, std::uint16_t code,
                                                std::string_view reason) {
  // disconnect() only starts the close; the index changes at on_close.
  return for_user(user, client_id, [&](client& c) {
    disconnect(c, code, reason);
    return true;
  });
}

std::size_t centrifuge_handler::subscribe_user(std::string_view user, std::string_view client_id,
                                               std::string_view channel) {
  return for_user(user, client_id, [&](client& c) {
    if (c.find(channel) || c.sub_count >= _opts.client_channel_limit) return false;
    routing::subscription* sub =
        subscribe_client(c, channel, nullptr, subscription_flags(_opts.rules, channel, nullptr, c.push_format()));
    if (!sub) return false;
    // owner_flag (server-side) on a connected client: on_subscribed sends
    // the subscribe push when the home confirms; if the subscription is
    // already live, it was confirmed inside subscribe(): push now.
    c.add(sub, 0, true);
    if (sub->active) {
      routing::position pos;
      pos.offset = sub->channel->last_offset;
      pos.epoch = sub->channel->epoch;
      c.push_subscribed(*sub, pos);
    }
    _stats.subscribes.inc();
    return true;
  });
}

std::size_t centrifuge_handler::unsubscribe_user(std::string_view user, std::string_view client_id,
                                                 std::string_view channel) {
  return for_user(user, client_id, [&](client& c) {
    routing::subscription* sub = c.find(channel);
    if (!sub) return false;
    c.remove(sub);
    unsubscribe_client(c, sub);
    _stats.unsubscribes.inc();
    _out.clear();
    c.encoder().unsubscribe_push(_out, channel, proto::unsubscribe_code::server, "server unsubscribe");
    reply_frame(c);
    return true;
  });
}

std::size_t centrifuge_handler::refresh_user(std::string_view user, std::string_view client_id, std::int64_t expire_at,
                                             bool expired) {
  return for_user(user, client_id, [&](client& c) {
    if (expired) {
      disconnect(c, proto::disconnect_code::expired, "connection expired");
      return true;
    }
    c.exp = expire_at;
    _stats.refreshes.inc();
    _out.clear();
    c.encoder().refresh_push(_out, expire_at > 0, expire_at > 0 ? ttl_until(expire_at) : 0);
    reply_frame(c);
    return true;
  });
}

/// Feeds the commands of a frame to the handler, in order.
struct centrifuge_handler::command_handler final : proto::command_sink {
  centrifuge_handler& h;
  client& c;
  command_handler(centrifuge_handler& handler, client& cl) : h(handler), c(cl) {}
  bool on_command(const proto::command& cmd) override {
    if (c.st == client::state::closing) return false;
    h.handle(c, cmd);
    return true;
  }
};

void centrifuge_handler::on_message(session& s, ws::opcode op, std::span<const std::uint8_t> payload) {
  auto* c = static_cast<client*>(s.user);
  if (!c || c->st == client::state::closing) return;
  proto::command_decoder* decoder = _decoders[c->wire].get();
  if (!decoder || (op == ws::opcode::binary) != c->encoder().binary_frames()) {
    // A format travels in its own frame type only (JSON: text).
    _stats.bad_requests.inc();
    return disconnect(*c, proto::disconnect_code::bad_request, "bad request");
  }
  _out.clear();
  if (_limiter.enabled(limited::read_bytes)) {
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    switch (_limiter.take(c, limited::read_bytes, now, payload.size())) {
      case rate_limiter::verdict::allow: break;
      case rate_limiter::verdict::refuse: _refuse_message = true; break;  // each command answered 111
      case rate_limiter::verdict::disconnect:
        _stats.rate_limit_disconnects.inc();
        return disconnect(*c, proto::disconnect_code::too_many_requests, "too many requests");
    }
  }
  command_handler sink(*this, *c);
  auto err = decoder->decode(payload, sink);
  _refuse_message = false;
  if (err != proto::parse_error::none && c->st != client::state::closing) {
    _stats.bad_requests.inc();
    _out.clear();
    return disconnect(*c, proto::disconnect_code::bad_request, "bad request");
  }
  reply_frame(*c);
}

}  // namespace sb
