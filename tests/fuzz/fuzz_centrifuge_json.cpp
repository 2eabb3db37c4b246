// libFuzzer target for the Centrifuge JSON command parser. Arbitrary frames
// are parsed; every string and raw value of what parsed is re-encoded
// through the encoders and the output must be valid JSON whose strings read
// back equal to the input (escaping round trip), and raw data must itself be
// valid JSON (it is embedded verbatim into pushes).
#include "session/json_reader.hpp"
#include "session/json_writer.hpp"

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

simdjson::dom::parser& checker() {
  static simdjson::dom::parser p;
  return p;
}

simdjson::dom::element must_parse(const std::string& s) {
  simdjson::dom::element e;
  if (checker().parse(s).get(e) != simdjson::SUCCESS) std::abort();
  return e;
}

// simdjson 3.0.1's DOM refuses two kinds of valid JSON the parser passes
// through on purpose (integers beyond 64 bits, lone surrogate escapes): a
// raw value the checker cannot read must fail for exactly those reasons.
bool checker_reads(std::string_view raw) {
  simdjson::dom::element e;
  auto err = checker().parse(raw.data(), raw.size()).get(e);
  if (err == simdjson::SUCCESS) return true;
  if (err != simdjson::NUMBER_ERROR && err != simdjson::STRING_ERROR) std::abort();
  return false;
}

void must_equal(simdjson::dom::element e, std::string_view want) {
  std::string_view got;
  if (e.get_string().get(got) != simdjson::SUCCESS || got != want) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sb::proto;
  static command_parser parser;
  static std::string out;
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  (void)parser.parse(frame, [&](const command& c) {
    // Pick a string and a raw value from whichever request came in.
    std::string_view s, raw;
    switch (c.m) {
      case method::connect: s = c.connect.token, raw = c.connect.data_json; break;
      case method::subscribe: s = c.subscribe.channel, raw = c.subscribe.data_json; break;
      case method::unsubscribe: s = c.unsubscribe.channel; break;
      case method::publish: s = c.publish.channel, raw = c.publish.data_json; break;
      case method::presence: s = c.presence.channel; break;
      case method::presence_stats: s = c.presence_stats.channel; break;
      case method::history: s = c.history.since_epoch; break;
      case method::rpc: s = c.rpc.method_name, raw = c.rpc.data_json; break;
      case method::send: raw = c.send.data_json; break;
      case method::refresh: s = c.refresh.token; break;
      case method::sub_refresh: s = c.sub_refresh.token; break;
      case method::ping:
      case method::none: break;
    }
    if (c.m != method::none && c.m != method::send && c.id == 0) std::abort();

    if (!raw.empty() && !checker_reads(raw)) raw = "null";
    out.clear();
    client_info_view info{s, s, raw, raw};
    encode_publication_push(out, s, raw.empty() ? std::string_view("null") : raw, c.id, &info);
    auto e = must_parse(out);
    must_equal(e["push"]["pub"]["info"]["user"], s);
    if (!s.empty()) must_equal(e["push"]["channel"], s);

    out.clear();
    encode_error_reply(out, c.id, error_code::bad_request, s);
    e = must_parse(out);
    if (!s.empty()) must_equal(e["error"]["message"], s);

    for (auto& [ch, sub] : c.connect.subs) {
      out.clear();
      encode_unsubscribe_push(out, ch, unsubscribe_code::server, sub.channel);
      e = must_parse(out);
      if (!ch.empty()) must_equal(e["push"]["channel"], ch);
    }
  });
  return 0;
}
