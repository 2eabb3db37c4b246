// tls_floor: what OpenSSL itself costs for a full TLS 1.3 handshake on this
// machine, with no sockets: a server and a client SSL over a memory BIO
// pair in one thread, CPU time of each side. The floor under the gateway's
// per-handshake CPU (bench/scenarios/tls.sh prints both).
// usage: tls_floor CERT.pem KEY.pem [N=2000]
#include <openssl/ssl.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>

namespace {
double cpu_us() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CERT.pem KEY.pem [N]\n", argv[0]);
    return 2;
  }
  const int n = argc > 3 ? std::atoi(argv[3]) : 2000;
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  if (SSL_CTX_use_certificate_chain_file(sctx, argv[1]) != 1 ||
      SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1) {
    std::fprintf(stderr, "tls_floor: the certificate or key does not load\n");
    return 2;
  }
  SSL_CTX_set_num_tickets(sctx, 0);  // as the gateway (session/tls.cpp)
  SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
  double server = 0, client = 0;
  for (int i = 0; i < n; ++i) {
    SSL* s = SSL_new(sctx);
    SSL* c = SSL_new(cctx);
    BIO *b1 = nullptr, *b2 = nullptr;
    BIO_new_bio_pair(&b1, 0, &b2, 0);
    SSL_set_bio(s, b1, b1);
    SSL_set_bio(c, b2, b2);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    bool sd = false, cd = false;
    for (int turns = 0; !(sd && cd) && turns < 100; ++turns) {
      double a = cpu_us();
      if (!cd) cd = SSL_do_handshake(c) == 1;
      double b = cpu_us();
      if (!sd) sd = SSL_do_handshake(s) == 1;
      double d = cpu_us();
      client += b - a;
      server += d - b;
    }
    if (!(sd && cd)) {
      std::fprintf(stderr, "tls_floor: a handshake did not complete\n");
      return 1;
    }
    SSL_free(s);
    SSL_free(c);
  }
  std::printf("{\"openssl\":\"%s\",\"handshakes\":%d,\"server_us\":%.0f,\"client_us\":%.0f}\n",
              OpenSSL_version(OPENSSL_VERSION), n, server / n, client / n);
  return 0;
}
