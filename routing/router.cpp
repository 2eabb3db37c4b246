#include "routing/router.hpp"

#include "routing/channel_rules.hpp"
#include "routing/mesh.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <random>

namespace sb::routing {

std::string_view subscription::name() const noexcept { return channel->name; }

bool shard_set::insert(std::uint16_t shard) {
  if (shard < 64) {
    std::uint64_t bit = std::uint64_t{1} << shard;
    bool added = (_low & bit) == 0;
    _low |= bit;
    return added;
  }
  if (!_high) _high = std::make_unique<std::vector<std::uint16_t>>();
  auto pos = std::lower_bound(_high->begin(), _high->end(), shard);
  if (pos != _high->end() && *pos == shard) return false;
  _high->insert(pos, shard);
  return true;
}

bool shard_set::erase(std::uint16_t shard) {
  if (shard < 64) {
    std::uint64_t bit = std::uint64_t{1} << shard;
    bool had = (_low & bit) != 0;
    _low &= ~bit;
    return had;
  }
  if (!_high) return false;
  auto pos = std::lower_bound(_high->begin(), _high->end(), shard);
  if (pos == _high->end() || *pos != shard) return false;
  _high->erase(pos);
  if (_high->empty()) _high.reset();
  return true;
}

namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint64_t history_bytes(const publication& p) { return p.data.size() + p.channel.size() + sizeof(publication); }

}  // namespace

router::router(unsigned shard_id, mesh& m, const std::vector<router*>& all, frame_pool& frames, push_encoder encode,
               const channel_rules* rules, std::uint64_t history_max_bytes)
    : _id(shard_id),
      _mesh(m),
      _all(all),
      _frames(frames),
      _encode(encode),
      _rules(rules),
      _history_max_bytes(history_max_bytes),
      _epoch_seed(std::random_device{}() ^ (std::uint64_t{shard_id} << 32)) {}

router::~router() {
  _history_lru.clear();  // unlinks the history records before they go
  // Shutdown: sessions are gone, so are their subscriptions' owners.
  for (local_channel* lc : _local) {
    while (!lc->subs.empty()) {
      subscription& s = lc->subs.front();
      lc->subs.pop_front();
      _sub_pool.release(&s);
    }
    _local_pool.release(lc);
  }
  for (home_channel* hc : _home) _home_pool.release(hc);
}

unsigned router::home_of(std::string_view channel, unsigned shards) noexcept {
  // FNV-1a: stable across processes and runs (a cluster can agree on it).
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : channel) {
    h ^= c;
    h *= 1099511628211ull;
  }
  // FNV-1a's low bits are weak (bit 0 is the parity of the bytes' bit 0s),
  // and `% shards` reads exactly those: finish with a 64-bit avalanche
  // (MurmurHash3's fmix64) so every output bit depends on every input bit.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return static_cast<unsigned>(h % shards);
}

bool router::send(unsigned to, task t) {
  if (_mesh.send(_id, to, std::move(t))) return true;
  _stats.mesh_refused.inc();
  return false;
}

// ---------------------------------------------------------------------------
// Subscriber side

