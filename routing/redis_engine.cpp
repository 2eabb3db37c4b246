// The Redis engine's streams: connections, scripts, subscribing a channel
// and positioning it, and the live path of its publications
// (routing/redis_engine.hpp). Recovery is in redis_engine_recover.cpp,
// history reads and presence in redis_engine_reads.cpp.

#include "routing/redis_engine.hpp"

#include "pool/frame_buffer.hpp"  // steady_now_ns
#include "routing/channel_rules.hpp"
#include "routing/redis_codec.hpp"
#include "routing/redis_engine_store.hpp"
#include "routing/redis_scripts.hpp"
#include "routing/router_stats.hpp"

#include <openssl/evp.h>

namespace sb::routing {

namespace {

std::string sha1_hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(text.data(), text.size(), md, &n, EVP_sha1(), nullptr);
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(digits[md[i] >> 4]);
    out.push_back(digits[md[i] & 0xf]);
  }
  return out;
}

constexpr const char* script_text[] = {redis_scripts::publish,      redis_scripts::position,
                                       redis_scripts::history,      redis_scripts::presence_add,
                                       redis_scripts::presence_remove, redis_scripts::presence_get};

}  // namespace

unsigned redis_engine::server_of(std::string_view channel, unsigned n) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : channel) h = (h ^ c) * 0x100000001b3ull;
  // Jump consistent hash (Lamping & Veach): adding a server moves 1/n of the channels.
  std::int64_t b = -1, j = 0;
  while (j < static_cast<std::int64_t>(n)) {
    b = j;
    h = h * 2862933555777941757ull + 1;
    j = static_cast<std::int64_t>(static_cast<double>(b + 1) *
                                  (static_cast<double>(1ll << 31) / static_cast<double>((h >> 33) + 1)));
  }
  return static_cast<unsigned>(b < 0 ? 0 : b);
}

redis_engine::redis_engine(boost::asio::io_context& io, const channel_rules* rules, redis_engine_options o,
                           std::uint64_t seed)
    : _io(io), _rules(rules), _opts(std::move(o)), _rng(seed), _farewell(io) {
  for (const char* text : script_text) _shas.push_back(sha1_hex(text));
}

redis_engine::~redis_engine() {
  // Now, without a farewell: pending commands fail (their answers say 100).
  _stopped = true;
  _farewell.cancel();
  for (auto& srv : _servers) {
    if (srv.pubsub) srv.pubsub->stop();
    if (srv.commands) srv.commands->stop();
  }
}

void redis_engine::attach(engine_host& host, router_stats& stats) {
  _host = &host;
  _stats = &stats;
  for (unsigned i = 0; i < _opts.servers.size(); ++i) {
    server srv;
    redis::connection_options co = _opts.connection, so = _opts.connection;
    co.name = "switchboard-engine";
    so.name = "switchboard-engine-pubsub";
    srv.commands = std::make_unique<redis::connection>(_io, _opts.servers[i], co, false);
    srv.pubsub = std::make_unique<redis::connection>(_io, _opts.servers[i], so, true);
    srv.commands->on_state([this, i](bool up) { on_commands_state(i, up); });
    srv.pubsub->on_state([this, i](bool up) { on_pubsub_state(i, up); });
    srv.pubsub->set_pubsub_handler(this);
    _servers.push_back(std::move(srv));
  }
  for (auto& srv : _servers) {
    srv.commands->start();
    srv.pubsub->start();
  }
}

// ---------------------------------------------------------------------------
// keys and scripts

std::string redis_engine::key(std::string_view kind, std::string_view channel) const {
  std::string k;
  k.reserve(_opts.prefix.size() + kind.size() + channel.size() + 2);
  k.append(_opts.prefix).append(".").append(kind).append(".").append(channel);
  return k;
}

std::string_view redis_engine::channel_of(std::string_view pubsub_channel) const noexcept {
  std::size_t head = _opts.prefix.size() + 5;  // "P.pub."
  if (pubsub_channel.size() < head || pubsub_channel.substr(0, _opts.prefix.size()) != _opts.prefix ||
      pubsub_channel.substr(_opts.prefix.size(), 5) != ".pub.") {
    return {};
  }
  return pubsub_channel.substr(head);
}

std::string redis_engine::new_epoch() {
  static constexpr char digits[] = "0123456789abcdef";
  std::uint64_t z = (std::uint64_t{_rng()} << 32) ^ _rng();
  std::string e(8, '0');
  for (int i = 0; i < 8; ++i) e[static_cast<std::size_t>(i)] = digits[(z >> (4 * i)) & 0xf];
  return e;
}

