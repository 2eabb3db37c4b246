#include "session/tls.hpp"

#include <fmt/core.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string_view>

namespace sb::tls {

namespace {

std::string openssl_reason() {
  unsigned long e = ERR_peek_last_error();
  std::string why;
  if (e != 0) {
    const char* r = ERR_reason_error_string(e);
    why = r ? r : fmt::format("error {:#x}", e);
  }
  ERR_clear_error();
  return why.empty() ? "unknown error" : why;
}

std::string asn1_time(const ASN1_TIME* t) {
  BIO* b = BIO_new(BIO_s_mem());
  if (!b) return "?";
  ASN1_TIME_print(b, t);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<std::size_t>(n > 0 ? n : 0));
  BIO_free(b);
  return s;
}

std::string describe(X509* cert, EVP_PKEY* key) {
  std::string cn = "?";
  if (X509_NAME* name = X509_get_subject_name(cert)) {
    char buf[256];
    if (X509_NAME_get_text_by_NID(name, NID_commonName, buf, sizeof(buf)) > 0) cn = buf;
  }
  std::string kind = key ? EVP_PKEY_get0_type_name(key) : "?";
  if (key && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    char group[64];
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) == 1) kind += " " + std::string(group, len);
  } else if (key) {
    kind += fmt::format(" {}", EVP_PKEY_get_bits(key));
  }
  return fmt::format("CN={}, {}, expires {}", cn, kind, asn1_time(X509_get0_notAfter(cert)));
}

// ALPN: WebSocket over TLS is HTTP/1.1 (RFC 6455 4.1). A client offering
// only other protocols (h2) goes on without ALPN and is answered by the
// upgrade parser as any HTTP/1.1 request would be.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  static constexpr unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  for (unsigned i = 0; i < inlen;) {
    unsigned len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == 8 && std::memcmp(in + i, http11, sizeof(http11)) == 0) {
      *out = in + i + 1;
      *outlen = 8;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// The TLS 1.3 traffic secrets of a connection in its handshake, from the
// key-log hook; attached to the SSL and freed with it.
struct secrets {
  std::uint8_t client[48], server[48];
  std::uint8_t client_len = 0, server_len = 0;
};

void free_secrets(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  if (ptr) {
    OPENSSL_cleanse(ptr, sizeof(secrets));
    delete static_cast<secrets*>(ptr);
  }
}

int secrets_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_secrets);
  return index;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "CLIENT_TRAFFIC_SECRET_0 <client random> <secret>", likewise SERVER_.
void capture_secret(const SSL* ssl, const char* line) {
  std::string_view l(line);
  bool client = l.starts_with("CLIENT_TRAFFIC_SECRET_0 ");
  if (!client && !l.starts_with("SERVER_TRAFFIC_SECRET_0 ")) return;
  auto sp = l.rfind(' ');
  std::string_view hex = l.substr(sp + 1);
  if (hex.size() % 2 || hex.size() > 96) return;
  auto* s = static_cast<secrets*>(SSL_get_ex_data(ssl, secrets_index()));
  if (!s) {
    s = new (std::nothrow) secrets;
    if (!s || SSL_set_ex_data(const_cast<SSL*>(ssl), secrets_index(), s) != 1) {
      delete s;
      return;
    }
  }
  std::uint8_t* out = client ? s->client : s->server;
  for (std::size_t i = 0; i < hex.size() / 2; ++i) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  (client ? s->client_len : s->server_len) = static_cast<std::uint8_t>(hex.size() / 2);
}

}  // namespace

