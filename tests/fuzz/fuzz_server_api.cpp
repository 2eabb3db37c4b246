// libFuzzer target for the server API's request parsing
// (gateway/server_api_parse.cpp). The first input byte (mod 16) picks what
// the rest is:
//   0-12: the body of a request for that method (api::method order), parsed
//         with simdjson's DOM as server_api::handle() does (empty reads as
//         "{}"), then parse_command, or parse_batch for batch. A command
//         without error must carry what its method needs (channel, user,
//         data that is valid JSON and re-serializes to itself, codes and
//         limits in range). A single command is also wrapped as the one
//         entry of a batch, which must parse to the same command;
//   13:   one shard's answer to `channels`, for merge_channel_counts; what it
//         accepts, encoded again, must read back the same;
//   14:   channels (1 byte name length, name, 1 byte count) encoded as a
//         shard encodes them, split into two shards' answers: merge must
//         accept them and sum the counts by name;
//   15:   "pattern\0name" for glob, checked against a plain matcher.
// An exception that escapes aborts (libFuzzer reports it). The seeds start
// with '0'-'?' (0x30-0x3f, the same picks) so that they stay text.

#include "gateway/server_api_parse.hpp"

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace api = sb::api;
namespace dom = simdjson::dom;
using counts = std::map<std::string, std::uint64_t, std::less<>>;

dom::parser& request_parser() {
  static dom::parser p;
  return p;
}

dom::parser& checker() {
  static dom::parser p;
  return p;
}

void check(bool ok) {
  if (!ok) std::abort();
}

// Publication data is embedded verbatim into pushes and history: it must
// be one JSON value, already minified.
void check_data(const std::string& data) {
  dom::element e;
  check(checker().parse(simdjson::padded_string(data)).get(e) == simdjson::SUCCESS);
  check(simdjson::minify(e) == data);
}

// What a command without error must hold for its method.
void check_command(const api::command& c, api::method m) {
  check(c.m == m);
  if (!c.error.empty()) return;
  using M = api::method;
  if (m != M::publish && m != M::broadcast) check(c.data.empty());
  switch (m) {
    case M::publish:
      check(!c.channel.empty());
      check_data(c.data);
      break;
    case M::broadcast:
      check(!c.channels.empty());
      for (const auto& ch : c.channels) check(!ch.empty());
      check_data(c.data);
      break;
    case M::subscribe:
    case M::unsubscribe:
      check(!c.user.empty() && !c.channel.empty());
      break;
    case M::disconnect:
      check(!c.user.empty());
      check(c.code >= 3000 && c.code <= 4999 && c.reason.size() <= 120);
      break;
    case M::refresh:
      check(!c.user.empty());
      break;
    case M::history:
      check(!c.channel.empty());
      check(c.limit >= -1 && c.limit <= 1'000'000);
      if (!c.has_since) check(c.since_offset == 0 && c.since_epoch.empty());
      break;
    case M::history_remove:
    case M::presence:
    case M::presence_stats:
      check(!c.channel.empty());
      break;
    case M::channels:
    case M::info:
      break;
    case M::batch:
    case M::count:
      std::abort();  // never a command of its own
  }
}

bool same(const api::command& a, const api::command& b);

// The DOM's re-encoding of a JSON text (the parse must succeed).
std::string reencoded(const std::string& text) {
  dom::element e;
  check(checker().parse(simdjson::padded_string(text)).get(e) == simdjson::SUCCESS);
  return simdjson::minify(e);
}

// The same command parsed with its raw text: every field equal, and data
// the same JSON value written as the backend wrote it (no whitespace).
void check_raw_twin(const api::command& dom_only, const api::command& with_raw) {
  api::command a = dom_only, b = with_raw;
  check(a.error == b.error);
  if (!b.data.empty()) {
    check(reencoded(b.data) == a.data);
    for (char ch : b.data) check(ch != '\n' && ch != '\r');  // pushes are newline-delimited
    std::string again(b.data.size(), '\0');
    std::size_t n = 0;
    check(simdjson::minify(b.data.data(), b.data.size(), again.data(), n) == simdjson::SUCCESS);
    again.resize(n);
    check(again == b.data);  // already minified
  }
  a.data = b.data;
  check(same(a, b));
}

bool same(const api::command& a, const api::command& b) {
  return a.m == b.m && a.error == b.error && a.channel == b.channel && a.channels == b.channels &&
         a.data == b.data && a.user == b.user && a.client == b.client && a.pattern == b.pattern &&
         a.code == b.code && a.reason == b.reason && a.expire_at == b.expire_at && a.expired == b.expired &&
         a.limit == b.limit && a.has_since == b.has_since && a.since_offset == b.since_offset &&
         a.since_epoch == b.since_epoch && a.reverse == b.reverse;
}

void check_batch(const api::batch& b) {
  check(b.error.empty() || b.error == "commands required" || b.error == "parallel must be a boolean");
  for (const auto& c : b.commands) {
    if (c.error.empty()) check_command(c, c.m);
  }
}

