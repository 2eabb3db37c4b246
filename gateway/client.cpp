#include "gateway/client.hpp"

#include "routing/mesh.hpp"
#include "session/centrifuge_json.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace sb {

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string_view as_text(std::span<const std::uint8_t> p) {
  return {reinterpret_cast<const char*>(p.data()), p.size()};
}

// The reply frame being built for one incoming frame: replies joined by '\n'.
void next_line(std::string& out) {
  if (!out.empty()) out.push_back('\n');
}

}  // namespace

// ---------------------------------------------------------------------------
// client: the protocol state of one session

struct client final : routing::subscriber {
  enum class state : std::uint8_t { connecting, connect_pending, connected, closing };

  explicit client(session& s) : sess(s) {}

  void on_subscribed(routing::subscription& s, const routing::position& pos) override;
  void deliver(const frame_ref& frame) override { (void)sess.send(frame); }
  void on_insufficient_state(routing::subscription& s) override;

  centrifuge_handler& handler() const noexcept {
    return static_cast<centrifuge_handler&>(*sess.context().handler());
  }

  // The client's subscriptions are chained through the subscriptions
  // themselves (subscription::next_of_owner): no vector per client.
  // owner_tag: the subscribe command waiting for activation (0: none);
  // owner_flag: server-side, from the connection token's `channels`.
  routing::subscription* find(std::string_view channel) const {
    for (auto* s = subs; s; s = s->next_of_owner) {
      if (s->name() == channel) return s;
    }
    return nullptr;
  }
  void add(routing::subscription* s, std::uint32_t reply_id, bool server_side) {
    s->owner_tag = reply_id;
    s->owner_flag = server_side;
    s->next_of_owner = subs;
    subs = s;
    ++sub_count;
  }
  void remove(routing::subscription* s) {
    for (auto** p = &subs; *p; p = &(*p)->next_of_owner) {
      if (*p == s) {
        *p = s->next_of_owner;
        --sub_count;
        return;
      }
    }
  }

  /// The client id as text (a UUID); kept as 16 bytes.
  std::array<char, 36> id_text() const noexcept;
  std::string_view conn_info_view() const noexcept { return conn_info ? std::string_view(*conn_info) : std::string_view(); }

  void on_deadline();  // the session timer we set passed
  void finish_connect(std::string& out);
  void push_subscribed(routing::subscription& s, const routing::position& pos);

  session& sess;
  compact_string user;                       // 31 characters inline (std::string: 15)
  std::array<std::uint8_t, 16> id{};        // client id (UUID bytes)
  std::unique_ptr<const std::string> conn_info;  // raw JSON from the token's `info`; null when none
  std::int64_t exp = 0;                     // connection expiry (unix seconds), 0: none
  routing::subscription* subs = nullptr;    // newest first
  client* next_of_user = nullptr;           // the user's next client on this shard (user index)
  std::uint32_t connect_id = 0;             // connect command waiting for server-side subscriptions
  std::uint32_t connect_waiting = 0;        // server-side subscriptions not active yet
  std::uint16_t sub_count = 0;
  std::uint16_t pending_queries = 0;        // history reads waiting for the home
  state st = state::connecting;
  bool indexed = false;                     // in the handler's user index
  bool awaiting_pong = false;
  bool pong_check = false;                  // the armed deadline is the pong check, not the next ping
};

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
                                            const proto::subscribe_request* req) {
  routing::subscribe_flags f;
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
    proto::encode_subscribe_reply(out, s.owner_tag, r);
    s.owner_tag = 0;
    h.reply_frame(*this);
  }
}

void client::on_insufficient_state(routing::subscription&) {
  // The client reconnects and resubscribes from its last offset: recovery
  // fills the gap when the channel keeps enough history.
  handler().disconnect(*this, proto::disconnect_code::insufficient_state, "insufficient state");
}

void client::push_subscribed(routing::subscription& s, const routing::position& pos) {
  auto& h = handler();
  h._out.clear();
  proto::subscribe_push p;
  p.offset = pos.offset;
  p.epoch = pos.epoch;
  p.recoverable = s.recoverable;
  p.positioned = s.positioned;
  proto::encode_subscribe_push(h._out, s.name(), p);
  h.reply_frame(*this);
}

