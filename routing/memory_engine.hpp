#pragma once
// The memory engine: every channel's stream kept by its home shard in this
// process, as a single node needs (DESIGN.md "The path of a message",
// decisions 7 and 8). The home orders publications (offset + epoch), keeps
// the retained history bounded by history_size, history_ttl and its share
// of history_max_bytes (whole channels evicted, least recently published
// first), and keeps presence by client id. A record with history outlives
// its last subscriber by history_ttl, so clients that all left can recover.
//
// Every answer runs inside the call. One instance per shard; shard thread
// only.

#include "routing/engine.hpp"

#include <boost/intrusive/list.hpp>

#include <cstdint>
#include <deque>
#include <vector>

namespace sb::routing {

class channel_rules;
struct memory_store;

/// One retained publication of a channel's history.
struct history_entry {
  publication_ptr pub;
  std::int64_t expires_ms;  // steady clock
};

/// A channel's retained publications, oldest first, with its namespace's
/// bounds. Part of the channel's memory_store.
struct channel_history {
  std::deque<history_entry> items;
  std::uint32_t size = 0;          // history_size
  std::int64_t ttl_ms = 0;         // history_ttl
  std::int64_t keep_until_ms = 0;  // with no subscriber shard: the record stays at least until then
  std::uint64_t bytes = 0;         // of the retained publications
  home_channel* owner = nullptr;
  // In the engine's list of channels with retained history, least recently
  // published first: history_max_bytes evicts from its front.
  boost::intrusive::list_member_hook<> lru;
};

class memory_engine final : public engine {
 public:
  /// `rules` (may be null: no history or presence anywhere) gives each
  /// namespace's options; `history_max_bytes` is this shard's share (0: no
  /// bound); `seed` makes this shard's epochs differ from the others'.
  memory_engine(const channel_rules* rules, std::uint64_t history_max_bytes, std::uint64_t seed);
  ~memory_engine() override;
  memory_engine(const memory_engine&) = delete;
  memory_engine& operator=(const memory_engine&) = delete;

  void attach(engine_host& host, router_stats& stats) override;
  bool lean(std::string_view channel) const override;
  void on_make(home_channel& hc) override;
  void on_erase(home_channel& hc) override;
  void open(home_channel& hc, open_done done) override;
  bool release(home_channel& hc) override;
  void recover(home_channel& hc, std::uint64_t since, std::string_view epoch, recover_done done) override;
  void publish(publication_ptr pub, publish_done done) override;
  void presence_event(publication_ptr event) override;
  void history(std::string_view channel, const history_query& q, history_done done) override;
  void presence(std::string_view channel, bool counts_only, presence_done done) override;
  void sweep() override;

 private:
  channel_history* history_of(home_channel& hc) const noexcept;
  memory_store& store_of(home_channel& hc);
  void trim_history(channel_history& h, std::int64_t now_ms);
  void drop_history_front(channel_history& h);
  void enforce_history_bound();
  void set_idle(home_channel& hc, bool idle);

  const channel_rules* _rules;
  std::uint64_t _history_max_bytes;
  std::uint64_t _epoch_seed;
  engine_host* _host = nullptr;
  router_stats* _stats = nullptr;
  boost::intrusive::list<channel_history,
                         boost::intrusive::member_hook<channel_history, boost::intrusive::list_member_hook<>,
                                                       &channel_history::lru>,
                         boost::intrusive::constant_time_size<false>>
      _history_lru;
  std::vector<home_channel*> _idle;  // records with no subscriber shard, kept for their history
};

}  // namespace sb::routing
