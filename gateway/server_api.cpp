#include "gateway/server_api.hpp"

#include "gateway/client.hpp"
#include "gateway/cluster.hpp"
#include "gateway/config.hpp"
#include "gateway/server_api_parse.hpp"
#include "routing/channel_rules.hpp"
#include "routing/mesh.hpp"
#include "routing/router.hpp"
#include "session/json_writer.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/core.h>
#include <openssl/crypto.h>
#include <simdjson.h>

#include <array>
#include <optional>
#include <map>
#include <unordered_map>

namespace sb {

namespace {

namespace dom = simdjson::dom;
namespace ec = proto::error_code;

using api::command;
using api::method;
using api::method_names;

std::string json_string(std::string_view s) {
  std::string out;
  proto::append_json_string(out, s);
  return out;
}

std::string error_object(std::uint32_t code, std::string_view message) {
  return fmt::format(R"({{"error":{{"code":{},"message":{}}}}})", code, json_string(message));
}

}  // namespace

// ---------------------------------------------------------------------------

struct server_api::impl {
  using done_fn = std::function<void(std::string)>;  // one {"result":..} or {"error":..} object

  explicit impl(wiring w) : wire(std::move(w)), m(*wire.shard_mesh) {
    if (wire.main_ctx) {
      expiry.emplace(*wire.main_ctx);
      arm_expiry();
    }
  }

  wiring wire;
  mesh& m;
  dom::parser parser;
  std::uint64_t next_call = 0;
  // Calls waiting for shards, by id. A shard answers with the id; a call
  // is erased when complete, so a late answer finds nothing.
  struct pending {
    unsigned waiting = 0;
    std::vector<std::string> parts;  // per shard (fan-out) or per channel (broadcast); "!": none came
    std::function<void(std::vector<std::string>&)> finish;
    std::chrono::steady_clock::time_point deadline;
  };
  // A part a shard never sent (the mesh shed the task or its answer) is
  // given up after this; the call completes with what it has, the missing
  // parts as "!" (overload, 111).
  static constexpr std::chrono::seconds call_timeout{10};
  std::optional<boost::asio::steady_timer> expiry;
  std::uint64_t timed_out = 0;
  std::unordered_map<std::uint64_t, pending> calls;
  struct outcome {
    std::uint64_t ok = 0, error = 0;
  };
  std::array<outcome, static_cast<std::size_t>(method::count)> counts{};
  std::uint64_t unauthorized = 0, bad_request = 0, not_found = 0;

  unsigned shards() const { return m.shards(); }

  // Registers a call that completes after `parts` answers.
  std::uint64_t open_call(std::size_t parts, std::function<void(std::vector<std::string>&)> finish) {
    std::uint64_t id = ++next_call;
    pending& p = calls[id];
    p.waiting = static_cast<unsigned>(parts);
    p.parts.assign(parts, "!");  // until the part comes
    p.finish = std::move(finish);
    p.deadline = std::chrono::steady_clock::now() + call_timeout;
    return id;
  }

