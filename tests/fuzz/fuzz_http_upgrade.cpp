// libFuzzer target: the upgrade parser on arbitrary bytes. Invariants: it
// never consumes more than it was given, answers exactly when it decided,
// and every answer starts with a well-formed status line.
#include "session/http_upgrade.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const sb::ws::upgrade_options opts = [] {
    sb::ws::upgrade_options o;
    o.allowed_origins = {"https://*.example.com", "http://127.0.0.1:*"};
    o.subprotocols = {"centrifuge-json"};
    return o;
  }();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = sb::ws::parse_upgrade(in, opts);
  if (r.consumed > size) std::abort();
  if ((r.status == sb::ws::upgrade_status::need_more) != r.response.empty()) std::abort();
  if (!r.response.empty() && r.response.compare(0, 9, "HTTP/1.1 ") != 0) std::abort();
  if (r.status == sb::ws::upgrade_status::accepted && r.consumed == 0) std::abort();
  return 0;
}
