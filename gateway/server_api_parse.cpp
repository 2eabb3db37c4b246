#include "gateway/server_api_parse.hpp"

#include "session/json_writer.hpp"

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

// Raw JSON text, already validated by the DOM parse: spans of values as
// written, so `data` reaches subscribers with its numbers and escapes as the
// backend wrote them (as Centrifugo passes it through), minus whitespace.
std::size_t skip_ws(std::string_view t, std::size_t i) {
  while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
  return i;
}

// The index just past the value starting at t[i].
std::size_t skip_value(std::string_view t, std::size_t i) {
  int depth = 0;
  do {
    if (i >= t.size()) return t.size();
    char ch = t[i];
    if (ch == '"') {
      for (++i; i < t.size() && t[i] != '"'; ++i) {
        if (t[i] == '\\') ++i;
      }
      ++i;
    } else if (ch == '{' || ch == '[') {
      ++depth;
      ++i;
    } else if (ch == '}' || ch == ']') {
      --depth;
      ++i;
    } else if (depth > 0) {
      ++i;  // ',', ':', whitespace, scalars inside a container
    } else {
      while (i < t.size() && t[i] != ',' && t[i] != '}' && t[i] != ']' && t[i] != ' ' && t[i] != '\t' &&
             t[i] != '\n' && t[i] != '\r') {
        ++i;
      }
    }
  } while (depth > 0);
  return i;
}

// Calls f(raw key without quotes, raw value) for each member of the object
// text t (stops when f returns true).
template <typename F>
void for_each_member(std::string_view t, F&& f) {
  std::size_t i = skip_ws(t, 0);
  if (i >= t.size() || t[i] != '{') return;
  i = skip_ws(t, i + 1);
  while (i < t.size() && t[i] == '"') {
    std::size_t key_end = skip_value(t, i);
    std::string_view key = t.substr(i + 1, key_end - i - 2);
    i = skip_ws(t, key_end);
    if (i >= t.size() || t[i] != ':') return;
    std::size_t v = skip_ws(t, i + 1);
    std::size_t v_end = skip_value(t, v);
    if (f(key, t.substr(v, v_end - v))) return;
    i = skip_ws(t, v_end);
    if (i >= t.size() || t[i] != ',') return;
    i = skip_ws(t, i + 1);
  }
}

}  // namespace

std::string_view raw_member(std::string_view object_text, std::string_view key) {
  std::string_view found;
  // The first member of that name, as the DOM's lookup finds it. A key
  // written with escapes before it could be the same name: then nothing is
  // found here (the caller falls back to the DOM's value).
  for_each_member(object_text, [&](std::string_view k, std::string_view v) {
    if (k.find('\\') != std::string_view::npos) return true;
    if (k != key) return false;
    found = v;
    return true;
  });
  return found;
}

std::vector<std::string_view> raw_elements(std::string_view array_text) {
  std::vector<std::string_view> out;
  std::size_t i = skip_ws(array_text, 0);
  if (i >= array_text.size() || array_text[i] != '[') return out;
  i = skip_ws(array_text, i + 1);
  while (i < array_text.size() && array_text[i] != ']') {
    std::size_t end = skip_value(array_text, i);
    out.push_back(array_text.substr(i, end - i));
    i = skip_ws(array_text, end);
    if (i < array_text.size() && array_text[i] == ',') i = skip_ws(array_text, i + 1);
  }
  return out;
}

namespace {

bool get_data(dom::object obj, std::string_view raw, command& c) {
  dom::element e;
  if (obj["data"].get(e) != simdjson::SUCCESS) {
    c.error = "data required";
    return false;
  }
  if (std::string_view text = raw.empty() ? std::string_view() : raw_member(raw, "data"); !text.empty()) {
    c.data.resize(text.size());
    std::size_t n = 0;
    if (simdjson::minify(text.data(), text.size(), c.data.data(), n) == simdjson::SUCCESS) {
      c.data.resize(n);
      return true;
    }
  }
  c.data = simdjson::minify(e);  // no raw text (or a key written with escapes): re-encoded
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

command parse_command(method m, dom::element params, std::string_view raw) {
  command c;
  c.m = m;
  dom::object obj;
  if (params.get(obj) != simdjson::SUCCESS) {
    c.error = "params must be an object";
    return c;
  }
  switch (m) {
    case method::publish:
      if (get_string(obj, "channel", c.channel, true, c.error)) get_data(obj, raw, c);
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
      if (c.error.empty()) get_data(obj, raw, c);
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

batch parse_batch(dom::element doc, std::string_view raw) {
  batch b;
  dom::object obj;
  dom::array list;
  if (doc.get(obj) != simdjson::SUCCESS || obj["commands"].get(list) != simdjson::SUCCESS) {
    b.error = "commands required";
    return b;
  }
  // The entries' texts, in step with the DOM's (none when unknown).
  std::vector<std::string_view> raws = raw.empty() ? std::vector<std::string_view>() : raw_elements(raw_member(raw, "commands"));
  if (raws.size() != list.size()) raws.assign(list.size(), {});
  std::size_t index = 0;
  for (dom::element e : list) {
    std::string_view entry = raws[index++];
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
          // The entry's one member's value.
          std::string_view params_raw;
          for_each_member(entry, [&](std::string_view, std::string_view v) {
            params_raw = v;
            return true;
          });
          c = parse_command(cm, params, params_raw);
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

std::string command_json(const command& c) {
  std::string out = "{";
  auto member = [&out](std::string_view key, std::string_view value) {
    if (out.size() > 1) out += ',';
    proto::append_json_string(out, key);
    out += ':';
    proto::append_json_string(out, value);
  };
  member("user", c.user);
  if (!c.client.empty()) member("client", c.client);
  if (c.m == method::subscribe || c.m == method::unsubscribe) member("channel", c.channel);
  if (c.m == method::disconnect) {
    out += fmt::format(R"(,"disconnect":{{"code":{},"reason":)", c.code);
    proto::append_json_string(out, c.reason);
    out += '}';
  }
  if (c.m == method::refresh) {
    out += fmt::format(R"(,"expired":{})", c.expired ? "true" : "false");
    if (c.expire_at != 0) out += fmt::format(R"(,"expire_at":{})", c.expire_at);
  }
  return out + "}";
}

}  // namespace sb::api
