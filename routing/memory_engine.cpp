#include "routing/memory_engine.hpp"

#include "routing/channel_rules.hpp"
#include "routing/router_stats.hpp"

#include <boost/unordered/unordered_flat_map.hpp>

#include <chrono>
#include <string>

namespace sb::routing {

/// What the memory engine keeps per channel: the retained history (channels
/// whose namespace has history_size and history_ttl), presence by client id
/// (while anyone is present), and the record's place in the idle list.
struct memory_store final : channel_store {
  std::unique_ptr<channel_history> history;
  std::unique_ptr<boost::unordered_flat_map<std::string, client_info>> presence;
  std::uint32_t idle_index = UINT32_MAX;  // in the engine's idle list (no shards, history kept)
};

namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint64_t history_bytes(const publication& p) { return p.data.size() + p.channel.size() + sizeof(publication); }

bool keeps_history(const channel_options* o) { return o && o->history_size > 0 && o->history_ttl.count() > 0; }

}  // namespace

memory_engine::memory_engine(const channel_rules* rules, std::uint64_t history_max_bytes, std::uint64_t seed)
    : _rules(rules), _history_max_bytes(history_max_bytes), _epoch_seed(seed) {}

memory_engine::~memory_engine() {
  _history_lru.clear();  // unlinks what is left before the records go
}

void memory_engine::attach(engine_host& host, router_stats& stats) {
  _host = &host;
  _stats = &stats;
}

channel_history* memory_engine::history_of(home_channel& hc) const noexcept {
  auto* s = static_cast<memory_store*>(hc.store.get());
  return s ? s->history.get() : nullptr;
}

memory_store& memory_engine::store_of(home_channel& hc) {
  if (!hc.store) hc.store = std::make_unique<memory_store>();
  return static_cast<memory_store&>(*hc.store);
}

bool memory_engine::lean(std::string_view channel) const {
  // Without rules (unit tests, echo mode) every channel keeps its record:
  // offsets are what such callers look at.
  const channel_options* o = _rules ? _rules->resolve(channel) : nullptr;
  return o && !keeps_history(o) && !o->presence && !o->join_leave && !o->force_push_join_leave;
}

void memory_engine::on_make(home_channel& hc) {
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
  hc.epoch = stream_epoch(std::string_view(text, sizeof(text)));
  const channel_options* o = _rules ? _rules->resolve(hc.name) : nullptr;
  if (keeps_history(o)) {
    auto h = std::make_unique<channel_history>();
    h->size = o->history_size;
    h->ttl_ms = o->history_ttl.count();
    h->keep_until_ms = steady_ms() + h->ttl_ms;  // a new stream lives at least that long
    h->owner = &hc;
    store_of(hc).history = std::move(h);
  }
}

void memory_engine::on_erase(home_channel& hc) {
  auto* s = static_cast<memory_store*>(hc.store.get());
  if (!s) return;
  set_idle(hc, false);
  if (s->history) {
    while (!s->history->items.empty()) drop_history_front(*s->history);
  }
  if (s->presence) _stats->presence_entries.sub(s->presence->size());
  hc.store.reset();
}

void memory_engine::open(home_channel& hc, open_done done) {
  set_idle(hc, false);
  done(hc, 0, hc.offset, hc.epoch);
}

bool memory_engine::release(home_channel& hc) {
  channel_history* h = history_of(hc);
  if (!h) return false;
  // Kept for clients that come back within history_ttl, with what was
  // published meanwhile — also when nothing is retained right now: the
  // stream's position and epoch are what lets them recover what comes
  // next. Swept after.
  std::int64_t now = steady_ms();
  trim_history(*h, now);
  h->keep_until_ms = now + h->ttl_ms;
  set_idle(hc, true);
  return true;
}

void memory_engine::recover(home_channel& hc, std::uint64_t since, std::string_view epoch, recover_done done) {
  // Served when the stream is the one the client knew (same epoch) and
  // every publication after its offset is still retained.
  recovery_answer a;
  if (epoch == hc.epoch.view() && since <= hc.offset) {
    if (since == hc.offset) {
      a.recovered = true;
    } else if (channel_history* h = history_of(hc)) {
      trim_history(*h, steady_ms());
      auto& items = h->items;
      if (!items.empty() && items.front().pub->offset <= since + 1) {
        a.recovered = true;
        for (const auto& e : items) {
          if (e.pub->offset > since) a.publications.push_back(e.pub);
        }
      }
    }
  }
  _stats->recoveries.inc();
  if (!a.recovered) _stats->recoveries_failed.inc();
  a.offset = hc.offset;
  a.epoch = hc.epoch;
  done(hc, std::move(a));
}