  void arm_expiry() {
    expiry->expires_after(std::chrono::seconds(1));
    expiry->async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      expire_calls();
      arm_expiry();
    });
  }

  void expire_calls() {
    auto now = std::chrono::steady_clock::now();
    std::vector<std::uint64_t> late;
    for (const auto& [id, p] : calls) {
      if (p.deadline <= now) late.push_back(id);
    }
    for (std::uint64_t id : late) {
      auto it = calls.find(id);
      if (it == calls.end()) continue;
      ++timed_out;
      auto finish = std::move(it->second.finish);
      auto parts = std::move(it->second.parts);
      calls.erase(it);
      finish(parts);
    }
  }

  // A one-part call's reply: the part, or overload when it never came.
  static std::string single_reply(std::string& part) {
    return part == "!" ? error_object(ec::too_many_requests, "too many requests") : std::move(part);
  }

  // Main thread: one answer of call `id`.
  void on_part(std::uint64_t id, std::size_t index, std::string part) {
    auto it = calls.find(id);
    if (it == calls.end()) return;
    it->second.parts[index] = std::move(part);
    if (--it->second.waiting > 0) return;
    auto finish = std::move(it->second.finish);
    auto parts = std::move(it->second.parts);
    calls.erase(it);
    finish(parts);
  }

  // A task for shard thread code that answers part `index` of call `id`.
  void answer_from_shard(std::uint64_t id, std::size_t index, std::string part) {
    // On a shard: back to the main thread through the mesh.
    bool sent = m.invoke_on(m.main_dest(), [this, id, index, p = std::move(part)]() mutable {
      on_part(id, index, std::move(p));
    });
    (void)sent;  // shed only when the main thread is far behind; the call then times out (expire_calls)
  }

  // Runs work(shard) on every shard; finish(parts) on the main thread once
  // all answered. A shard the mesh refused answers "!" at once.
  void fan_out(std::function<std::string(unsigned)> work, std::function<void(std::vector<std::string>&)> finish) {
    unsigned n = shards();
    std::uint64_t id = open_call(n, std::move(finish));
    auto shared = std::make_shared<const std::function<std::string(unsigned)>>(std::move(work));
    for (unsigned s = 0; s < n; ++s) {
      bool ok = m.send(m.main_source(), s, [this, id, s, shared] { answer_from_shard(id, s, (*shared)(s)); });
      if (!ok) on_part(id, s, "!");
    }
  }

  centrifuge_handler* handler(unsigned shard) const { return (*wire.handlers)[shard]; }

  void publish(const std::string& channel, const std::string& data, std::uint64_t id, std::size_t index) {
    if (wire.rules->check_name(channel) != routing::name_check::ok) {
      return on_part(id, index, error_object(ec::bad_request, "bad request"));
    }
    if (!wire.rules->resolve(channel)) return on_part(id, index, error_object(ec::unknown_channel, "unknown channel"));
    routing::publication_ptr pub(new routing::publication);
    pub->channel = channel;
    pub->data = data;
    bool ok = routing::router::publish_from_main(
        m, *wire.routers, std::move(pub),
        [this, id, index](std::uint32_t error, std::uint64_t offset, std::string_view epoch) {
          // With history the reply says where the publication is in the
          // stream (Centrifugo's shape); without, it is just accepted.
          if (error) return answer_from_shard(id, index, error_object(error, proto::error_message(error)));
          answer_from_shard(id, index,
                            epoch.empty() ? std::string(R"({"result":{}})")
                                          : fmt::format(R"({{"result":{{"offset":{},"epoch":{}}}}})", offset,
                                                        json_string(epoch)));
        });
    if (!ok) on_part(id, index, error_object(ec::too_many_requests, "too many requests"));
  }

  // A user-level command on this node's shards; ok false when a shard
  // could not be reached (overload).
  void apply_user_command(const command& c, std::function<void(bool)> done) {
    fan_out(
        [this, c](unsigned s) -> std::string {
          centrifuge_handler* h = handler(s);
          if (!h) return "0";
          std::size_t n = 0;
          switch (c.m) {
            case method::subscribe: n = h->subscribe_user(c.user, c.client, c.channel); break;
            case method::unsubscribe: n = h->unsubscribe_user(c.user, c.client, c.channel); break;
            case method::disconnect: n = h->disconnect_user(c.user, c.client, c.code, c.reason); break;
            default: n = h->refresh_user(c.user, c.client, c.expire_at, c.expired); break;
          }
          return std::to_string(n);
        },
        [done](std::vector<std::string>& parts) {
          for (const auto& p : parts) {
            if (p == "!") return done(false);
          }
          done(true);
        });
  }

  // This node's channels matching `pattern`: one part per shard,
  // "<name length> <name> <count>\n" per channel (a name may hold any byte).
  void local_channels(const std::string& pattern, std::function<void(std::vector<std::string>&)> finish) {
    fan_out(
        [this, pattern](unsigned s) -> std::string {
          std::string out;
          (*wire.routers)[s]->for_each_local_channel([&](std::string_view name, std::uint32_t n) {
            if (!pattern.empty() && !api::glob(pattern, name)) return;
            out += fmt::format("{} {} {}\n", name.size(), name, n);
          });
          return out;
        },
        std::move(finish));
  }

  static std::string merge_channels(std::vector<std::string>& parts) {
    std::map<std::string, std::uint64_t, std::less<>> merged;
    for (const auto& p : parts) {
      if (p == "!") return error_object(ec::too_many_requests, "too many requests");
      if (!api::merge_channel_counts(p, merged)) return error_object(ec::internal, "internal server error");
    }
    std::string out = R"({"result":{"channels":{)";
    bool first = true;
    for (const auto& [name, n] : merged) {
      if (!first) out += ',';
      first = false;
      out += json_string(name);
      out += fmt::format(R"(:{{"num_clients":{}}})", n);
    }
    return out + "}}}";
  }

  // Runs one command; done(result or error object) on the main thread.
  void run(const command& c, done_fn done) {
    if (!c.error.empty()) return done(error_object(ec::bad_request, c.error));
    switch (c.m) {
      case method::publish: {
        std::uint64_t id = open_call(1, [done](std::vector<std::string>& parts) { done(single_reply(parts[0])); });
        return publish(c.channel, c.data, id, 0);
      }
      case method::broadcast: {
        std::uint64_t id = open_call(c.channels.size(), [done](std::vector<std::string>& parts) {
          std::string out = R"({"result":{"responses":[)";
          for (std::size_t i = 0; i < parts.size(); ++i) {
            if (i) out += ',';
            out += single_reply(parts[i]);
          }
          done(out + "]}}");
        });
        for (std::size_t i = 0; i < c.channels.size(); ++i) publish(c.channels[i], c.data, id, i);
        return;
      }
      case method::subscribe:
      case method::unsubscribe:
      case method::disconnect:
      case method::refresh: {
        if (c.m == method::subscribe) {
          // The checks a client's own subscribe gets (the namespace's
          // permissions do not apply: the backend decides).
          if (wire.rules->check_name(c.channel) != routing::name_check::ok) {
            return done(error_object(ec::bad_request, "bad request"));
          }
          if (!wire.rules->resolve(c.channel)) return done(error_object(ec::unknown_channel, "unknown channel"));
        }
        // Every shard of every node may hold connections of the user: this
        // node's shards now, the other nodes' through the cluster bus.
        auto left = std::make_shared<int>(wire.bus ? 2 : 1);
        auto failed = std::make_shared<std::string>();
        auto part = [done, left, failed](std::string err) {
          if (!err.empty() && failed->empty()) *failed = std::move(err);
          if (--*left == 0) done(failed->empty() ? std::string(R"({"result":{}})") : *failed);
        };
        apply_user_command(c, [part](bool ok) {
          part(ok ? std::string() : error_object(ec::too_many_requests, "too many requests"));
        });
        if (wire.bus) {
          wire.bus->send_command(method_names[static_cast<std::size_t>(c.m)], api::command_json(c), [part](bool ok) {
            part(ok ? std::string() : error_object(ec::internal, "internal server error"));
          });
        }
        return;
      }
      case method::channels: {
        if (!wire.bus) return local_channels(c.pattern, [done](std::vector<std::string>& parts) { done(merge_channels(parts)); });
        // The other nodes' answers, then this node's.
        return wire.bus->survey_channels(c.pattern, [this, done, pattern = c.pattern](
                                                        std::optional<std::vector<std::string>> others) {
          if (!others) return done(error_object(ec::internal, "internal server error"));
          local_channels(pattern, [done, others = std::move(*others)](std::vector<std::string>& parts) mutable {
            for (auto& o : others) parts.push_back(std::move(o));
            done(merge_channels(parts));
          });
        });
      }
      case method::info:
        if (!wire.bus) return done(R"({"result":{"nodes":[)" + wire.node_info() + "]}}");
        return wire.bus->nodes([done](std::optional<std::string> nodes) {
          if (!nodes) return done(error_object(ec::internal, "internal server error"));
          done(R"({"result":{"nodes":[)" + *nodes + "]}}");
        });
      case method::history:
      case method::history_remove: {
        if (wire.rules->check_name(c.channel) != routing::name_check::ok) {
          return done(error_object(ec::bad_request, "bad request"));
        }
        if (!wire.rules->resolve(c.channel)) return done(error_object(ec::unknown_channel, "unknown channel"));
        routing::history_query q;
        q.limit = c.limit;
        q.has_since = c.has_since;
        q.since_offset = c.since_offset;
        q.since_epoch = c.since_epoch;
        q.reverse = c.reverse;
        q.remove = c.m == method::history_remove;
        bool remove = q.remove;
        std::uint64_t id = open_call(1, [done](std::vector<std::string>& parts) { done(single_reply(parts[0])); });
        bool ok = routing::router::query_history(
            m, m.main_source(), *wire.routers, c.channel, std::move(q), [this, id, remove](routing::history_answer&& a) {
              // On the home shard: the JSON is made here, the main thread only sends it.
              std::string r;
              if (a.error != 0) {
                r = error_object(a.error, proto::error_message(a.error));
              } else if (remove) {
                r = R"({"result":{}})";
              } else {
                r = R"({"result":{"publications":[)";
                for (std::size_t i = 0; i < a.publications.size(); ++i) {
                  const auto& p = *a.publications[i];
                  if (i) r += ',';
                  r += fmt::format(R"({{"data":{},"offset":{}}})", p.data, p.offset);
                }
                r += fmt::format(R"(],"offset":{},"epoch":{}}}}})", a.offset, json_string(a.epoch));
              }
              answer_from_shard(id, 0, std::move(r));
            });
        if (!ok) on_part(id, 0, error_object(ec::too_many_requests, "too many requests"));
        return;
      }
      case method::presence:
      case method::presence_stats: {
        if (wire.rules->check_name(c.channel) != routing::name_check::ok) {
          return done(error_object(ec::bad_request, "bad request"));
        }
        if (!wire.rules->resolve(c.channel)) return done(error_object(ec::unknown_channel, "unknown channel"));
        bool counts_only = c.m == method::presence_stats;
        std::uint64_t id = open_call(1, [done](std::vector<std::string>& parts) { done(single_reply(parts[0])); });
        bool ok = routing::router::query_presence(
            m, m.main_source(), *wire.routers, c.channel, counts_only,
            [this, id, counts_only](routing::presence_answer&& a) {
              std::string r;
              if (a.error != 0) {
                r = error_object(a.error, proto::error_message(a.error));
              } else if (counts_only) {
                r = fmt::format(R"({{"result":{{"num_clients":{},"num_users":{}}}}})", a.num_clients, a.num_users);
              } else {
                r = R"({"result":{"presence":{)";
                for (std::size_t i = 0; i < a.clients.size(); ++i) {
                  const auto& ci = a.clients[i];
                  if (i) r += ',';
                  r += json_string(ci.client);
                  r += R"(:{"client":)" + json_string(ci.client) + R"(,"user":)" + json_string(ci.user);
                  if (!ci.conn_info.empty()) r += R"(,"conn_info":)" + ci.conn_info;
                  if (!ci.chan_info.empty()) r += R"(,"chan_info":)" + ci.chan_info;
                  r += '}';
                }
                r += "}}}";
              }
              answer_from_shard(id, 0, std::move(r));
            });
        if (!ok) on_part(id, 0, error_object(ec::too_many_requests, "too many requests"));
        return;
      }
      case method::batch:
      case method::count:
        return done(error_object(ec::bad_request, "bad request"));
    }
  }

  // Batch commands one after another (parallel: all at once), replies in
  // command order: {"result":{"replies":[{"publish":{}}, {"error":{..}}]}}.
  // Centrifugo's reply shape: each reply is keyed by its method, or "error".
  void count_outcome(method which, const std::string& reply) {
    auto& o = counts[static_cast<std::size_t>(which)];
    ++(reply.compare(0, 9, R"({"error":)") == 0 ? o.error : o.ok);
  }

  void run_batch(std::shared_ptr<std::vector<command>> cmds, bool parallel, done_fn done) {
    auto replies = std::make_shared<std::vector<std::string>>(cmds->size());
    auto finish = [cmds, replies, done] {
      std::string out = R"({"result":{"replies":[)";
      for (std::size_t i = 0; i < replies->size(); ++i) {
        if (i) out += ',';
        out += (*replies)[i];
      }
      done(out + "]}}");
    };
    // {"result":X} → {"<method>":X}; {"error":E} stays. Each command is
    // counted under its own method too.
    auto as_reply = [this](const command& c, std::string r) {
      if (c.m != method::count) count_outcome(c.m, r);
      constexpr std::string_view result_prefix = R"({"result":)";
      if (r.compare(0, result_prefix.size(), result_prefix) != 0) return r;
      return "{" + json_string(method_names[static_cast<std::size_t>(c.m)]) + ":" + r.substr(result_prefix.size());
    };
    if (cmds->empty()) return finish();
    if (parallel) {
      auto left = std::make_shared<std::size_t>(cmds->size());
      for (std::size_t i = 0; i < cmds->size(); ++i) {
        run((*cmds)[i], [cmds, replies, left, finish, as_reply, i](std::string r) {
          (*replies)[i] = as_reply((*cmds)[i], std::move(r));
          if (--*left == 0) finish();
        });
      }
      return;
    }
    auto step = std::make_shared<std::function<void(std::size_t)>>();
    *step = [this, cmds, replies, finish, as_reply, step](std::size_t i) {
      if (i == cmds->size()) {
        finish();
        *step = nullptr;  // breaks the self-reference
        return;
      }
      run((*cmds)[i], [cmds, replies, as_reply, step, i](std::string r) {
        (*replies)[i] = as_reply((*cmds)[i], std::move(r));
        (*step)(i + 1);
      });
    };
    (*step)(0);
  }
};

