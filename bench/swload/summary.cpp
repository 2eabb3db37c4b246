// swload parent, the summary: the figures of a run, worked out from the
// workers' last counters and what the drivers saw, printed as lines for
// people and, last, one line of JSON starting with {"swload": for the
// scripts (bench/scenarios/*.sh, tests/integration/test_swload.py), which
// parse its fields: change them in step with those.

#include <sys/resource.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "parent.hpp"

namespace swload::in_parent {

// api: the deliveries are the rounds' (each worker's counters restart per
// round): sets t's publication and delivery counts and hist from the rounds,
// appends a line per round to text and an object per round to json, and
// returns the rounds' time to all delivered, added up.
double coordinator::api_summary(counters& t, histogram& hist, std::string& text, std::string& json) const {
  double api_window_s = 0;
  t.pubs = t.pub_errors = t.expected = t.delivered = t.dup = 0;
  hist = histogram{};
  for (std::size_t i = 0; i < _rounds.size(); ++i) {
    const api_round& r = _rounds[i];
    counters c = r.total();
    bool ok = r.status == 200 && r.reply.find(R"("error")") == std::string::npos;
    ++t.pubs;
    t.pub_errors += ok ? 0 : 1;
    t.expected += c.expected;
    t.delivered += c.delivered;
    t.dup += c.dup;
    hist.merge(r.hist);
    double tta = r.time_to_all_s();
    api_window_s += tta;
    long long r_lost = static_cast<long long>(c.expected) - static_cast<long long>(c.delivered - c.dup);
    double per_s = tta > 0 ? static_cast<double>(c.delivered - c.dup) / tta : 0;
    const char* name = i + 1 == broadcast_round ? "broadcast" : "personal";
    char line[512];
    std::snprintf(
        line, sizeof(line),
        "  round %zu (%s): API %d in %.1f ms%s%s; %llu of %llu delivered, lost %lld, dup %llu; all in %.3f s "
        "(%.0f deliveries/s); latency µs p50 %llu  p99 %llu  max %llu\n",
        i + 1, name, r.status, r.request_ms, ok ? "" : ": ", ok ? "" : r.reply.substr(0, 200).c_str(),
        static_cast<unsigned long long>(c.delivered - c.dup), static_cast<unsigned long long>(c.expected), r_lost,
        static_cast<unsigned long long>(c.dup), tta, per_s, static_cast<unsigned long long>(r.hist.percentile(0.5)),
        static_cast<unsigned long long>(r.hist.percentile(0.99)), static_cast<unsigned long long>(r.hist.max()));
    text += line;
    std::snprintf(
        line, sizeof(line),
        R"(%s{"round":"%s","api_status":%d,"api_ms":%.1f,"expected":%llu,"delivered":%llu,"lost":%lld,)"
        R"("dup":%llu,"time_to_all_s":%.4f,"deliveries_per_s":%.0f,"lat_us":{"p50":%llu,"p99":%llu,"max":%llu}})",
        i ? "," : "", name, r.status, r.request_ms, static_cast<unsigned long long>(c.expected),
        static_cast<unsigned long long>(c.delivered - c.dup), r_lost, static_cast<unsigned long long>(c.dup), tta,
        per_s, static_cast<unsigned long long>(r.hist.percentile(0.5)),
        static_cast<unsigned long long>(r.hist.percentile(0.99)), static_cast<unsigned long long>(r.hist.max()));
    json += line;
  }
  return api_window_s;
}

// reconnect: the reconnect's lines (text) and its JSON member (json);
// returns whether every dropped client came back and recovered all it
// missed, with no duplicate, and the run got to the live publications.
bool coordinator::reconnect_summary(const counters& t, const histogram& hist, std::string& text,
                                    std::string& json) const {
  // Times from the reconnect command (and from the drop); -1: never.
  auto since = [](std::int64_t at, std::int64_t from) { return at > 0 && from > 0 ? (at - from) / 1e9 : -1.0; };
  double back_s = since(t.all_back_ns, _rr.reconnect_ns), back_drop_s = since(t.all_back_ns, _rr.drop_ns);
  double rec_s = since(t.all_recovered_ns, _rr.reconnect_ns), rec_drop_s = since(t.all_recovered_ns, _rr.drop_ns);
  double per_s = back_s > 0 ? static_cast<double>(t.back) / back_s : 0;
  double cpu_reconnect = _rr.cpu_back >= 0 && _rr.cpu_reconnect >= 0 ? _rr.cpu_back - _rr.cpu_reconnect : -1;
  double cpu_drop = _rr.cpu_reconnect >= 0 && _rr.cpu_drop >= 0 ? _rr.cpu_reconnect - _rr.cpu_drop : -1;
  double cpu_us_per_client = cpu_reconnect >= 0 && t.back ? cpu_reconnect * 1e6 / static_cast<double>(t.back) : -1;
  bool ok = t.back == t.dropped && t.back_failed == 0 && t.not_recovered == 0 && t.epoch_changes == 0 &&
            t.recovered == t.missed && t.dup == 0 && _rr.at == reconnect_run::step::settling;
  char buf[2048];
  std::snprintf(
      buf, sizeof(buf),
      "  reconnect: %ld publications before; dropped %llu of %llu at once (TCP reset); %ld publications while "
      "away (API %.1f ms), reconnect %.2f s after the drop\n"
      "    all back in %.3f s from the reconnect (%.3f s from the drop), %.0f clients/s; %llu back, %llu failed\n"
      "    all recovered in %.3f s from the reconnect (%.3f s from the drop)%s\n"
      "    recovered %llu of %llu missed publications; recovered:false %llu clients; epoch changes %llu\n"
      "    time to back µs: p50 %llu  p90 %llu  p99 %llu  max %llu\n"
      "    handshake µs (connect() to subscribed, of the attempt admitted): p50 %llu  p99 %llu  max %llu\n"
      "    then %ld live publications; lost %llu, dup %llu (channel offset %llu before the drop, %llu when away, %llu "
      "at the end)\n",
      _o.before, static_cast<unsigned long long>(t.dropped), static_cast<unsigned long long>(t.ready), _o.missed,
      _rr.missed_ms, since(_rr.reconnect_ns, _rr.drop_ns), back_s, back_drop_s, per_s,
      static_cast<unsigned long long>(t.back), static_cast<unsigned long long>(t.back_failed), rec_s, rec_drop_s,
      t.all_recovered_ns > 0 ? "" : " ** NOT ALL **", static_cast<unsigned long long>(t.recovered),
      static_cast<unsigned long long>(t.missed), static_cast<unsigned long long>(t.not_recovered),
      static_cast<unsigned long long>(t.epoch_changes), static_cast<unsigned long long>(hist.percentile(0.5)),
      static_cast<unsigned long long>(hist.percentile(0.9)), static_cast<unsigned long long>(hist.percentile(0.99)),
      static_cast<unsigned long long>(hist.max()), static_cast<unsigned long long>(_attempt_hist.percentile(0.5)),
      static_cast<unsigned long long>(_attempt_hist.percentile(0.99)),
      static_cast<unsigned long long>(_attempt_hist.max()), _o.live, static_cast<unsigned long long>(t.lost),
      static_cast<unsigned long long>(t.dup), static_cast<unsigned long long>(_rr.before_offset),
      static_cast<unsigned long long>(_rr.missed_offset), static_cast<unsigned long long>(_rr.final_offset));
  text = buf;
  if (_rr.api_errors) text += "    API errors: " + std::to_string(_rr.api_errors) + ", last: " + _rr.api_error + "\n";
  if (_o.server_pid) {
    std::snprintf(buf, sizeof(buf),
                  "  server pid %d: cpu %.3f s in the reconnect (%.1f µs per client back), %.3f s from the drop to the "
                  "reconnect\n",
                  static_cast<int>(_o.server_pid), cpu_reconnect, cpu_us_per_client, cpu_drop);
    text += buf;
  }
  std::snprintf(
      buf, sizeof(buf),
      R"(,"reconnect":{"before":%ld,"dropped":%llu,"back":%llu,"back_failed":%llu,"missed":%ld,"missed_owed":%llu,)"
      R"("recovered":%llu,"not_recovered":%llu,"epoch_changes":%llu,"live":%ld,"lost":%llu,"dup":%llu,)"
      R"("away_s":%.3f,"missed_api_ms":%.1f,"time_to_all_back_s":%.4f,"time_to_all_back_from_drop_s":%.4f,)"
      R"("time_to_all_recovered_s":%.4f,"time_to_all_recovered_from_drop_s":%.4f,"clients_per_s":%.0f,)"
      R"("back_us":{"p50":%llu,"p90":%llu,"p99":%llu,"max":%llu},)"
      R"("handshake_us":{"p50":%llu,"p99":%llu,"max":%llu},"server_cpu_reconnect_s":%.3f,)"
      R"("server_cpu_drop_s":%.3f,"server_cpu_us_per_client":%.1f,"api_errors":%ld})",
      _o.before, static_cast<unsigned long long>(t.dropped), static_cast<unsigned long long>(t.back),
      static_cast<unsigned long long>(t.back_failed), _o.missed, static_cast<unsigned long long>(t.missed),
      static_cast<unsigned long long>(t.recovered), static_cast<unsigned long long>(t.not_recovered),
      static_cast<unsigned long long>(t.epoch_changes), _o.live, static_cast<unsigned long long>(t.lost),
      static_cast<unsigned long long>(t.dup), since(_rr.reconnect_ns, _rr.drop_ns), _rr.missed_ms, back_s, back_drop_s,
      rec_s, rec_drop_s, per_s, static_cast<unsigned long long>(hist.percentile(0.5)),
      static_cast<unsigned long long>(hist.percentile(0.9)), static_cast<unsigned long long>(hist.percentile(0.99)),
      static_cast<unsigned long long>(hist.max()), static_cast<unsigned long long>(_attempt_hist.percentile(0.5)),
      static_cast<unsigned long long>(_attempt_hist.percentile(0.99)),
      static_cast<unsigned long long>(_attempt_hist.max()), cpu_reconnect, cpu_drop, cpu_us_per_client, _rr.api_errors);
  json = buf;
  return ok;
}

int coordinator::summarize() const {
  rusage ru_children{}, ru_self{};
  getrusage(RUSAGE_CHILDREN, &ru_children);
  getrusage(RUSAGE_SELF, &ru_self);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  double cpu_s = tv(ru_children.ru_utime) + tv(ru_children.ru_stime) + tv(ru_self.ru_utime) + tv(ru_self.ru_stime);

  histogram hist = _hist;
  counters t = sum(_latest);
  if (_o.scen == scenario::broadcast)
    t.expected = _latest[0].pubs * t.ready;  // one publisher, every ready client subscribed
  double api_window_s = 0;
  std::string rounds_text, rounds_json;
  if (_api) api_window_s = api_summary(t, hist, rounds_text, rounds_json);
  std::string reconnect_text, reconnect_json;
  bool reconnect_ok = true;
  if (_reconnect) {
    t.pubs = static_cast<std::uint64_t>(_rr.published + _rr.api_errors);
    t.pub_errors = static_cast<std::uint64_t>(_rr.api_errors);
    reconnect_ok = reconnect_summary(t, hist, reconnect_text, reconnect_json);
  }
  std::uint64_t failed = t.failed_total() + (_o.n - std::min<std::uint64_t>(_o.n, t.ready + t.failed_total()));
  double connect_s = t.all_ready_ns > t.first_connect_ns ? (t.all_ready_ns - t.first_connect_ns) / 1e9 : 0;
  double handshake_rate = connect_s > 0 ? static_cast<double>(t.ready) / connect_s : 0;
  auto unique = static_cast<long long>(t.delivered - t.dup);
  long long lost = static_cast<long long>(t.expected) - unique;
  // Deliveries per second over the publishing window, or until the last
  // delivery when the server fell behind.
  double window_s = _api                 ? api_window_s
                    : _t0 && !_reconnect ? std::max(_o.duration, (t.last_delivery_ns - _t0) / 1e9)
                                         : 0;
  double deliveries_per_s = _publishes && window_s > 0 ? static_cast<double>(t.delivered) / window_s : 0;
  std::uint64_t connections = t.ready + (_o.scen == scenario::broadcast ? 1 : 0);
  double rss_per_conn =
      connections ? static_cast<double>(t.rss_delta_kib) * 1024 / static_cast<double>(connections) : 0;
  double server_rss_per_conn =
      _server_rss0 >= 0 && _server_rss1 >= 0 && connections
          ? static_cast<double>(_server_rss1 - _server_rss0) * 1024 / static_cast<double>(connections)
          : -1;
  double server_cpu = _server_cpu0 >= 0 && _server_cpu1 >= 0 ? _server_cpu1 - _server_cpu0 : -1;
  double server_us_per_delivery =
      server_cpu >= 0 && t.delivered ? server_cpu * 1e6 / static_cast<double>(t.delivered) : -1;
  auto pct = [&](double q) { return static_cast<unsigned long long>(hist.percentile(q)); };
  const char* scen_names[] = {"idle", "broadcast", "chat", "api", "reconnect"};
  const char* scen_name = scen_names[static_cast<int>(_o.scen)];
  const char* proto_name = _o.proto == protocol::centrifuge ? "centrifuge" : "raw";

  std::printf("swload %s (%s), %ld clients, %zu worker%s%s%s\n", scen_name, proto_name, _o.n, _procs,
              _procs == 1 ? "" : "s",
              _timed_out ? "  ** TIMEOUT **" : "", _worker_died ? "  ** WORKER DIED **" : "");
  std::printf("  connections: %llu ready, %llu failed%s%s%s in %.2f s (%.0f handshakes/s)\n",
              static_cast<unsigned long long>(t.ready), static_cast<unsigned long long>(failed), failed ? " (" : "",
              failures(t).c_str(), failed ? ")" : "", connect_s, handshake_rate);
  if (t.refused) {
    std::printf("  refused by admission (503, tried again after Retry-After): %llu\n",
                static_cast<unsigned long long>(t.refused));
  }
  if (t.last_close_code) std::printf("  last close code from the server: %u\n", t.last_close_code);
  if (t.last_errno) std::printf("  last socket error: %s\n", std::strerror(t.last_errno));
  if (_publishes) {
    std::printf("  publications: %llu (%llu errors); deliveries: %llu of %llu expected, lost %lld, dup %llu; %.0f/s\n",
                static_cast<unsigned long long>(t.pubs), static_cast<unsigned long long>(t.pub_errors),
                static_cast<unsigned long long>(t.delivered), static_cast<unsigned long long>(t.expected), lost,
                static_cast<unsigned long long>(t.dup), deliveries_per_s);
    if (!_reconnect) {
      std::printf("  latency µs: p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n", pct(0.5), pct(0.9), pct(0.99),
                  pct(0.999), static_cast<unsigned long long>(hist.max()));
    }
    std::fputs(rounds_text.c_str(), stdout);
    std::fputs(reconnect_text.c_str(), stdout);
  }
  if (_o.deflate || t.compressed) {
    std::printf("  permessage-deflate: %llu frames compressed; text frames %llu bytes on the wire, %llu inflated (%.2fx)\n",
                static_cast<unsigned long long>(t.compressed), static_cast<unsigned long long>(t.wire_bytes),
                static_cast<unsigned long long>(t.text_bytes),
                t.wire_bytes ? static_cast<double>(t.text_bytes) / static_cast<double>(t.wire_bytes) : 0.0);
  }
  std::printf("  swload: cpu %.2f s, rss %.0f B per connection\n", cpu_s, rss_per_conn);
  if (_o.server_pid) {
    std::printf("  server pid %d: rss %ld -> %ld KiB (%.0f B per connection), cpu %.2f s in the run window",
                static_cast<int>(_o.server_pid), _server_rss0, _server_rss1, server_rss_per_conn, server_cpu);
    if (_publishes) std::printf(" (%.3f µs per delivery)", server_us_per_delivery);
    std::printf("\n");
  }
  std::printf(
      "{\"swload\":\"1\",\"scenario\":\"%s\",\"proto\":\"%s\",\"n\":%ld,\"procs\":%zu,\"ready\":%llu,\"failed\":%llu,"
      "\"failed_by_reason\":{",
      scen_name, proto_name, _o.n, _procs, static_cast<unsigned long long>(t.ready),
      static_cast<unsigned long long>(failed));
  for (int r = 0; r < reasons; ++r) {
    std::printf("%s\"%s\":%llu", r ? "," : "", reason_name(r), static_cast<unsigned long long>(t.failed[r]));
  }
  std::printf(
      "},\"refused\":%llu,\"last_close_code\":%u,\"connect_s\":%.3f,\"handshake_rate\":%.0f,\"pubs\":%llu,\"pub_errors\":%llu,"
      "\"expected\":%llu,\"delivered\":%llu,\"lost\":%lld,\"dup\":%llu,\"deliveries_per_s\":%.0f,"
      "\"lat_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu},\"cpu_s\":%.3f,"
      "\"rss_per_conn_b\":%.0f,\"server_rss_per_conn_b\":%.0f,\"server_cpu_s\":%.3f,\"server_cpu_us_per_delivery\":%."
      "4f,"
      "\"compressed\":%llu,\"wire_bytes\":%llu,\"text_bytes\":%llu,"
      "\"rounds\":[%s]%s,\"timeout\":%s}\n",
      static_cast<unsigned long long>(t.refused), t.last_close_code, connect_s, handshake_rate,
      static_cast<unsigned long long>(t.pubs),
      static_cast<unsigned long long>(t.pub_errors), static_cast<unsigned long long>(t.expected),
      static_cast<unsigned long long>(t.delivered), lost, static_cast<unsigned long long>(t.dup), deliveries_per_s,
      pct(0.5), pct(0.9), pct(0.99), pct(0.999), static_cast<unsigned long long>(hist.max()), cpu_s, rss_per_conn,
      server_rss_per_conn, server_cpu, server_us_per_delivery, static_cast<unsigned long long>(t.compressed),
      static_cast<unsigned long long>(t.wire_bytes), static_cast<unsigned long long>(t.text_bytes),
      rounds_json.c_str(), reconnect_json.c_str(),
      _timed_out ? "true" : "false");
  std::fflush(stdout);
  if (_timed_out) return 3;
  return failed || lost != 0 || t.pub_errors || _worker_died || !reconnect_ok ? 1 : 0;
}

}  // namespace swload::in_parent
