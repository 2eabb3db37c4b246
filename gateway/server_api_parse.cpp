#include "gateway/server_api_parse.hpp"

#include <fmt/core.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>

namespace sb::api {

namespace {

namespace dom = simdjson::dom;

// Reads `key` as a string into out; false (and an error text) when present
// with another type, or absent and required.
bool get_string(dom::object obj, std::string_view key, std::string& out, bool required, std::string& error) {
  dom::element e;
  if (obj[key].get(e) != simdjson::SUCCESS) {
    if (required) error = fmt::format("{} required", key);
    return !required;
  }
  std::string_view v;
  if (e.get(v) != simdjson::SUCCESS) {
    error = fmt::format("{} must be a string", key);
    return false;
  }
  if (required && v.empty()) {
    error = fmt::format("{} required", key);
    return false;
  }
  out.assign(v);
  return true;
}

bool get_data(dom::object obj, command& c) {
  dom::element e;
  if (obj["data"].get(e) != simdjson::SUCCESS) {
    c.error = "data required";
    return false;
  }
  c.data = simdjson::minify(e);
  return true;
}

}  // namespace

bool find_method(std::string_view name, method& m) {
  for (std::size_t i = 0; i < method_names.size(); ++i) {
    if (method_names[i] == name) {
      m = static_cast<method>(i);
      return true;
    }
  }
  return false;
}

command parse_command(method m, dom::element params) {
  command c;
  c.m = m;
  dom::object obj;
  if (params.get(obj) != simdjson::SUCCESS) {
    c.error = "params must be an object";
    return c;
  }
  switch (m) {
    case method::publish:
      if (get_string(obj, "channel", c.channel, true, c.error)) get_data(obj, c);
      break;
    case method::broadcast: {
      dom::array arr;
      if (obj["channels"].get(arr) != simdjson::SUCCESS) {
        c.error = "channels required";
        break;
      }
      for (dom::element ch : arr) {
        std::string_view v;
        if (ch.get(v) != simdjson::SUCCESS || v.empty()) {
          c.error = "channels must be non-empty strings";
          break;
        }
        c.channels.emplace_back(v);
      }
      if (c.error.empty() && c.channels.empty()) c.error = "channels required";
      if (c.error.empty()) get_data(obj, c);
      break;
    }
    case method::subscribe:
    case method::unsubscribe:
      if (get_string(obj, "user", c.user, true, c.error) && get_string(obj, "channel", c.channel, true, c.error)) {
        get_string(obj, "client", c.client, false, c.error);
      }
      break;
    case method::disconnect: {
      if (!get_string(obj, "user", c.user, true, c.error) || !get_string(obj, "client", c.client, false, c.error)) break;
      dom::object d;
      if (obj["disconnect"].get(d) == simdjson::SUCCESS) {
        std::uint64_t code = 0;
        if (d["code"].get(code) != simdjson::SUCCESS || code < 3000 || code > 4999) {
          c.error = "disconnect.code must be 3000-4999";
          break;
        }
        c.code = static_cast<std::uint16_t>(code);
        std::string reason;
        if (!get_string(d, "reason", reason, false, c.error)) break;
        if (reason.size() > 120) {
          c.error = "disconnect.reason longer than 120 bytes";
          break;
        }
        c.reason = reason;
      }
      break;
    }
    case method::refresh: {
      if (!get_string(obj, "user", c.user, true, c.error) || !get_string(obj, "client", c.client, false, c.error)) break;
      std::int64_t at = 0;
      if (dom::element e; obj["expire_at"].get(e) == simdjson::SUCCESS && e.get(at) != simdjson::SUCCESS) {
        c.error = "expire_at must be an integer";
        break;
      }
      c.expire_at = at;
      bool expired = false;
      if (dom::element e; obj["expired"].get(e) == simdjson::SUCCESS && e.get(expired) != simdjson::SUCCESS) {
        c.error = "expired must be a boolean";
        break;
      }
      c.expired = expired;
      break;
    }
    case method::history: {
      if (!get_string(obj, "channel", c.channel, true, c.error)) break;
      if (dom::element e; obj["limit"].get(e) == simdjson::SUCCESS) {
        std::int64_t limit = 0;
        if (e.get(limit) != simdjson::SUCCESS || limit < -1 || limit > 1'000'000) {
          c.error = "limit must be an integer from -1";
          break;
        }
        c.limit = static_cast<std::int32_t>(limit);
      }
      if (dom::object since; obj["since"].get(since) == simdjson::SUCCESS) {
        c.has_since = true;
        if (dom::element o; since["offset"].get(o) == simdjson::SUCCESS && o.get(c.since_offset) != simdjson::SUCCESS) {
          c.error = "since.offset must be an unsigned integer";
          break;
        }
        if (!get_string(since, "epoch", c.since_epoch, false, c.error)) break;
      }
      if (dom::element r; obj["reverse"].get(r) == simdjson::SUCCESS && r.get(c.reverse) != simdjson::SUCCESS) {
        c.error = "reverse must be a boolean";
      }
      break;
    }
    case method::presence:
    case method::presence_stats:
    case method::history_remove:
      get_string(obj, "channel", c.channel, true, c.error);
      break;
    case method::channels: {
      if (!get_string(obj, "pattern", c.pattern, false, c.error)) break;
      // glob costs |pattern| per channel for a run of '*': collapse runs
      // (same matches) and bound the rest, so one call cannot stall a shard.
      auto run = std::unique(c.pattern.begin(), c.pattern.end(), [](char a, char b) { return a == '*' && b == '*'; });
      c.pattern.erase(run, c.pattern.end());
      if (c.pattern.size() > 1024) c.error = "pattern longer than 1024 bytes";
      break;
    }
    case method::info:
    case method::batch:
    case method::count:
      break;
  }
  return c;
}

batch parse_batch(dom::element doc) {
  batch b;
  dom::object obj;
  dom::array list;
  if (doc.get(obj) != simdjson::SUCCESS || obj["commands"].get(list) != simdjson::SUCCESS) {
    b.error = "commands required";
    return b;
  }
  for (dom::element e : list) {
    // {"publish": {...}} — one method per command.
    dom::object one;
    command c;
    c.error = "each command is an object with one method";
    if (e.get(one) == simdjson::SUCCESS && one.size() == 1) {
      for (auto [key, params] : one) {
        method cm;
        if (!find_method(key, cm) || cm == method::batch) {
          c.error = fmt::format("unknown method {}", key);
        } else {
          c = parse_command(cm, params);
        }
      }
    }
    b.commands.push_back(std::move(c));
  }
  if (dom::element p; obj["parallel"].get(p) == simdjson::SUCCESS && p.get(b.parallel) != simdjson::SUCCESS) {
    b.error = "parallel must be a boolean";
  }
  return b;
}

bool glob(std::string_view p, std::string_view s) {
  std::size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (pi < p.size() && p[pi] == s[si]) {
      ++pi;
      ++si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool merge_channel_counts(std::string_view rest, std::map<std::string, std::uint64_t, std::less<>>& merged) {
  auto number = [&rest](std::uint64_t& v, char end) {
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    if (ec != std::errc() || ptr == rest.data() + rest.size() || *ptr != end) return false;
    rest.remove_prefix(static_cast<std::size_t>(ptr - rest.data()) + 1);
    return true;
  };
  while (!rest.empty()) {
    std::uint64_t len = 0, n = 0;
    if (!number(len, ' ') || len >= rest.size() || rest[len] != ' ') return false;
    std::string_view name = rest.substr(0, len);
    rest.remove_prefix(len + 1);
    if (!number(n, '\n')) return false;
    merged[std::string(name)] += n;
  }
  return true;
}

}  // namespace sb::api
