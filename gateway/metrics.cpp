#include "gateway/metrics.hpp"

#include "gateway/client.hpp"
#include "gateway/memory_stats.hpp"
#include "gateway/shard.hpp"
#include "routing/mesh.hpp"
#include "routing/router.hpp"
#include "session/session.hpp"

#include <fmt/format.h>

#include <iterator>
#include <optional>

namespace sb {

namespace {

// One shard's figures as this scrape sees them. The published pointers are
// loaded once: null when that part does not run (before start, after the
// end, or no protocol handler in echo mode), and its series are then left
// out rather than reported as 0 (a counter that drops to 0 reads as a reset).
struct shard_view {
  std::string label;  // shard="N"
  const shard_stats* st = nullptr;
  const session_stats* ss = nullptr;
  const ws::deflate_stats* ds = nullptr;  // &ss->deflate
  const routing::router_stats* rs = nullptr;
  const protocol_stats* ps = nullptr;
  const mesh_source_stats* src = nullptr;
  const mesh_dest_stats* dst = nullptr;
};

// A counter field reached through one of shard_view's pointers, e.g.
// field{&shard_view::ss, &session_stats::upgrades}; nullopt when absent.
template <typename S>
struct field {
  const S* shard_view::*part;
  counter S::*figure;
  std::optional<std::uint64_t> operator()(const shard_view& v) const {
    const S* s = v.*part;
    if (!s) return std::nullopt;
    return (s->*figure).get();
  }
};

// Label values: backslash, double quote and line feed are escaped.
std::string escape_label(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// The exposition being written: one family at a time (HELP and TYPE once,
// then its samples, all together as the format requires). The header is
// written with the first sample, so a family with no samples is left out.
class exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    _name = name;
    _type = type;
    _help = help;
    _header = false;
  }

  // `labels` is `k="v",...` (already escaped) or empty.
  void sample(std::string_view labels, std::uint64_t value) {
    auto out = std::back_inserter(_out);
    if (!_header) {
      fmt::format_to(out, "# HELP {} {}\n# TYPE {} {}\n", _name, _help, _name, _type);
      _header = true;
    }
    if (labels.empty()) fmt::format_to(out, "{} {}\n", _name, value);
    else fmt::format_to(out, "{}{{{}}} {}\n", _name, labels, value);
  }

  // A family with one sample per shard.
  template <typename Get>
  void per_shard(std::string_view name, std::string_view type, std::string_view help,
                 const std::vector<shard_view>& shards, Get get) {
    family(name, type, help);
    for (const auto& v : shards) {
      if (std::optional<std::uint64_t> n = get(v)) sample(v.label, *n);
    }
  }

  // A histogram family per shard: cumulative _bucket{le} series, _sum and
  // _count. Recorded values are divided by `divisor` (1e6: microseconds
  // exposed as seconds; dividing keeps "5e-05" instead of 50 * 1e-6's
  // "4.9999999999999996e-05").
  template <typename Hist>
  void histogram(std::string_view name, std::string_view help, const std::vector<shard_view>& shards, double divisor,
                 const Hist* (*get)(const shard_view&)) {
    auto out = std::back_inserter(_out);
    bool header = false;
    for (const auto& v : shards) {
      const Hist* h = get(v);
      if (!h) continue;
      if (!header) {
        fmt::format_to(out, "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
        header = true;
      }
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < Hist::bounds_count; ++i) {
        cumulative += h->bucket(i);
        fmt::format_to(out, "{}_bucket{{{},le=\"{}\"}} {}\n", name, v.label, static_cast<double>(h->bounds()[i]) / divisor,
                       cumulative);
      }
      cumulative += h->bucket(Hist::bounds_count);
      fmt::format_to(out, "{}_bucket{{{},le=\"+Inf\"}} {}\n", name, v.label, cumulative);
      fmt::format_to(out, "{}_sum{{{}}} {}\n", name, v.label, static_cast<double>(h->sum()) / divisor);
      fmt::format_to(out, "{}_count{{{}}} {}\n", name, v.label, cumulative);
    }
  }

