// swload's wire helpers (see wire.hpp). The token code follows
// tests/tools/hold_client.cpp: base64url by hand and OpenSSL's one-shot HMAC.

#include "wire.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace swload::wire {

std::string upgrade_request(const std::string& host, int port, const std::string& path, bool deflate) {
  return "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
         "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
         (deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "") + "\r\n";
}

std::size_t text_frame(char* out, std::string_view payload) {
  auto* p = reinterpret_cast<unsigned char*>(out);
  std::size_t n = payload.size(), h = 0;
  p[h++] = 0x81;  // FIN + text
  if (n < 126) {
    p[h++] = static_cast<unsigned char>(0x80 | n);
  } else if (n < 65536) {
    p[h++] = 0x80 | 126;
    p[h++] = static_cast<unsigned char>(n >> 8);
    p[h++] = static_cast<unsigned char>(n);
  } else {
    p[h++] = 0x80 | 127;
    for (int s = 56; s >= 0; s -= 8) p[h++] = static_cast<unsigned char>(static_cast<std::uint64_t>(n) >> s);
  }
  std::memset(p + h, 0, 4);  // zero mask key: the payload is sent as is
  h += 4;
  std::memcpy(p + h, payload.data(), n);
  return h + n;
}

std::size_t control_frame(char* out, unsigned opcode, std::string_view payload) {
  auto* p = reinterpret_cast<unsigned char*>(out);
  p[0] = static_cast<unsigned char>(0x80 | opcode);
  p[1] = static_cast<unsigned char>(0x80 | payload.size());
  std::memset(p + 2, 0, 4);
  std::memcpy(p + 6, payload.data(), payload.size());
  return 6 + payload.size();
}

bool parse_header(const unsigned char* buf, std::size_t size, frame& f) {
  if (size < 2) return false;
  f.fin = (buf[0] & 0x80) != 0;
  f.rsv1 = (buf[0] & 0x40) != 0;
  f.opcode = buf[0] & 0x0f;
  std::uint64_t len = buf[1] & 0x7f;
  std::size_t h = 2;
  if (len == 126) {
    if (size < 4) return false;
    len = static_cast<std::uint64_t>(buf[2]) << 8 | buf[3];
    h = 4;
  } else if (len == 127) {
    if (size < 10) return false;
    len = 0;
    for (int i = 2; i < 10; ++i) len = len << 8 | buf[i];
    h = 10;
  }
  if (buf[1] & 0x80) h += 4;  // a masked server frame is a protocol error, but skip the key
  f.header = h;
  f.length = len;
  return true;
}

std::string expand(std::string_view tmpl, long i) {
  std::string out;
  std::string idx = std::to_string(i);
  for (std::size_t pos = 0; pos < tmpl.size();) {
    if (tmpl.compare(pos, 3, "{i}") == 0) {
      out += idx;
      pos += 3;
    } else {
      out += tmpl[pos++];
    }
  }
  return out;
}

namespace {

std::string b64url(const unsigned char* p, std::size_t n) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    unsigned v = p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    if (i + 1 < n) out += a[(v >> 6) & 63];
    if (i + 2 < n) out += a[v & 63];
  }
  return out;
}

std::string b64url(std::string_view s) { return b64url(reinterpret_cast<const unsigned char*>(s.data()), s.size()); }

}  // namespace

std::string connect_command(const std::string& secret, const std::string& user, const std::string& channel) {
  std::string claims = R"({"sub":")" + user + '"';
  if (!channel.empty()) claims += R"(,"channels":[")" + channel + R"("])";
  claims += '}';
  std::string signing = b64url(R"({"alg":"HS256","typ":"JWT"})") + "." + b64url(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &len);
  return R"({"id":1,"connect":{"token":")" + signing + "." + b64url(mac, len) + R"("}})";
}

bool find_number(std::string_view s, std::string_view key, std::uint64_t& out) {
  // Needle `"<key>":`; keys are one or two letters here.
  char needle[16];
  if (key.size() + 3 > sizeof(needle)) return false;
  needle[0] = '"';
  std::memcpy(needle + 1, key.data(), key.size());
  needle[key.size() + 1] = '"';
  needle[key.size() + 2] = ':';
  auto pos = s.find(std::string_view(needle, key.size() + 3));
  if (pos == std::string_view::npos) return false;
  pos += key.size() + 3;
  std::uint64_t v = 0;
  std::size_t digits = 0;
  for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, ++digits) v = v * 10 + static_cast<unsigned>(s[pos] - '0');
  out = v;
  return digits > 0;
}