std::shared_ptr<const context> context::load(const options& o) {
  if (o.cert_file.empty()) throw error("tls_cert: no certificate file given");
  if (o.key_file.empty()) throw error("tls_key: no key file given");
  std::shared_ptr<context> c(new context);
  ERR_clear_error();
  c->_ctx = SSL_CTX_new(TLS_server_method());
  if (!c->_ctx) throw error("tls: " + openssl_reason());
  SSL_CTX* ctx = c->_ctx;

  int min = TLS1_2_VERSION;
  if (o.min_version == "1.3") {
    min = TLS1_3_VERSION;
  } else if (o.min_version != "1.2") {
    throw error(fmt::format("tls_min_version: '{}' is not \"1.2\" or \"1.3\"", o.min_version));
  }
  SSL_CTX_set_min_proto_version(ctx, min);
  // No renegotiation (a client asking gets a no_renegotiation alert, and
  // OpenSSL's clients give up the connection); no compression (CRIME);
  // the server picks the TLS 1.2 cipher; a peer closing TCP without
  // close_notify is an end of stream, not an error (WebSocket has its own
  // close handshake, and many clients skip close_notify).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Memory: buffers only while a record is in flight. Writes are retried
  // from the session's queue, which may have moved its bytes.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Resumption by stateless tickets only (the ticket keys belong to this
  // context, so all shards honour each other's tickets): no server-side
  // session cache to grow with the connection count.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_set_cipher_list(ctx, o.ciphers.empty() ? default_ciphers : o.ciphers.c_str()) != 1) {
    throw error(fmt::format("tls_ciphers: '{}': {}", o.ciphers, openssl_reason()));
  }
  if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) throw error("tls groups: " + openssl_reason());
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  // TLS 1.3 connections leave OpenSSL once established (handoff below):
  // the traffic secrets come from the key-log hook (kept in memory, never
  // written anywhere), and no ticket is sent, so that nothing was written
  // under the application key before the handoff (sequence numbers start
  // at 0). TLS 1.3 clients therefore always do a full handshake; TLS 1.2
  // clients still resume from tickets.
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_keylog_callback(ctx, capture_secret);

  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
    throw error(fmt::format("tls_cert '{}': {}", o.cert_file, openssl_reason()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string why = openssl_reason();
    if (why == "key values mismatch") {
      throw error(fmt::format("tls_key '{}' does not match tls_cert '{}' (key values mismatch)", o.key_file, o.cert_file));
    }
    throw error(fmt::format("tls_key '{}': {}", o.key_file, why));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    throw error(fmt::format("tls_key '{}' does not match tls_cert '{}': {}", o.key_file, o.cert_file, openssl_reason()));
  }
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (!cert) throw error(fmt::format("tls_cert '{}': no certificate", o.cert_file));
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
    throw error(fmt::format("tls_cert '{}': the certificate expired on {}", o.cert_file,
                            asn1_time(X509_get0_notAfter(cert))));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
    throw error(fmt::format("tls_cert '{}': the certificate is not valid before {}", o.cert_file,
                            asn1_time(X509_get0_notBefore(cert))));
  }
  c->_summary = describe(cert, SSL_CTX_get0_privatekey(ctx));
  return c;
}

context::~context() { SSL_CTX_free(_ctx); }

SSL* context::accept(int fd) const noexcept {
  SSL* ssl = SSL_new(_ctx);
  if (!ssl) {
    ERR_clear_error();
    return nullptr;
  }
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

namespace {

io outcome(SSL* ssl, int rc) noexcept {
  switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ: return io::want_read;
    case SSL_ERROR_WANT_WRITE: return io::want_write;
    case SSL_ERROR_ZERO_RETURN: return io::closed;
    case SSL_ERROR_SYSCALL:
      // errno 0: the peer closed TCP (IGNORE_UNEXPECTED_EOF reports that
      // as ZERO_RETURN in most paths; during a handshake it lands here).
      if (errno == 0 && ERR_peek_error() == 0) return io::closed;
      return io::failed;
    default: return io::failed;
  }
}

}  // namespace

io handshake(SSL* ssl) noexcept {
  ERR_clear_error();
  errno = 0;
  int rc = SSL_do_handshake(ssl);
  if (rc == 1) return io::done;
  return outcome(ssl, rc);
}

bool handoff(SSL* ssl, keys& k) noexcept {
  if (SSL_version(ssl) != TLS1_3_VERSION || SSL_has_pending(ssl)) return false;
  auto* s = static_cast<secrets*>(SSL_get_ex_data(ssl, secrets_index()));
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl);
  if (!s || !c) return false;
  switch (SSL_CIPHER_get_id(c)) {
    case TLS1_3_CK_AES_128_GCM_SHA256: k.cipher = aead::aes_128_gcm; k.hash_len = 32; break;
    case TLS1_3_CK_AES_256_GCM_SHA384: k.cipher = aead::aes_256_gcm; k.hash_len = 48; break;
    case TLS1_3_CK_CHACHA20_POLY1305_SHA256: k.cipher = aead::chacha20_poly1305; k.hash_len = 32; break;
    default: return false;  // CCM suites, if someone enables them
  }
  return install(k, k.read, s->client, s->client_len) && install(k, k.write, s->server, s->server_len);
}

io read(SSL* ssl, void* buf, std::size_t len, std::size_t& n) noexcept {
  // The error queue is per thread and shared with everything else on the
  // shard (JWT checks use OpenSSL too): empty it so SSL_get_error sees
  // only this call.
  ERR_clear_error();
  errno = 0;
  n = 0;
  if (SSL_read_ex(ssl, buf, len, &n) == 1) return io::done;
  return outcome(ssl, 0);
}

io write(SSL* ssl, const void* buf, std::size_t len, std::size_t& n) noexcept {
  ERR_clear_error();
  errno = 0;
  n = 0;
  if (SSL_write_ex(ssl, buf, len, &n) == 1) return io::done;
  return outcome(ssl, 0);
}

bool established(SSL* ssl, bool& resumed) noexcept {
  if (!SSL_is_init_finished(ssl)) return false;
  resumed = SSL_session_reused(ssl) == 1;
  return true;
}

void close(SSL* ssl, bool notify) noexcept {
  if (!ssl) return;
  if (notify && SSL_is_init_finished(ssl)) {
    ERR_clear_error();
    (void)SSL_shutdown(ssl);  // sends close_notify if the socket takes it; does not wait for the peer's
  }
  SSL_free(ssl);
  ERR_clear_error();
}

std::string last_error() { return openssl_reason(); }

}  // namespace sb::tls
