#include "session/http_upgrade.hpp"

#include <fmt/core.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace sb::ws {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// ASCII only, as HTTP tokens are; std::tolower would follow the locale.
char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view sv(boost::beast::string_view s) noexcept { return {s.data(), s.size()}; }

// '*' matches any run of characters; case-insensitive; whole string.
bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && lower(pattern[p]) == lower(text[t])) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool valid_key(std::string_view key) noexcept {
  // base64 of exactly 16 bytes: 22 characters and "==". Spelled out rather
  // than std::isalnum, which depends on the locale.
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    if (alphabet.find(key[i]) == std::string_view::npos) return false;
  }
  // The last data character carries 2 bits of the 16th byte; its other 4
  // bits are padding and canonical base64 leaves them zero (every client does).
  return (alphabet.find(key[21]) & 0x0f) == 0;
}

upgrade_result reject(unsigned status, const char* reason, std::string_view body, std::string_view extra_headers = {}) {
  const char* text = "Bad Request";
  switch (status) {
    case 403:
      text = "Forbidden";
      break;
    case 404:
      text = "Not Found";
      break;
    case 405:
      text = "Method Not Allowed";
      break;
    case 426:
      text = "Upgrade Required";
      break;
    case 431:
      text = "Request Header Fields Too Large";
      break;
    case 503:
      text = "Service Unavailable";
      break;
    default:
      break;
  }
  upgrade_result r;
  r.status = upgrade_status::rejected;
  r.reason = reason;
  r.response = fmt::format(
      "HTTP/1.1 {} {}\r\nServer: switchboard\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n"
      "Connection: close\r\n{}\r\n{}\n",
      status, text, body.size() + 1, extra_headers, body);
  return r;
}