  // A family with a single unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help, std::uint64_t value) {
    family(name, type, help);
    sample({}, value);
  }

  std::string take() { return std::move(_out); }

 private:
  std::string _out;
  std::string_view _name, _type, _help;
  bool _header = false;
};

constexpr std::string_view gauge = "gauge";
constexpr std::string_view counter_type = "counter";

// switchboard_commands_total: the protocol's per-method figures. Refresh
// failures are not counted separately, and malformed commands count as
// bad requests, so those series do not exist.
struct command_series {
  const char* method;
  const char* result;
  counter protocol_stats::*figure;
};
constexpr command_series command_table[] = {
    {"connect", "ok", &protocol_stats::connects},
    {"connect", "error", &protocol_stats::connect_errors},
    {"subscribe", "ok", &protocol_stats::subscribes},
    {"subscribe", "error", &protocol_stats::subscribe_errors},
    {"unsubscribe", "ok", &protocol_stats::unsubscribes},
    {"publish", "ok", &protocol_stats::publishes},
    {"publish", "error", &protocol_stats::publish_errors},
    {"refresh", "ok", &protocol_stats::refreshes},
};

void session_families(exposition& x, const std::vector<shard_view>& v) {
  x.family("switchboard_connections", gauge,
           "Client connections now, by state: handshaking (HTTP upgrade not done yet) or open (WebSocket session).");
  for (const auto& s : v) {
    if (!s.ss) continue;
    x.sample(s.label + R"(,state="handshaking")", s.ss->handshaking.get());
    x.sample(s.label + R"(,state="open")", s.ss->open.get());
  }
  x.family("switchboard_connections_connecting", gauge,
           "Open sessions whose Centrifuge connect is not answered yet: admission's in-flight count "
           "(max_handshakes_in_flight).");
  for (const auto& s : v) {
    if (s.ss) x.sample(s.label, s.ss->connecting.get());
  }
  x.per_shard("switchboard_connections_accepted_total", counter_type, "TCP connections accepted.", v,
              field{&shard_view::st, &shard_stats::accepted});
  x.per_shard("switchboard_connections_rejected_over_limit_total", counter_type,
              "Connections accepted and closed at once because max_connections was reached.", v,
              field{&shard_view::st, &shard_stats::rejected_over_limit});
  x.per_shard("switchboard_accept_errors_total", counter_type, "accept() failures (EMFILE, ENFILE, ENOBUFS...).", v,
              field{&shard_view::st, &shard_stats::accept_errors});

  x.family("switchboard_handshake_rejections_total", counter_type,
           "WebSocket upgrade requests answered with an HTTP error, by the parser's reason.");
  for (const auto& s : v) {
    if (!s.ss) continue;
    for (const auto& r : s.ss->rejected) {
      if (!r.label()) break;
      x.sample(fmt::format(R"({},reason="{}")", s.label, escape_label(r.label())), r.n.get());
    }
  }
  x.family("switchboard_sessions_ended_total", counter_type, "Connections ended, by reason.");
  for (const auto& s : v) {
    if (!s.ss) continue;
    for (std::size_t i = 0; i < s.ss->ended.size(); ++i) {
      x.sample(fmt::format(R"({},reason="{}")", s.label, to_string(static_cast<end_reason>(i))), s.ss->ended[i].get());
    }
  }
  x.per_shard("switchboard_upgrades_total", counter_type, "Successful WebSocket upgrades.", v,
              field{&shard_view::ss, &session_stats::upgrades});
  x.per_shard("switchboard_messages_received_total", counter_type, "Complete WebSocket data messages received.", v,
              field{&shard_view::ss, &session_stats::messages_in});
  x.per_shard("switchboard_frames_queued_total", counter_type, "WebSocket frames queued for clients.", v,
              field{&shard_view::ss, &session_stats::frames_out});
  x.per_shard("switchboard_received_bytes_total", counter_type, "Bytes read from client sockets.", v,
              field{&shard_view::ss, &session_stats::bytes_in});
  x.per_shard("switchboard_sent_bytes_total", counter_type, "Bytes written to client sockets.", v,
              field{&shard_view::ss, &session_stats::bytes_out});
  x.per_shard("switchboard_writes_total", counter_type, "writev()/send() calls on client sockets (TLS 1.3: one per batch of sealed records; TLS 1.2: SSL_write calls).", v,
              field{&shard_view::ss, &session_stats::writes});
  x.per_shard("switchboard_tls_handshakes_total", counter_type, "TLS handshakes completed on the client listener.", v,
              field{&shard_view::ss, &session_stats::tls_handshakes});
  x.per_shard("switchboard_tls_resumed_total", counter_type, "TLS handshakes that resumed a session from a ticket.", v,
              field{&shard_view::ss, &session_stats::tls_resumed});
  using ws::deflate_stats;
  x.per_shard("switchboard_ws_deflate_sessions_total", counter_type,
              "Upgrades that negotiated permessage-deflate (websocket_compression).", v,
              field{&shard_view::ds, &deflate_stats::sessions});
  x.per_shard("switchboard_ws_compressed_messages_total", counter_type,
              "Messages sent compressed: a publication once per shard and format, a reply once per session.", v,
              field{&shard_view::ds, &deflate_stats::messages});
  x.per_shard("switchboard_ws_compression_skipped_total", counter_type,
              "Messages of at least websocket_compression_min_size sent plain: deflate did not make them smaller.", v,
              field{&shard_view::ds, &deflate_stats::skipped});
  x.per_shard("switchboard_ws_compression_input_bytes_total", counter_type,
              "Payload bytes of the compressed messages before compression.", v,
              field{&shard_view::ds, &deflate_stats::bytes_in});
  x.per_shard("switchboard_ws_compression_output_bytes_total", counter_type,
              "Payload bytes of the compressed messages after compression.", v,
              field{&shard_view::ds, &deflate_stats::bytes_out});
  x.per_shard("switchboard_ws_inflated_messages_total", counter_type, "Compressed client messages inflated.", v,
              field{&shard_view::ds, &deflate_stats::inflated});
  x.per_shard("switchboard_ws_inflated_input_bytes_total", counter_type,
              "Compressed payload bytes of the inflated client messages.", v,
              field{&shard_view::ds, &deflate_stats::inflated_in});
  x.per_shard("switchboard_ws_inflated_output_bytes_total", counter_type,
              "Payload bytes of the client messages once inflated.", v,
              field{&shard_view::ds, &deflate_stats::inflated_out});
  x.per_shard("switchboard_queued_bytes", gauge, "Bytes waiting in client outbound queues now.", v,
              field{&shard_view::ss, &session_stats::queued_bytes});
  x.per_shard("switchboard_fd_capacity", gauge, "File descriptors the shard's table can hold for clients.", v,
              field{&shard_view::st, &shard_stats::fd_capacity});
  using latency_hist = decltype(session_stats::publish_to_write_us);
  using queue_hist = decltype(session_stats::queue_at_write_bytes);
  x.histogram<latency_hist>(
      "switchboard_publish_to_write_seconds",
      "From a publication entering the gateway to the write that finished its frame on a subscriber's socket.", v, 1e6,
      [](const shard_view& s) { return s.ss ? &s.ss->publish_to_write_us : nullptr; });
  x.histogram<queue_hist>("switchboard_outbound_queue_bytes",
                          "A session's outbound queue (bytes) when it starts a write.", v, 1.0,
                          [](const shard_view& s) { return s.ss ? &s.ss->queue_at_write_bytes : nullptr; });
}

