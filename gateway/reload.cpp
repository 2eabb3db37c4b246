#include "gateway/reload.hpp"

#include "gateway/jwt.hpp"
#include "gateway/shard.hpp"
#include "ops/log.hpp"
#include "routing/channel_rules.hpp"
#include "session/json_writer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>

namespace sb {

std::shared_ptr<const auth::verifier> make_verifier(const config& cfg) {
  auth::verifier_config vc;
  vc.hmac_secret = cfg.token_hmac_secret_key;
  vc.rsa_public_key_pem = cfg.token_rsa_public_key;
  vc.ecdsa_public_key_pem = cfg.token_ecdsa_public_key;
  vc.audience = cfg.token_audience;
  vc.issuer = cfg.token_issuer;
  try {
    return std::make_shared<const auth::verifier>(vc);
  } catch (const std::runtime_error& e) {
    throw config_error(e.what());
  }
}

protocol_options make_protocol_options(const config& cfg, std::shared_ptr<const auth::verifier> verifier, bool redis) {
  protocol_options p;
  p.rules = routing::channel_rules(cfg.channel_defaults, cfg.namespaces, cfg.channel_max_length);
  p.verifier = std::move(verifier);
  p.allow_anonymous_connect = cfg.allow_anonymous_connect || cfg.allow_anonymous_connect_without_token;
  p.allow_anonymous_without_token = cfg.allow_anonymous_connect_without_token || cfg.allow_anonymous_connect;
  p.client_channel_limit = cfg.client_channel_limit;
  p.ping_interval = std::chrono::milliseconds(cfg.ping_interval_ms);
  p.pong_timeout = std::chrono::milliseconds(cfg.pong_timeout_ms);
  p.stale_timeout = std::chrono::milliseconds(cfg.handshake_timeout_ms);
  p.expired_close_delay = std::chrono::milliseconds(cfg.client_expired_close_delay_ms);
  p.limits = cfg.client_limits;
  p.publish_waits_for_engine = redis;
  if (cfg.proxy.any()) p.proxy = std::make_shared<const proxy_config>(cfg.proxy);
  return p;
}

std::shared_ptr<const tls::context> make_tls_context(const config& cfg) {
  if (!cfg.tls && !cfg.ops_tls) return nullptr;
  try {
    return tls::context::load({cfg.tls_cert, cfg.tls_key, cfg.tls_min_version, cfg.tls_ciphers});
  } catch (const tls::error& e) {
    throw config_error(e.what());
  }
}

admission_options make_admission_options(const config& cfg) {
  admission_options a;
  a.connect_rate = cfg.connect_rate_limit;
  a.connect_burst = cfg.connect_rate_burst;
  a.max_in_flight = cfg.max_handshakes_in_flight;
  a.retry_after_max = std::chrono::milliseconds(cfg.admission_retry_after_max_ms);
  return a;
}

std::vector<std::string> restart_only_changes(const config& was, const config& now) {
  std::vector<std::string> keys;
  auto check = [&keys](const char* key, bool same) {
    if (!same) keys.emplace_back(key);
  };
  check("listen", was.listen.str() == now.listen.str());
  check("tls", was.tls == now.tls);
  check("ops_tls", was.ops_tls == now.ops_tls);
  check("ops_listen", was.ops_listen.str() == now.ops_listen.str());
  check("shards", was.shards == now.shards);
  check("mode", was.mode == now.mode);
  check("engine", was.engine == now.engine);
  check("redis_address", was.redis_address == now.redis_address);
  check("redis_prefix", was.redis_prefix == now.redis_prefix);
  check("redis_connect_timeout", was.redis_connect_timeout_ms == now.redis_connect_timeout_ms);
  check("presence_ttl", was.presence_ttl_ms == now.presence_ttl_ms);
  check("history_meta_ttl", was.history_meta_ttl_ms == now.history_meta_ttl_ms);
  check("history_max_bytes", was.history_max_bytes == now.history_max_bytes);
  check("name", was.name == now.name);
  check("websocket_path", was.websocket_path == now.websocket_path);
  check("allowed_origins", was.allowed_origins == now.allowed_origins);
  check("max_message_size", was.max_message_size == now.max_message_size);
  check("max_queued_bytes", was.max_queued_bytes == now.max_queued_bytes);
  check("websocket_compression", was.websocket_compression == now.websocket_compression);
  check("websocket_compression_min_size", was.websocket_compression_min_size == now.websocket_compression_min_size);
  check("websocket_compression_level", was.websocket_compression_level == now.websocket_compression_level);
  check("max_connections", was.max_connections == now.max_connections);
  check("websocket_ping_interval", was.websocket_ping_interval_ms == now.websocket_ping_interval_ms);
  check("websocket_pong_timeout", was.websocket_pong_timeout_ms == now.websocket_pong_timeout_ms);
  check("close_timeout", was.close_timeout_ms == now.close_timeout_ms);
  check("shutdown_drain_period", was.shutdown_drain_period_ms == now.shutdown_drain_period_ms);
  check("api_max_body", was.api_max_body == now.api_max_body);
  check("listen_backlog", was.listen_backlog == now.listen_backlog);
  check("mesh_ring_capacity", was.mesh_ring_capacity == now.mesh_ring_capacity);
  check("mesh_overflow_limit", was.mesh_overflow_limit == now.mesh_overflow_limit);
  // The backend proxy's pools and breakers are built at start.
  for (std::size_t i = 0; i < proxy_kind_count; ++i) {
    std::string kind = proxy_kind_name(static_cast<proxy_kind>(i));
    check((kind + "_proxy_endpoint").c_str(), was.proxy.of[i].url == now.proxy.of[i].url);
    check((kind + "_proxy_timeout").c_str(), was.proxy.of[i].timeout_ms == now.proxy.of[i].timeout_ms);
  }
  const proxy_config &a = was.proxy, &b = now.proxy;
  check("proxy_max_connections", a.max_connections == b.max_connections);
  check("proxy_max_pending", a.max_pending == b.max_pending);
  check("proxy_max_response_size", a.max_response_bytes == b.max_response_bytes);
  check("proxy_breaker_*", a.breaker.failure_ratio == b.breaker.failure_ratio &&
                               a.breaker.min_requests == b.breaker.min_requests &&
                               a.breaker.window_ms == b.breaker.window_ms && a.breaker.open_ms == b.breaker.open_ms &&
                               a.breaker.half_open_probes == b.breaker.half_open_probes);
  return keys;
}

config_reloader::config_reloader(wiring w) : _w(std::move(w)), _hup(*_w.main_ctx, SIGHUP) { wait(); }

void config_reloader::wait() {
  _hup.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    reload("SIGHUP");
    wait();
  });
}