subscription* router::subscribe(subscriber& who, std::string_view channel, const recovery_request* recover,
                                subscribe_flags flags) {
  local_channel* lc;
  if (auto it = _local.find(channel); it != _local.end()) {
    lc = *it;
  } else {
    lc = _local_pool.acquire(channel);
    _local.insert(lc);
    _stats.local_channels.inc();
  }
  subscription* s = _sub_pool.acquire(lc, &who, flags);
  lc->subs.push_back(*s);
  _stats.subscriptions.inc();
  if (lc->registered && !recover) {
    // This shard already receives the channel's stream: join it here, at
    // the last offset delivered, with no round trip.
    s->active = true;
    ++lc->active;
    position pos;
    pos.offset = lc->last_offset;
    pos.epoch = lc->epoch;
    who.on_subscribed(*s, pos);
    return s;
  }
  ++lc->pending;
  unsigned home = home_of(channel, _mesh.shards());
  // Tasks run on the home shard and touch only the home's router: never
  // this one, which may be gone by then (shards stop one by one).
  router* target = _all[home];
  auto from = static_cast<std::uint16_t>(_id);
  if (recover) {
    // The home answers with the missed publications; its answer travels the
    // same ring as the live stream (after the register, if one is sent).
    s->recovering = true;
  }
  if (!lc->registered && !lc->registering) {
    lc->registering = true;
    bool ok = send(home, [target, from, lc, name = compact_string(channel)]() mutable {
      target->on_register(from, std::move(name), lc);
    });
    if (!ok) {
      lc->registering = false;
      --lc->pending;
      lc->subs.erase(lc->subs.iterator_to(*s));
      _sub_pool.release(s);
      _stats.subscriptions.dec();
      release_if_unused(lc);
      return nullptr;
    }
  }
  if (recover) {
    bool ok = send(home, [target, from, lc, s, since = recover->offset, epoch = compact_string(recover->epoch),
                          name = compact_string(channel)]() mutable {
      target->on_sync(from, std::move(name), lc, s, since, std::move(epoch));
    });
    if (!ok) {
      // Overload: join without recovery (the client is told it was not
      // recovered and reloads its state).
      s->recovering = false;
      if (lc->registered) {
        --lc->pending;
        s->active = true;
        ++lc->active;
        position pos;
        pos.offset = lc->last_offset;
        pos.epoch = lc->epoch;
        pos.was_recovering = true;
        who.on_subscribed(*s, pos);
      }
    }
  }
  return s;
}

void router::unsubscribe(subscription* s) {
  local_channel* lc = s->channel;
  if (!s->active) {
    // Pending: the home's answer is on its way and will find it cancelled.
    s->owner = nullptr;
    return;
  }
  lc->subs.erase(lc->subs.iterator_to(*s));
  --lc->active;
  _sub_pool.release(s);
  _stats.subscriptions.dec();
  release_if_unused(lc);
}

void router::release_if_unused(local_channel* lc) {
  if (lc->active > 0 || lc->pending > 0) return;
  if (lc->registered) {
    unsigned home = home_of(lc->name, _mesh.shards());
    router* target = _all[home];
    auto from = static_cast<std::uint16_t>(_id);
    // If the mesh refuses this, the home keeps forwarding to a shard that
    // drops the frames (it has no local channel): wasted work, not an error.
    (void)send(home, [target, from, name = lc->name] { target->on_unregister(from, name); });
  }
  _local.erase(lc);
  _local_pool.release(lc);
  _stats.local_channels.dec();
}

void router::on_registered(local_channel* lc, std::uint64_t offset, stream_epoch epoch) {
  lc->registering = false;
  lc->registered = true;
  lc->last_offset = offset;
  lc->epoch = epoch;
  position pos;
  pos.offset = offset;
  pos.epoch = lc->epoch;
  // Activate every pending subscription; drop the cancelled ones. A
  // recovering one waits for its own answer (on_synced), which follows.
  for (auto it = lc->subs.begin(); it != lc->subs.end();) {
    subscription& s = *it++;
    if (s.active || s.recovering) continue;
    --lc->pending;
    if (!s.owner) {
      lc->subs.erase(lc->subs.iterator_to(s));
      _sub_pool.release(&s);
      _stats.subscriptions.dec();
      continue;
    }
    s.active = true;
    ++lc->active;
    s.owner->on_subscribed(s, pos);
  }
  release_if_unused(lc);
}

void router::on_synced(local_channel* lc, subscription* s, std::uint64_t offset, stream_epoch epoch,
                       bool recovered, std::vector<publication_ptr> pubs) {
  --lc->pending;
  s->recovering = false;
  if (!s->owner) {  // unsubscribed meanwhile
    lc->subs.erase(lc->subs.iterator_to(*s));
    _sub_pool.release(s);
    _stats.subscriptions.dec();
    release_if_unused(lc);
    return;
  }
  // The channel is registered here (the register went before the sync on
  // the same ring), so live publications after `offset` follow.
  lc->epoch = epoch;
  s->active = true;
  ++lc->active;
  position pos;
  pos.offset = offset;
  pos.epoch = lc->epoch;
  pos.was_recovering = true;
  pos.recovered = recovered;
  pos.publications = pubs;
  s->owner->on_subscribed(*s, pos);
}

