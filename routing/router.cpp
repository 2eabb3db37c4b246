#include "routing/router.hpp"

#include "routing/mesh.hpp"

#include <algorithm>
#include <cassert>

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

router::router(unsigned shard_id, mesh& m, const std::vector<router*>& all, frame_pool& frames, push_encoder encode)
    : _id(shard_id), _mesh(m), _all(all), _frames(frames), _encode(encode) {}

router::~router() {
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

subscription* router::subscribe(subscriber& who, std::string_view channel) {
  local_channel* lc;
  if (auto it = _local.find(channel); it != _local.end()) {
    lc = *it;
  } else {
    lc = _local_pool.acquire(channel);
    _local.insert(lc);
    _stats.local_channels.inc();
  }
  subscription* s = _sub_pool.acquire(lc, &who);
  lc->subs.push_back(*s);
  _stats.subscriptions.inc();
  if (lc->registered) {
    // This shard already receives the channel's stream: join it here, at
    // the last offset delivered, with no round trip.
    s->active = true;
    ++lc->active;
    who.on_subscribed(*s, lc->last_offset);
    return s;
  }
  ++lc->pending;
  if (!lc->registering) {
    lc->registering = true;
    unsigned home = home_of(channel, _mesh.shards());
    // The task runs on the home shard and touches only the home's router:
    // never this one, which may be gone by then (shards stop one by one).
    router* target = _all[home];
    auto from = static_cast<std::uint16_t>(_id);
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

void router::on_registered(local_channel* lc, std::uint64_t offset) {
  lc->registering = false;
  lc->registered = true;
  lc->last_offset = offset;
  // Activate every pending subscription; drop the cancelled ones.
  for (auto it = lc->subs.begin(); it != lc->subs.end();) {
    subscription& s = *it++;
    if (s.active) continue;
    --lc->pending;
    if (!s.owner) {
      lc->subs.erase(lc->subs.iterator_to(s));
      _sub_pool.release(&s);
      _stats.subscriptions.dec();
      continue;
    }
    s.active = true;
    ++lc->active;
    s.owner->on_subscribed(s, offset);
  }
  release_if_unused(lc);
}

void router::on_deliver(const publication_ptr& pub) {
  auto it = _local.find(std::string_view(pub->channel));
  if (it == _local.end()) return;  // the last subscriber left meanwhile
  local_channel* lc = *it;
  if (!lc->registered) return;     // cannot happen (FIFO), kept cheap and safe
  lc->last_offset = pub->offset;
  if (lc->active == 0) return;
  // Encode once for the whole shard; every subscriber shares the bytes.
  frame_ref frame = _encode(_frames, *pub);
  _stats.frames_encoded.inc();
  for (subscription& s : lc->subs) {
    if (!s.active) continue;
    s.owner->deliver(frame);
    _stats.deliveries.inc();
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
    hc = _home_pool.acquire(channel);
    _home.insert(hc);
    _stats.home_channels.inc();
  }
  hc->shards.insert(static_cast<std::uint16_t>(from));
  std::uint64_t offset = hc->offset;
  router* sub_router = _all[from];
  if (from == _id) {
    on_registered(lc, offset);
    return;
  }
  // Must not be lost: the subscriber shard is waiting. A refused send here
  // means the destination is far behind; it is counted and the pending
  // subscriptions stay pending until the client gives up.
  (void)send(from, [sub_router, lc, offset] { sub_router->on_registered(lc, offset); });
}

void router::on_unregister(unsigned from, std::string_view channel) {
  auto it = _home.find(channel);
  if (it == _home.end()) return;
  home_channel* hc = *it;
  hc->shards.erase(static_cast<std::uint16_t>(from));
  if (hc->shards.empty()) {
    _home.erase(it);
    _home_pool.release(hc);
    _stats.home_channels.dec();
  }
}

bool router::publish_from_main(mesh& m, const std::vector<router*>& all, publication_ptr pub,
                               std::function<void(std::uint64_t)> ordered) {
  if (pub->entered_ns == 0) pub->entered_ns = steady_now_ns();
  unsigned home = home_of(pub->channel, m.shards());
  router* target = all[home];
  // Not counted in publications_in: that counter has one writer, its shard;
  // the server API counts what it publishes.
  return m.send(m.main_source(), home, [target, p = std::move(pub), done = std::move(ordered)]() mutable {
    std::uint64_t offset = target->on_publish(std::move(p));
    if (done) done(offset);
  });
}

std::uint64_t router::on_publish(publication_ptr pub) {
  auto it = _home.find(std::string_view(pub->channel));
  if (it == _home.end()) {
    // Nobody subscribes anywhere: a lookup and nothing else.
    _stats.publications_dropped.inc();
    return 0;
  }
  home_channel* hc = *it;
  pub->offset = ++hc->offset;
  _stats.publications_home.inc();
  hc->shards.for_each([&](std::uint16_t shard) {
    if (shard == _id) {
      on_deliver(pub);
    } else {
      router* target = _all[shard];
      (void)send(shard, [target, p = pub] { target->on_deliver(p); });
    }
  });
  return pub->offset;
}

}  // namespace sb::routing
