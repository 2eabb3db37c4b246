// The Redis engine's recovery: a client's position checked against the
// stream in Redis, spliced with what this node dispatched since it asked,
// and recoveries from ahead of this node deferred until it catches up
// (routing/redis_engine.hpp; streams in redis_engine.cpp, reads and
// presence in redis_engine_reads.cpp).

#include "routing/redis_codec.hpp"
#include "routing/redis_engine.hpp"
#include "routing/redis_engine_store.hpp"
#include "routing/router_stats.hpp"

#include <algorithm>
#include <charconv>

namespace sb::routing {

namespace {
constexpr int history_script = 2;  // index in redis_engine.cpp's script table
}  // namespace

void redis_engine::recover(home_channel& hc, std::uint64_t since, std::string_view epoch, recover_done done) {
  redis_store& s = *store_of(hc);
  using phase = redis_store::phase;
  if (s.ph == phase::live) return start_recover(hc, s, since, stream_epoch(epoch), std::move(done));
  if (s.ph == phase::lost && !(s.subscribed && _servers[s.server].pubsub->up())) {
    recovery_answer a;
    a.error = 100;
    return done(hc, std::move(a));
  }
  // After the opens asked before it (the ordering contract).
  s.side().waiters.push_back(redis_waiter{{}, std::move(done), since, stream_epoch(epoch)});
  if (s.ph == phase::idle) start_subscribe(hc, s);
  else if (s.ph == phase::lost) position(hc, s);
}

void redis_engine::start_recover(home_channel& hc, redis_store& s, std::uint64_t since, stream_epoch epoch,
                                 recover_done done) {
  auto answer_now = [&](bool recovered) {
    _stats->recoveries.inc();
    if (!recovered) _stats->recoveries_failed.inc();
    recovery_answer a;
    a.offset = hc.offset;
    a.epoch = hc.epoch;
    a.recovered = recovered;
    done(hc, std::move(a));
  };
  if (epoch.view() != hc.epoch.view()) return answer_now(false);
  if (since == hc.offset) return answer_now(true);
  if (since > hc.offset) {
    // The client saw more of this stream (on another node) than this node
    // dispatched yet: answered when this node gets there.
    s.side().deferred.push_back({since, epoch, std::move(done), engine_now_ms() + deferred_wait_ms});
    return;
  }
  if (s.recovering++ == 0) {
    if (s.t) s.t->recent.clear();
    s.recent_overflow = false;
  }
  std::string stream = key("stream", hc.name), meta = key("meta", hc.name);
  std::string ttl = std::to_string(_opts.history_meta_ttl.count()), cand = new_epoch(), from = std::to_string(since);
  std::string_view keys[] = {stream, meta};
  std::string_view args[] = {ttl, cand, from, "-1", "0"};
  script(s.server, history_script, keys, args,
         [this, name = hc.name, serial = s.serial, since, epoch, done = std::move(done)](const redis::reply* r) mutable {
           home_channel* h = find(name, serial);
           if (!h) return;  // cannot happen: the record waits for its answers (release)
           redis_store& st = *store_of(*h);
           finish_recover(*h, st, since, epoch, r, done);
           if (--st.recovering == 0 && st.t) st.t->recent.clear();
           st.trim();
           settle(*h, st);
         });
}

void redis_engine::finish_recover(home_channel& hc, redis_store& s, std::uint64_t since, stream_epoch epoch,
                                  const redis::reply* r, recover_done& done) {
  recovery_answer a;
  a.offset = hc.offset;
  a.epoch = hc.epoch;
  if (!r || r->type() != redis::reply::kind::array || r->size() < 4) {
    a.error = 100;
    return done(hc, std::move(a));
  }
  _stats->recoveries.inc();
  // Redis's stream up to what this node dispatched, then what this node
  // dispatched after Redis answered (the recent buffer): contiguous from
  // since + 1 to hc.offset, in the epoch the client knew, or not at all.
  std::uint64_t upto = std::min<std::uint64_t>(static_cast<std::uint64_t>(r->at(0).integer()), hc.offset);
  bool ok = !s.recent_overflow && stream_epoch(r->at(1).str()).view() == epoch.view() &&
            epoch.view() == hc.epoch.view();
  std::uint64_t next = since + 1;
  redis::reply entries = r->at(3);
  for (std::size_t i = 0; ok && i < entries.size() && next <= upto; ++i) {
    redis::reply e = entries.at(i);
    if (e.size() < 2 || e.at(1).size() < 2) {
      ok = false;
      break;
    }
    std::uint64_t off = 0;
    std::string_view id = e.at(0).str();
    std::from_chars(id.data(), id.data() + id.size(), off);
    if (off != next) {
      ok = false;  // trimmed: the stream no longer holds what the client missed
      break;
    }
    publication_ptr p(new publication);
    if (!redis_codec::decode_body(e.at(1).at(1).str(), *p)) {
      ok = false;
      break;
    }
    p->channel.assign(hc.name.view());
    p->offset = off;
    a.publications.push_back(std::move(p));
    ++next;
  }
  static const std::vector<publication_ptr> none;
  for (const auto& p : s.t ? s.t->recent : none) {
    if (!ok || next > hc.offset) break;
    if (p->offset < next) continue;
    if (p->offset != next) {
      ok = false;
      break;
    }
    a.publications.push_back(p);
    ++next;
  }
  a.recovered = ok && next == hc.offset + 1;
  if (!a.recovered) {
    a.publications.clear();
    _stats->recoveries_failed.inc();
  }
  done(hc, std::move(a));
}

void redis_engine::check_deferred(home_channel& hc, redis_store& s) {
  std::vector<redis_deferred> ready;
  auto& deferred = s.side().deferred;
  for (auto it = deferred.begin(); it != deferred.end();) {
    if (it->since <= hc.offset || it->epoch.view() != hc.epoch.view()) {
      ready.push_back(std::move(*it));
      it = deferred.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& d : ready) start_recover(hc, s, d.since, d.epoch, std::move(d.done));
  s.trim();
}

void redis_engine::expire_deferred(home_channel& hc, redis_store& s, std::int64_t now_ms) {
  auto& deferred = s.side().deferred;
  for (auto it = deferred.begin(); it != deferred.end();) {
    if (it->deadline_ms > now_ms) {
      ++it;
      continue;
    }
    recover_done done = std::move(it->done);
    it = deferred.erase(it);
    recovery_answer a;
    a.error = 100;  // this node is behind the stream: the client tries again
    done(hc, std::move(a));
  }
  s.trim();
}

}  // namespace sb::routing
