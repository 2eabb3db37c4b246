// The TLS 1.3 record layer (session/tls_record.hpp) and the handoff from
// OpenSSL (session/tls.hpp): records sealed and opened for each AEAD, what
// a broken record gives, KeyUpdate; and, over a socketpair against an
// OpenSSL client for each TLS 1.3 suite, a real handshake handed off, then
// data, KeyUpdates and close_notify both ways.

#include "session/tls.hpp"
#include "session/tls_record.hpp"
#include "tests/tools/temp_cert.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace sb;

tls::keys pair_of(tls::aead a, std::uint8_t seed) {
  tls::keys k;
  k.cipher = a;
  k.hash_len = a == tls::aead::aes_256_gcm ? 48 : 32;
  std::uint8_t s1[48], s2[48];
  for (int i = 0; i < 48; ++i) {
    s1[i] = static_cast<std::uint8_t>(seed + i);
    s2[i] = static_cast<std::uint8_t>(seed * 3 + i);
  }
  EXPECT_TRUE(tls::install(k, k.read, s1, k.hash_len));
  EXPECT_TRUE(tls::install(k, k.write, s2, k.hash_len));
  return k;
}

// The other end: what one side writes, the other reads.
tls::keys mirror(const tls::keys& k) {
  tls::keys m = k;
  m.read = k.write;
  m.write = k.read;
  return m;
}

class records : public ::testing::TestWithParam<tls::aead> {};

TEST_P(records, sealed_records_open_in_order_and_broken_ones_do_not) {
  tls::keys server = pair_of(GetParam(), 7);
  tls::keys client = mirror(server);
  std::vector<std::uint8_t> rec(tls::max_ciphertext + tls::record_header), out(tls::max_ciphertext);
  for (std::size_t len : {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{16384}}) {
    std::string msg(len, 'a');
    for (std::size_t i = 0; i < len; ++i) msg[i] = static_cast<char>('a' + i % 26);
    std::size_t n = tls::seal(server, tls::type_application_data, reinterpret_cast<const std::uint8_t*>(msg.data()),
                              len, rec.data());
    ASSERT_EQ(n, len + tls::record_overhead);
    EXPECT_EQ(tls::open(client, rec.data(), n - 1, out.data()).what, tls::opened::need_more);
    tls::opened o = tls::open(client, rec.data(), n, out.data());
    ASSERT_EQ(o.what, tls::opened::ok);
    EXPECT_EQ(o.consumed, n);
    EXPECT_EQ(o.type, tls::type_application_data);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(out.data()), o.len), msg);
  }
  EXPECT_EQ(server.write.seq, 4u);
  EXPECT_EQ(client.read.seq, 4u);

  const std::uint8_t hi[2] = {'h', 'i'};
  std::size_t n = tls::seal(server, tls::type_application_data, hi, 2, rec.data());
  std::vector<std::uint8_t> flipped(rec.begin(), rec.begin() + static_cast<long>(n));
  flipped[7] ^= 1;  // one bit of ciphertext
  EXPECT_EQ(tls::open(client, flipped.data(), n, out.data()).what, tls::opened::bad_mac);
  flipped = std::vector<std::uint8_t>(rec.begin(), rec.begin() + static_cast<long>(n));
  flipped[2] ^= 1;  // the header is authenticated too (it is the AEAD's additional data)
  EXPECT_EQ(tls::open(client, flipped.data(), n, out.data()).what, tls::opened::bad_mac);
  tls::keys skipped = client;
  ++skipped.read.seq;  // a record lost or replayed: the nonce differs
  EXPECT_EQ(tls::open(skipped, rec.data(), n, out.data()).what, tls::opened::bad_mac);
  EXPECT_EQ(tls::open(client, rec.data(), n, out.data()).what, tls::opened::ok);

  std::uint8_t header[5] = {tls::type_handshake, 3, 3, 0, 40};  // not application_data outside
  EXPECT_EQ(tls::open(client, header, 5, out.data()).what, tls::opened::bad_record);
  std::uint8_t huge[5] = {tls::type_application_data, 3, 3, 0x41, 0x01};  // 16,641 > 2^14 + 256
  EXPECT_EQ(tls::open(client, huge, 5, out.data()).what, tls::opened::bad_record);
  std::uint8_t tiny[5] = {tls::type_application_data, 3, 3, 0, 16};  // no room for a content type
  EXPECT_EQ(tls::open(client, tiny, 5, out.data()).what, tls::opened::bad_record);
}