void mesh_families(exposition& x, const std::vector<shard_view>& v, const mesh& m) {
  // Waiting in the rings towards each shard, from every source (the shards
  // and the main thread): how far behind the shard's drain is.
  x.family("switchboard_mesh_ring_depth", gauge,
           "Cross-shard tasks published to this shard's incoming rings and not yet run (approximate).");
  for (const auto& s : v) {
    unsigned to = static_cast<unsigned>(&s - v.data());
    std::uint64_t depth = 0;
    for (unsigned from = 0; from <= m.shards(); ++from) depth += m.ring_depth(from, to);
    x.sample(s.label, depth);
  }
  x.per_shard("switchboard_mesh_sent_total", counter_type, "Cross-shard tasks this shard sent through the mesh.", v,
              field{&shard_view::src, &mesh_source_stats::sent});
  x.per_shard("switchboard_mesh_received_total", counter_type, "Cross-shard tasks run on this shard.", v,
              field{&shard_view::dst, &mesh_dest_stats::received});
  x.per_shard("switchboard_mesh_deferred_total", counter_type,
              "Cross-shard tasks from this shard that found their ring full and waited in the overflow.", v,
              field{&shard_view::src, &mesh_source_stats::deferred});
  x.per_shard("switchboard_mesh_shed_total", counter_type,
              "Cross-shard tasks from this shard dropped because the overflow was at mesh_overflow_limit.", v,
              field{&shard_view::src, &mesh_source_stats::shed});
}