void router::on_deliver(const publication_ptr& pub) {
  auto it = _local.find(std::string_view(pub->channel));
  if (it == _local.end()) return;  // the last subscriber left meanwhile
  local_channel* lc = *it;
  if (!lc->registered) return;     // cannot happen (FIFO), kept cheap and safe
  bool presence_event = pub->what != publication::kind::publication;
  if (!presence_event) {
    // The home forwards every publication of a channel to this shard in
    // offset order; a jump means the mesh shed some under overload.
    bool gap = pub->offset != lc->last_offset + 1;
    lc->last_offset = pub->offset;
    if (gap) stream_gap(lc);
  }
  if (lc->active == 0) return;
  // Encode once for the whole shard (when someone here takes it); every
  // subscriber shares the bytes.
  frame_ref frame;
  for (subscription& s : lc->subs) {
    if (!s.active || (presence_event && !s.join_leave)) continue;
    if (!frame) {
      frame = _encode(_frames, *pub);
      _stats.frames_encoded.inc();
    }
    s.owner->deliver(frame);
    _stats.deliveries.inc();
  }
}

void router::on_position(std::string_view channel, std::uint64_t offset) {
  auto it = _local.find(channel);
  if (it == _local.end()) return;
  local_channel* lc = *it;
  if (!lc->registered || offset <= lc->last_offset) return;  // nothing missed, or already found
  lc->last_offset = offset;
  stream_gap(lc);
}

void router::stream_gap(local_channel* lc) {
  _stats.stream_gaps.inc();
  // Owners only mark the session closing here (the close completes later),
  // so the list is not changed under the loop.
  for (subscription& s : lc->subs) {
    if (s.active && s.positioned) s.owner->on_insufficient_state(s);
  }
}

// ---------------------------------------------------------------------------
// Entering side

bool router::publish(publication_ptr pub) {
  _stats.publications_in.inc();
  if (pub->entered_ns == 0) pub->entered_ns = steady_now_ns();
  unsigned home = home_of(pub->channel, _mesh.shards());
  // Through the mesh even when this shard is the home: a register this
  // shard sent earlier (a subscribe in the same frame) travels the same
  // ring and must be ordered before the publication.
  router* target = _all[home];
  return send(home, [target, p = std::move(pub)]() mutable { target->on_publish(std::move(p)); });
}

// ---------------------------------------------------------------------------
// Home side

void router::on_register(unsigned from, compact_string channel, local_channel* lc) {
  home_channel* hc;
  if (auto it = _home.find(std::string_view(channel)); it != _home.end()) {
    hc = *it;
  } else {
    hc = make_home(channel);
  }
  hc->shards.insert(static_cast<std::uint16_t>(from));
  set_idle(hc, false);
  std::uint64_t offset = hc->offset;
  router* sub_router = _all[from];
  if (from == _id) {
    on_registered(lc, offset, hc->epoch);
    return;
  }
  // Must not be lost: the subscriber shard is waiting. A refused send here
  // means the destination is far behind; it is counted and the pending
  // subscriptions stay pending until the client gives up.
  (void)send(from, [sub_router, lc, offset, epoch = hc->epoch]() mutable {
    sub_router->on_registered(lc, offset, epoch);
  });
}

