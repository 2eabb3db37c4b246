// The home side of the router: the channels this shard is home of, which
// of this node's shards subscribe to each, and the forwarding of what the
// engine dispatches (routing/router.hpp has the protocol).

#include "routing/mesh.hpp"
#include "routing/router.hpp"

namespace sb::routing {

home_channel* router::find_home(std::string_view channel) {
  auto it = _home.find(channel);
  return it == _home.end() ? nullptr : *it;
}

home_channel* router::make_home(std::string_view channel) {
  home_channel* hc = _home_pool.acquire(channel);
  _home.insert(hc);
  _stats.home_channels.inc();
  _engine.on_make(*hc);
  return hc;
}

void router::erase_home(home_channel* hc) {
  _engine.on_erase(*hc);
  _home.erase(hc);
  _home_pool.release(hc);
  _stats.home_channels.dec();
}

void router::on_register(unsigned from, compact_string channel, local_channel* lc) {
  home_channel* hc = find_home(channel);
  if (!hc) hc = make_home(channel);
  _engine.open(*hc, [this, from, lc](home_channel& h, std::uint32_t error, std::uint64_t offset, stream_epoch epoch) {
    // Recorded when the engine answers: every dispatch after this follows
    // the answer on the same ring.
    if (!error) {
      h.shards.insert(static_cast<std::uint16_t>(from));
    } else if (h.shards.empty()) {
      // Not inside the engine's callback: the record may go, later this turn.
      (void)send(_id, [this, name = h.name] { release_if_unsubscribed(name); });
    }
    if (from == _id) return on_registered(lc, error, offset, epoch);
    // Must not be lost: the subscriber shard is waiting. A refused send here
    // means the destination is far behind; it is counted and the pending
    // subscriptions stay pending until the client gives up.
    router* sub_router = _all[from];
    (void)send(from, [sub_router, lc, error, offset, epoch]() mutable {
      sub_router->on_registered(lc, error, offset, epoch);
    });
  });
}

void router::release_if_unsubscribed(std::string_view channel) {
  home_channel* hc = find_home(channel);
  if (hc && hc->shards.empty() && !_engine.release(*hc)) erase_home(hc);
}

void router::on_sync(unsigned from, compact_string channel, local_channel* lc, subscription* s, std::uint64_t since,
                     compact_string epoch) {
  home_channel* hc = find_home(channel);
  bool made = !hc;
  if (made) hc = make_home(channel);  // not reachable with FIFO rings (the register went first); harmless
  _engine.recover(*hc, since, epoch, [this, from, lc, s](home_channel&, recovery_answer&& a) {
    if (from == _id) return on_synced(lc, s, a.error, a.offset, a.epoch, a.recovered, std::move(a.publications));
    router* sub_router = _all[from];
    (void)send(from, [sub_router, lc, s, a = std::move(a)]() mutable {
      sub_router->on_synced(lc, s, a.error, a.offset, a.epoch, a.recovered, std::move(a.publications));
    });
  });
  if (made && hc->shards.empty() && !_engine.release(*hc)) erase_home(hc);
}

void router::on_unregister(unsigned from, std::string_view channel) {
  home_channel* hc = find_home(channel);
  if (!hc) return;
  hc->shards.erase(static_cast<std::uint16_t>(from));
  if (!hc->shards.empty()) return;
  if (!_engine.release(*hc)) erase_home(hc);
}

void router::dispatch(home_channel& hc, const publication_ptr& pub) {
  hc.shards.for_each([&](std::uint16_t shard) {
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
                    std::string_view(_shed.back().first) == hc.name.view();
      if (!repeat && _shed.size() < shed_limit) _shed.emplace_back(hc.name, shard);
    }
  });
}

void router::reset_stream(home_channel& hc, std::uint64_t offset, stream_epoch epoch) {
  hc.shards.for_each([&](std::uint16_t shard) {
    if (shard == _id) return on_reset(hc.name, offset, epoch);
    router* target = _all[shard];
    // Refused: the shard keeps its position; the next publication's offset
    // still shows it the gap (an epoch change waits for its clients to recover).
    (void)send(shard, [target, name = hc.name, offset, epoch] { target->on_reset(name, offset, epoch); });
  });
}

void router::send_positions() {
  // Positions for the shards that missed forwards; what the mesh refuses
  // again waits for the next sweep.
  std::size_t keep = 0;
  for (std::size_t i = 0; i < _shed.size(); ++i) {
    auto& [name, shard] = _shed[i];
    home_channel* hc = find_home(name);
    if (!hc) continue;  // the channel ended here: so did its subscriptions there
    router* target = _all[shard];
    std::uint64_t offset = hc->offset;
    if (!send(shard, [target, name = name, offset] { target->on_position(name, offset); })) {
      if (keep != i) _shed[keep] = std::move(_shed[i]);
      ++keep;
    }
  }
  _shed.resize(keep);
}

void router::sweep_history() {
  while (!_presence_backlog.empty() && try_send_presence(_presence_backlog.front())) _presence_backlog.pop_front();
  send_positions();
  _engine.sweep();
}

bool router::publish_from_main(mesh& m, const std::vector<router*>& all, publication_ptr pub, publish_done ordered) {
  if (pub->entered_ns == 0) pub->entered_ns = steady_now_ns();
  unsigned home = home_of(pub->channel, m.shards());
  router* target = all[home];
  // Not counted in publications_in: that counter has one writer, its shard;
  // the server API counts what it publishes.
  return m.send(m.main_source(), home, [target, p = std::move(pub), done = std::move(ordered)]() mutable {
    target->_engine.publish(std::move(p), std::move(done));
  });
}

bool router::query_history(mesh& m, unsigned source, const std::vector<router*>& all, std::string_view channel,
                           history_query q, std::function<void(history_answer&&)> answered) {
  unsigned home = home_of(channel, m.shards());
  router* target = all[home];
  return m.send(source, home, [target, name = compact_string(channel), q = std::move(q),
                               done = std::move(answered)]() mutable { target->_engine.history(name, q, std::move(done)); });
}

bool router::query_presence(mesh& m, unsigned source, const std::vector<router*>& all, std::string_view channel,
                            bool counts_only, std::function<void(presence_answer&&)> answered) {
  unsigned home = home_of(channel, m.shards());
  router* target = all[home];
  return m.send(source, home, [target, name = compact_string(channel), counts_only, done = std::move(answered)]() mutable {
    target->_engine.presence(name, counts_only, std::move(done));
  });
}

}  // namespace sb::routing
