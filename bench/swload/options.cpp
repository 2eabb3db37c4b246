// swload parent, the command line: the usage text, the flags with their
// defaults and checks, and the split of the clients over the workers.

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "parent.hpp"

namespace swload::in_parent {

namespace {

constexpr long max_per_worker = 19000;

const char* usage_text =
    "usage: swload --port PORT [options]\n"
    "  --host IP              server address (127.0.0.1)\n"
    "  -n N                   clients (1000)\n"
    "  --procs P              worker processes (ceil(N/15000)); at most 19000 connections each\n"
    "  --src A-B              source address range (127.0.0.2-127.0.0.254), rotated per connection\n"
    "  --rate R               connects per second, all workers (20000)\n"
    "  --inflight K           handshakes outstanding, all workers (2000)\n"
    "  --proto P              centrifuge (default) or raw ('sub T' / 'pub T PAYLOAD' / 'ok')\n"
    "  --path PATH            upgrade path (/connection/websocket; raw: /)\n"
    "  --secret S             HS256 key for connection tokens (centrifuge)\n"
    "  --user T               token sub template, {i} = client index (u{i})\n"
    "  --personal T           token channels claim template, e.g. personal:#u{i} (none)\n"
    "  --scenario S           idle | broadcast | chat | api | reconnect (idle)\n"
    "                         api: clients subscribe to --channel and only receive; after --hold s this\n"
    "                         process publishes once to --channel, then once to the --personal channels\n"
    "                         of --targets random clients, through the server API\n"
    "                         reconnect: clients subscribe to --channel (a namespace with history and\n"
    "                         recovery); this process publishes --before publications, after --hold s\n"
    "                         the --drop fraction of them reset their TCP connections at once, this\n"
    "                         process publishes --missed publications through the server API, after\n"
    "                         --away s they reconnect (--reconnect-rate, --reconnect-inflight) and\n"
    "                         subscribe recovering\n"
    "                         from their offsets; once all are back, --live more\n"
    "  --hold S               idle, api, reconnect: seconds to hold once all are ready (5)\n"
    "  --channel C            idle/broadcast/api/reconnect channel (chat:bcast; raw: bcast; reconnect: hist:swload)\n"
    "  --api-port P           api, reconnect: the gateway's ops port (server API) on --host\n"
    "  --api-key K            api, reconnect: X-API-Key\n"
    "  --targets K            api: clients of the personal round (10000; 0: no personal round)\n"
    "  --drop F               reconnect: fraction of the clients dropped (1)\n"
    "  --before B             reconnect: publications before the drop (1; 0: the clients recover from\n"
    "                         offset 0, a stream nobody had published to when they left)\n"
    "  --missed M             reconnect: publications while they are away (10)\n"
    "  --live L               reconnect: publications once all are back (3)\n"
    "  --away S               reconnect: seconds from the drop to the reconnect (1)\n"
    "  --reconnect-rate R     reconnect: connects per second of the dropped clients coming back (--rate)\n"
    "  --reconnect-inflight K reconnect: handshakes outstanding then (--inflight)\n"
    "  --pub-rate R           broadcast: publications per second (20)\n"
    "  --duration S           broadcast/chat: seconds of publishing (10)\n"
    "  --drain S              seconds to wait for deliveries after publishing (api: per round) (5)\n"
    "  --room-size K          chat: clients per room chat:room{j} (10)\n"
    "  --msg-rate R           chat: publications per client per second (1)\n"
    "  --timeout S            hard bound on the whole run (120)\n"
    "  --handshake-timeout S  a connection not ready this long fails (15)\n"
    "  --ports A,B,...        clients spread over these ports by worker (the nodes of a cluster; --procs >= ports)\n"
    "  --also-pid PID         another process of the same server (a cluster node): RSS and CPU add up (repeatable)\n"
    "  --server-pid PID       sample this server's RSS (before, and --settle s after all ready) and CPU (run window;\n"
    "                         reconnect: also the drop and the reconnect phases)\n"
    "  --settle S             (1)\n"
    "  --deflate B            1: offer permessage-deflate, fail a connection that does not get it, inflate\n"
    "                         compressed frames (0)\n"
    "  --pad N                broadcast/chat: N bytes of chat-like text in each publication's data (0)\n";

[[noreturn]] void usage_error(const std::string& what) {
  std::fprintf(stderr, "swload: %s\n%s", what.c_str(), usage_text);
  std::exit(2);
}

double to_double(const std::string& flag, const char* v) {
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(d >= 0)) usage_error("bad value for " + flag + ": " + v);
  return d;
}

std::uint32_t to_addr(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) usage_error("bad address " + s);
  return ntohl(a.s_addr);
}

}  // namespace