bool config_reloader::reload(std::string_view why) {
  config next;
  std::shared_ptr<const auth::verifier> verifier;
  std::shared_ptr<const tls::context> tls;
  try {
    next = _w.reparse();
    verifier = make_verifier(next);
    // The certificate is read again even when its path did not change:
    // a renewal replaces the file's contents. `tls` itself is restart-only.
    const bool was_tls = _w.live->tls || _w.live->ops_tls;
    if (was_tls && (next.tls || next.ops_tls)) tls = make_tls_context(next);
  } catch (const std::exception& e) {
    ++_rejected;
    _last_error = e.what();
    log::error("config reload ({}) rejected, generation {} stays in force: {}", why, _generation, e.what());
    return false;
  }
  config& live = *_w.live;
  _pending_restart = restart_only_changes(live, next);
  if (!_pending_restart.empty()) {
    log::warn("config reload ({}): {} changed but take effect only after a restart", why,
              fmt::join(_pending_restart, ", "));
  }
  auto r = std::make_shared<reloadable>();
  r->generation = ++_generation;
  r->protocol = make_protocol_options(next, std::move(verifier), _w.redis);
  r->admission = make_admission_options(next);
  if (tls) log::info("config reload ({}): TLS certificate {}", why, tls->summary());
  if (tls && _w.live->ops_tls && _w.ops_tls) _w.ops_tls(*tls);
  if (_w.live->tls) r->tls = std::move(tls);
  std::shared_ptr<const reloadable> snapshot = std::move(r);
  for (auto& s : *_w.shards) s->reload(snapshot);
  // The main thread's own readers: the server API's key and channel rules.
  live.api_key = next.api_key;
  live.api_insecure = next.api_insecure;
  *_w.api_rules = snapshot->protocol.rules;
  live.log_level = next.log_level;
  if (auto lv = log::parse_level(next.log_level)) log::set_min_level(*lv);
  ++_applied;
  _last_error.clear();
  log::warn("config reloaded ({}): generation {}", why, _generation);
  return true;
}

std::string config_reloader::stats_json() const {
  std::string error, file;
  proto::append_json_string(error, _last_error);
  proto::append_json_string(file, _w.live->config_file);
  std::string restart;
  for (const auto& k : _pending_restart) {
    if (!restart.empty()) restart += ',';
    proto::append_json_string(restart, k);
  }
  std::string shards;
  for (const auto& s : *_w.shards) {
    if (!shards.empty()) shards += ',';
    shards += std::to_string(s->stats().config_generation.get());
  }
  return fmt::format(R"("config":{{"generation":{},"file":{},"reloads":{},"reloads_rejected":{},"last_error":{},)"
                     R"("restart_needed_for":[{}],"shard_generations":[{}]}})",
                     _generation, file, _applied, _rejected, error, restart, shards);
}

std::string config_reloader::metrics_text() const {
  return fmt::format(
      "# HELP switchboard_config_generation The config generation in force: 1 at start, +1 per applied reload.\n"
      "# TYPE switchboard_config_generation gauge\n"
      "switchboard_config_generation {}\n"
      "# HELP switchboard_config_reloads_total Config reloads (SIGHUP) by outcome.\n"
      "# TYPE switchboard_config_reloads_total counter\n"
      "switchboard_config_reloads_total{{outcome=\"applied\"}} {}\n"
      "switchboard_config_reloads_total{{outcome=\"rejected\"}} {}\n",
      _generation, _applied, _rejected);
}

}  // namespace sb