server_api::server_api(wiring w) : _impl(std::make_unique<impl>(std::move(w))) {}

void server_api::apply_from_cluster(std::string_view method_name, std::string_view params) {
  impl& a = *_impl;
  method m;
  if (!api::find_method(method_name, m) ||
      (m != method::subscribe && m != method::unsubscribe && m != method::disconnect && m != method::refresh)) {
    return;
  }
  dom::element doc;
  if (a.parser.parse(simdjson::padded_string(params)).get(doc) != simdjson::SUCCESS) return;
  command c = api::parse_command(m, doc, params);
  if (!c.error.empty()) return;
  a.apply_user_command(c, [](bool) {});
}

void server_api::channels_for_cluster(std::string pattern, std::function<void(std::string)> done) {
  _impl->local_channels(pattern, [done = std::move(done)](std::vector<std::string>& parts) {
    std::string all;
    for (const auto& p : parts) {
      if (p != "!") all += p;
    }
    done(std::move(all));
  });
}
server_api::~server_api() = default;

bool server_api::enabled() const noexcept { return !_impl->wire.cfg->api_key.empty() || _impl->wire.cfg->api_insecure; }

server_api::access server_api::check_key(const ops::http_request& req) {
  const config& cfg = *_impl->wire.cfg;
  if (!enabled()) return access::off;
  if (cfg.api_key.empty()) return access::ok;  // api_insecure
  std::string_view key = req.header("X-API-Key");
  if (key.empty()) {
    std::string_view auth = req.header("Authorization");
    constexpr std::string_view scheme = "apikey ";
    if (auth.size() > scheme.size()) {
      std::string lower(auth.substr(0, scheme.size()));
      for (char& ch : lower) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
      if (lower == scheme) key = auth.substr(scheme.size());
    }
  }
  if (key.size() != cfg.api_key.size() || CRYPTO_memcmp(key.data(), cfg.api_key.data(), key.size()) != 0) {
    ++_impl->unauthorized;
    return access::unauthorized;
  }
  return access::ok;
}