void client::finish_connect(std::string& out) {
  auto& h = handler();
  auto id_chars = id_text();
  proto::connect_result r;
  r.client = std::string_view(id_chars.data(), id_chars.size());
  r.version = h._opts.version;
  r.expires = exp > 0;
  r.ttl = exp > 0 ? static_cast<std::uint32_t>(std::max<std::int64_t>(exp - unix_now(), 0)) : 0;
  r.ping = static_cast<std::uint32_t>(h._opts.ping_interval.count() / 1000);
  r.pong = true;
  for (auto* s = subs; s; s = s->next_of_owner) {
    if (!s->owner_flag) continue;
    proto::sub_position pos;
    pos.channel = s->name();
    pos.offset = s->channel->last_offset;
    r.subs.push_back(pos);
  }
  next_line(out);
  proto::encode_connect_reply(out, connect_id, r);
  st = state::connected;
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
      if (c.exp > 0 && unix_now() > c.exp + h._opts.expired_close_delay.count() / 1000) {
        return h.disconnect(c, proto::disconnect_code::expired, "connection expired");
      }
      // Protocol ping: an empty object; centrifuge-js answers with one.
      h._out.clear();
      proto::encode_ping(h._out);
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
    : _opts(opts), _router(router), _sessions(sessions), _clients(new client_pool), _rng(std::random_device{}()) {
  _out.reserve(4096);
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

void centrifuge_handler::on_open(session& s) {
  client* c = _clients->acquire(s);
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
  if (c->pending_queries > 0) {
    boost::unordered::erase_if(_queries, [c](const auto& q) { return q.second.first == c; });
  }
  _clients->release(c);
  _stats.client_records.dec();
}

void centrifuge_handler::answer_history(std::uint64_t query, routing::history_answer&& a) {
  auto it = _queries.find(query);
  if (it == _queries.end()) return;  // the client is gone
  auto [c, id] = it->second;
  _queries.erase(it);
  --c->pending_queries;
  if (c->st != client::state::connected) return;
  _out.clear();
  if (a.error != 0) {
    proto::encode_error_reply(_out, id, a.error);
  } else {
    std::vector<proto::publication_view> views;
    routing::position pos;
    pos.publications = a.publications;
    proto::subscribe_result unused;
    fill_subscribe_result(unused, pos, false, false, views);
    proto::encode_history_reply(_out, id, views, a.epoch, a.offset);
  }
  reply_frame(*c);
}

void centrifuge_handler::answer_presence(std::uint64_t query, bool counts_only, routing::presence_answer&& a) {
  auto it = _queries.find(query);
  if (it == _queries.end()) return;  // the client is gone
  auto [c, id] = it->second;
  _queries.erase(it);
  --c->pending_queries;
  if (c->st != client::state::connected) return;
  _out.clear();
  if (a.error != 0) {
    proto::encode_error_reply(_out, id, a.error);
  } else if (counts_only) {
    proto::encode_presence_stats_reply(_out, id, a.num_clients, a.num_users);
  } else {
    std::vector<proto::client_info_view> views;
    views.reserve(a.clients.size());
    for (const auto& ci : a.clients) views.push_back({ci.user, ci.client, ci.conn_info, ci.chan_info});
    proto::encode_presence_reply(_out, id, views);
  }
  reply_frame(*c);
}

void centrifuge_handler::on_timer(session& s) {
  if (auto* c = static_cast<client*>(s.user)) c->on_deadline();
}

void centrifuge_handler::reply_frame(client& c) {
  if (_out.empty()) return;
  (void)c.sess.send(ws::make_frame(_sessions.frames(), ws::opcode::text, _out));
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
        subscribe_client(c, channel, nullptr, subscription_flags(_opts.rules, channel, nullptr));
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
    proto::encode_unsubscribe_push(_out, channel, 2000, "server unsubscribe");
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
    proto::encode_refresh_push(_out, expire_at > 0,
                               expire_at > 0 ? static_cast<std::uint32_t>(std::max<std::int64_t>(expire_at - unix_now(), 0)) : 0);
    reply_frame(c);
    return true;
  });
}