namespace {

std::size_t skip_ws(std::string_view s, std::size_t pos) {
  while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t')) ++pos;
  return pos;
}

// The position after the JSON value at s[pos]; npos when it is cut short.
std::size_t skip_value(std::string_view s, std::size_t pos) {
  int depth = 0;
  bool in_string = false;
  for (; pos < s.size(); ++pos) {
    char c = s[pos];
    if (in_string) {
      if (c == '\\') ++pos;
      else if (c == '"') {
        in_string = false;
        if (depth == 0) return pos + 1;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return pos;  // the end of the enclosing container: a scalar ended
      if (--depth == 0) return pos + 1;
    } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
      return pos;
    }
  }
  return depth == 0 && !in_string ? pos : std::string_view::npos;
}

}  // namespace

std::string_view member(std::string_view obj, std::string_view key) {
  std::size_t pos = skip_ws(obj, 0);
  if (pos >= obj.size() || obj[pos] != '{') return {};
  pos = skip_ws(obj, pos + 1);
  while (pos < obj.size() && obj[pos] == '"') {
    std::size_t key_end = skip_value(obj, pos);
    if (key_end == std::string_view::npos) return {};
    std::string_view k = obj.substr(pos + 1, key_end - pos - 2);
    pos = skip_ws(obj, key_end);
    if (pos >= obj.size() || obj[pos] != ':') return {};
    std::size_t value = skip_ws(obj, pos + 1);
    std::size_t value_end = skip_value(obj, value);
    if (value_end == std::string_view::npos) return {};
    if (k == key) return obj.substr(value, value_end - value);
    pos = skip_ws(obj, value_end);
    if (pos >= obj.size() || obj[pos] != ',') return {};
    pos = skip_ws(obj, pos + 1);
  }
  return {};
}

bool to_u64(std::string_view v, std::uint64_t& out) {
  if (v.empty()) return false;
  std::uint64_t x = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + static_cast<unsigned>(c - '0');
  }
  out = x;
  return true;
}

bool to_str(std::string_view v, std::string_view& out) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return false;
  out = v.substr(1, v.size() - 2);
  return true;
}

bool next_element(std::string_view arr, std::size_t& pos, std::string_view& out) {
  if (pos == 0) {
    pos = skip_ws(arr, 0);
    if (pos >= arr.size() || arr[pos] != '[') return false;
    ++pos;
  } else {
    pos = skip_ws(arr, pos);
    if (pos >= arr.size() || arr[pos] != ',') return false;  // ']' or bad input
    ++pos;
  }
  pos = skip_ws(arr, pos);
  if (pos >= arr.size() || arr[pos] == ']') return false;
  std::size_t end = skip_value(arr, pos);
  if (end == std::string_view::npos || end == pos) return false;
  out = arr.substr(pos, end - pos);
  pos = end;
  return true;
}

int http_post(const std::string& host, int port, const std::string& path, const std::string& api_key,
              const std::string& body, double timeout_s, std::string& reply) {
  reply.clear();
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &dst.sin_addr) != 1) return 0;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_s);
  tv.tv_usec = static_cast<suseconds_t>((timeout_s - static_cast<double>(tv.tv_sec)) * 1e6);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                    "\r\nX-API-Key: " + api_key + "\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  std::string in;
  bool sent = ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) == 0;
  for (std::size_t off = 0; sent && off < req.size();) {
    ssize_t w = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (w <= 0) sent = false;
    else off += static_cast<std::size_t>(w);
  }
  // Read until the body is complete (Content-Length) or the server closes.
  std::size_t head_end = std::string::npos, want = std::string::npos;
  char buf[16384];
  while (sent && (want == std::string::npos || in.size() < want)) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r <= 0) break;
    in.append(buf, static_cast<std::size_t>(r));
    if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
      auto cl = in.find("Content-Length:");
      if (cl == std::string::npos) cl = in.find("content-length:");
      if (cl != std::string::npos && cl < head_end) want = head_end + 4 + std::strtoul(in.c_str() + cl + 15, nullptr, 10);
    }
  }
  ::close(fd);
  if (head_end == std::string::npos || in.compare(0, 9, "HTTP/1.1 ") != 0) return 0;
  reply = in.substr(head_end + 4);
  return std::atoi(in.c_str() + 9);
}

}  // namespace swload::wire
