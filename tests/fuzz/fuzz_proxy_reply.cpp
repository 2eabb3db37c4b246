// libFuzzer target for the backend proxy's answer parser
// (gateway/proxy.cpp, parse_proxy_reply): the backend is another program,
// and what it sends must never crash the gateway or reach a client
// unchecked. The first input byte (mod 8) picks:
//   0-4: the rest is an answer to a request of that proxy_kind. Whatever it
//        parses to must hold the parser's promises: a disconnect code in
//        3000-4999 with a reason that fits a close frame, an error code
//        above 0, and info/data that are valid JSON when present (they are
//        written into client frames as they are);
//   5-7: the rest, split at NUL bytes, is the strings of a proxy request;
//        its body must be valid JSON with those strings read back.
// Seeds start with '0'-'7' so that they stay text.

#include "gateway/proxy.hpp"

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool valid_json(const std::string& s) {
  static simdjson::dom::parser p;
  return p.parse(s).error() == simdjson::SUCCESS;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  unsigned pick = data[0] % 8;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (pick < 5) {
    auto kind = static_cast<sb::proxy_kind>(pick);
    sb::proxy_reply r = sb::parse_proxy_reply(kind, rest);
    using o_t = sb::proxy_reply::outcome;
    if (r.what == o_t::disconnect) check(r.code >= 3000 && r.code <= 4999 && r.message.size() <= 122);
    if (r.what == o_t::error) check(r.code > 0);
    if (r.what == o_t::result) {
      check(r.info.empty() || valid_json(r.info));
      check(r.data.empty() || valid_json(r.data));
    }
    check(r.what == o_t::result || r.what == o_t::error || r.what == o_t::disconnect || r.what == o_t::bad_response);
    return 0;
  }
  // Strings only: a proxy_request's `data` is raw JSON the decoder checked
  // before, so it is left empty here.
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= rest.size(); ++i) {
    if (i == rest.size() || rest[i] == '\0') {
      parts.emplace_back(rest.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.resize(4);
  sb::proxy_request q;
  q.client = parts[0];
  q.user = parts[1];
  q.channel = parts[2];
  q.method = parts[3];
  std::string body = sb::proxy_request_body(q);
  // simdjson rejects invalid UTF-8 in strings; the decoder hands us valid
  // UTF-8 only, so only then must the body parse.
  bool utf8 = simdjson::validate_utf8(rest.data(), rest.size());
  if (!utf8) return 0;
  simdjson::dom::parser p;
  simdjson::dom::element e;
  check(p.parse(body).get(e) == simdjson::SUCCESS);
  std::string_view user;
  check(e["user"].get(user) == simdjson::SUCCESS && user == parts[1]);
  std::string_view client;
  check(e["client"].get(client) == simdjson::SUCCESS && client == parts[0]);
  return 0;
}
