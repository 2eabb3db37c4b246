#pragma once
// TLS on the client listener (issue 15, part 1), with OpenSSL 3.
//
// A `tls::context` is one loaded certificate and key (an SSL_CTX): built on
// the main thread at start and again at each reload (SIGHUP), shared by
// every shard, never changed once built. OpenSSL makes SSL_new on a shared
// SSL_CTX safe from several threads; each connection's SSL holds its own
// reference to the context it was made from, so a reload swaps the context
// for new connections while open ones go on with the old one.
//
// A connection's SSL reads and writes the session's socket itself (a socket
// BIO on the fd, non-blocking), on the shard that owns the socket: the
// handshake runs there, with no extra thread. A TLS 1.3 connection is then
// handed off (handoff below) to session/tls_record.hpp and its SSL freed;
// a TLS 1.2 one keeps its SSL (SSL_MODE_RELEASE_BUFFERS frees its buffers
// between records). Plaintext lands in the shard's scratch buffer as plain
// reads do (DESIGN.md "Memory per connection"; bench/RESULTS.md "TLS").
//
// This header stays light (no OpenSSL headers): sessions include it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "session/tls_record.hpp"

struct ssl_st;
struct ssl_ctx_st;

namespace sb::tls {

/// A certificate or key that does not load; what() names the file and why.
struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct options {
  std::string cert_file;    // PEM: the certificate, then its chain
  std::string key_file;     // PEM: the private key (RSA, ECDSA or Ed25519)
  std::string min_version = "1.2";  // "1.2" or "1.3"
  std::string ciphers;      // TLS 1.2 cipher list (OpenSSL syntax); empty: the default below
};

/// The TLS 1.2 ciphers offered unless `ciphers` is set: ECDHE with AEADs
/// only (forward secrecy, no CBC, no RSA key exchange). TLS 1.3's suites
/// are OpenSSL's defaults (AES-GCM, ChaCha20-Poly1305).
inline constexpr const char* default_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// Plaintext bytes per record we write: TLS's maximum fragment, so one
/// SSL_write is one record and, retried, asks for the same bytes again.
inline constexpr std::size_t max_record = 16384;

class context {
 public:
  /// Main thread. Loads and checks the certificate chain and key: they must
  /// parse, match each other, and the certificate must be valid now (not
  /// expired, not before its start). Throws tls::error.
  static std::shared_ptr<const context> load(const options& o);
  ~context();
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  /// A server-side connection on `fd` (non-blocking, owned by the caller):
  /// the handshake starts with the first read. Null when out of memory.
  ssl_st* accept(int fd) const noexcept;
  /// The OpenSSL context (the ops listener's HTTPS takes a reference).
  ssl_ctx_st* native() const noexcept { return _ctx; }
  /// "CN=example.com, ECDSA P-256, expires 2027-01-05 12:00:00 GMT", for the log.
  const std::string& summary() const noexcept { return _summary; }

 private:
  context() = default;
  ssl_ctx_st* _ctx = nullptr;
  std::string _summary;
};

/// What a read or write on a connection did.
enum class io : std::uint8_t {
  done,        // `n` bytes were read or written
  want_read,   // wait until the socket is readable, then call again
  want_write,  // wait until the socket is writable, then call again
  closed,      // the peer closed (close_notify, or TCP closed)
  failed,      // a TLS error (bad handshake, alert, a record that does not decrypt) or a socket error
};

/// Drives the handshake; done once it is complete.
io handshake(ssl_st* ssl) noexcept;
/// A TLS 1.3 connection whose handshake is done, with nothing of the
/// client's read past it: its traffic keys into `out`, after which the SSL
/// is no longer needed (close(ssl, false)). False: keep using the SSL
/// (TLS 1.2, or a state the record layer does not take over).
bool handoff(ssl_st* ssl, keys& out) noexcept;
/// Reads plaintext (driving the handshake while it runs).
io read(ssl_st* ssl, void* buf, std::size_t len, std::size_t& n) noexcept;
/// Writes `len` ≤ max_record bytes as one record. After want_write or
/// want_read, call again with the same bytes first (more may follow):
/// OpenSSL has already taken them.
io write(ssl_st* ssl, const void* buf, std::size_t len, std::size_t& n) noexcept;
/// The handshake is complete; `resumed`: from a session ticket.
bool established(ssl_st* ssl, bool& resumed) noexcept;
/// Best effort close_notify (never waits), then frees the connection.
void close(ssl_st* ssl, bool notify) noexcept;
/// The reason of the last failure on this thread, for a debug log line
/// ("http request", "wrong version number"...); clears it.
std::string last_error();

}  // namespace sb::tls
