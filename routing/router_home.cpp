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
  if (!hc && lean_register(from, channel)) return answer_register(from, lc, 0, 0, {});
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
    answer_register(from, lc, error, offset, epoch);
  });
}

void router::answer_register(unsigned from, local_channel* lc, std::uint32_t error, std::uint64_t offset,
                             stream_epoch epoch) {
  if (from == _id) return on_registered(lc, error, offset, epoch);
  // Must not be lost: the subscriber shard is waiting. A refused send here
  // means the destination is far behind; it is counted and the pending
  // subscriptions stay pending until the client gives up.
  router* sub_router = _all[from];
  (void)send(from, [sub_router, lc, error, offset, epoch]() mutable {
    sub_router->on_registered(lc, error, offset, epoch);
  });
}

bool router::lean_register(unsigned from, std::string_view channel) {
  // Decided once, when the channel has no record here: a reload that gives
  // its namespace history later makes a record for the shards that
  // register after it, and both kinds are served until they leave.
  if (_mesh.shards() > lean_max_shards || !_engine.lean(channel)) return false;
  auto [it, made] = _lean.try_emplace(lean_key(channel), 0u);
  if (made) _stats.home_channels.inc();
  std::uint32_t bit = 1u << from;
  if (it->second & bit) {
    ++_lean_extra[{it->first, static_cast<std::uint16_t>(from)}];
  } else {
    it->second |= bit;
  }
  return true;
}

void router::lean_unregister(unsigned from, std::string_view channel) {
  auto it = _lean.find(lean_key(channel));
  std::uint32_t bit = 1u << from;
  if (it == _lean.end() || !(it->second & bit)) return;
  if (!_lean_extra.empty()) {
    if (auto x = _lean_extra.find({it->first, static_cast<std::uint16_t>(from)}); x != _lean_extra.end()) {
      if (--x->second == 0) _lean_extra.erase(x);
      return;
    }
  }
  it->second &= ~bit;
  if (it->second != 0) return;
  _lean.erase(it);
  _stats.home_channels.dec();
}

void router::home_publish(publication_ptr pub, publish_done done) {
  if (!_lean.empty()) {
    if (auto it = _lean.find(lean_key(pub->channel)); it != _lean.end()) {
      std::uint32_t bits = it->second;
      if (find_home(pub->channel) || !_engine.lean(pub->channel)) {
        // Shards that registered after a reload gave the channel a stream
        // are the engine's to serve; the lean ones get the same publication.
        publication_ptr keep = pub;
        _engine.publish(std::move(pub), std::move(done));
        pub = std::move(keep);
      } else {
        _stats.publications_home.inc();
        if (done) done(0, 0, {});  // no stream: no offset, no epoch
      }
      for (; bits != 0; bits &= bits - 1) forward(static_cast<std::uint16_t>(__builtin_ctz(bits)), pub, nullptr);
      return;
    }
  }
  _engine.publish(std::move(pub), std::move(done));
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
  if (!hc) return lean_unregister(from, channel);
  // Not in the record: the shard registered lean before a reload gave the
  // channel a record (decisions §18).
  if (!hc->shards.erase(static_cast<std::uint16_t>(from))) lean_unregister(from, channel);
  if (!hc->shards.empty()) return;
  if (!_engine.release(*hc)) erase_home(hc);
}

void router::dispatch(home_channel& hc, const publication_ptr& pub) {
  hc.shards.for_each([&](std::uint16_t shard) { forward(shard, pub, &hc); });
}

void router::forward(std::uint16_t shard, const publication_ptr& pub, const home_channel* hc) {
  if (shard == _id) return on_deliver(pub);
  router* target = _all[shard];
  if (!send(shard, [target, p = pub] { target->on_deliver(p); }) && hc &&
      pub->what == publication::kind::publication) {
    // Shed under overload: that shard's subscribers miss it. The next
    // publication shows them the gap; sweep_history tells them sooner.
    // Bounded: past it the tail of a stream may go unnoticed until its
    // next publication (which shows the gap by its offset anyway). A lean
    // channel has no stream to show a gap in: its loss is only counted.
    bool repeat = !_shed.empty() && _shed.back().second == shard &&
                  std::string_view(_shed.back().first) == hc->name.view();
    if (!repeat && _shed.size() < shed_limit) _shed.emplace_back(hc->name, shard);
  }
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
    target->home_publish(std::move(p), std::move(done));
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