void memory_engine::publish(publication_ptr pub, publish_done done) {
  home_channel* hc = _host->find_home(pub->channel);
  if (!hc) {
    const channel_options* o = _rules ? _rules->resolve(pub->channel) : nullptr;
    if (!keeps_history(o)) {
      // Nobody subscribes anywhere and nothing is kept: a lookup and nothing else.
      _stats->publications_dropped.inc();
      if (done) done(0, 0, {});
      return;
    }
    // History is kept even with nobody subscribed (a client may come back).
    hc = _host->make_home(pub->channel);
    set_idle(*hc, true);
  }
  pub->offset = ++hc->offset;
  _stats->publications_home.inc();
  if (channel_history* h = history_of(*hc)) {
    std::int64_t now = steady_ms();
    h->items.push_back({pub, now + h->ttl_ms});
    std::uint64_t n = history_bytes(*pub);
    h->bytes += n;
    _stats->history_publications.inc();
    _stats->history_bytes.add(n);
    // Most recently published last.
    if (h->lru.is_linked()) _history_lru.erase(_history_lru.iterator_to(*h));
    _history_lru.push_back(*h);
    trim_history(*h, now);
    enforce_history_bound();
    if (!_host->find_home(pub->channel)) {  // evicted itself (bound too small)
      if (done) done(0, 0, {});
      return;
    }
  }
  _host->dispatch(*hc, pub);
  if (!done) return;
  // The position is worth reporting only where it can be used: with history.
  done(0, hc->offset, history_of(*hc) ? hc->epoch.view() : std::string_view());
}

void memory_engine::drop_history_front(channel_history& h) {
  std::uint64_t n = history_bytes(*h.items.front().pub);
  _stats->history_publications.dec();
  _stats->history_bytes.sub(n);
  h.bytes -= n;
  h.items.pop_front();
  if (h.items.empty() && h.lru.is_linked()) _history_lru.erase(_history_lru.iterator_to(h));
}

void memory_engine::trim_history(channel_history& h, std::int64_t now_ms) {
  while (!h.items.empty() && (h.items.front().expires_ms <= now_ms || h.items.size() > h.size)) {
    drop_history_front(h);
  }
}

void memory_engine::enforce_history_bound() {
  // Whole channels go, least recently published first: a channel keeps its
  // stream or loses it (its clients then get recovered: false), rather than
  // every channel keeping a useless stub.
  while (_history_max_bytes > 0 && _stats->history_bytes.get() > _history_max_bytes && !_history_lru.empty()) {
    channel_history& h = _history_lru.front();
    while (!h.items.empty()) drop_history_front(h);
    _stats->history_evictions.inc();
    home_channel* hc = h.owner;
    if (hc->shards.empty()) _host->erase_home(hc);  // nobody here and nothing kept: the record goes (new epoch next time)
  }
}

void memory_engine::set_idle(home_channel& hc, bool idle) {
  auto* s = static_cast<memory_store*>(hc.store.get());
  if (!s || !s->history) return;  // only records kept for their history wait in the idle list
  if (idle && s->idle_index == UINT32_MAX) {
    s->idle_index = static_cast<std::uint32_t>(_idle.size());
    _idle.push_back(&hc);
  } else if (!idle && s->idle_index != UINT32_MAX) {
    home_channel* last = _idle.back();
    _idle[s->idle_index] = last;
    static_cast<memory_store&>(*last->store).idle_index = s->idle_index;
    _idle.pop_back();
    s->idle_index = UINT32_MAX;
  }
}

