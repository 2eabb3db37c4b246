// libFuzzer target: the upgrade parser on arbitrary bytes, as a connection's
// first read(s). Invariants: it never consumes more than it was given,
// answers exactly when it decided, every answer is a well-formed HTTP
// response (status line, header end, Content-Length that matches the body),
// and an accepted request is accepted the same way when it arrives alone
// (the session re-parses from the start, so the answer must not depend on
// bytes after the request).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "session/http_upgrade.hpp"

namespace {

using sb::ws::upgrade_status;

void check(bool ok) {
  if (!ok) std::abort();
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "HTTP/1.1 NNN Text\r\n...\r\n\r\n[body]"; returns the status code.
unsigned check_response(std::string_view r) {
  check(r.size() > 13 && r.substr(0, 9) == "HTTP/1.1 ");
  check(is_digit(r[9]) && is_digit(r[10]) && is_digit(r[11]) && r[12] == ' ');
  unsigned code = static_cast<unsigned>((r[9] - '0') * 100 + (r[10] - '0') * 10 + (r[11] - '0'));
  auto eol = r.find("\r\n");
  check(eol != std::string_view::npos && eol > 13);
  auto end = r.find("\r\n\r\n");
  check(end != std::string_view::npos);
  // No bare CR or LF inside the head: nothing from the request leaks in raw.
  std::string_view head = r.substr(0, end + 2);
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\r') check(i + 1 < head.size() && head[i + 1] == '\n');
    if (head[i] == '\n') check(i > 0 && head[i - 1] == '\r');
  }
  std::string_view body = r.substr(end + 4);
  if (code == 101) {
    check(body.empty());
  } else {
    std::string cl = "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    check(head.find(cl) != std::string_view::npos);
    check(head.find("\r\nConnection: close\r\n") != std::string_view::npos);
  }
  return code;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A small limit so the fuzzer reaches the 431 paths with short inputs.
  static const sb::ws::upgrade_options opts = [] {
    sb::ws::upgrade_options o;
    o.allowed_origins = {"https://*.example.com", "http://127.0.0.1:*"};
    o.subprotocols = {"centrifuge-json", "centrifuge-protobuf"};
    o.header_limit = 2048;
    o.permessage_deflate = true;
    return o;
  }();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = sb::ws::parse_upgrade(in, opts);

  check(r.consumed <= size);
  check((r.status == upgrade_status::need_more) == r.response.empty());
  check((r.status == upgrade_status::rejected) == (r.reason[0] != '\0'));
  check(r.status == upgrade_status::accepted || (r.consumed == 0 && r.subprotocol.empty()));

  switch (r.status) {
    case upgrade_status::need_more:
      check(size < opts.header_limit);
      break;
    case upgrade_status::rejected: {
      unsigned code = check_response(r.response);
      check(code == 400 || code == 403 || code == 404 || code == 405 || code == 426 || code == 431);
      break;
    }
    case upgrade_status::accepted: {
      check(check_response(r.response) == 101);
      check(r.consumed >= 4 && r.consumed <= opts.header_limit);
      check(in.substr(r.consumed - 4, 4) == "\r\n\r\n");
      check(r.subprotocol.empty() ||
            std::find(opts.subprotocols.begin(), opts.subprotocols.end(), r.subprotocol) != opts.subprotocols.end());
      // permessage-deflate is answered exactly when negotiated, with both
      // no-context-takeover parameters.
      const auto ext = r.response.find("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                                       "client_no_context_takeover");
      check(r.deflate == (ext != std::string::npos));
      check(r.deflate == (r.response.find("Sec-WebSocket-Extensions") != std::string::npos));
      auto alone = sb::ws::parse_upgrade(in.substr(0, r.consumed), opts);
      check(alone.status == upgrade_status::accepted && alone.consumed == r.consumed && alone.response == r.response &&
            alone.subprotocol == r.subprotocol);
      break;
    }
  }
  return 0;
}
