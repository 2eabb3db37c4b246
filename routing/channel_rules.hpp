#pragma once
// Channel namespaces and their options, Centrifugo v5 style: a channel
// "chat:room1" belongs to namespace "chat"; a channel without the boundary
// uses the top-level options. "#42,43" after the user boundary limits a
// channel to those users (personal channels for user-to-user IM).
//
// Built from config on the main thread, then immutable and read by every
// shard without locks.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sb::routing {

/// Per-namespace options (names as in Centrifugo v5's configuration).
struct channel_options {
  bool allow_subscribe_for_client = false;
  bool allow_subscribe_for_anonymous = false;
  bool allow_publish_for_subscriber = false;
  bool allow_publish_for_client = false;
  bool allow_publish_for_anonymous = false;
  bool allow_user_limited_channels = false;
  // Presence and history (issue 5 implements them; accepted and validated now).
  bool presence = false;
  bool join_leave = false;
  bool force_push_join_leave = false;
  bool allow_presence_for_subscriber = false;
  bool allow_presence_for_client = false;
  bool allow_history_for_subscriber = false;
  bool allow_history_for_client = false;
  std::uint32_t history_size = 0;
  std::chrono::milliseconds history_ttl{0};
  bool force_recovery = false;
  bool force_positioning = false;
  bool allow_recovery = false;
  bool allow_positioning = false;
  // Backend proxy (gateway/proxy.hpp): a subscribe without a token / every
  // publish in this namespace is decided by the backend.
  bool proxy_subscribe = false;
  bool proxy_publish = false;
};

/// Why a channel name was refused.
enum class name_check { ok, empty, too_long, bad_character };

/// The namespaces and name rules. Immutable after construction; any thread.
class channel_rules {
 public:
  struct named_options {
    std::string name;
    channel_options options;
  };

  channel_rules() = default;
  channel_rules(channel_options top, std::vector<named_options> namespaces, std::size_t max_length = 255);

  /// Options for `channel`, or nullptr when its namespace is not configured
  /// (Centrifuge error 102 "unknown channel").
  const channel_options* resolve(std::string_view channel) const noexcept;

  /// Length and character rules: non-empty, at most max_length bytes, no
  /// ASCII control characters or spaces.
  name_check check_name(std::string_view channel) const noexcept;

  /// True when the channel has a user boundary ('#') and `user` is one of
  /// the comma-separated users after it. Anonymous (empty) users never match.
  static bool user_in_channel(std::string_view channel, std::string_view user) noexcept;

  /// True when the channel carries a user boundary at all.
  static bool is_user_limited(std::string_view channel) noexcept;

  static constexpr char namespace_boundary = ':';
  static constexpr char user_boundary = '#';
  static constexpr char user_separator = ',';

  std::size_t max_length() const noexcept { return _max_length; }

 private:
  channel_options _top;
  std::vector<named_options> _namespaces;  // a handful: a linear scan beats hashing
  std::size_t _max_length = 255;
};

}  // namespace sb::routing