void router::on_sync(unsigned from, compact_string channel, local_channel* lc, subscription* s, std::uint64_t since,
                     compact_string epoch) {
  home_channel* hc;
  if (auto it = _home.find(std::string_view(channel)); it != _home.end()) {
    hc = *it;
  } else {
    hc = make_home(channel);  // not reachable with FIFO rings; harmless
    set_idle(hc, true);
  }
  // Served when the stream is the one the client knew (same epoch) and
  // every publication after its offset is still retained.
  bool recovered = false;
  std::vector<publication_ptr> pubs;
  if (epoch.view() == hc->epoch.view() && since <= hc->offset) {
    if (since == hc->offset) {
      recovered = true;
    } else if (hc->history) {
      trim_history(hc, steady_ms());
      auto& items = hc->history->items;
      if (!items.empty() && items.front().pub->offset <= since + 1) {
        recovered = true;
        for (const auto& e : items) {
          if (e.pub->offset > since) pubs.push_back(e.pub);
        }
      }
    }
  }
  _stats.recoveries.inc();
  if (!recovered) _stats.recoveries_failed.inc();
  std::uint64_t offset = hc->offset;
  if (from == _id) {
    on_synced(lc, s, offset, hc->epoch, recovered, std::move(pubs));
    return;
  }
  router* sub_router = _all[from];
  (void)send(from, [sub_router, lc, s, offset, epoch = hc->epoch, recovered, p = std::move(pubs)]() mutable {
    sub_router->on_synced(lc, s, offset, epoch, recovered, std::move(p));
  });
}

home_channel* router::make_home(std::string_view channel) {
  home_channel* hc = _home_pool.acquire(channel);
  _home.insert(hc);
  _stats.home_channels.inc();
  // A new record is a new stream: a random epoch tells clients that knew an
  // older one (before a restart, or before its history expired) that they
  // cannot recover from it.
  _epoch_seed += 0x9e3779b97f4a7c15ull;
  std::uint64_t z = _epoch_seed;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  char text[8];
  static constexpr char digits[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) text[i] = digits[(z >> (4 * i)) & 0xf];
  hc->epoch = stream_epoch(std::string_view(text, sizeof(text)));
  if (_rules) {
    if (const channel_options* o = _rules->resolve(channel); o && o->history_size > 0 && o->history_ttl.count() > 0) {
      hc->history = std::make_unique<channel_history>();
      hc->history->size = o->history_size;
      hc->history->ttl_ms = o->history_ttl.count();
      hc->history->keep_until_ms = steady_ms() + hc->history->ttl_ms;  // a new stream lives at least that long
      hc->history->owner = hc;
    }
  }
  return hc;
}

void router::drop_history_front(channel_history& h) {
  std::uint64_t n = history_bytes(*h.items.front().pub);
  _stats.history_publications.dec();
  _stats.history_bytes.sub(n);
  h.bytes -= n;
  h.items.pop_front();
  if (h.items.empty() && h.lru.is_linked()) _history_lru.erase(_history_lru.iterator_to(h));
}

void router::trim_history(home_channel* hc, std::int64_t now_ms) {
  auto& h = *hc->history;
  while (!h.items.empty() && (h.items.front().expires_ms <= now_ms || h.items.size() > h.size)) drop_history_front(h);
}

void router::enforce_history_bound() {
  // Whole channels go, least recently published first: a channel keeps its
  // stream or loses it (its clients then get recovered: false), rather than
  // every channel keeping a useless stub.
  while (_history_max_bytes > 0 && _stats.history_bytes.get() > _history_max_bytes && !_history_lru.empty()) {
    channel_history& h = _history_lru.front();
    while (!h.items.empty()) drop_history_front(h);
    _stats.history_evictions.inc();
    home_channel* hc = h.owner;
    if (hc->shards.empty()) erase_home(hc);  // nobody here and nothing kept: the record goes (new epoch next time)
  }
}

void router::set_idle(home_channel* hc, bool idle) {
  if (idle && hc->idle_index == UINT32_MAX) {
    hc->idle_index = static_cast<std::uint32_t>(_idle.size());
    _idle.push_back(hc);
  } else if (!idle && hc->idle_index != UINT32_MAX) {
    home_channel* last = _idle.back();
    _idle[hc->idle_index] = last;
    last->idle_index = hc->idle_index;
    _idle.pop_back();
    hc->idle_index = UINT32_MAX;
  }
}