frame_ref centrifuge_handler::encode_publication(frame_pool& pool, const routing::publication& pub) {
  // Once per publication per shard: every subscriber shares these bytes.
  thread_local std::string text;
  text.clear();
  proto::publication_view p;
  p.channel = pub.channel;
  p.data = pub.data;
  p.offset = pub.offset;
  if (pub.has_info) {
    p.has_info = true;
    p.info.user = pub.info.user;
    p.info.client = pub.info.client;
    p.info.conn_info = pub.info.conn_info;
    p.info.chan_info = pub.info.chan_info;
  }
  switch (pub.what) {
    case routing::publication::kind::publication: {
      proto::encode_publication_push(text, p);
      frame_ref frame = ws::make_frame(pool, ws::opcode::text, text);
      frame.set_stamp(pub.entered_ns);
      return frame;
    }
    case routing::publication::kind::join:
      proto::encode_join_push(text, pub.channel, p.info);
      break;
    case routing::publication::kind::leave:
      proto::encode_leave_push(text, pub.channel, p.info);
      break;
  }
  return ws::make_frame(pool, ws::opcode::text, text);
}

void centrifuge_handler::on_message(session& s, ws::opcode op, std::span<const std::uint8_t> payload) {
  auto* c = static_cast<client*>(s.user);
  if (!c || c->st == client::state::closing) return;
  if (op != ws::opcode::text) {
    // The JSON protocol travels in text frames only.
    _stats.bad_requests.inc();
    return disconnect(*c, proto::disconnect_code::bad_request, "bad request");
  }
  _out.clear();
  thread_local proto::command_parser parser;
  auto err = parser.parse(as_text(payload), [&](const proto::command& cmd) {
    if (c->st != client::state::closing) handle(*c, cmd);
  });
  if (err != proto::parse_error::none && c->st != client::state::closing) {
    _stats.bad_requests.inc();
    _out.clear();
    return disconnect(*c, proto::disconnect_code::bad_request, "bad request");
  }
  reply_frame(*c);
}