void redis_engine::script(unsigned srv, int which, std::span<const std::string_view> keys,
                          std::span<const std::string_view> args, redis::reply_fn done) {
  std::string_view argv[16];
  std::size_t n = 0;
  char nkeys[4] = {static_cast<char>('0' + keys.size()), 0, 0, 0};
  argv[n++] = "EVALSHA";
  argv[n++] = _shas[static_cast<std::size_t>(which)];
  argv[n++] = std::string_view(nkeys, 1);
  for (auto k : keys) argv[n++] = k;
  for (auto a : args) argv[n++] = a;
  _servers[srv].commands->command(std::span<const std::string_view>(argv, n),
                                  [this, srv, done = std::move(done)](const redis::reply* r) mutable {
                                    if (r && r->is_error() && r->str().substr(0, 8) == "NOSCRIPT") load_scripts(srv);
                                    if (done) done(r);
                                  });
}

void redis_engine::load_scripts(unsigned srv) {
  // Queued before anything else on a fresh connection: the commands after
  // them in the same pipeline find the scripts loaded.
  for (const char* text : script_text) {
    _servers[srv].commands->command({"SCRIPT", "LOAD", text}, [this, srv](const redis::reply* r) {
      if (r && r->is_error() && _on_link) _on_link(_opts.servers[srv], false, false, r->str());
    });
  }
}

// ---------------------------------------------------------------------------
// connections

void redis_engine::on_commands_state(unsigned srv, bool up) {
  if (_on_link && !_stopped) _on_link(_opts.servers[srv], false, up, up ? "" : _servers[srv].commands->last_error());
  if (!up) return;
  load_scripts(srv);
  // Channels whose positioning failed while this connection was away (the
  // pub/sub one came back first) are positioned now.
  if (!_servers[srv].pubsub->up()) return;
  std::vector<home_channel*> records = _records;
  for (home_channel* hc : records) {
    redis_store& s = *store_of(*hc);
    if (s.server == srv && s.ph == redis_store::phase::lost && s.subscribed && !hc->shards.empty()) position(*hc, s);
  }
}

void redis_engine::on_pubsub_state(unsigned srv, bool up) {
  if (_on_link && !_stopped) _on_link(_opts.servers[srv], true, up, up ? "" : _servers[srv].pubsub->last_error());
  // A copy: answering waiters may not change the list now, but stays safe if it does.
  std::vector<home_channel*> records = _records;
  if (!up) {
    // Every channel of that server stops receiving: waiters fail at once,
    // the streams are positioned again when it returns.
    boost::unordered::erase_if(_unsubscribing, [&](const auto& kv) {
      return server_of(channel_of(kv.first), static_cast<unsigned>(_servers.size())) == srv;
    });
    for (home_channel* hc : records) {
      redis_store& s = *store_of(*hc);
      if (s.server != srv) continue;
      s.subscribed = false;
      lose(*hc, s);
    }
    return;
  }
  std::vector<std::string> names;
  for (home_channel* hc : records) {
    redis_store& s = *store_of(*hc);
    if (s.server != srv) continue;
    if (hc->shards.empty() && !s.has_waiters()) continue;  // released when the router gets to it
    s.ph = redis_store::phase::subscribing;
    names.push_back(key("pub", hc->name));
  }
  _servers[srv].pubsub->subscribe(names);
}

void redis_engine::on_subscribed(std::string_view channel) {
  if (!_unsubscribing.empty() && _unsubscribing.contains(std::string(channel))) return;  // an older SUBSCRIBE's
  home_channel* hc = _host->find_home(channel_of(channel));
  redis_store* s = hc ? store_of(*hc) : nullptr;
  if (!s || s->ph != redis_store::phase::subscribing) return;
  s->subscribed = true;
  if (s->history) return position(*hc, *s);
  go_live(*hc, *s, 0, {});
}

void redis_engine::on_unsubscribed(std::string_view channel) {
  if (_unsubscribing.empty()) return;
  auto it = _unsubscribing.find(std::string(channel));
  if (it == _unsubscribing.end()) return;
  if (--it->second == 0) _unsubscribing.erase(it);
}

// ---------------------------------------------------------------------------
// records

redis_store* redis_engine::store_of(home_channel& hc) const noexcept { return static_cast<redis_store*>(hc.store.get()); }

home_channel* redis_engine::find(std::string_view channel, std::uint64_t serial) const {
  home_channel* hc = _host->find_home(channel);
  if (!hc || !hc->store || store_of(*hc)->serial != serial) return nullptr;  // gone, or made again since
  return hc;
}

void redis_engine::on_make(home_channel& hc) {
  auto s = std::make_unique<redis_store>();
  s->history = keeps_history(_rules ? _rules->resolve(hc.name) : nullptr);
  s->server = static_cast<std::uint16_t>(server_of(hc.name, static_cast<unsigned>(_servers.size())));
  s->serial = ++_serial;
  s->index = static_cast<std::uint32_t>(_records.size());
  _records.push_back(&hc);
  hc.store = std::move(s);
}