void server_api::handle(const ops::http_request& req, ops::http_reply reply) {
  impl& a = *_impl;
  // Holds the reply by value: most answers come after handle() returned.
  auto answer = [reply](unsigned status, std::string body) {
    ops::http_response r;
    r.status = status;
    r.content_type = "application/json";
    r.body = std::move(body);
    r.body += '\n';
    reply(std::move(r));
  };
  switch (check_key(req)) {
    case access::ok: break;
    case access::off:
      ++a.not_found;
      return answer(404, error_object(ec::not_available, "the server API is off: set api_key (or api_insecure)"));
    case access::unauthorized: return answer(401, error_object(ec::unauthorized, "unauthorized"));
  }
  if (req.method != "POST") {
    ++a.bad_request;
    return answer(405, error_object(ec::bad_request, "use POST"));
  }
  std::string_view name = req.path.substr(std::string_view("/api/").size());
  method m;
  if (!api::find_method(name, m)) {
    ++a.not_found;
    return answer(404, error_object(ec::method_not_found, "method not found"));
  }
  dom::element doc;
  std::string_view body = req.body.empty() ? std::string_view("{}") : req.body;
  if (a.parser.parse(simdjson::padded_string(body)).get(doc) != simdjson::SUCCESS) {
    ++a.bad_request;
    auto& o = a.counts[static_cast<std::size_t>(m)];
    ++o.error;
    return answer(400, error_object(ec::bad_request, "request body is not valid JSON"));
  }
  auto done = [answer, &a, m](std::string r) mutable {
    a.count_outcome(m, r);
    answer(200, std::move(r));
  };
  if (m != method::batch) return a.run(api::parse_command(m, doc, body), std::move(done));

  api::batch b = api::parse_batch(doc, body);
  if (!b.error.empty()) return done(error_object(ec::bad_request, b.error));
  a.run_batch(std::make_shared<std::vector<command>>(std::move(b.commands)), b.parallel, std::move(done));
}

