#include "session/protocol.hpp"

namespace sb::proto {

const char* to_string(method m) noexcept {
  switch (m) {
    case method::none: return "";
    case method::connect: return "connect";
    case method::subscribe: return "subscribe";
    case method::unsubscribe: return "unsubscribe";
    case method::publish: return "publish";
    case method::presence: return "presence";
    case method::presence_stats: return "presence_stats";
    case method::history: return "history";
    case method::ping: return "ping";
    case method::send: return "send";
    case method::rpc: return "rpc";
    case method::refresh: return "refresh";
    case method::sub_refresh: return "sub_refresh";
  }
  return "";
}

const char* to_string(parse_error e) noexcept {
  switch (e) {
    case parse_error::none: return "none";
    case parse_error::bad_json: return "bad_json";
    case parse_error::bad_command: return "bad_command";
  }
  return "";
}

std::string_view error_message(std::uint32_t code) noexcept {
  switch (code) {
    case error_code::internal: return "internal server error";
    case error_code::unauthorized: return "unauthorized";
    case error_code::unknown_channel: return "unknown channel";
    case error_code::permission_denied: return "permission denied";
    case error_code::method_not_found: return "method not found";
    case error_code::already_subscribed: return "already subscribed";
    case error_code::limit_exceeded: return "limit exceeded";
    case error_code::bad_request: return "bad request";
    case error_code::not_available: return "not available";
    case error_code::token_expired: return "token expired";
    case error_code::expired: return "expired";
    case error_code::too_many_requests: return "too many requests";
    case error_code::unrecoverable_position: return "unrecoverable position";
    default: return "";
  }
}

bool error_temporary(std::uint32_t code) noexcept {
  return code == error_code::internal || code == error_code::too_many_requests;
}

std::string_view disconnect_reason(std::uint32_t code) noexcept {
  switch (code) {
    case disconnect_code::connection_closed: return "connection closed";
    case disconnect_code::shutdown: return "shutdown";
    case disconnect_code::server_error: return "internal server error";
    case disconnect_code::expired: return "connection expired";
    case disconnect_code::sub_expired: return "subscription expired";
    case disconnect_code::slow: return "slow";
    case disconnect_code::write_error: return "write error";
    case disconnect_code::insufficient_state: return "insufficient state";
    case disconnect_code::force_reconnect: return "force reconnect";
    case disconnect_code::no_pong: return "no pong";
    case disconnect_code::too_many_requests: return "too many requests";
    case disconnect_code::invalid_token: return "invalid token";
    case disconnect_code::bad_request: return "bad request";
    case disconnect_code::stale: return "stale";
    case disconnect_code::force_disconnect: return "force disconnect";
    case disconnect_code::connection_limit: return "connection limit";
    case disconnect_code::channel_limit: return "channel limit";
    case disconnect_code::inappropriate_protocol: return "inappropriate protocol";
    case disconnect_code::permission_denied: return "permission denied";
    case disconnect_code::not_available: return "not available";
    case disconnect_code::too_many_errors: return "too many errors";
    default: return "";
  }
}


}  // namespace sb::proto