void fuzz_request(api::method m, std::string_view rest) {
  std::string_view body = rest.empty() ? std::string_view("{}") : rest;
  dom::element doc;
  if (request_parser().parse(simdjson::padded_string(body)).get(doc) != simdjson::SUCCESS) return;
  // What raw_member finds is the member the DOM's lookup finds; with no
  // escaped key in the object it finds every member.
  if (dom::object obj; doc.get(obj) == simdjson::SUCCESS) {
    bool escaped_keys = false;
    for (auto [key, value] : obj) {
      (void)value;
      for (char ch : key) escaped_keys = escaped_keys || static_cast<unsigned char>(ch) < 0x20 || ch == '"' || ch == '\\';
    }
    for (auto [key, value] : obj) {
      (void)value;
      dom::element first;
      check(obj[key].get(first) == simdjson::SUCCESS);
      std::string_view raw = api::raw_member(body, key);
      if (!raw.empty()) check(reencoded(std::string(raw)) == simdjson::minify(first));
      else check(escaped_keys || body.find('\\') != std::string_view::npos);
    }
  }
  if (m == api::method::batch) {
    api::batch b = api::parse_batch(doc);
    api::batch with_raw = api::parse_batch(doc, body);
    check_batch(b);  // with_raw is checked against it, command by command
    check(b.error == with_raw.error && b.parallel == with_raw.parallel && b.commands.size() == with_raw.commands.size());
    for (std::size_t i = 0; i < b.commands.size(); ++i) check_raw_twin(b.commands[i], with_raw.commands[i]);
    if (b.error.empty()) {
      dom::array list;
      check(doc["commands"].get(list) == simdjson::SUCCESS && b.commands.size() == list.size());
    }
    return;
  }
  api::command c = api::parse_command(m, doc);
  check_command(c, m);
  api::command c_raw = api::parse_command(m, doc, body);
  check_raw_twin(c, c_raw);
  // The same parameters as a batch's one command (doc is not used again:
  // the parser is free for the batch).
  std::string wrapped = R"({"commands":[{")";
  wrapped += api::method_names[static_cast<std::size_t>(m)];
  wrapped += R"(":)";
  wrapped += body;
  wrapped += "}]}";
  if (request_parser().parse(simdjson::padded_string(wrapped)).get(doc) != simdjson::SUCCESS) return;  // too deep
  api::batch b = api::parse_batch(doc);
  check(b.error.empty() && b.commands.size() == 1 && same(b.commands[0], c));
  api::batch b_raw = api::parse_batch(doc, wrapped);
  check(b_raw.error.empty() && b_raw.commands.size() == 1 && same(b_raw.commands[0], c_raw));
}

std::string encode(const counts& merged) {
  std::string out;
  for (const auto& [name, n] : merged) {
    out += std::to_string(name.size()) + ' ' + name + ' ' + std::to_string(n) + '\n';
  }
  return out;
}

void fuzz_merge(std::string_view rest) {
  counts merged;
  if (!api::merge_channel_counts(rest, merged)) return;
  counts again;
  check(api::merge_channel_counts(encode(merged), again) && again == merged);
}

void fuzz_merge_encoded(std::string_view rest) {
  std::string part[2];
  counts want;
  for (int i = 0; rest.size() >= 2; i ^= 1) {
    std::size_t len = static_cast<unsigned char>(rest[0]);
    if (rest.size() < len + 2) break;
    std::string name(rest.substr(1, len));
    std::uint64_t n = static_cast<unsigned char>(rest[len + 1]);
    rest.remove_prefix(len + 2);
    part[i] += std::to_string(name.size()) + ' ' + name + ' ' + std::to_string(n) + '\n';
    want[name] += n;
  }
  counts merged;
  check(api::merge_channel_counts(part[0], merged) && api::merge_channel_counts(part[1], merged));
  check(merged == want);
}

// '*' matches any run, everything else itself: dynamic programming over
// prefixes (at[j]: the pattern so far matches s[0, j)).
bool plain_glob(std::string_view p, std::string_view s) {
  std::vector<char> at(s.size() + 1, 0), next(s.size() + 1);
  at[0] = 1;
  for (char pc : p) {
    if (pc == '*') {
      next[0] = at[0];
      for (std::size_t j = 1; j <= s.size(); ++j) next[j] = at[j] || next[j - 1];
    } else {
      next[0] = 0;
      for (std::size_t j = 1; j <= s.size(); ++j) next[j] = at[j - 1] && s[j - 1] == pc;
    }
    at.swap(next);
  }
  return at[s.size()];
}

void fuzz_glob(std::string_view rest) {
  std::size_t split = rest.find('\0');
  std::string_view p = rest.substr(0, split);
  std::string_view s = split == std::string_view::npos ? rest : rest.substr(split + 1);
  check(api::glob("*", s) && api::glob("*", p));
  check(api::glob(p, p) && api::glob(s, s));
  check(api::glob("", s) == s.empty());
  if (p.find('*') == std::string_view::npos) check(api::glob(p, s) == (p == s));
  if (p.size() * s.size() <= (1u << 20)) check(api::glob(p, s) == plain_glob(p, s));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const unsigned pick = data[0] % 16;
  if (pick < static_cast<unsigned>(api::method::count)) {
    fuzz_request(static_cast<api::method>(pick), rest);
  } else if (pick == 13) {
    fuzz_merge(rest);
  } else if (pick == 14) {
    fuzz_merge_encoded(rest);
  } else {
    fuzz_glob(rest);
  }
  return 0;
}