void memory_engine::history(std::string_view channel, const history_query& q, history_done done) {
  history_answer a;
  const channel_options* o = _rules ? _rules->resolve(channel) : nullptr;
  if (!keeps_history(o)) {
    a.error = 108;
    return done(std::move(a));
  }
  home_channel* hc = _host->find_home(channel);
  if (!hc) {
    if (q.remove) return done(std::move(a));  // nothing retained: nothing to remove
    // A stream nobody published to yet: it starts here, with its epoch (so
    // that a client can position itself and recover later).
    hc = _host->make_home(channel);
    set_idle(*hc, true);
  }
  a.offset = hc->offset;
  a.epoch = std::string(hc->epoch.view());
  channel_history* hp = history_of(*hc);
  if (!hp) return done(std::move(a));  // made before its namespace kept history: a position, nothing retained
  channel_history& h = *hp;
  trim_history(h, steady_ms());
  auto& items = h.items;
  if (q.remove) {
    while (!items.empty()) drop_history_front(h);
    if (hc->shards.empty()) _host->erase_home(hc);
    return done(std::move(a));
  }
  auto first = items.begin();
  if (q.has_since) {
    // Everything after since_offset must still be here, in this epoch.
    bool servable = q.since_epoch == hc->epoch.view() && q.since_offset <= hc->offset &&
                    (q.since_offset == hc->offset || (!items.empty() && items.front().pub->offset <= q.since_offset + 1));
    if (!servable) {
      a.error = 112;
      return done(std::move(a));
    }
    while (first != items.end() && first->pub->offset <= q.since_offset) ++first;
  }
  if (q.limit == 0) return done(std::move(a));
  std::size_t available = static_cast<std::size_t>(items.end() - first);
  std::size_t n = q.limit < 0 ? available : std::min<std::size_t>(available, static_cast<std::size_t>(q.limit));
  a.publications.reserve(n);
  if (q.reverse) {
    for (auto it = items.end(); it != first && a.publications.size() < n;) a.publications.push_back((--it)->pub);
  } else {
    for (auto it = first; it != items.end() && a.publications.size() < n; ++it) a.publications.push_back(it->pub);
  }
  done(std::move(a));
}

void memory_engine::presence_event(publication_ptr event) {
  const channel_options* o = _rules ? _rules->resolve(event->channel) : nullptr;
  if (!o || !o->presence) return;
  home_channel* hc = _host->find_home(event->channel);
  if (!hc) return;  // cannot happen: the register went first
  if (event->what == publication::kind::join) {
    memory_store& s = store_of(*hc);
    if (!s.presence) s.presence = std::make_unique<boost::unordered_flat_map<std::string, client_info>>();
    if (!s.presence->insert_or_assign(event->info.client, event->info).second) return;  // already present
    _stats->presence_entries.inc();
  } else {
    auto* s = static_cast<memory_store*>(hc->store.get());
    if (!s || !s->presence || s->presence->erase(event->info.client) == 0) return;
    _stats->presence_entries.dec();
    if (s->presence->empty()) {
      s->presence.reset();
      if (!s->history) hc->store.reset();  // nothing left to keep for this channel
    }
  }
  if (!o->join_leave) return;
  // The event goes where publications go: once per subscriber shard.
  _host->dispatch(*hc, event);
}

void memory_engine::presence(std::string_view channel, bool counts_only, presence_done done) {
  presence_answer a;
  const channel_options* o = _rules ? _rules->resolve(channel) : nullptr;
  if (!o || !o->presence) {
    a.error = 108;
    return done(std::move(a));
  }
  home_channel* hc = _host->find_home(channel);
  auto* s = hc ? static_cast<memory_store*>(hc->store.get()) : nullptr;
  if (!s || !s->presence) return done(std::move(a));
  const auto& map = *s->presence;
  a.num_clients = static_cast<std::uint32_t>(map.size());
  boost::unordered_flat_map<std::string_view, bool> users;
  for (const auto& [id, info] : map) {
    users.emplace(info.user, true);
    if (!counts_only) a.clients.push_back(info);
  }
  a.num_users = static_cast<std::uint32_t>(users.size());
  done(std::move(a));
}

void memory_engine::sweep() {
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
    trim_history(h, now);
    if (!h.items.empty()) ++kept;
  }
  // Backwards: erase_home moves the last entry into the erased slot.
  for (std::size_t i = _idle.size(); i-- > 0;) {
    home_channel* hc = _idle[i];
    channel_history& h = *history_of(*hc);
    trim_history(h, now);
    if (h.items.empty() && now >= h.keep_until_ms) _host->erase_home(hc);
  }
}

}  // namespace sb::routing