// Splits a comma list and compares each trimmed element with `token`.
template <class Equal>
bool list_has(std::string_view list, std::string_view token, Equal equal) noexcept {
  while (!list.empty()) {
    auto comma = list.find(',');
    if (equal(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

bool has_token(std::string_view list, std::string_view token) noexcept { return list_has(list, token, iequals); }

std::string accept_deflate_offer(std::string_view offers) {
  // RFC 7692 5 and 7.1: offers are comma-separated, each a name with
  // ';'-separated parameters; a value may be a quoted string. The first
  // acceptable offer wins. Quoted values hold only digits here, so a comma
  // or ';' inside quotes would make the offer invalid anyway.
  while (!offers.empty()) {
    const auto comma = offers.find(',');
    std::string_view offer = offers.substr(0, comma);
    offers.remove_prefix(comma == std::string_view::npos ? offers.size() : comma + 1);
    auto next_part = [&offer]() {
      const auto semi = offer.find(';');
      std::string_view part = trim(offer.substr(0, semi));
      offer.remove_prefix(semi == std::string_view::npos ? offer.size() : semi + 1);
      return part;
    };
    if (!iequals(next_part(), "permessage-deflate")) continue;
    bool ok = true, server_nct = false, client_nct = false, server_bits = false, client_bits = false;
    while (ok && !trim(offer).empty()) {
      std::string_view param = next_part();
      std::string_view name = trim(param.substr(0, param.find('=')));
      std::string_view value;
      const bool has_value = param.find('=') != std::string_view::npos;
      if (has_value) {
        value = trim(param.substr(param.find('=') + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      }
      auto bits = [&](bool optional) {
        if (!has_value) return optional;
        if (value.empty() || value.size() > 2 || value.front() == '0') return false;
        unsigned v = 0;
        for (char c : value) {
          if (c < '0' || c > '9') return false;
          v = v * 10 + static_cast<unsigned>(c - '0');
        }
        return v >= 8 && v <= 15;
      };
      if (iequals(name, "server_no_context_takeover") && !server_nct && !has_value) {
        server_nct = true;
      } else if (iequals(name, "client_no_context_takeover") && !client_nct && !has_value) {
        client_nct = true;
      } else if (iequals(name, "server_max_window_bits") && !server_bits && bits(false)) {
        // Our window is 15 bits: an offer asking for less is declined.
        server_bits = true;
        ok = value == "15";
      } else if (iequals(name, "client_max_window_bits") && !client_bits && bits(true)) {
        client_bits = true;  // the shard's inflater takes any window
      } else {
        ok = false;
      }
    }
    if (!ok) continue;
    std::string answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    if (server_bits) answer += "; server_max_window_bits=15";
    return answer;
  }
  return {};
}

bool check_origin(std::string_view origin, std::string_view host, const std::vector<std::string>& allowed) {
  if (origin.empty()) return true;
  if (allowed.empty()) {
    // Same origin: the authority of "scheme://host[:port]" equals Host, as
    // Centrifugo compares url.Parse(origin).Host with r.Host. No scheme
    // ("null", a bare name) has no host, so it is not same-origin.
    auto scheme = origin.find("://");
    if (scheme == std::string_view::npos) return false;
    std::string_view origin_host = origin.substr(scheme + 3);
    origin_host = origin_host.substr(0, origin_host.find('/'));
    return !host.empty() && iequals(origin_host, host);
  }
  for (const auto& pattern : allowed) {
    if (glob_match(pattern, origin)) return true;
  }
  return false;
}

upgrade_result busy_response(const char* reason, unsigned retry_after_s) {
  return reject(503, reason, "the server is busy: retry later", fmt::format("Retry-After: {}\r\n", retry_after_s));
}

std::string accept_key(std::string_view key) {
  std::string input(key);
  input.append(websocket_guid);
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
  std::array<unsigned char, 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1> out{};
  int n = EVP_EncodeBlock(out.data(), digest.data(), SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(out.data()), static_cast<std::size_t>(n));
}

upgrade_result parse_upgrade(std::string_view bytes, const upgrade_options& opts) {
  // A fresh parser per call: the session re-parses from the start, so no
  // parser state outlives this function. eager(false) stops after the
  // header; whatever follows it is the client's first frames, not ours.
  //
  // Until the blank line that ends the header has arrived, only the request
  // line can be judged, so Beast sees just that. Why: re-parsing a whole
  // unfinished header after every read is quadratic, and a client trickling
  // an 8 KiB header one byte per packet cost 152 ms of CPU with Beast
  // parsing every prefix, 8.5 ms with this cut (a find of CRLF CRLF per
  // read; memmem is no faster). A typical 420-byte upgrade in one read costs
  // 1.8 us either way. (g++ 12 -O2, 2-core dev VM, 8121-byte header fed
  // 1..n.) The price: a malformed field line in an unfinished header is
  // answered when the header ends (400) or fills the limit (431), not at
  // once. Beast ends a header only at CRLF CRLF (no bare LF), so the cut
  // never hides a complete header.
  //
  // The limit is checked here too because Beast applies header_limit to the
  // request line and then afresh to the fields, so it lets through a header
  // up to a request line longer than the limit.
  std::string_view input = bytes;
  if (auto eom = bytes.find("\r\n\r\n"); eom != std::string_view::npos) {
    if (eom + 4 > opts.header_limit) return reject(431, "headers_too_large", "request header fields too large");
  } else {
    if (bytes.size() >= opts.header_limit) {
      return reject(431, "headers_too_large", "request header fields too large");
    }
    // The CRLF stays in: Beast needs it to judge what follows the version.
    auto eol = bytes.find("\r\n");
    input = eol == std::string_view::npos ? bytes : bytes.substr(0, eol + 2);
  }
  http::request_parser<http::empty_body> parser;
  parser.header_limit(
      static_cast<std::uint32_t>(std::min<std::size_t>(opts.header_limit, std::numeric_limits<std::uint32_t>::max())));
  parser.eager(false);
  boost::system::error_code ec;
  std::size_t used = 0;
  try {
    used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
  } catch (const std::length_error&) {
    // basic_fields throws for a field name or value over 64 KiB, reachable
    // only with a header_limit above that: it is a too-large header.
    return reject(431, "headers_too_large", "request header fields too large");
  }

  if (ec == http::error::header_limit) {
    return reject(431, "headers_too_large", "request header fields too large");
  }
  if (ec == http::error::need_more || (!ec && !parser.is_header_done())) {
    if (bytes.size() >= opts.header_limit) {
      return reject(431, "headers_too_large", "request header fields too large");
    }
    return {};  // need_more
  }
  if (ec) return reject(400, "not_http", "not an HTTP request");

  const auto& req = parser.get();
  if (req.version() < 11) return reject(400, "http_version", "WebSocket needs HTTP/1.1");

  std::string_view target = sv(req.target());
  std::string_view path = target.substr(0, target.find('?'));
  if (req.method() != http::verb::get) {
    // 404 before 405: "Allow: GET" would claim that an unknown path exists.
    if (path != opts.path) return reject(404, "not_found", "not found");
    return reject(405, "bad_method", "only GET upgrades to WebSocket", "Allow: GET\r\n");
  }
  if (path != opts.path) return reject(404, "not_found", "not found");

  auto header = [&](http::field f) -> std::string_view {
    auto it = req.find(f);
    return it == req.end() ? std::string_view{} : sv(it->value());
  };
  // A header may repeat; each line is a comma-separated list.
  auto any_has = [&](http::field f, std::string_view token, auto equal) {
    for (auto [it, end] = req.equal_range(f); it != end; ++it) {
      if (list_has(sv(it->value()), token, equal)) return true;
    }
    return false;
  };
  auto any_has_token = [&](http::field f, std::string_view token) { return any_has(f, token, iequals); };
  constexpr std::string_view upgrade_headers = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";

  if (!any_has_token(http::field::upgrade, "websocket") || !any_has_token(http::field::connection, "upgrade")) {
    return reject(426, "not_upgrade", "this endpoint speaks WebSocket only", upgrade_headers);
  }
  // RFC 9112 3.2: exactly one Host, else 400.
  std::string_view host = header(http::field::host);
  if (host.empty() || req.count(http::field::host) != 1)
    return reject(400, "no_host", "missing or repeated Host header");
  if (req.count(http::field::sec_websocket_version) != 1 || header(http::field::sec_websocket_version) != "13") {
    return reject(426, "bad_version", "unsupported Sec-WebSocket-Version (supported: 13)", upgrade_headers);
  }
  // RFC 6455 11.3.1: the key MUST NOT appear more than once.
  std::string_view key = header(http::field::sec_websocket_key);
  if (req.count(http::field::sec_websocket_key) != 1 || !valid_key(key)) {
    return reject(400, "bad_key", "missing or invalid Sec-WebSocket-Key");
  }
  // Beast has validated Content-Length (digits, repeats agree); with
  // eager(false) it has not read the body, so we refuse it here: bytes after
  // the header must be WebSocket frames.
  if (parser.chunked() || parser.content_length().value_or(0) > 0) {
    return reject(400, "body", "an upgrade request has no body");
  }
  if (!check_origin(header(http::field::origin), host, opts.allowed_origins)) {
    return reject(403, "origin", "origin not allowed");
  }

  upgrade_result r;
  // Subprotocol names compare exactly (RFC 6455 4.1: a browser fails the
  // connection unless the answer is one of the strings it offered), and our
  // order wins over the client's, as Centrifugo's does.
  auto same = [](std::string_view a, std::string_view b) noexcept { return a == b; };
  for (const auto& ours : opts.subprotocols) {
    if (any_has(http::field::sec_websocket_protocol, ours, same)) {
      r.subprotocol = ours;
      break;
    }
  }
  // Extensions: permessage-deflate only, when configured (its first
  // acceptable offer, in the client's order; RFC 7692 5.1). Not echoing
  // Sec-WebSocket-Extensions tells the client none is in use.
  std::string extensions;
  if (opts.permessage_deflate) {
    for (auto [it, end] = req.equal_range(http::field::sec_websocket_extensions); it != end && extensions.empty();
         ++it) {
      extensions = accept_deflate_offer(sv(it->value()));
    }
    r.deflate = !extensions.empty();
  }
  r.status = upgrade_status::accepted;
  r.consumed = used;
  if (auto q = target.find('?'); q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  r.response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
  r.response += accept_key(key);
  r.response += "\r\n";
  if (!r.subprotocol.empty()) {
    r.response += "Sec-WebSocket-Protocol: ";
    r.response += r.subprotocol;
    r.response += "\r\n";
  }
  if (r.deflate) {
    r.response += "Sec-WebSocket-Extensions: ";
    r.response += extensions;
    r.response += "\r\n";
  }
  r.response += "\r\n";
  return r;
}

std::string query_param(std::string_view query, std::string_view name) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    std::string_view key = pair.substr(0, pair.find('='));
    if (key != name) continue;
    std::string_view value = key.size() < pair.size() ? pair.substr(key.size() + 1) : std::string_view();
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (value[i] == '+') {
        out.push_back(' ');
      } else if (value[i] == '%' && i + 2 < value.size() && hex(value[i + 1]) >= 0 && hex(value[i + 2]) >= 0) {
        out.push_back(static_cast<char>(hex(value[i + 1]) * 16 + hex(value[i + 2])));
        i += 2;
      } else {
        out.push_back(value[i]);
      }
    }
    return out;
  }
  return {};
}

}  // namespace sb::ws