void routing_families(exposition& x, const std::vector<shard_view>& v) {
  using routing::router_stats;
  x.per_shard("switchboard_local_channels", gauge, "Channels with subscribers on this shard.", v,
              field{&shard_view::rs, &router_stats::local_channels});
  x.per_shard("switchboard_home_channels", gauge, "Channels this shard is the home (ordering point) of.", v,
              field{&shard_view::rs, &router_stats::home_channels});
  x.per_shard("switchboard_subscriptions", gauge, "Channel subscriptions of this shard's clients (active and pending).",
              v, field{&shard_view::rs, &router_stats::subscriptions});
  x.per_shard("switchboard_publications_in_total", counter_type, "Publications that entered routing on this shard.", v,
              field{&shard_view::rs, &router_stats::publications_in});
  x.per_shard("switchboard_publications_home_total", counter_type, "Publications ordered on this shard as their home.",
              v, field{&shard_view::rs, &router_stats::publications_home});
  x.per_shard("switchboard_publications_dropped_total", counter_type,
              "Publications dropped at their home because no shard had a subscriber.", v,
              field{&shard_view::rs, &router_stats::publications_dropped});
  x.per_shard("switchboard_push_frames_encoded_total", counter_type,
              "Publication push frames encoded (one per publication per subscribing shard).", v,
              field{&shard_view::rs, &router_stats::frames_encoded});
  x.per_shard("switchboard_deliveries_total", counter_type, "Publication frames queued to subscribers on this shard.", v,
              field{&shard_view::rs, &router_stats::deliveries});
  x.per_shard("switchboard_history_publications", gauge, "Publications retained in channel history at this home shard.",
              v, field{&shard_view::rs, &routing::router_stats::history_publications});
  x.per_shard("switchboard_history_bytes", gauge, "Bytes of the publications retained in history (payload, channel, record).",
              v, field{&shard_view::rs, &routing::router_stats::history_bytes});
  x.per_shard("switchboard_recoveries_total", counter_type, "Recovery requests answered at this home shard.", v,
              field{&shard_view::rs, &routing::router_stats::recoveries});
  x.per_shard("switchboard_recoveries_failed_total", counter_type,
              "Recovery requests that could not be served (epoch changed or publications gone).", v,
              field{&shard_view::rs, &routing::router_stats::recoveries_failed});
  x.per_shard("switchboard_history_evictions_total", counter_type,
              "Channels whose whole history history_max_bytes evicted (least recently published first).", v,
              field{&shard_view::rs, &routing::router_stats::history_evictions});
  x.per_shard("switchboard_stream_gaps_total", counter_type,
              "Publications this subscriber shard found missing from a channel's stream (forwards the mesh shed); "
              "positioned subscribers are disconnected with insufficient state.",
              v, field{&shard_view::rs, &routing::router_stats::stream_gaps});
  x.per_shard("switchboard_presence_lost_total", counter_type,
              "Joins/leaves dropped: the mesh refused them and this shard's resend backlog was full.", v,
              field{&shard_view::rs, &routing::router_stats::presence_lost});
  x.per_shard("switchboard_presence_entries", gauge, "Clients in the presence of channels homed on this shard.", v,
              field{&shard_view::rs, &routing::router_stats::presence_entries});
  x.per_shard("switchboard_mesh_refused_total", counter_type, "Routing messages the mesh shed (ring and overflow full).",
              v, field{&shard_view::rs, &router_stats::mesh_refused});
}

