#include "session/tls_record.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>

namespace sb::tls {

namespace {

std::size_t key_len(aead a) noexcept { return a == aead::aes_128_gcm ? 16 : 32; }
const EVP_MD* hash_of(const keys& k) noexcept { return k.hash_len == 48 ? EVP_sha384() : EVP_sha256(); }

// HKDF-Expand-Label(secret, label, "", len) for len ≤ the hash size: one
// HMAC block, T(1) = HMAC(secret, HkdfLabel || 0x01) (RFC 8446 7.1, RFC 5869).
bool expand_label(const keys& k, const std::uint8_t* secret, const char* label, std::uint8_t* out,
                  std::size_t len) noexcept {
  std::uint8_t info[2 + 1 + 6 + 16 + 1 + 1];
  const std::size_t label_len = std::strlen(label);
  std::size_t i = 0;
  info[i++] = static_cast<std::uint8_t>(len >> 8);
  info[i++] = static_cast<std::uint8_t>(len);
  info[i++] = static_cast<std::uint8_t>(6 + label_len);
  std::memcpy(info + i, "tls13 ", 6);
  i += 6;
  std::memcpy(info + i, label, label_len);
  i += label_len;
  info[i++] = 0;  // empty context
  info[i++] = 1;  // T(1)
  std::uint8_t block[EVP_MAX_MD_SIZE];
  unsigned int block_len = 0;
  if (!HMAC(hash_of(k), secret, static_cast<int>(k.hash_len), info, i, block, &block_len)) return false;
  if (block_len < len) return false;
  std::memcpy(out, block, len);
  return true;
}

// One encrypting and one decrypting context per AEAD, per thread, set up
// with their cipher once; each record only sets its key and nonce.
struct thread_ciphers {
  EVP_CIPHER* cipher[3] = {};
  EVP_CIPHER_CTX* enc[3] = {};
  EVP_CIPHER_CTX* dec[3] = {};
  ~thread_ciphers() {
    for (int i = 0; i < 3; ++i) {
      EVP_CIPHER_CTX_free(enc[i]);
      EVP_CIPHER_CTX_free(dec[i]);
      EVP_CIPHER_free(cipher[i]);
    }
  }
  EVP_CIPHER_CTX* get(aead a, bool encrypt) noexcept {
    const int i = static_cast<int>(a);
    EVP_CIPHER_CTX*& ctx = encrypt ? enc[i] : dec[i];
    if (ctx) return ctx;
    static constexpr const char* names[3] = {"AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"};
    if (!cipher[i]) cipher[i] = EVP_CIPHER_fetch(nullptr, names[i], nullptr);
    if (!cipher[i]) return nullptr;
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    if (!c || EVP_CipherInit_ex(c, cipher[i], nullptr, nullptr, nullptr, encrypt ? 1 : 0) != 1) {
      EVP_CIPHER_CTX_free(c);
      return nullptr;
    }
    ctx = c;
    return ctx;
  }
};
thread_local thread_ciphers ciphers;

// The per-record nonce: the IV xor the sequence number, left-padded.
void nonce(const direction_keys& d, std::uint8_t* out) noexcept {
  std::memcpy(out, d.iv, 12);
  for (int i = 0; i < 8; ++i) out[11 - i] ^= static_cast<std::uint8_t>(d.seq >> (8 * i));
}

}  // namespace

bool install(keys& k, direction_keys& d, const std::uint8_t* secret, std::size_t len) noexcept {
  if (len != k.hash_len) return false;
  std::memcpy(d.secret, secret, len);
  d.seq = 0;
  return expand_label(k, d.secret, "key", d.key, key_len(k.cipher)) && expand_label(k, d.secret, "iv", d.iv, 12);
}

bool update(keys& k, direction_keys& d) noexcept {
  std::uint8_t next[48];
  if (!expand_label(k, d.secret, "traffic upd", next, k.hash_len)) return false;
  return install(k, d, next, k.hash_len);
}

std::size_t seal(keys& k, std::uint8_t type, const std::uint8_t* in, std::size_t len, std::uint8_t* out) noexcept {
  if (len > 16384) return 0;
  EVP_CIPHER_CTX* ctx = ciphers.get(k.cipher, true);
  if (!ctx) return 0;
  const std::size_t body = len + 1 + tag_size;
  out[0] = type_application_data;
  out[1] = 0x03;
  out[2] = 0x03;
  out[3] = static_cast<std::uint8_t>(body >> 8);
  out[4] = static_cast<std::uint8_t>(body);
  std::uint8_t iv[12];
  nonce(k.write, iv);
  int n = 0, m = 0;
  std::uint8_t* ct = out + record_header;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, k.write.key, iv) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &n, out, static_cast<int>(record_header)) != 1 ||
      EVP_EncryptUpdate(ctx, ct, &n, in, static_cast<int>(len)) != 1 ||
      EVP_EncryptUpdate(ctx, ct + n, &m, &type, 1) != 1) {
    return 0;
  }
  int done = n + m;
  if (EVP_EncryptFinal_ex(ctx, ct + done, &m) != 1) return 0;
  done += m;
  if (static_cast<std::size_t>(done) != len + 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(tag_size), ct + done) != 1) {
    return 0;
  }
  ++k.write.seq;
  return record_header + body;
}

opened open(keys& k, const std::uint8_t* in, std::size_t n, std::uint8_t* out) noexcept {
  opened r;
  if (n < record_header) return r;
  const std::size_t body = (std::size_t{in[3]} << 8) | in[4];
  // After the handshake every TLS 1.3 record is application_data on the
  // outside (the legacy version is not checked, as RFC 8446 5.1 says).
  if (in[0] != type_application_data || body < 1 + tag_size || body > max_ciphertext) {
    r.what = opened::bad_record;
    return r;
  }
  if (n < record_header + body) return r;
  EVP_CIPHER_CTX* ctx = ciphers.get(k.cipher, false);
  if (!ctx) {
    r.what = opened::bad_mac;
    return r;
  }
  std::uint8_t iv[12];
  nonce(k.read, iv);
  const std::size_t ct_len = body - tag_size;
  int a = 0, b = 0;
  std::uint8_t tag[tag_size];
  std::memcpy(tag, in + record_header + ct_len, tag_size);
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, k.read.key, iv) != 1 ||
      EVP_DecryptUpdate(ctx, nullptr, &a, in, static_cast<int>(record_header)) != 1 ||
      EVP_DecryptUpdate(ctx, out, &a, in + record_header, static_cast<int>(ct_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(tag_size), tag) != 1 ||
      EVP_DecryptFinal_ex(ctx, out + a, &b) != 1) {
    r.what = opened::bad_mac;
    return r;
  }
  std::size_t len = static_cast<std::size_t>(a + b);
  // The inner plaintext: content, its type, then zero padding.
  while (len > 0 && out[len - 1] == 0) --len;
  if (len == 0 || len - 1 > 16384) {
    r.what = opened::bad_record;
    return r;
  }
  ++k.read.seq;
  r.what = opened::ok;
  r.consumed = record_header + body;
  r.type = out[len - 1];
  r.len = len - 1;
  return r;
}

}  // namespace sb::tls
