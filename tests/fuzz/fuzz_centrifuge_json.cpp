// libFuzzer target: command frames of arbitrary bytes. Whatever parses is
// re-encoded as a push and must come out as valid JSON.
#include "session/centrifuge_json.hpp"

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static sb::proto::command_parser parser;
  static simdjson::dom::parser check;
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  std::string out;
  (void)parser.parse(frame, [&](const sb::proto::command& c) {
    out.clear();
    sb::proto::publication_view p;
    p.channel = c.publish.channel;
    p.data = c.publish.data_json;
    p.has_info = true;
    p.info.user = c.subscribe.channel;
    p.info.client = c.connect.token;
    p.info.conn_info = c.connect.data_json;
    sb::proto::encode_publication_push(out, p);
    simdjson::dom::element e;
    if (check.parse(out).get(e) != simdjson::SUCCESS) std::abort();
    out.clear();
    sb::proto::encode_error_reply(out, c.id, 107, c.subscribe.channel);
    if (check.parse(out).get(e) != simdjson::SUCCESS) std::abort();
  });
  return 0;
}