// The backend proxy, per endpoint kind; a kind that never sent anything on
// a shard is left out (most gateways proxy one or two kinds, or none).
void proxy_families(exposition& x, const std::vector<shard_view>& v) {
  auto used = [](const proxy_stats& p, std::size_t k) {
    std::uint64_t n = p.in_flight[k].get() + p.breaker_state[k].get();
    for (const auto& c : p.outcomes[k]) n += c.get();
    return n > 0;
  };
  auto each = [&](auto&& fn) {
    for (const auto& s : v) {
      if (!s.ps) continue;
      for (std::size_t k = 0; k < proxy_kind_count; ++k) {
        if (!used(s.ps->proxy, k)) continue;
        fn(s, k, fmt::format(R"({},endpoint="{}")", s.label, proxy_kind_name(static_cast<proxy_kind>(k))));
      }
    }
  };
  x.family("switchboard_proxy_requests_total", counter_type,
           "Backend proxy requests by endpoint and outcome: result, error, disconnect (the backend answered), "
           "timeout, unavailable, bad_response (it failed), breaker_open, overloaded (not sent).");
  each([&](const shard_view& s, std::size_t k, const std::string& l) {
    for (std::size_t o = 0; o < proxy_outcome_count; ++o) {
      x.sample(fmt::format(R"({},outcome="{}")", l, proxy_outcome_name(static_cast<proxy_reply::outcome>(o))),
               s.ps->proxy.outcomes[k][o].get());
    }
  });
  x.family("switchboard_proxy_in_flight", gauge, "Backend proxy requests sent and not answered yet.");
  each([&](const shard_view& s, std::size_t k, const std::string& l) { x.sample(l, s.ps->proxy.in_flight[k].get()); });
  x.family("switchboard_proxy_breaker_state", gauge, "The endpoint's circuit breaker: 0 closed, 1 open, 2 half-open.");
  each([&](const shard_view& s, std::size_t k, const std::string& l) { x.sample(l, s.ps->proxy.breaker_state[k].get()); });
  x.family("switchboard_proxy_breaker_opened_total", counter_type, "Times the endpoint's circuit breaker opened.");
  each([&](const shard_view& s, std::size_t k, const std::string& l) { x.sample(l, s.ps->proxy.breaker_opened[k].get()); });
}