TEST_P(records, key_update_moves_both_ends_to_the_same_next_keys) {
  tls::keys server = pair_of(GetParam(), 9);
  tls::keys client = mirror(server);
  const tls::direction_keys before = server.write;
  ASSERT_TRUE(tls::update(server, server.write));
  ASSERT_TRUE(tls::update(client, client.read));
  EXPECT_NE(std::memcmp(before.key, server.write.key, sizeof(before.key)), 0);
  EXPECT_EQ(std::memcmp(server.write.key, client.read.key, sizeof(before.key)), 0);
  EXPECT_EQ(server.write.seq, 0u);
  std::uint8_t rec[64], out[64];
  const std::uint8_t x[1] = {'x'};
  std::size_t n = tls::seal(server, tls::type_application_data, x, 1, rec);
  tls::opened o = tls::open(client, rec, n, out);
  ASSERT_EQ(o.what, tls::opened::ok);
  EXPECT_EQ(out[0], 'x');
}

INSTANTIATE_TEST_SUITE_P(aeads, records,
                         ::testing::Values(tls::aead::aes_128_gcm, tls::aead::aes_256_gcm, tls::aead::chacha20_poly1305));

// ---------------------------------------------------------------- against OpenSSL

tls::options files(const std::string& cert, const std::string& key, const std::string& min_version = "1.2") {
  tls::options o;
  o.cert_file = cert;
  o.key_file = key;
  o.min_version = min_version;
  return o;
}


