// swload parent, the scenario drivers that publish through the gateway's
// server API: the api scenario's rounds (announced to the workers, then
// published; the next once every worker reported the last), and the
// reconnect scenario's steps (publish before, drop, publish what the dropped
// clients miss, reconnect, publish live ones, settle), sampling the server's
// CPU around them.

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "parent.hpp"
#include "wire.hpp"

namespace swload::in_parent {

namespace {

// POSTs body (which ends in `"data":`) completed with the payload
// {"t":<CLOCK_MONOTONIC ns>,"s":s} to the server API; returns the stamp.
std::int64_t post_stamped(const options& o, const std::string& path, std::string body, long s, int& status,
                          std::string& reply) {
  std::int64_t t = now_ns();
  body += R"({"t":)" + std::to_string(t) + R"(,"s":)" + std::to_string(s) + "}}";
  status = wire::http_post(o.host, o.api_port, path, o.api_key, body, 30, reply);
  return t;
}

// reconnect: publishes `count` publications to --channel through the server
// API, "s" from `first` on; returns the offset of the last one (the API
// answers {"result":{"offset":K,"epoch":"…"}} on a channel with history).
std::uint64_t publish_offsets(const options& o, long first, long count, reconnect_run& rr) {
  std::uint64_t offset = 0;
  for (long s = first; s < first + count; ++s) {
    int status = 0;
    std::string reply;
    post_stamped(o, "/api/publish", R"({"channel":")" + o.channel + R"(","data":)", s, status, reply);
    std::uint64_t k = 0;
    if (status == 200 && wire::to_u64(wire::member(wire::member(reply, "result"), "offset"), k)) {
      offset = k;
      ++rr.published;
    } else {
      ++rr.api_errors;
      while (!reply.empty() && std::isspace(static_cast<unsigned char>(reply.back()))) reply.pop_back();
      rr.api_error = "HTTP " + std::to_string(status) + ": " + reply.substr(0, 200);
      if (status == 200) rr.api_error += " (no offset: is the channel in a namespace with history?)";
    }
  }
  return offset;
}

}  // namespace

// api: publishing the rounds one after the other, each once the previous
// one's reports (round, or final for the last) are all in; the first
// --hold s after `go`.
bool coordinator::api_step(std::int64_t now) {
  bool due = now >= _t0 + static_cast<std::int64_t>(_o.hold * 1e9) &&
             (_rounds.empty() || (round_complete() && static_cast<int>(_rounds.size()) < api_rounds(_o)));
  if (!due) return false;
  _rounds.emplace_back();
  _rounds.back().workers.resize(_procs);
  publish_round(static_cast<int>(_rounds.size()), _rounds.back());
  return true;
}

// Announces round r to the workers, then publishes it: --channel in the
// broadcast round, the targets' personal channels (one `broadcast` call) in
// the personal round. The payload is {"t":<CLOCK_MONOTONIC ns>,"s":r}.
void coordinator::publish_round(int r, api_round& out) const {
  std::string path, body;
  if (r == broadcast_round) {
    path = "/api/publish";
    body = R"({"channel":")" + _o.channel + R"(","data":)";
  } else {
    path = "/api/broadcast";
    body = R"({"channels":[)";
    bool first = true;
    for (long g : pick_targets(_o.n, _o.targets)) {
      body += (first ? "\"" : ",\"") + wire::expand(_o.personal, g) + "\"";
      first = false;
    }
    body += R"(],"data":)";
  }
  tell_all(command_kind::round, r);
  out.published_ns = post_stamped(_o, path, body, r, out.status, out.reply);
  out.request_ms = (now_ns() - out.published_ns) / 1e6;
}

bool coordinator::round_complete() const { return !_rounds.empty() && _rounds.back().reports + gone_count() >= _procs; }

void coordinator::on_round_report(std::size_t w, const counters& c, const histogram& h) {
  api_round& r = _rounds.back();
  r.workers[w] = c;
  r.hist.merge(h);
  ++r.reports;
}

// reconnect: the next step, when it is due.
bool coordinator::reconnect_step(std::int64_t now) {
  using step = reconnect_run::step;
  bool all_reported = _rr.reports + gone_count() >= _procs;
  switch (_rr.at) {
    case step::holding:
      if (!_rr.before_done) {
        _rr.before_done = true;
        _rr.before_offset = publish_offsets(_o, 1, _o.before, _rr);
        return true;
      }
      if (now < _t0 + static_cast<std::int64_t>(_o.hold * 1e9)) return false;
      _rr.cpu_drop = server_cpu_now();
      _rr.drop_ns = now_ns();
      tell_all(command_kind::drop, _rr.drop_ns);
      _rr.at = step::dropping;
      return true;
    case step::dropping: {
      if (!all_reported) return false;
      // Every dropped connection is reset: the clients miss what follows.
      std::int64_t p0 = now_ns();
      _rr.missed_offset = _o.missed ? publish_offsets(_o, _o.before + 1, _o.missed, _rr) : _rr.before_offset;
      _rr.missed_ms = (now_ns() - p0) / 1e6;
      _rr.reports = 0;
      _rr.at = step::away;
      return true;
    }
    case step::away:
      if (now < _rr.drop_ns + static_cast<std::int64_t>(_o.away * 1e9)) return false;
      _rr.cpu_reconnect = server_cpu_now();
      _rr.reconnect_ns = now_ns();
      tell_all(command_kind::reconnect, static_cast<std::int64_t>(_rr.missed_offset));
      _rr.at = step::reconnecting;
      return true;
    case step::reconnecting: {
      if (!all_reported) return false;
      _rr.cpu_back = server_cpu_now();
      _rr.back_ns = now_ns();
      std::uint64_t live = publish_offsets(_o, _o.before + _o.missed + 1, _o.live, _rr);
      _rr.final_offset = live ? live : _rr.missed_offset;
      tell_all(command_kind::settle, static_cast<std::int64_t>(_rr.final_offset));
      _rr.at = step::settling;
      return true;
    }
    case step::settling:
      return false;
  }
  return false;
}

double coordinator::server_cpu_now() const { return _o.server_pid ? servers_cpu_s(_o) : -1.0; }

}  // namespace swload::in_parent