void protocol_families(exposition& x, const std::vector<shard_view>& v) {
  x.per_shard("switchboard_client_records", gauge, "Centrifuge client records alive (every open session, connected or not).",
              v, field{&shard_view::ps, &protocol_stats::client_records});
  x.per_shard("switchboard_clients", gauge, "Centrifuge clients connected now.", v,
              field{&shard_view::ps, &protocol_stats::clients});
  x.per_shard("switchboard_clients_protobuf", gauge,
              "Of the connected clients, those speaking the Protobuf format (centrifuge-protobuf).", v,
              field{&shard_view::ps, &protocol_stats::protobuf_clients});
  x.per_shard("switchboard_users", gauge, "Distinct users with a connected client on this shard now.", v,
              field{&shard_view::ps, &protocol_stats::users});
  x.family("switchboard_commands_total", counter_type,
           "Centrifuge commands handled, by method and result. Malformed commands count in "
           "switchboard_bad_requests_total; refresh failures are not counted.");
  for (const auto& s : v) {
    if (!s.ps) continue;
    for (const auto& c : command_table) {
      x.sample(fmt::format(R"({},method="{}",result="{}")", s.label, c.method, c.result), (s.ps->*c.figure).get());
    }
  }
  x.per_shard("switchboard_bad_requests_total", counter_type, "Clients disconnected for malformed or out-of-order commands.",
              v, field{&shard_view::ps, &protocol_stats::bad_requests});
  x.per_shard("switchboard_server_disconnects_total", counter_type, "Disconnects the server initiated, for any reason.", v,
              field{&shard_view::ps, &protocol_stats::disconnects});
  x.per_shard("switchboard_rate_limited_total", counter_type,
              "Client commands refused with 111 by the per-connection rate limits.", v,
              field{&shard_view::ps, &protocol_stats::rate_limited});
  x.per_shard("switchboard_rate_limit_disconnects_total", counter_type,
              "Clients disconnected (3013) for flooding past their rate limits.", v,
              field{&shard_view::ps, &protocol_stats::rate_limit_disconnects});
  x.per_shard("switchboard_rate_limit_tracked", gauge,
              "Clients with a rate-limit state now (a bucket not full again); idle clients have none.", v,
              field{&shard_view::ps, &protocol_stats::rate_limit_tracked});
  proxy_families(x, v);
}

void process_families(exposition& x, std::size_t shards, std::uint64_t fds_per_shard, std::string_view version) {
  x.single("switchboard_connection_capacity", gauge, "Client connections all shards' fd tables can hold.",
           fds_per_shard * shards);
  memory_figures mem = read_memory_figures();
  if (mem.rss_bytes > 0) {
    x.single("switchboard_resident_memory_bytes", gauge, "Resident set size of the process.", mem.rss_bytes);
  }
  if (mem.jemalloc) {
    x.single("switchboard_jemalloc_allocated_bytes", gauge, "jemalloc stats.allocated: bytes in live allocations.",
             mem.jemalloc->allocated);
    x.single("switchboard_jemalloc_active_bytes", gauge, "jemalloc stats.active: bytes in pages holding live allocations.",
             mem.jemalloc->active);
    x.single("switchboard_jemalloc_resident_bytes", gauge,
             "jemalloc stats.resident: bytes the allocator keeps resident, metadata and dirty pages included.",
             mem.jemalloc->resident);
    x.single("switchboard_jemalloc_mapped_bytes", gauge, "jemalloc stats.mapped: bytes in extents mapped by the allocator.",
             mem.jemalloc->mapped);
  }
  x.single("switchboard_open_fds", gauge,
           "Entries of /proc/self/fd as seen by the main thread. Shards run with private fd tables, so client "
           "sockets are not in it: use switchboard_connections for those.",
           open_fd_count());
  x.family("switchboard_info", gauge, "Build information; the value is always 1.");
  x.sample(fmt::format(R"(version="{}")", escape_label(version)), 1);
}

}  // namespace

std::string metrics_text(const std::vector<std::unique_ptr<shard>>& shards, const mesh& m, std::uint64_t fds_per_shard,
                         std::string_view version) {
  std::vector<shard_view> views;
  views.reserve(shards.size());
  for (const auto& s : shards) {
    shard_view v;
    v.label = fmt::format(R"(shard="{}")", s->id());
    v.st = &s->stats();
    v.ss = s->sessions();
    if (v.ss) v.ds = &v.ss->deflate;
    if (const routing::router* r = s->router()) v.rs = &r->stats();
    if (const centrifuge_handler* h = s->protocol()) v.ps = &h->stats();
    v.src = &m.source_stats(s->id());
    v.dst = &m.dest_stats(s->id());
    views.push_back(std::move(v));
  }
  exposition x;
  session_families(x, views);
  mesh_families(x, views, m);
  routing_families(x, views);
  protocol_families(x, views);
  process_families(x, shards.size(), fds_per_shard, version);
  return x.take();
}

}  // namespace sb