std::string server_api::metrics_text() const {
  const impl& a = *_impl;
  std::string out =
      "# HELP switchboard_api_requests_total Server API requests by method and outcome (error: a Centrifugo error "
      "object or a 400 for malformed JSON).\n"
      "# TYPE switchboard_api_requests_total counter\n";
  for (std::size_t i = 0; i < method_names.size(); ++i) {
    out += fmt::format("switchboard_api_requests_total{{method=\"{}\",outcome=\"ok\"}} {}\n", method_names[i],
                       a.counts[i].ok);
    out += fmt::format("switchboard_api_requests_total{{method=\"{}\",outcome=\"error\"}} {}\n", method_names[i],
                       a.counts[i].error);
  }
  out += fmt::format(
      "# HELP switchboard_api_rejected_total Server API requests refused before a method ran.\n"
      "# TYPE switchboard_api_rejected_total counter\n"
      "switchboard_api_rejected_total{{reason=\"unauthorized\"}} {}\n"
      "switchboard_api_rejected_total{{reason=\"bad_request\"}} {}\n"
      "switchboard_api_rejected_total{{reason=\"not_found\"}} {}\n"
      "# HELP switchboard_api_pending Server API calls waiting for shards.\n"
      "# TYPE switchboard_api_pending gauge\n"
      "switchboard_api_pending {}\n"
      "# HELP switchboard_api_timed_out_total Server API calls answered after 10 s without every shard's part "
      "(overload: the mesh shed a task or its answer).\n"
      "# TYPE switchboard_api_timed_out_total counter\n"
      "switchboard_api_timed_out_total {}\n",
      a.unauthorized, a.bad_request, a.not_found, a.calls.size(), a.timed_out);
  return out;
}

std::string server_api::stats_json() const {
  const impl& a = *_impl;
  std::string out = fmt::format(R"("unauthorized":{},"bad_request":{},"not_found":{},"pending":{},"timed_out":{})",
                                a.unauthorized, a.bad_request, a.not_found, a.calls.size(), a.timed_out);
  for (std::size_t i = 0; i < method_names.size(); ++i) {
    out += fmt::format(R"(,"{}":{{"ok":{},"error":{}}})", method_names[i], a.counts[i].ok, a.counts[i].error);
  }
  return out;
}

}  // namespace sb