options parse_options(int argc, char** argv) {
  options o;
  std::string src = "127.0.0.2-127.0.0.254";
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    if (f == "-h" || f == "--help") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error("missing value for " + f);
    const char* v = argv[++i];
    auto num = [&] { return to_double(f, v); };
    // One flag a line, as a table: clang-format would spread it over twice
    // the lines.
    // clang-format off
    if (f == "--host") o.host = v;
    else if (f == "--port") o.port = static_cast<int>(num());
    else if (f == "-n") o.n = static_cast<long>(num());
    else if (f == "--procs") o.procs = static_cast<int>(num());
    else if (f == "--src") src = v;
    else if (f == "--rate") o.rate = num();
    else if (f == "--inflight") o.inflight = static_cast<int>(num());
    else if (f == "--reconnect-rate") o.reconnect_rate = num();
    else if (f == "--reconnect-inflight") o.reconnect_inflight = static_cast<int>(num());
    else if (f == "--proto") {
      if (std::string(v) == "centrifuge") o.proto = protocol::centrifuge;
      else if (std::string(v) == "raw") o.proto = protocol::raw;
      else usage_error("unknown protocol " + std::string(v));
    }
    else if (f == "--path") o.path = v;
    else if (f == "--secret") o.secret = v;
    else if (f == "--user") o.user = v;
    else if (f == "--personal") o.personal = v;
    else if (f == "--api-port") o.api_port = static_cast<int>(num());
    else if (f == "--api-key") o.api_key = v;
    else if (f == "--targets") o.targets = static_cast<long>(num());
    else if (f == "--scenario") {
      std::string s = v;
      if (s == "idle") o.scen = scenario::idle;
      else if (s == "broadcast") o.scen = scenario::broadcast;
      else if (s == "chat") o.scen = scenario::chat;
      else if (s == "api") o.scen = scenario::api;
      else if (s == "reconnect") o.scen = scenario::reconnect;
      else usage_error("unknown scenario " + s);
    }
    else if (f == "--hold") o.hold = num();
    else if (f == "--channel") o.channel = v;
    else if (f == "--pub-rate") o.pub_rate = num();
    else if (f == "--duration") o.duration = num();
    else if (f == "--drain") o.drain = num();
    else if (f == "--room-size") o.room_size = static_cast<long>(num());
    else if (f == "--msg-rate") o.msg_rate = num();
    else if (f == "--timeout") o.timeout = num();
    else if (f == "--handshake-timeout") o.handshake_timeout = num();
    else if (f == "--server-pid") o.server_pid = static_cast<pid_t>(num());
    else if (f == "--also-pid") o.also_pids.push_back(static_cast<pid_t>(num()));
    else if (f == "--ports") {
      std::string list = v;
      for (std::size_t at = 0; at <= list.size();) {
        std::size_t comma = std::min(list.find(',', at), list.size());
        o.ports.push_back(std::atoi(list.substr(at, comma - at).c_str()));
        at = comma + 1;
      }
    }
    else if (f == "--settle") o.settle = num();
    else if (f == "--deflate") o.deflate = num() != 0;
    else if (f == "--pad") o.pad = static_cast<std::size_t>(num());
    else if (f == "--drop") o.drop = num();
    else if (f == "--before") o.before = static_cast<long>(num());
    else if (f == "--missed") o.missed = static_cast<long>(num());
    else if (f == "--live") o.live = static_cast<long>(num());
    else if (f == "--away") o.away = num();
    else usage_error("unknown flag " + f);
    // clang-format on
  }
  auto dash = src.find('-');
  o.src_first = to_addr(src.substr(0, dash));
  o.src_last = dash == std::string::npos ? o.src_first : to_addr(src.substr(dash + 1));
  if (o.src_last < o.src_first) usage_error("empty source range " + src);
  if (!o.ports.empty()) {
    for (int p : o.ports) {
      if (p <= 0 || p > 65535) usage_error("--ports: bad port");
    }
    if (o.port == 0) o.port = o.ports.front();
  }
  if (o.port <= 0 || o.port > 65535) usage_error("--port is required");
  if (o.n < 1) usage_error("-n must be at least 1");
  if (o.room_size < 1) usage_error("--room-size must be at least 1");
  if (o.rate <= 0 || o.inflight < 1) usage_error("--rate and --inflight must be positive");
  if (o.reconnect_rate < 0 || o.reconnect_inflight < 0) usage_error("--reconnect-rate and --reconnect-inflight: at least 0");
  if (o.reconnect_rate == 0) o.reconnect_rate = o.rate;
  if (o.reconnect_inflight == 0) o.reconnect_inflight = o.inflight;
  if (o.scen == scenario::broadcast && o.pub_rate <= 0) usage_error("--pub-rate must be positive");
  if (o.scen == scenario::chat && o.msg_rate <= 0) usage_error("--msg-rate must be positive");
  if (o.proto == protocol::centrifuge && o.secret.empty()) usage_error("--secret is required with --proto centrifuge");
  if (o.scen == scenario::api || o.scen == scenario::reconnect) {
    if (o.proto != protocol::centrifuge) usage_error("--scenario api/reconnect needs --proto centrifuge");
    if (o.api_port <= 0 || o.api_port > 65535) usage_error("--scenario api/reconnect needs --api-port");
  }
  if (o.scen == scenario::api && o.targets > 0 && o.personal.empty()) usage_error("--targets needs --personal");
  if (o.drop > 1) usage_error("--drop is a fraction, 0 to 1");
  if (o.path.empty()) o.path = o.proto == protocol::centrifuge ? "/connection/websocket" : "/";
  if (o.channel.empty()) {
    o.channel = o.proto == protocol::raw ? "bcast" : o.scen == scenario::reconnect ? "hist:swload" : "chat:bcast";
  }
  if (o.procs == 0) o.procs = static_cast<int>((o.n + 14999) / 15000);
  return o;
}

// Client ranges per worker. Chat rooms never straddle two workers, so each
// worker can tell what its clients are owed.
std::vector<worker_plan> plan_workers(const options& o) {
  std::vector<worker_plan> plans;
  long unit = o.scen == scenario::chat ? o.room_size : 1;
  long units = (o.n + unit - 1) / unit;
  int procs = static_cast<int>(std::min<long>(o.procs, units));
  for (int w = 0; w < procs; ++w) {
    long first = std::min(o.n, units * w / procs * unit);
    long last = std::min(o.n, units * (w + 1) / procs * unit);
    bool pub = w == 0 && o.scen == scenario::broadcast;
    if (last - first + (pub ? 1 : 0) > max_per_worker) {
      usage_error("more than " + std::to_string(max_per_worker) + " connections per worker: raise --procs");
    }
    plans.push_back({w, procs, first, last, pub, -1, -1});
  }
  return plans;
}

}  // namespace swload::in_parent
