// libFuzzer target: the TLS-to-WebSocket glue (session/session_tls.cpp and
// session/tls_record.cpp) in a real session. Each input is one connection:
// an OpenSSL client does a real TLS 1.3 handshake with a session_context
// (echo handler) over a socketpair, sends a valid upgrade, and then the
// input, read as chunks, becomes what the client sends:
//   [op][len lo][len hi][bytes]
//   op % 5 == 0: an application_data record with these bytes (WebSocket frames)
//   op % 5 == 1: a handshake record (KeyUpdate when it is one; the client's
//                keys then follow, as a real client's would)
//   op % 5 == 2: an alert record
//   op % 5 == 3: the bytes raw, unencrypted (a broken or foreign stream)
//   op % 5 == 4: a record of another content type (op >> 4)
// Chunks may be written in pieces (the top bit of op splits the write), so
// records arrive cut anywhere. The loop runs between writes; whatever the
// session does, it must not crash, leak (ASan) or hang, and it must end
// once the client closes.
#include "session/session.hpp"
#include "session/tls.hpp"
#include "session/tls_record.hpp"
#include "tests/tools/temp_cert.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace sb;

std::shared_ptr<const tls::context> server_context() {
  static sb::test_support::temp_cert files;  // for the whole run
  static std::shared_ptr<const tls::context> ctx = [] {
    tls::options o;
    o.cert_file = files.cert;
    o.key_file = files.key;
    return tls::context::load(o);
  }();
  return ctx;
}

// The client's traffic secret, from its key-log hook.
std::string client_secret;
void keylog(const SSL*, const char* line) {
  std::string_view l(line);
  if (!l.starts_with("CLIENT_TRAFFIC_SECRET_0 ")) return;
  client_secret = std::string(l.substr(l.rfind(' ') + 1));
}

SSL_CTX* client_context() {
  static SSL_CTX* c = [] {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_keylog_callback(ctx, keylog);
    return ctx;
  }();
  return c;
}

void drain(int fd) {
  char buf[65536];
  while (::read(fd, buf, sizeof(buf)) > 0) {
  }
}

void write_all(int fd, const std::uint8_t* p, std::size_t n, boost::asio::io_context& io) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= static_cast<std::size_t>(w);
    } else {
      if (io.poll() == 0) drain(fd);  // the session reads; our side reads its answers
      drain(fd);
      if (w < 0 && errno != EAGAIN) return;  // the session closed
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::signal(SIGPIPE, SIG_IGN);  // the harness writes to sessions that have closed (the gateway ignores it too)
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace asio = boost::asio;
  auto server_ctx = server_context();
  asio::io_context io(1);
  session_options opts;
  opts.max_message_size = 4096;
  echo_handler echo;
  auto ctx = std::make_unique<session_context>(io, opts, &echo);
  ctx->set_tls(server_ctx);
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 0;
  ::fcntl(fds[1], F_SETFL, O_NONBLOCK);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  ctx->accept(fds[0]);

  client_secret.clear();
  SSL* client = SSL_new(client_context());
  SSL_set_fd(client, fds[1]);
  SSL_set_connect_state(client);
  bool up = false;
  for (int i = 0; i < 10'000 && !up; ++i) {
    up = SSL_do_handshake(client) == 1;
    io.poll();
  }
  if (!up) std::abort();  // a real handshake must complete
  const SSL_CIPHER* cipher = SSL_get_current_cipher(client);
  tls::keys k;  // the client's side: its write keys are the session's read keys
  switch (SSL_CIPHER_get_id(cipher)) {
    case TLS1_3_CK_AES_128_GCM_SHA256: k.cipher = tls::aead::aes_128_gcm; k.hash_len = 32; break;
    case TLS1_3_CK_AES_256_GCM_SHA384: k.cipher = tls::aead::aes_256_gcm; k.hash_len = 48; break;
    default: k.cipher = tls::aead::chacha20_poly1305; k.hash_len = 32; break;
  }
  std::uint8_t secret[48];
  for (std::size_t i = 0; i < k.hash_len; ++i) secret[i] = static_cast<std::uint8_t>(std::stoi(client_secret.substr(2 * i, 2), nullptr, 16));
  if (!tls::install(k, k.write, secret, k.hash_len)) std::abort();
  SSL_free(client);  // from here on the harness seals its own records

  std::vector<std::uint8_t> rec(tls::max_record + tls::record_overhead + 16);
  auto send_record = [&](std::uint8_t type, const std::uint8_t* p, std::size_t n, bool split) {
    n = std::min(n, tls::max_record);
    std::size_t len = tls::seal(k, type, p, n, rec.data());
    if (len == 0) std::abort();
    if (split && len > 3) {
      write_all(fds[1], rec.data(), len / 3, io);
      io.poll();
      write_all(fds[1], rec.data() + len / 3, len - len / 3, io);
    } else {
      write_all(fds[1], rec.data(), len, io);
    }
  };
  static const std::string upgrade =
      "GET /connection/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  send_record(tls::type_application_data, reinterpret_cast<const std::uint8_t*>(upgrade.data()), upgrade.size(), false);
  io.poll();
  drain(fds[1]);

  std::size_t pos = 0;
  while (pos + 3 <= size && ctx->live() > 0) {
    const std::uint8_t op = data[pos];
    std::size_t len = std::min<std::size_t>(data[pos + 1] | (data[pos + 2] << 8), size - pos - 3);
    const std::uint8_t* p = data + pos + 3;
    pos += 3 + len;
    const bool split = op & 0x80;
    switch (op % 5) {
      case 0: send_record(tls::type_application_data, p, len, split); break;
      case 1:
        send_record(tls::type_handshake, p, len, split);
        if (len == 5 && p[0] == 24 && p[1] == 0 && p[2] == 0 && p[3] == 1 && p[4] <= 1) (void)tls::update(k, k.write);
        break;
      case 2: send_record(tls::type_alert, p, len, split); break;
      case 3: write_all(fds[1], p, len, io); break;
      default: send_record(static_cast<std::uint8_t>(op >> 4), p, len, split); break;
    }
    io.poll();
    drain(fds[1]);
  }
  ::shutdown(fds[1], SHUT_WR);
  for (int i = 0; i < 1000 && ctx->live() > 0; ++i) {
    io.poll();
    drain(fds[1]);
  }
  if (ctx->live() != 0) std::abort();  // the client closed: the session must have ended
  ctx->close_all();
  io.poll();
  ctx.reset();
  ::close(fds[1]);
  ERR_clear_error();
  return 0;
}