TEST(tls_context, refuses_an_expired_certificate_and_a_missing_file) {
  sb::test_support::temp_cert expired(-86400 * 10, -86400);
  try {
    (void)tls::context::load(files(expired.cert, expired.key));
    FAIL() << "an expired certificate loaded";
  } catch (const tls::error& e) {
    EXPECT_NE(std::string(e.what()).find("expired"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)tls::context::load(files("/nonexistent/cert.pem", expired.key)), tls::error);
  EXPECT_THROW((void)tls::context::load(files(expired.cert, expired.key, "1.1")), tls::error);
}

class handoff : public ::testing::TestWithParam<const char*> {};

// Reads what is on the socket now (non-blocking) into `buf`.
std::size_t drain(int fd, std::vector<std::uint8_t>& buf) {
  std::size_t have = 0;
  for (int spins = 0; spins < 200; ++spins) {
    ssize_t r = ::read(fd, buf.data() + have, buf.size() - have);
    if (r > 0) {
      have += static_cast<std::size_t>(r);
      spins = 0;
    } else if (have > 0) {
      break;
    } else {
      ::usleep(1000);
    }
  }
  return have;
}

TEST_P(handoff, an_openssl_client_talks_to_the_record_layer_after_the_handshake) {
  sb::test_support::temp_cert cert;
  auto server_ctx = tls::context::load(files(cert.cert, cert.key));
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  for (int fd : fds) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  SSL* server = server_ctx->accept(fds[0]);
  ASSERT_NE(server, nullptr);
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, nullptr);
  ASSERT_EQ(SSL_CTX_set_ciphersuites(cctx, GetParam()), 1);
  SSL* client = SSL_new(cctx);
  SSL_set_fd(client, fds[1]);
  SSL_set_connect_state(client);

  bool server_done = false, client_done = false;
  for (int i = 0; i < 1000 && !(server_done && client_done); ++i) {
    if (!client_done) client_done = SSL_do_handshake(client) == 1;
    if (!server_done) {
      tls::io r = tls::handshake(server);
      ASSERT_NE(r, tls::io::failed) << tls::last_error();
      server_done = r == tls::io::done;
    }
  }
  ASSERT_TRUE(server_done && client_done);
  tls::keys k;
  ASSERT_TRUE(tls::handoff(server, k));
  tls::close(server, false);

  std::vector<std::uint8_t> wire(64 * 1024), plain(tls::max_ciphertext);
  // Client → record layer, three records back to back.
  const std::string a(10'000, 'a'), b = "bee", c(16'384, 'c');
  for (const auto* m : {&a, &b, &c}) ASSERT_EQ(SSL_write(client, m->data(), static_cast<int>(m->size())), static_cast<int>(m->size()));
  std::size_t have = drain(fds[0], wire);
  std::string got;
  for (std::size_t pos = 0; pos < have;) {
    tls::opened o = tls::open(k, wire.data() + pos, have - pos, plain.data());
    ASSERT_EQ(o.what, tls::opened::ok);
    ASSERT_EQ(o.type, tls::type_application_data);
    got.append(reinterpret_cast<char*>(plain.data()), o.len);
    pos += o.consumed;
  }
  EXPECT_EQ(got, a + b + c);

  // Record layer → client.
  const std::string reply = "hello from the record layer";
  std::size_t n = tls::seal(k, tls::type_application_data, reinterpret_cast<const std::uint8_t*>(reply.data()),
                            reply.size(), wire.data());
  ASSERT_EQ(::write(fds[0], wire.data(), n), static_cast<ssize_t>(n));
  char buf[256];
  int r = -1;
  for (int i = 0; i < 200 && r <= 0; ++i, ::usleep(1000)) r = SSL_read(client, buf, sizeof(buf));
  ASSERT_EQ(std::string(buf, static_cast<std::size_t>(r)), reply);

  // The client updates its keys and asks for ours: KeyUpdate(requested),
  // then data under its next key.
  ASSERT_EQ(SSL_key_update(client, SSL_KEY_UPDATE_REQUESTED), 1);
  ASSERT_EQ(SSL_write(client, "after", 5), 5);
  have = drain(fds[0], wire);
  tls::opened o = tls::open(k, wire.data(), have, plain.data());
  ASSERT_EQ(o.what, tls::opened::ok);
  ASSERT_EQ(o.type, tls::type_handshake);
  ASSERT_EQ(o.len, 5u);
  EXPECT_EQ(plain[0], 24);  // key_update
  EXPECT_EQ(plain[4], 1);   // update_requested
  ASSERT_TRUE(tls::update(k, k.read));
  std::size_t pos = o.consumed;
  o = tls::open(k, wire.data() + pos, have - pos, plain.data());
  ASSERT_EQ(o.what, tls::opened::ok);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(plain.data()), o.len), "after");

  // Ours: KeyUpdate(not requested) under the old key, then data under the new one.
  const std::uint8_t ku[5] = {24, 0, 0, 1, 0};
  n = tls::seal(k, tls::type_handshake, ku, 5, wire.data());
  ASSERT_TRUE(tls::update(k, k.write));
  n += tls::seal(k, tls::type_application_data, reinterpret_cast<const std::uint8_t*>("new keys"), 8, wire.data() + n);
  ASSERT_EQ(::write(fds[0], wire.data(), n), static_cast<ssize_t>(n));
  r = -1;
  for (int i = 0; i < 200 && r <= 0; ++i, ::usleep(1000)) r = SSL_read(client, buf, sizeof(buf));
  ASSERT_EQ(std::string(buf, static_cast<std::size_t>(r)), "new keys");

  // close_notify from us: the client sees an orderly end.
  const std::uint8_t alert[2] = {1, 0};
  n = tls::seal(k, tls::type_alert, alert, 2, wire.data());
  ASSERT_EQ(::write(fds[0], wire.data(), n), static_cast<ssize_t>(n));
  r = -1;
  int err = SSL_ERROR_WANT_READ;
  for (int i = 0; i < 200 && err == SSL_ERROR_WANT_READ; ++i, ::usleep(1000)) {
    r = SSL_read(client, buf, sizeof(buf));
    err = SSL_get_error(client, r);
  }
  EXPECT_EQ(err, SSL_ERROR_ZERO_RETURN);

  SSL_free(client);
  SSL_CTX_free(cctx);
  ::close(fds[0]);
  ::close(fds[1]);
  ERR_clear_error();
}

INSTANTIATE_TEST_SUITE_P(suites, handoff,
                         ::testing::Values("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                           "TLS_CHACHA20_POLY1305_SHA256"));

}  // namespace
