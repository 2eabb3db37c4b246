#pragma once
// Hot reload (issue 16, part 5): on SIGHUP the process reads its config
// again (the same file and command line) and, if it parses and validates,
// applies what can change while running: namespaces and channel options,
// the token keys (HMAC secret, RSA and ECDSA public keys, audience,
// issuer), the API key, the per-connection rate limits, admission, the
// anonymous-connect switches, client_channel_limit, the protocol's ping and
// expiry timings, and the log level. Each shard receives an immutable
// snapshot (`reloadable`) through a post and swaps it in between two of its
// events, so a shard never sees half a config and no connection is
// touched. A config that fails is rejected with a log line and the running
// one stays; keys that only a restart can change (listen, shards, engine,
// Redis, session limits...) are reported and keep their running values.
// docs/ops.md "Reload".

#include "gateway/client.hpp"
#include "gateway/config.hpp"
#include "session/admission.hpp"
#include "session/tls.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sb {

class shard;
namespace routing {
class channel_rules;
}

/// What a reload hands every shard; immutable once built.
struct reloadable {
  std::uint64_t generation = 1;
  protocol_options protocol;
  admission_options admission;
  // The client listener's certificate, loaded again from its files (null
  // without TLS): connections accepted from then on use it, open ones keep
  // theirs.
  std::shared_ptr<const tls::context> tls;
};

/// Main thread: the client listener's TLS context of a config (null when
/// `tls` is off); throws config_error naming the file and the problem
/// (unreadable, no match, expired).
std::shared_ptr<const tls::context> make_tls_context(const config& cfg);

/// Main thread: the token verifier of a config; throws config_error for a
/// key that does not load (bad PEM).
std::shared_ptr<const auth::verifier> make_verifier(const config& cfg);
/// The protocol options of a config (`redis`: the engine orders publishes).
protocol_options make_protocol_options(const config& cfg, std::shared_ptr<const auth::verifier> verifier, bool redis);
/// Admission's limits from a config (established_on_open is the session
/// options' business: left at its default here).
admission_options make_admission_options(const config& cfg);
/// The config keys that differ between `was` and `now` and need a restart.
std::vector<std::string> restart_only_changes(const config& was, const config& now);

class config_reloader {
 public:
  struct wiring {
    boost::asio::io_context* main_ctx = nullptr;
    std::vector<std::unique_ptr<shard>>* shards = nullptr;
    config* live = nullptr;                       // main thread's copy: the server API reads its key there
    routing::channel_rules* api_rules = nullptr;  // the server API's rules (main thread)
    std::function<config()> reparse;              // reads the file and command line again; throws config_error
    bool redis = false;
    // With ops_tls: hands the ops listener a reloaded certificate.
    std::function<void(const tls::context&)> ops_tls;
  };

  /// Main thread. Listens for SIGHUP from now on; generation 1 is the
  /// config the process started with.
  explicit config_reloader(wiring w);

  /// Main thread: reads the config again and applies it, or keeps the
  /// running one and says why (the log, /stats). True when applied.
  bool reload(std::string_view why);

  std::uint64_t generation() const noexcept { return _generation; }
  /// `"config":{...}` for /stats (no leading comma).
  std::string stats_json() const;
  /// switchboard_config_generation, switchboard_config_reloads_total{outcome}.
  std::string metrics_text() const;

 private:
  void wait();

  wiring _w;
  boost::asio::signal_set _hup;
  std::uint64_t _generation = 1;
  std::uint64_t _applied = 0, _rejected = 0;
  std::string _last_error;  // of the last rejected reload ("" after a success)
  std::vector<std::string> _pending_restart;  // keys changed in the file that a restart would apply
};

}  // namespace sb