template <typename Command>
void centrifuge_handler::handle(client& c, const Command& cmd) {
  using proto::method;
  using namespace proto::error_code;
  auto error = [&](std::uint32_t code, std::string_view message) {
    next_line(_out);
    proto::encode_error_reply(_out, cmd.id, code, message);
  };
  auto bad_request = [&] {
    _stats.bad_requests.inc();
    _out.clear();
    disconnect(c, proto::disconnect_code::bad_request, "bad request");
  };

  if (cmd.m == method::none) {  // {}: the answer to our ping
    c.awaiting_pong = false;
    return;
  }
  if (cmd.m != method::connect && cmd.m != method::send && cmd.id == 0) return bad_request();
  if (cmd.m != method::connect && c.st != client::state::connected) {
    // Anything but connect before connecting is a protocol violation.
    return bad_request();
  }

  switch (cmd.m) {
    case method::connect: {
      if (c.st != client::state::connecting) return bad_request();
      const auto& req = cmd.connect;
      auth::connect_claims claims;
      if (req.token.empty()) {
        if (!_opts.allow_anonymous_without_token) {
          _stats.connect_errors.inc();
          return disconnect(c, proto::disconnect_code::bad_request, "bad request");
        }
      } else {
        auto v = _opts.verifier->verify_connect(req.token, unix_now(), claims);
        if (v == auth::verify_error::expired) {
          _stats.connect_errors.inc();
          return error(token_expired, "token expired");
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
      index_user(c);
      _stats.connects.inc();
      // Server-side subscriptions from the token: live before the reply.
      c.connect_id = cmd.id;
      c.st = client::state::connect_pending;
      for (const auto& ch : claims.channels) {
        if (c.find(ch) || c.sub_count >= _opts.client_channel_limit) continue;
        if (_opts.rules.check_name(ch) != routing::name_check::ok) continue;
        routing::subscription* sub = subscribe_client(c, ch, nullptr, subscription_flags(_opts.rules, ch, nullptr));
        if (!sub) return disconnect(c, proto::disconnect_code::server_error, "internal server error");
        c.add(sub, 0, true);
        if (!sub->active) ++c.connect_waiting;
      }
      c.sess.set_timer(_opts.ping_interval);
      // Subscriptions already active (this shard receives the channel)
      // were confirmed inside subscribe(), before their entry existed, so
      // only the pending ones are waited for.
      if (c.connect_waiting == 0) c.finish_connect(_out);
      return;
    }

    case method::subscribe: {
      const auto& req = cmd.subscribe;
      switch (_opts.rules.check_name(req.channel)) {
        case routing::name_check::ok: break;
        case routing::name_check::empty: return bad_request();
        case routing::name_check::too_long: _stats.subscribe_errors.inc(); return error(limit_exceeded, "limit exceeded");
        case routing::name_check::bad_character: _stats.subscribe_errors.inc(); return error(proto::error_code::bad_request, "bad request");
      }
      const routing::channel_options* ns = _opts.rules.resolve(req.channel);
      if (!ns) {
        _stats.subscribe_errors.inc();
        return error(unknown_channel, "unknown channel");
      }
      if (c.find(req.channel)) {
        _stats.subscribe_errors.inc();
        return error(already_subscribed, "already subscribed");
      }
      if (c.sub_count >= _opts.client_channel_limit) {
        _stats.subscribe_errors.inc();
        return error(limit_exceeded, "limit exceeded");
      }
      bool allowed = false;
      if (!req.token.empty()) {
        auth::subscribe_claims sc;
        auto v = _opts.verifier->verify_subscribe(req.token, unix_now(), sc);
        if (v == auth::verify_error::expired) {
          _stats.subscribe_errors.inc();
          return error(token_expired, "token expired");
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
        return error(permission_denied, "permission denied");
      }
      // Recovery: the client knew this stream at {offset, epoch} and asks
      // for what it missed; the home answers in stream order.
      routing::subscribe_flags flags = subscription_flags(_opts.rules, req.channel, &req);
      routing::recovery_request rec{req.offset, req.epoch};
      routing::subscription* sub =
          subscribe_client(c, req.channel, flags.recoverable && req.recover ? &rec : nullptr, flags);
      if (!sub) {
        _stats.subscribe_errors.inc();
        return error(internal, "internal server error");
      }
      _stats.subscribes.inc();
      c.add(sub, sub->active ? 0u : cmd.id, false);
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
        next_line(_out);
        proto::encode_subscribe_reply(_out, cmd.id, r);
      }
      return;
    }

    case method::unsubscribe: {
      if (auto* sub = c.find(cmd.unsubscribe.channel)) {
        c.remove(sub);
        unsubscribe_client(c, sub);
        _stats.unsubscribes.inc();
      }
      next_line(_out);
      proto::encode_empty_reply(_out, cmd.id, method::unsubscribe);
      return;
    }

    case method::publish: {
      const auto& req = cmd.publish;
      if (_opts.rules.check_name(req.channel) != routing::name_check::ok) {
        _stats.publish_errors.inc();
        return error(proto::error_code::bad_request, "bad request");
      }
      const routing::channel_options* ns = _opts.rules.resolve(req.channel);
      if (!ns) {
        _stats.publish_errors.inc();
        return error(unknown_channel, "unknown channel");
      }
      bool subscribed = c.find(req.channel) != nullptr;
      bool allowed = c.user.empty() ? ns->allow_publish_for_anonymous
                                    : (ns->allow_publish_for_client || (ns->allow_publish_for_subscriber && subscribed));
      if (c.user.empty() && ns->allow_publish_for_subscriber && subscribed) allowed = true;
      if (!allowed) {
        _stats.publish_errors.inc();
        return error(permission_denied, "permission denied");
      }
      routing::publication_ptr pub(new routing::publication);
      pub->channel.assign(req.channel);
      pub->data.assign(req.data_json.empty() ? std::string_view("null") : req.data_json);
      pub->has_info = true;
      pub->info.user = c.user;
      auto id_chars = c.id_text();
      pub->info.client.assign(id_chars.data(), id_chars.size());
      pub->info.conn_info = c.conn_info_view();
      if (!_router.publish(std::move(pub))) {
        _stats.publish_errors.inc();
        return error(too_many_requests, "too many requests");
      }
      _stats.publishes.inc();
      next_line(_out);
      proto::encode_empty_reply(_out, cmd.id, method::publish);
      return;
    }

    case method::refresh: {
      auth::connect_claims claims;
      auto v = _opts.verifier->verify_connect(cmd.refresh.token, unix_now(), claims);
      if (v == auth::verify_error::expired) return error(token_expired, "token expired");
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
      r.ttl = c.exp > 0 ? static_cast<std::uint32_t>(std::max<std::int64_t>(c.exp - unix_now(), 0)) : 0;
      next_line(_out);
      proto::encode_refresh_reply(_out, cmd.id, r);
      return;
    }

    case method::sub_refresh: {
      const auto& req = cmd.sub_refresh;
      if (!c.find(req.channel)) return error(permission_denied, "permission denied");
      auth::subscribe_claims sc;
      auto v = _opts.verifier->verify_subscribe(req.token, unix_now(), sc);
      if (v == auth::verify_error::expired) return error(token_expired, "token expired");
      if (v != auth::verify_error::none || sc.channel != req.channel || sc.user != c.user) {
        return disconnect(c, proto::disconnect_code::invalid_token, "invalid token");
      }
      std::int64_t exp = sc.expires_at();
      next_line(_out);
      proto::encode_sub_refresh_reply(_out, cmd.id, exp > 0,
                                      exp > 0 ? static_cast<std::uint32_t>(std::max<std::int64_t>(exp - unix_now(), 0)) : 0);
      return;
    }

    case method::ping:
      next_line(_out);
      proto::encode_empty_reply(_out, cmd.id, method::ping);
      return;

    case method::send:
      // An asynchronous message with no handler on the server side: as
      // Centrifuge does, close with 3508 (there is no reply to put an error in).
      return disconnect(c, proto::disconnect_code::not_available, "not available");

    case method::history: {
      const auto& req = cmd.history;
      if (_opts.rules.check_name(req.channel) != routing::name_check::ok) {
        return error(proto::error_code::bad_request, "bad request");
      }
      const routing::channel_options* ns = _opts.rules.resolve(req.channel);
      if (!ns) return error(unknown_channel, "unknown channel");
      if (ns->history_size == 0 || ns->history_ttl.count() == 0) return error(not_available, "not available");
      bool allowed = ns->allow_history_for_client || (ns->allow_history_for_subscriber && c.find(req.channel));
      if (!allowed) return error(permission_denied, "permission denied");
      routing::history_query q;
      q.limit = req.limit;
      q.has_since = req.has_since;
      q.since_offset = req.since_offset;
      q.since_epoch = std::string(req.since_epoch);
      q.reverse = req.reverse;
      // Answered when the home has answered: the reply goes out in a frame
      // of its own.
      std::uint64_t query = ++_next_query;
      _queries.emplace(query, std::make_pair(&c, cmd.id));
      ++c.pending_queries;
      auto* self = this;
      unsigned origin = _router.id();
      mesh& m = _router.shard_mesh();
      bool sent = routing::router::query_history(
          m, origin, _router.all(), req.channel, std::move(q), [self, query, origin, &m](routing::history_answer&& a) {
            // On the home shard: back to the client's shard.
            (void)m.invoke_on(origin, [self, query, a = std::move(a)]() mutable { self->answer_history(query, std::move(a)); });
          });
      if (!sent) {
        _queries.erase(query);
        --c.pending_queries;
        return error(too_many_requests, "too many requests");
      }
      return;
    }

    case method::presence:
    case method::presence_stats: {
      std::string_view channel = cmd.m == method::presence ? cmd.presence.channel : cmd.presence_stats.channel;
      if (_opts.rules.check_name(channel) != routing::name_check::ok) {
        return error(proto::error_code::bad_request, "bad request");
      }
      const routing::channel_options* ns = _opts.rules.resolve(channel);
      if (!ns) return error(unknown_channel, "unknown channel");
      if (!ns->presence) return error(not_available, "not available");
      bool allowed = ns->allow_presence_for_client || (ns->allow_presence_for_subscriber && c.find(channel));
      if (!allowed) return error(permission_denied, "permission denied");
      bool counts_only = cmd.m == method::presence_stats;
      std::uint64_t query = ++_next_query;
      _queries.emplace(query, std::make_pair(&c, cmd.id));
      ++c.pending_queries;
      auto* self = this;
      unsigned origin = _router.id();
      mesh& m = _router.shard_mesh();
      bool sent = routing::router::query_presence(
          m, origin, _router.all(), channel, counts_only,
          [self, query, origin, counts_only, &m](routing::presence_answer&& a) {
            (void)m.invoke_on(origin, [self, query, counts_only, a = std::move(a)]() mutable {
              self->answer_presence(query, counts_only, std::move(a));
            });
          });
      if (!sent) {
        _queries.erase(query);
        --c.pending_queries;
        return error(too_many_requests, "too many requests");
      }
      return;
    }

    case method::rpc:
      // RPC needs a proxy to the backend, which is not configurable yet.
      return error(not_available, "not available");

    case method::none:
      return;
  }
}

}  // namespace sb
