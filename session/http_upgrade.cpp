#include "session/http_upgrade.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <fmt/core.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <cctype>

namespace sb::ws {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

char lower(char c) noexcept { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

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
  // base64 of exactly 16 bytes: 22 characters and "==".
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    char c = key[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return false;
  }
  // The last data character carries 2 bits; the other 4 must be zero.
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  return (alphabet.find(key[21]) & 0x0f) == 0;
}

upgrade_result reject(unsigned status, const char* reason, std::string_view body, std::string_view extra_headers = {}) {
  const char* text = "Bad Request";
  switch (status) {
    case 403: text = "Forbidden"; break;
    case 404: text = "Not Found"; break;
    case 405: text = "Method Not Allowed"; break;
    case 426: text = "Upgrade Required"; break;
    case 431: text = "Request Header Fields Too Large"; break;
    default: break;
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

}  // namespace

bool has_token(std::string_view list, std::string_view token) noexcept {
  while (!list.empty()) {
    auto comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool check_origin(std::string_view origin, std::string_view host, const std::vector<std::string>& allowed) {
  if (origin.empty()) return true;
  if (allowed.empty()) {
    auto scheme = origin.find("://");
    std::string_view origin_host = scheme == std::string_view::npos ? origin : origin.substr(scheme + 3);
    return !host.empty() && iequals(origin_host, host);
  }
  for (const auto& pattern : allowed) {
    if (glob_match(pattern, origin)) return true;
  }
  return false;
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
  http::request_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(opts.header_limit));
  parser.eager(false);
  boost::system::error_code ec;
  std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);

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
    if (path != opts.path) return reject(404, "not_found", "not found");
    return reject(405, "bad_method", "only GET upgrades to WebSocket", "Allow: GET\r\n");
  }
  if (path != opts.path) return reject(404, "not_found", "not found");

  auto header = [&](http::field f) -> std::string_view {
    auto it = req.find(f);
    return it == req.end() ? std::string_view{} : sv(it->value());
  };
  auto any_has_token = [&](http::field f, std::string_view token) {
    // A header may repeat; each line is a comma-separated list.
    for (auto [it, end] = req.equal_range(f); it != end; ++it) {
      if (has_token(sv(it->value()), token)) return true;
    }
    return false;
  };
  constexpr std::string_view upgrade_headers = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";

  if (!any_has_token(http::field::upgrade, "websocket") || !any_has_token(http::field::connection, "upgrade")) {
    return reject(426, "not_upgrade", "this endpoint speaks WebSocket only", upgrade_headers);
  }
  std::string_view host = header(http::field::host);
  if (host.empty()) return reject(400, "no_host", "missing Host header");
  if (trim(header(http::field::sec_websocket_version)) != "13") {
    return reject(426, "bad_version", "unsupported Sec-WebSocket-Version (supported: 13)", upgrade_headers);
  }
  std::string_view key = trim(header(http::field::sec_websocket_key));
  if (!valid_key(key)) return reject(400, "bad_key", "missing or invalid Sec-WebSocket-Key");
  if (req.has_content_length() || req.chunked()) {
    auto len = req.find(http::field::content_length);
    if (req.chunked() || (len != req.end() && trim(sv(len->value())) != "0")) {
      return reject(400, "body", "an upgrade request has no body");
    }
  }
  if (!check_origin(trim(header(http::field::origin)), host, opts.allowed_origins)) {
    return reject(403, "origin", "origin not allowed");
  }

  upgrade_result r;
  for (const auto& ours : opts.subprotocols) {
    if (any_has_token(http::field::sec_websocket_protocol, ours)) {
      r.subprotocol = ours;
      break;
    }
  }
  // Extensions (permessage-deflate...) are not negotiated: not echoing
  // Sec-WebSocket-Extensions tells the client none is in use.
  r.status = upgrade_status::accepted;
  r.consumed = used;
  r.response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
  r.response += accept_key(key);
  r.response += "\r\n";
  if (!r.subprotocol.empty()) {
    r.response += "Sec-WebSocket-Protocol: ";
    r.response += r.subprotocol;
    r.response += "\r\n";
  }
  r.response += "\r\n";
  return r;
}

}  // namespace sb::ws
