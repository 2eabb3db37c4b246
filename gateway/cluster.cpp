#include "gateway/cluster.hpp"

#include "ops/log.hpp"
#include "routing/redis_scripts.hpp"

#include <charconv>

namespace sb {

namespace {

constexpr auto heartbeat_every = std::chrono::seconds(2);
constexpr std::chrono::milliseconds node_ttl{10'000};
constexpr auto survey_wait = std::chrono::seconds(3);

// "<tag><uid>\n<rest>": who sent a control message, and what.
struct parsed {
  char tag = 0;
  std::string_view from, rest;
};

bool parse(std::string_view payload, parsed& p) {
  if (payload.size() < 2) return false;
  p.tag = payload[0];
  auto nl = payload.find('\n', 1);
  if (nl == std::string_view::npos) return false;
  p.from = payload.substr(1, nl - 1);
  p.rest = payload.substr(nl + 1);
  return true;
}

redis::connection_options named(const char* name) {
  redis::connection_options o;
  o.name = name;
  return o;
}

// Splits "<head>\n<tail>".
bool split(std::string_view in, std::string_view& head, std::string_view& tail) {
  auto nl = in.find('\n');
  if (nl == std::string_view::npos) return false;
  head = in.substr(0, nl);
  tail = in.substr(nl + 1);
  return true;
}

}  // namespace

cluster_bus::cluster_bus(boost::asio::io_context& io, const redis::endpoint& where, std::string prefix, std::string uid,
                         local l)
    : _io(io),
      _prefix(std::move(prefix)),
      _uid(std::move(uid)),
      _control(_prefix + ".control"),
      _mine(_prefix + ".node." + _uid),
      _nodes(_prefix + ".nodes"),
      _nodes_exp(_prefix + ".nodes_exp"),
      _local(std::move(l)),
      _cmd(std::make_unique<redis::connection>(io, where, named("switchboard-bus"), false)),
      _sub(std::make_unique<redis::connection>(io, where, named("switchboard-bus-pubsub"), true)),
      _timer(io) {
  _sub->set_pubsub_handler(this);
  _sub->on_state([this](bool up) {
    if (!up) return;
    std::vector<std::string> channels{_control, _mine};
    _sub->subscribe(channels);
  });
  _cmd->on_state([this](bool up) {
    if (up) heartbeat();  // back in the registry at once
  });
}

cluster_bus::~cluster_bus() {
  // At once, without the goodbye (stop() sends it): what is pending fails.
  _stopped = _closed = true;
  _timer.cancel();
  _sub->stop();
  _cmd->stop();
  for (auto& [id, s] : _surveys) s.done(std::nullopt);
}

void cluster_bus::start() {
  _cmd->start();
  _sub->start();
  tick();
}

void cluster_bus::tick() {
  _timer.expires_after(heartbeat_every);
  _timer.async_wait([this](boost::system::error_code ec) {
    if (ec || _stopped) return;
    heartbeat();
    expire_surveys();
    tick();
  });
}

void cluster_bus::stop() {
  if (_stopped) return;
  _stopped = true;
  _timer.cancel();
  _sub->stop();
  for (auto& [id, s] : _surveys) s.done(std::nullopt);
  _surveys.clear();
  if (!_cmd->up()) {
    _cmd->stop();
    _closed = true;
    return;
  }
  // Out of the registry now rather than after node_ttl; the connection
  // closes once Redis answered (closed() says when).
  _cmd->command({"EVAL", routing::redis_scripts::presence_remove, "3", _nodes, _nodes_exp, _control, _uid, "0", ""},
                {});
  _cmd->command({"PING"}, [this](const redis::reply*) {
    _cmd->stop();
    _closed = true;
  });
}

void cluster_bus::heartbeat() {
  if (_stopped || !_cmd->up()) return;
  std::string value = _uid + "\n" + _local.node_info();
  std::string ttl = std::to_string(node_ttl.count());
  _cmd->command({"EVAL", routing::redis_scripts::presence_add, "3", _nodes, _nodes_exp, _control, _uid, value, ttl,
                 "0", ""},
                {});
  nodes([this](std::optional<std::string> all) {
    if (all) _last_nodes = std::move(*all);
  });
}

void cluster_bus::publish(const std::string& channel, std::string message, std::function<void(bool)> done) {
  _cmd->command({"PUBLISH", channel, message}, [done = std::move(done)](const redis::reply* r) {
    if (done) done(r && !r->is_error());
  });
}

void cluster_bus::send_command(std::string_view method, std::string_view params, std::function<void(bool)> done) {
  std::string msg = "c" + _uid + "\n";
  msg.append(method).append("\n").append(params);
  publish(_control, std::move(msg), std::move(done));
}

void cluster_bus::nodes(std::function<void(std::optional<std::string>)> done) {
  _cmd->command({"EVAL", routing::redis_scripts::presence_get, "2", _nodes, _nodes_exp},
                [done = std::move(done)](const redis::reply* r) {
                  if (!r || r->type() != redis::reply::kind::array) return done(std::nullopt);
                  std::string out;
                  for (std::size_t i = 0; i < r->size(); ++i) {
                    std::string_view uid, info;
                    if (!split(r->at(i).str(), uid, info)) continue;
                    if (!out.empty()) out += ',';
                    out.append(info);
                  }
                  done(std::move(out));
                });
}

void cluster_bus::survey_channels(std::string pattern,
                                  std::function<void(std::optional<std::vector<std::string>>)> done) {
  std::uint64_t id = _next_survey++;
  _cmd->command({"EVAL", routing::redis_scripts::presence_get, "2", _nodes, _nodes_exp},
                [this, id, pattern = std::move(pattern), done = std::move(done)](const redis::reply* r) mutable {
                  if (!r || r->type() != redis::reply::kind::array) return done(std::nullopt);
                  std::size_t others = 0;
                  for (std::size_t i = 0; i < r->size(); ++i) {
                    std::string_view uid, info;
                    if (split(r->at(i).str(), uid, info) && uid != _uid) ++others;
                  }
                  if (others == 0) return done(std::vector<std::string>{});
                  survey& s = _surveys[id];
                  s.waiting = others;
                  s.done = std::move(done);
                  s.deadline = std::chrono::steady_clock::now() + survey_wait;
                  std::string msg = "q" + _uid + "\n" + std::to_string(id) + "\n" + pattern;
                  publish(_control, std::move(msg), [this, id](bool ok) {
                    if (!ok && _surveys.count(id)) {
                      auto d = std::move(_surveys[id].done);
                      _surveys.erase(id);
                      d(std::nullopt);
                    }
                  });
                });
}

void cluster_bus::finish_survey(std::uint64_t id) {
  auto it = _surveys.find(id);
  if (it == _surveys.end()) return;
  auto done = std::move(it->second.done);
  auto parts = std::move(it->second.parts);
  _surveys.erase(it);
  done(std::move(parts));
}

void cluster_bus::expire_surveys() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::uint64_t> late;
  for (const auto& [id, s] : _surveys) {
    if (s.deadline <= now) late.push_back(id);
  }
  for (std::uint64_t id : late) {
    log::warn("channels: {} node(s) did not answer within {} s; answering without them", _surveys[id].waiting,
              std::chrono::duration_cast<std::chrono::seconds>(survey_wait).count());
    finish_survey(id);
  }
}

void cluster_bus::on_message(std::string_view channel, std::string_view payload) {
  parsed p;
  if (_stopped || !parse(payload, p) || p.from == _uid) return;  // our own: applied here already
  if (channel == _control && p.tag == 'c') {
    std::string_view method, params;
    if (split(p.rest, method, params)) _local.apply(method, params);
  } else if (channel == _control && p.tag == 'q') {
    std::string_view id, pattern;
    if (!split(p.rest, id, pattern)) return;
    std::string to = _prefix + ".node." + std::string(p.from);
    std::string head = "r" + _uid + "\n" + std::string(id) + "\n";
    _local.channels(std::string(pattern), [this, to, head](std::string text) { publish(to, head + text, {}); });
  } else if (channel == _mine && p.tag == 'r') {
    std::string_view id_text, text;
    if (!split(p.rest, id_text, text)) return;
    std::uint64_t id = 0;
    std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
    auto it = _surveys.find(id);
    if (it == _surveys.end()) return;  // answered late: already finished
    it->second.parts.emplace_back(text);
    if (--it->second.waiting == 0) finish_survey(id);
  }
}

}  // namespace sb
