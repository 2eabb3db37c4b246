// The Redis engine's history reads, presence and housekeeping
// (routing/redis_engine.hpp; streams in redis_engine.cpp, recovery in
// redis_engine_recover.cpp).

#include "routing/redis_codec.hpp"
#include "routing/redis_engine.hpp"
#include "routing/redis_engine_store.hpp"
#include "routing/router_stats.hpp"

#include <boost/unordered/unordered_flat_set.hpp>

#include <charconv>

namespace sb::routing {

namespace {
// Script indexes in redis_engine.cpp's table.
constexpr int history_script = 2, presence_add_script = 3, presence_remove_script = 4, presence_get_script = 5;
// stop(): how long this node's presence removals may take before the
// connections close anyway (the rest expires by presence_ttl).
constexpr std::chrono::seconds farewell_limit{2};
}  // namespace

void redis_engine::history(std::string_view channel, const history_query& q, history_done done) {
  history_answer a;
  const channel_options* o = _rules ? _rules->resolve(channel) : nullptr;
  if (!keeps_history(o)) {
    a.error = 108;
    return done(std::move(a));
  }
  unsigned srv = server_of(channel, static_cast<unsigned>(_servers.size()));
  std::string stream = key("stream", channel), meta = key("meta", channel);
  if (q.remove) {
    // The entries go; the meta (offset, epoch) stays, so clients that knew
    // the stream are told they cannot recover rather than given a new one.
    _servers[srv].commands->command({"DEL", stream}, [done = std::move(done)](const redis::reply* r) mutable {
      history_answer out;
      if (!r || r->is_error()) out.error = 100;
      done(std::move(out));
    });
    return;
  }
  std::string ttl = std::to_string(_opts.history_meta_ttl.count()), cand = new_epoch();
  std::string since = q.has_since ? std::to_string(q.since_offset) : "-1";
  std::string limit = std::to_string(q.limit < 0 ? -1 : q.limit);
  std::string_view keys[] = {stream, meta};
  std::string_view args[] = {ttl, cand, since, limit, q.reverse ? "1" : "0"};
  script(srv, history_script, keys, args,
         [name = std::string(channel), q, done = std::move(done)](const redis::reply* r) mutable {
           history_answer out;
           if (!r || r->type() != redis::reply::kind::array || r->size() < 4) {
             out.error = 100;
             return done(std::move(out));
           }
           out.offset = static_cast<std::uint64_t>(r->at(0).integer());
           out.epoch = std::string(r->at(1).str());
           auto first = static_cast<std::uint64_t>(r->at(2).integer());
           if (q.has_since) {
             // Everything after since_offset must still be retained, in this epoch.
             bool servable = q.since_epoch == out.epoch && q.since_offset <= out.offset &&
                             (q.since_offset == out.offset || (first != 0 && first <= q.since_offset + 1));
             if (!servable) {
               out.error = 112;
               return done(std::move(out));
             }
           }
           redis::reply entries = r->at(3);
           out.publications.reserve(entries.size());
           for (std::size_t i = 0; i < entries.size(); ++i) {
             redis::reply e = entries.at(i);
             if (e.size() < 2 || e.at(1).size() < 2) continue;
             publication_ptr p(new publication);
             if (!redis_codec::decode_body(e.at(1).at(1).str(), *p)) continue;  // not ours: skipped
             std::string_view id = e.at(0).str();
             std::from_chars(id.data(), id.data() + id.size(), p->offset);
             p->channel = name;
             out.publications.push_back(std::move(p));
           }
           done(std::move(out));
         });
}

void redis_engine::presence_event(publication_ptr event) {
  const channel_options* o = _rules ? _rules->resolve(event->channel) : nullptr;
  if (!o || !o->presence) return;
  const std::string& client = event->info.client;
  bool join = event->what == publication::kind::join;
  if (join) {
    std::string value;
    redis_codec::encode_info(event->info, value);
    auto& clients = _present[event->channel];
    auto [it, added] = clients.insert_or_assign(client, std::move(value));
    if (added) _stats->presence_entries.inc();
    presence_write(event->channel, client, it->second, true, o->join_leave, true);
    return;
  }
  auto ch = _present.find(event->channel);
  if (ch == _present.end() || ch->second.erase(client) == 0) return;  // never joined here
  _stats->presence_entries.dec();
  std::string channel = event->channel;
  if (ch->second.empty()) _present.erase(ch);
  std::string value;
  redis_codec::encode_info(event->info, value);
  presence_write(channel, client, value, false, o->join_leave, true);
}

void redis_engine::presence_write(std::string_view channel, const std::string& client, const std::string& value,
                                  bool join, bool join_leave, bool announce) {
  unsigned srv = server_of(channel, static_cast<unsigned>(_servers.size()));
  std::string hash = key("presence", channel), exp = key("presence_exp", channel), pub = key("pub", channel);
  bool jl = join_leave && announce;
  std::string msg;
  if (jl) {
    client_info who;
    if (!redis_codec::decode_info(value, who)) return;
    msg = redis_codec::encode_presence_message(join ? publication::kind::join : publication::kind::leave, who);
  }
  std::string_view keys[] = {hash, exp, pub};
  if (join) {
    std::string ttl = std::to_string(_opts.presence_ttl.count());
    std::string_view args[] = {client, value, ttl, jl ? "1" : "0", msg};
    script(srv, presence_add_script, keys, args, {});
  } else {
    std::string_view args[] = {client, jl ? "1" : "0", msg};
    script(srv, presence_remove_script, keys, args, {});
  }
}

void redis_engine::refresh_presence() {
  // Every entry of this node's clients again, with a fresh expiry; no
  // join is announced (a Redis that lost the entry gets it back quietly).
  for (const auto& [channel, clients] : _present) {
    for (const auto& [client, value] : clients) presence_write(channel, client, value, true, false, false);
  }
}

void redis_engine::presence(std::string_view channel, bool counts_only, presence_done done) {
  presence_answer a;
  const channel_options* o = _rules ? _rules->resolve(channel) : nullptr;
  if (!o || !o->presence) {
    a.error = 108;
    return done(std::move(a));
  }
  unsigned srv = server_of(channel, static_cast<unsigned>(_servers.size()));
  std::string hash = key("presence", channel), exp = key("presence_exp", channel);
  std::string_view keys[] = {hash, exp};
  script(srv, presence_get_script, keys, {}, [counts_only, done = std::move(done)](const redis::reply* r) mutable {
    presence_answer out;
    if (!r || r->type() != redis::reply::kind::array) {
      out.error = 100;
      return done(std::move(out));
    }
    boost::unordered_flat_set<std::string> users;
    for (std::size_t i = 0; i < r->size(); ++i) {
      client_info who;
      if (!redis_codec::decode_info(r->at(i).str(), who)) continue;
      ++out.num_clients;
      users.insert(who.user);
      if (!counts_only) out.clients.push_back(std::move(who));
    }
    out.num_users = static_cast<std::uint32_t>(users.size());
    done(std::move(out));
  });
}

void redis_engine::stop() {
  if (_stopped) return;
  _stopped = true;
  // Nothing more to receive; nothing reconnects.
  for (auto& srv : _servers) {
    if (srv.pubsub) srv.pubsub->stop();
  }
  // This node's clients leave presence with it, announced as leaves where
  // the namespace has join_leave, instead of lingering in Redis until
  // presence_ttl (a rolling deploy would show them online meanwhile). What
  // does not fit in a connection's pending queue, or finds it down, expires
  // by TTL as after a crash. Each command connection then closes once its
  // pipeline has answered (a PING after the removals), at the latest after
  // farewell_limit.
  for (const auto& [channel, clients] : _present) {
    const channel_options* o = _rules ? _rules->resolve(channel) : nullptr;
    bool join_leave = o && o->join_leave;
    for (const auto& [client, value] : clients) presence_write(channel, client, value, false, join_leave, true);
  }
  bool farewell = !_present.empty();
  _present.clear();
  for (auto& srv : _servers) {
    redis::connection* c = srv.commands.get();
    if (!c) continue;
    if (!farewell || !c->up()) {
      c->stop();
      continue;
    }
    ++_closing;
    c->command({"PING"}, [this, c](const redis::reply*) {
      c->stop();
      if (--_closing == 0) _farewell.cancel();
    });
  }
  if (_closing == 0) return;
  _farewell.expires_after(farewell_limit);
  _farewell.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    for (auto& srv : _servers) {
      if (srv.commands) srv.commands->stop();
    }
  });
}

void redis_engine::sweep() {
  if (_stopped) return;
  std::int64_t now = engine_now_ms();
  auto steady = std::chrono::steady_clock::now();
  if (!_present.empty() && steady >= _next_refresh) {
    _next_refresh = steady + _opts.presence_ttl / 3;
    refresh_presence();
  }
  std::vector<home_channel*> records = _records;
  for (home_channel* hc : records) {
    redis_store& s = *store_of(*hc);
    if (s.has_deferred()) expire_deferred(*hc, s, now);
    // Positioning failed while the pub/sub connection stayed up (the
    // command connection was away): try again for those still subscribed.
    if (s.ph == redis_store::phase::lost && s.subscribed && !hc->shards.empty() &&
        _servers[s.server].pubsub->up() && _servers[s.server].commands->up()) {
      position(*hc, s);
    }
  }
}

}  // namespace sb::routing
