#include "routing/channel_rules.hpp"

namespace sb::routing {

channel_rules::channel_rules(channel_options top, std::vector<named_options> namespaces, std::size_t max_length)
    : _top(top), _namespaces(std::move(namespaces)), _max_length(max_length) {}

const channel_options* channel_rules::resolve(std::string_view channel) const noexcept {
  // The namespace is what precedes the first ':' — but a ':' inside the
  // user part ("#...") does not start a namespace.
  auto colon = channel.find(namespace_boundary);
  auto hash = channel.find(user_boundary);
  if (colon == std::string_view::npos || (hash != std::string_view::npos && hash < colon)) return &_top;
  std::string_view ns = channel.substr(0, colon);
  for (const auto& n : _namespaces) {
    if (n.name == ns) return &n.options;
  }
  return nullptr;
}

name_check channel_rules::check_name(std::string_view channel) const noexcept {
  if (channel.empty()) return name_check::empty;
  if (channel.size() > _max_length) return name_check::too_long;
  for (unsigned char c : channel) {
    if (c <= 0x20 || c == 0x7f) return name_check::bad_character;
  }
  return name_check::ok;
}

bool channel_rules::is_user_limited(std::string_view channel) noexcept {
  return channel.find(user_boundary) != std::string_view::npos;
}

bool channel_rules::user_in_channel(std::string_view channel, std::string_view user) noexcept {
  if (user.empty()) return false;
  auto hash = channel.rfind(user_boundary);
  if (hash == std::string_view::npos) return false;
  std::string_view users = channel.substr(hash + 1);
  while (!users.empty()) {
    auto comma = users.find(user_separator);
    std::string_view one = users.substr(0, comma);
    if (one == user) return true;
    if (comma == std::string_view::npos) break;
    users.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace sb::routing
