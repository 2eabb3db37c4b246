#include "routing/router.hpp"

#include "routing/mesh.hpp"

#include <cassert>

namespace sb::routing {

static_assert(sizeof(subscription) <= 48, "a subscription per session per channel: keep it at 48 bytes");
static_assert(sizeof(local_channel) <= 72, "a local channel per personal channel per session: keep it at 72 bytes");

router::router(unsigned shard_id, mesh& m, const std::vector<router*>& all, frame_pool& frames,
               const push_encoders& encode, engine& streams)
    : _id(shard_id), _mesh(m), _all(all), _frames(frames), _encode(encode), _engine(streams) {
  _engine.attach(*this, _stats);
}

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
  // The engine outlives the router: it lets go of what it keeps per record.
  for (home_channel* hc : _home) {
    _engine.on_erase(*hc);
    _home_pool.release(hc);
  }
}

std::uint64_t router::channel_hash(std::string_view channel) noexcept {
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
  return h;
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

void router::on_registered(local_channel* lc, std::uint32_t error, std::uint64_t offset, stream_epoch epoch) {
  lc->registering = false;
  if (error) {
    // The home could not join the stream (its engine's store is away):
    // every pending subscription fails; a recovering one is cancelled here
    // and freed when its own answer comes.
    for (auto it = lc->subs.begin(); it != lc->subs.end();) {
      subscription& s = *it++;
      if (s.active) continue;
      if (s.owner) s.owner->on_subscribe_failed(s, error);
      if (s.recovering) {
        s.owner = nullptr;
        continue;
      }
      --lc->pending;
      lc->subs.erase(lc->subs.iterator_to(s));
      _sub_pool.release(&s);
      _stats.subscriptions.dec();
    }
    release_if_unused(lc);
    return;
  }
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

void router::on_synced(local_channel* lc, subscription* s, std::uint32_t error, std::uint64_t offset,
                       stream_epoch epoch, bool recovered, std::vector<publication_ptr> pubs) {
  --lc->pending;
  s->recovering = false;
  if (s->owner && (error || !lc->registered)) {
    // No stream to join (the engine failed, or this shard's registration
    // did): the subscription fails instead of waiting for forwards that
    // would never come.
    s->owner->on_subscribe_failed(*s, error ? error : 100);
    s->owner = nullptr;
  }
  if (!s->owner) {  // unsubscribed meanwhile, or failed
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
  if (!presence_event && pub->offset != 0) {
    // The home forwards every publication of a channel to this shard in
    // offset order; a jump means the mesh shed some under overload (or the
    // engine lost them). Offset 0: a channel without a stream.
    bool gap = pub->offset != lc->last_offset + 1;
    lc->last_offset = pub->offset;
    if (gap) stream_gap(lc);
  }
  if (lc->active == 0) return;
  // Encode once per push format for the whole shard (when someone here
  // takes it); every subscriber of that format shares the bytes.
  std::array<frame_ref, max_push_formats> frames;
  for (subscription& s : lc->subs) {
    if (!s.active || (presence_event && !s.join_leave)) continue;
    frame_ref& frame = frames[s.push_format];
    if (!frame) {
      const push_encoder& encode = _encode[s.push_format];
      assert(encode && "a subscription asked for a push format nobody encodes");
      if (!encode) continue;
      frame = encode(_frames, *pub);
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

void router::on_reset(std::string_view channel, std::uint64_t offset, stream_epoch epoch) {
  auto it = _local.find(channel);
  if (it == _local.end()) return;
  local_channel* lc = *it;
  if (!lc->registered) return;
  lc->last_offset = offset;
  lc->epoch = epoch;
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

bool router::publish(publication_ptr pub, publish_done ordered) {
  _stats.publications_in.inc();
  if (pub->entered_ns == 0) pub->entered_ns = steady_now_ns();
  unsigned home = home_of(pub->channel, _mesh.shards());
  // Through the mesh even when this shard is the home: a register this
  // shard sent earlier (a subscribe in the same frame) travels the same
  // ring and must be ordered before the publication.
  router* target = _all[home];
  return send(home, [target, p = std::move(pub), done = std::move(ordered)]() mutable {
    target->home_publish(std::move(p), std::move(done));
  });
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
  return send(home, [target, p = event]() mutable { target->_engine.presence_event(std::move(p)); });
}

}  // namespace sb::routing