void router::erase_home(home_channel* hc) {
  set_idle(hc, false);
  if (hc->history) {
    while (!hc->history->items.empty()) drop_history_front(*hc->history);
  }
  if (hc->presence) _stats.presence_entries.sub(hc->presence->size());
  _home.erase(hc);
  _home_pool.release(hc);
  _stats.home_channels.dec();
}

bool router::query_history(mesh& m, unsigned source, const std::vector<router*>& all, std::string_view channel,
                           history_query q, std::function<void(history_answer&&)> answered) {
  unsigned home = home_of(channel, m.shards());
  router* target = all[home];
  return m.send(source, home, [target, name = compact_string(channel), q = std::move(q),
                               done = std::move(answered)]() mutable { done(target->answer_history(name, q)); });
}

history_answer router::answer_history(std::string_view channel, const history_query& q) {
  history_answer a;
  const channel_options* o = _rules ? _rules->resolve(channel) : nullptr;
  if (!o || o->history_size == 0 || o->history_ttl.count() == 0) {
    a.error = 108;
    return a;
  }
  home_channel* hc;
  if (auto it = _home.find(channel); it != _home.end()) {
    hc = *it;
  } else {
    if (q.remove) return a;  // nothing retained: nothing to remove
    // A stream nobody published to yet: it starts here, with its epoch (so
    // that a client can position itself and recover later).
    hc = make_home(channel);
    set_idle(hc, true);
  }
  trim_history(hc, steady_ms());
  auto& items = hc->history->items;
  a.offset = hc->offset;
  a.epoch = std::string(hc->epoch.view());
  if (q.remove) {
    while (!items.empty()) drop_history_front(*hc->history);
    if (hc->shards.empty()) erase_home(hc);
    return a;
  }
  auto first = items.begin();
  if (q.has_since) {
    // Everything after since_offset must still be here, in this epoch.
    bool servable = q.since_epoch == hc->epoch.view() && q.since_offset <= hc->offset &&
                    (q.since_offset == hc->offset || (!items.empty() && items.front().pub->offset <= q.since_offset + 1));
    if (!servable) {
      a.error = 112;
      return a;
    }
    while (first != items.end() && first->pub->offset <= q.since_offset) ++first;
  }
  if (q.limit == 0) return a;
  std::size_t available = static_cast<std::size_t>(items.end() - first);
  std::size_t n = q.limit < 0 ? available : std::min<std::size_t>(available, static_cast<std::size_t>(q.limit));
  a.publications.reserve(n);
  if (q.reverse) {
    for (auto it = items.end(); it != first && a.publications.size() < n;) a.publications.push_back((--it)->pub);
  } else {
    for (auto it = first; it != items.end() && a.publications.size() < n; ++it) a.publications.push_back(it->pub);
  }
  return a;
}

void router::join(std::string_view channel, client_info who) {
  publication_ptr e(new publication);
  e->what = publication::kind::join;
  e->channel.assign(channel);
  e->info = std::move(who);
  e->has_info = true;
  send_presence(std::move(e));
}

void router::leave(std::string_view channel, client_info who) {
  publication_ptr e(new publication);
  e->what = publication::kind::leave;
  e->channel.assign(channel);
  e->info = std::move(who);
  e->has_info = true;
  send_presence(std::move(e));
}

void router::send_presence(publication_ptr event) {
  // A join or leave the mesh refuses is not dropped (the home's presence
  // would stay wrong for as long as the channel lives): it waits, and so does
  // every later one, so the home still sees each channel's events in order.
  if (_presence_backlog.empty() && try_send_presence(event)) return;
  if (_presence_backlog.size() >= presence_backlog_limit) {
    _stats.presence_lost.inc();
    return;
  }
  _presence_backlog.push_back(std::move(event));
}

bool router::try_send_presence(const publication_ptr& event) {
  unsigned home = home_of(event->channel, _mesh.shards());
  router* target = _all[home];
  return send(home, [target, p = event]() mutable { target->on_presence(std::move(p)); });
}