void redis_engine::on_erase(home_channel& hc) {
  redis_store* s = store_of(hc);
  if (!s) return;
  fail_waiters(hc, *s);
  home_channel* last = _records.back();
  _records[s->index] = last;
  store_of(*last)->index = s->index;
  _records.pop_back();
  hc.store.reset();
}

void redis_engine::open(home_channel& hc, open_done done) {
  redis_store& s = *store_of(hc);
  using phase = redis_store::phase;
  if (s.ph == phase::live) return done(hc, 0, hc.offset, hc.epoch);
  if (s.ph == phase::lost && !(s.subscribed && _servers[s.server].pubsub->up())) return done(hc, 100, 0, {});
  s.side().waiters.push_back(redis_waiter{std::move(done), {}, 0, {}});
  if (s.ph == phase::idle) start_subscribe(hc, s);
  else if (s.ph == phase::lost) position(hc, s);
}

bool redis_engine::release(home_channel& hc) {
  redis_store* s = store_of(hc);
  if (!s) return false;
  if (s->busy()) {
    // Answers are on their way to this record: it stays until they came.
    s->release_wanted = true;
    return true;
  }
  unsubscribe(hc, *s);
  return false;
}

void redis_engine::unsubscribe(home_channel& hc, redis_store& s) {
  using phase = redis_store::phase;
  if (!(s.subscribed || s.ph == phase::subscribing || s.ph == phase::positioning)) return;
  auto& conn = *_servers[s.server].pubsub;
  if (!conn.up()) return;
  std::string name = key("pub", hc.name);
  conn.subscribe(std::span<const std::string>(&name, 1), false);
  ++_unsubscribing[name];
  s.subscribed = false;
  s.ph = phase::idle;
}

void redis_engine::settle(home_channel& hc, redis_store& s) {
  if (!s.release_wanted || s.busy()) return;
  s.release_wanted = false;
  if (!hc.shards.empty()) return;
  unsubscribe(hc, s);
  _host->erase_home(&hc);
}

void redis_engine::start_subscribe(home_channel& hc, redis_store& s) {
  auto& conn = *_servers[s.server].pubsub;
  if (!conn.up()) return lose(hc, s);
  std::string name = key("pub", hc.name);
  s.ph = redis_store::phase::subscribing;
  conn.subscribe(std::span<const std::string>(&name, 1), true);
}

void redis_engine::position(home_channel& hc, redis_store& s) {
  s.ph = redis_store::phase::positioning;
  if (s.t) s.t->held.clear();
  s.held_overflow = false;
  std::string stream = key("stream", hc.name), meta = key("meta", hc.name);
  std::string ttl = std::to_string(_opts.history_meta_ttl.count()), epoch = new_epoch();
  std::string_view keys[] = {stream, meta};
  std::string_view args[] = {ttl, epoch};
  script(s.server, 1, keys, args, [this, name = hc.name, serial = s.serial](const redis::reply* r) {
    home_channel* h = find(name, serial);
    if (!h) return;
    redis_store& st = *store_of(*h);
    if (st.ph != redis_store::phase::positioning) return;
    if (!r || r->type() != redis::reply::kind::array || r->size() < 2) return lose(*h, st);
    go_live(*h, st, static_cast<std::uint64_t>(r->at(0).integer()), stream_epoch(r->at(1).str()));
  });
}

void redis_engine::go_live(home_channel& hc, redis_store& s, std::uint64_t offset, stream_epoch epoch) {
  if (s.history && (offset != hc.offset || epoch.view() != hc.epoch.view())) {
    if (!hc.shards.empty()) {
      // Positioned again after an outage (or after held publications were
      // shed): this node's subscribers missed what lies in between.
      s.recent_overflow = true;
      _host->reset_stream(hc, offset, epoch);
    }
    hc.offset = offset;
    hc.epoch = epoch;
  }
  bool again = s.held_overflow;
  s.ph = redis_store::phase::live;
  std::vector<held_publication> held;
  if (s.t) held.swap(s.t->held);
  serve_waiters(hc, s);
  if (again) return position(hc, s);  // too much arrived meanwhile: where does it stand now?
  for (auto& h : held) deliver(hc, s, std::move(h.pub), h.epoch);
  s.trim();
  settle(hc, s);
}

void redis_engine::lose(home_channel& hc, redis_store& s) {
  s.ph = redis_store::phase::lost;
  if (s.t) s.t->held.clear();
  s.held_overflow = false;
  fail_waiters(hc, s);
  s.trim();
}

