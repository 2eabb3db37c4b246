#pragma once
// The TLS 1.3 record layer of an established connection (RFC 8446 5),
// once OpenSSL has done the handshake (session/tls.hpp).
//
// Why our own: an OpenSSL 3.0 SSL object costs ~12 KiB of heap per
// connection even with SSL_MODE_RELEASE_BUFFERS (the SSL struct alone is
// ~7.6 KiB: its record layer keeps arrays for 32 pipelines; then two cipher
// contexts of ~1 KiB), measured 17 KiB of RSS per idle wss session at
// 5,000. A million idle wss sessions would need 17 GB. After the handshake
// all a TLS 1.3 connection needs is, per direction, its traffic secret, key,
// IV and record sequence number: `keys` below, ~250 bytes, and the SSL
// object is freed (decisions.md §14). The handshake, certificates, cipher
// choice and every bit of cryptography stay OpenSSL's (EVP AEADs, HMAC);
// this file only frames records, builds nonces and follows KeyUpdate.
//
// Kernel TLS would do the same in the kernel, but this VM's kernel has no
// `tls` ULP; TLS 1.2 connections keep their SSL object (tls.hpp).
//
// Threading: the cipher contexts are per thread (each shard has its own);
// a `keys` belongs to its connection's shard.

#include <cstddef>
#include <cstdint>

namespace sb::tls {

enum class aead : std::uint8_t { aes_128_gcm, aes_256_gcm, chacha20_poly1305 };

inline constexpr std::size_t record_header = 5;
inline constexpr std::size_t tag_size = 16;
/// Ciphertext bytes of one record at most (RFC 8446 5.2: 2^14 + 256).
inline constexpr std::size_t max_ciphertext = 16384 + 256;
/// Bytes a sealed record adds to its plaintext: header, inner type, tag.
inline constexpr std::size_t record_overhead = record_header + 1 + tag_size;

/// Content types (RFC 8446 5.1).
inline constexpr std::uint8_t type_alert = 21;
inline constexpr std::uint8_t type_handshake = 22;
inline constexpr std::uint8_t type_application_data = 23;

struct direction_keys {
  std::uint8_t secret[48];  // the traffic secret (for KeyUpdate)
  std::uint8_t key[32];
  std::uint8_t iv[12];
  std::uint64_t seq = 0;
};

struct keys {
  aead cipher = aead::aes_128_gcm;
  std::uint8_t hash_len = 32;  // SHA-256: 32, SHA-384: 48
  direction_keys read;         // the client's traffic keys
  direction_keys write;        // ours
  bool key_update_due = false; // the client asked for our KeyUpdate: sent before our next record
};

/// Sets a direction from its traffic secret (key and IV by HKDF-Expand-
/// Label, sequence 0). False for a bad length or an HMAC failure.
bool install(keys& k, direction_keys& d, const std::uint8_t* secret, std::size_t len) noexcept;
/// The next generation of a direction's secret ("traffic upd"), installed.
bool update(keys& k, direction_keys& d) noexcept;

/// Seals `len` ≤ 16384 bytes of content `type` into `out` (room for
/// len + record_overhead); returns the record's size, 0 on failure. Each
/// call uses the next write sequence number: a sealed record must go out.
std::size_t seal(keys& k, std::uint8_t type, const std::uint8_t* in, std::size_t len, std::uint8_t* out) noexcept;

struct opened {
  enum status : std::uint8_t { ok, need_more, bad_record, bad_mac } what = need_more;
  std::size_t consumed = 0;  // bytes of the record (header included) when ok
  std::uint8_t type = 0;     // inner content type
  std::size_t len = 0;       // plaintext bytes written to `out`
};
/// Opens the record at the start of `in` (`n` bytes available) into `out`
/// (room for 16384 + 1 bytes). need_more: the record is not complete yet;
/// bad_record: not a TLS 1.3 application_data record of a valid length,
/// or no content type (→ alert decode_error / record_overflow); bad_mac:
/// it does not decrypt (→ bad_record_mac).
opened open(keys& k, const std::uint8_t* in, std::size_t n, std::uint8_t* out) noexcept;

}  // namespace sb::tls