void router::on_presence(publication_ptr event) {
  const channel_options* o = _rules ? _rules->resolve(event->channel) : nullptr;
  if (!o || !o->presence) return;
  auto it = _home.find(std::string_view(event->channel));
  if (it == _home.end()) return;  // cannot happen: the register went first
  home_channel* hc = *it;
  if (event->what == publication::kind::join) {
    if (!hc->presence) hc->presence = std::make_unique<boost::unordered_flat_map<std::string, client_info>>();
    if (!hc->presence->insert_or_assign(event->info.client, event->info).second) return;  // already present
    _stats.presence_entries.inc();
  } else {
    if (!hc->presence || hc->presence->erase(event->info.client) == 0) return;
    _stats.presence_entries.dec();
    if (hc->presence->empty()) hc->presence.reset();
  }
  if (!o->join_leave) return;
  // The event goes where publications go: once per subscriber shard.
  forward(hc, event);
}

bool router::query_presence(mesh& m, unsigned source, const std::vector<router*>& all, std::string_view channel,
                            bool counts_only, std::function<void(presence_answer&&)> answered) {
  unsigned home = home_of(channel, m.shards());
  router* target = all[home];
  return m.send(source, home, [target, name = compact_string(channel), counts_only,
                               done = std::move(answered)]() mutable { done(target->answer_presence(name, counts_only)); });
}

presence_answer router::answer_presence(std::string_view channel, bool counts_only) {
  presence_answer a;
  const channel_options* o = _rules ? _rules->resolve(channel) : nullptr;
  if (!o || !o->presence) {
    a.error = 108;
    return a;
  }
  auto it = _home.find(channel);
  if (it == _home.end() || !(*it)->presence) return a;
  const auto& map = *(*it)->presence;
  a.num_clients = static_cast<std::uint32_t>(map.size());
  boost::unordered_flat_map<std::string_view, bool> users;
  for (const auto& [id, info] : map) {
    users.emplace(info.user, true);
    if (!counts_only) a.clients.push_back(info);
  }
  a.num_users = static_cast<std::uint32_t>(users.size());
  return a;
}

void router::sweep_history() {
  while (!_presence_backlog.empty() && try_send_presence(_presence_backlog.front())) _presence_backlog.pop_front();
  // Positions for the shards that missed forwards; what the mesh refuses
  // again waits for the next sweep.
  std::size_t keep = 0;
  for (std::size_t i = 0; i < _shed.size(); ++i) {
    auto& [name, shard] = _shed[i];
    auto it = _home.find(std::string_view(name));
    if (it == _home.end()) continue;  // the channel ended here: so did its subscriptions there
    router* target = _all[shard];
    std::uint64_t offset = (*it)->offset;
    if (!send(shard, [target, name = name, offset] { target->on_position(name, offset); })) {
      if (keep != i) _shed[keep] = std::move(_shed[i]);
      ++keep;
    }
  }
  _shed.resize(keep);
  std::int64_t now = steady_ms();
  // A channel trims its history when it is published to or read; one gone
  // quiet would keep expired publications (memory, the history metrics,
  // history_max_bytes' budget) until then. The history list runs from the
  // least recently published, whose newest publication is the oldest: walk
  // it while channels expire whole. With one history_ttl everywhere the
  // first channel that keeps something ends the walk; with several, a long
  // TTL at the front must not hide short ones behind it, so the walk looks
  // a little further.
  int kept = 0;
  for (auto it = _history_lru.begin(); it != _history_lru.end() && kept < 64;) {
    channel_history& h = *it++;  // trimming h may unlink it: step first
    trim_history(h.owner, now);
    if (!h.items.empty()) ++kept;
  }
  // Backwards: erase_home moves the last entry into the erased slot.
  for (std::size_t i = _idle.size(); i-- > 0;) {
    home_channel* hc = _idle[i];
    trim_history(hc, now);
    if (hc->history->items.empty() && now >= hc->history->keep_until_ms) erase_home(hc);
  }
}