void redis_engine::serve_waiters(home_channel& hc, redis_store& s) {
  std::vector<redis_waiter> waiters;
  if (s.t) waiters.swap(s.t->waiters);
  for (auto& w : waiters) {
    if (w.open) {
      w.open(hc, 0, hc.offset, hc.epoch);
    } else {
      start_recover(hc, s, w.since, w.epoch, std::move(w.recover));
    }
  }
}

void redis_engine::fail_waiters(home_channel& hc, redis_store& s) {
  std::vector<redis_waiter> waiters;
  std::vector<redis_deferred> deferred;
  if (s.t) {
    waiters.swap(s.t->waiters);
    deferred.swap(s.t->deferred);
  }
  for (auto& w : waiters) {
    if (w.open) {
      w.open(hc, 100, 0, {});
    } else {
      recovery_answer a;
      a.error = 100;
      w.recover(hc, std::move(a));
    }
  }
  for (auto& d : deferred) {
    recovery_answer a;
    a.error = 100;
    d.done(hc, std::move(a));
  }
}

// ---------------------------------------------------------------------------
// the live path

void redis_engine::on_message(std::string_view channel, std::string_view payload) {
  home_channel* hc = _host->find_home(channel_of(channel));
  redis_store* s = hc ? store_of(*hc) : nullptr;
  if (!s) return;  // released meanwhile
  redis_codec::message m;
  publication_ptr pub(new publication);
  if (!redis_codec::decode_message(payload, m) || !redis_codec::decode_body(m.body, *pub)) {
    ++_bad_messages;
    return;
  }
  pub->what = m.what;
  pub->channel.assign(hc->name.view());
  pub->offset = m.offset;
  pub->entered_ns = steady_now_ns();
  using phase = redis_store::phase;
  if (m.what != publication::kind::publication) {
    if (s->ph == phase::live) _host->dispatch(*hc, pub);
    return;
  }
  if (s->ph == phase::positioning) {
    auto& held = s->side().held;
    if (held.size() >= held_limit) {
      held.clear();
      s->held_overflow = true;
    }
    if (!s->held_overflow) held.push_back({std::move(pub), stream_epoch(m.epoch)});
    return;
  }
  if (s->ph == phase::live) deliver(*hc, *s, std::move(pub), stream_epoch(m.epoch));
}

void redis_engine::deliver(home_channel& hc, redis_store& s, publication_ptr pub, stream_epoch epoch) {
  if (pub->offset == 0) {  // a channel without history: nothing to order
    _host->dispatch(hc, pub);
    return;
  }
  std::uint64_t off = pub->offset;
  if (epoch.view() != hc.epoch.view() || off > hc.offset + 1) {
    // A new stream (Redis lost its data) or publications this node missed:
    // subscribers are told before the publication reaches them.
    s.recent_overflow = true;
    _host->reset_stream(hc, off - 1, epoch);
    hc.epoch = epoch;
    hc.offset = off - 1;
  } else if (off <= hc.offset) {
    return;  // already dispatched (positioned past it)
  }
  hc.offset = off;
  if (s.recovering > 0) {
    auto& recent = s.side().recent;
    if (recent.size() < recent_limit) recent.push_back(pub);
    else s.recent_overflow = true;
  }
  _host->dispatch(hc, pub);
  if (s.has_deferred()) check_deferred(hc, s);
}

void redis_engine::publish(publication_ptr pub, publish_done done) {
  const channel_options* o = _rules ? _rules->resolve(pub->channel) : nullptr;
  unsigned srv = server_of(pub->channel, static_cast<unsigned>(_servers.size()));
  _stats->publications_home.inc();
  std::string pubkey = key("pub", pub->channel);
  if (!keeps_history(o)) {
    std::string msg = redis_codec::encode_plain_message(*pub);
    _servers[srv].commands->command({"PUBLISH", pubkey, msg}, [done = std::move(done)](const redis::reply* r) mutable {
      if (!done) return;
      if (!r || r->is_error()) return done(100, 0, {});
      done(0, 0, {});
    });
    return;
  }
  std::string body;
  redis_codec::encode_body(*pub, body);
  std::string stream = key("stream", pub->channel), meta = key("meta", pub->channel);
  std::string size = std::to_string(o->history_size), ttl = std::to_string(o->history_ttl.count());
  std::string meta_ttl = std::to_string(_opts.history_meta_ttl.count()), epoch = new_epoch();
  std::string_view keys[] = {stream, meta, pubkey};
  std::string_view args[] = {body, size, ttl, meta_ttl, epoch};
  script(srv, 0, keys, args, [done = std::move(done)](const redis::reply* r) mutable {
    if (!done) return;
    if (!r || r->type() != redis::reply::kind::array || r->size() < 2) return done(100, 0, {});
    done(0, static_cast<std::uint64_t>(r->at(0).integer()), r->at(1).str());
  });
}

}  // namespace sb::routing