void router::on_unregister(unsigned from, std::string_view channel) {
  auto it = _home.find(channel);
  if (it == _home.end()) return;
  home_channel* hc = *it;
  hc->shards.erase(static_cast<std::uint16_t>(from));
  if (!hc->shards.empty()) return;
  if (hc->history) {
    // Kept for clients that come back within history_ttl, with what was
    // published meanwhile — also when nothing is retained right now: the
    // stream's position and epoch are what lets them recover what comes
    // next. Swept after.
    std::int64_t now = steady_ms();
    trim_history(hc, now);
    hc->history->keep_until_ms = now + hc->history->ttl_ms;
    set_idle(hc, true);
    return;
  }
  erase_home(hc);
}

bool router::publish_from_main(mesh& m, const std::vector<router*>& all, publication_ptr pub,
                               std::function<void(std::uint64_t, std::string_view)> ordered) {
  if (pub->entered_ns == 0) pub->entered_ns = steady_now_ns();
  unsigned home = home_of(pub->channel, m.shards());
  router* target = all[home];
  // Not counted in publications_in: that counter has one writer, its shard;
  // the server API counts what it publishes.
  return m.send(m.main_source(), home, [target, p = std::move(pub), done = std::move(ordered)]() mutable {
    const home_channel* hc = target->on_publish(std::move(p));
    if (!done) return;
    // The position is worth reporting only where it can be used: with history.
    if (hc && hc->history) {
      done(hc->offset, hc->epoch.view());
    } else {
      done(hc ? hc->offset : 0, {});
    }
  });
}

void router::forward(home_channel* hc, const publication_ptr& pub) {
  hc->shards.for_each([&](std::uint16_t shard) {
    if (shard == _id) {
      on_deliver(pub);
      return;
    }
    router* target = _all[shard];
    if (!send(shard, [target, p = pub] { target->on_deliver(p); }) &&
        pub->what == publication::kind::publication) {
      // Shed under overload: that shard's subscribers miss it. The next
      // publication shows them the gap; sweep_history tells them sooner.
      // Bounded: past it the tail of a stream may go unnoticed until its
      // next publication (which shows the gap by its offset anyway).
      bool repeat = !_shed.empty() && _shed.back().second == shard &&
                    std::string_view(_shed.back().first) == hc->name.view();
      if (!repeat && _shed.size() < shed_limit) _shed.emplace_back(hc->name, shard);
    }
  });
}

const home_channel* router::on_publish(publication_ptr pub) {
  auto it = _home.find(std::string_view(pub->channel));
  home_channel* hc;
  if (it != _home.end()) {
    hc = *it;
  } else {
    const channel_options* o = _rules ? _rules->resolve(pub->channel) : nullptr;
    if (!o || o->history_size == 0 || o->history_ttl.count() == 0) {
      // Nobody subscribes anywhere and nothing is kept: a lookup and nothing else.
      _stats.publications_dropped.inc();
      return nullptr;
    }
    // History is kept even with nobody subscribed (a client may come back).
    hc = make_home(pub->channel);
    set_idle(hc, true);
  }
  pub->offset = ++hc->offset;
  _stats.publications_home.inc();
  if (hc->history) {
    auto& h = *hc->history;
    std::int64_t now = steady_ms();
    h.items.push_back({pub, now + h.ttl_ms});
    std::uint64_t n = history_bytes(*pub);
    h.bytes += n;
    _stats.history_publications.inc();
    _stats.history_bytes.add(n);
    // Most recently published last.
    if (h.lru.is_linked()) _history_lru.erase(_history_lru.iterator_to(h));
    _history_lru.push_back(h);
    trim_history(hc, now);
    enforce_history_bound();
    if (_home.find(std::string_view(pub->channel)) == _home.end()) return nullptr;  // evicted itself (bound too small)
  }
  forward(hc, pub);
  return hc;
}

}  // namespace sb::routing
