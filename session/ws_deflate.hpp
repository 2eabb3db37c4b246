#pragma once
// permessage-deflate (RFC 7692) without per-connection compression state.
//
// A million sessions rule out zlib's usual shape, a deflate and an inflate
// context per connection (about 256 KiB + 44 KiB each at the default window:
// the trap NATS and others fell into). Instead the negotiation always asks
// for no context takeover in both directions (http_upgrade.cpp), so every
// message is compressed and inflated on its own and the state lives once
// per shard:
//
// - deflater: one per shard. A publication is compressed once per shard per
//   push format and the compressed frame is shared by every compressed
//   subscriber there, as plain frames are; a session's own replies go
//   through the same deflater.
// - inflater: one per shard, reset for each client message. A fragmented
//   compressed message is kept compressed (in the session's message buffer)
//   until its last frame and inflated whole, so nothing about it outlives a
//   read but the compressed bytes.
//
// Threading: both belong to the shard that owns them and run on its thread.
// The zlib state is made at first use, so a shard that never compresses pays
// nothing.

#include "pool/counter.hpp"
#include "pool/frame_buffer.hpp"
#include "session/ws_codec.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

struct z_stream_s;

namespace sb::ws {

/// How server messages are compressed; read-only after start.
struct deflate_options {
  /// Payloads shorter than this go out uncompressed (RSV1 clear), as
  /// RFC 7692 allows per message: below ~100 bytes deflate rarely saves.
  std::size_t min_size = 128;
  /// zlib level, 1 (fastest) to 9.
  int level = 1;
};

/// Counts of one shard's compression; written by the shard, read anywhere.
struct deflate_stats {
  counter sessions;       // upgrades that negotiated permessage-deflate
  counter messages;       // messages compressed (sent with RSV1)
  counter skipped;        // at or over min_size but sent plain: deflate did not make them smaller
  counter bytes_in;       // payload bytes before compression (of `messages`)
  counter bytes_out;      // payload bytes after it
  counter inflated;       // client messages inflated
  counter inflated_in;    // their compressed bytes
  counter inflated_out;   // their inflated bytes
};

/// The shard's compressor. Shard thread only.
class deflater {
 public:
  explicit deflater(const deflate_options& o, deflate_stats& st) noexcept : _opts(o), _stats(st) {}
  ~deflater();
  deflater(const deflater&) = delete;
  deflater& operator=(const deflater&) = delete;

  /// A complete server data frame for `payload`: compressed with RSV1 set
  /// when the payload is at least min_size and deflate makes it smaller,
  /// else the plain frame. One pooled buffer either way.
  frame_ref frame(frame_pool& pool, opcode op, std::string_view payload);

 private:
  const deflate_options& _opts;
  deflate_stats& _stats;
  z_stream_s* _z = nullptr;  // made at first use, owned
};

/// Why inflate() refused a message.
enum class inflate_status : std::uint8_t { ok, too_big, bad_data };

/// The shard's decompressor for client messages. Shard thread only.
class inflater {
 public:
  explicit inflater(deflate_stats& st) noexcept : _stats(st) {}
  ~inflater();
  inflater(const inflater&) = delete;
  inflater& operator=(const inflater&) = delete;

  /// Inflates one whole compressed message (the 00 00 FF FF tail the sender
  /// removed is added here) into a buffer of this inflater. Stops as soon as
  /// the output passes `limit` (too_big: a zip bomb is never inflated to its
  /// end). On ok, `out` views the message until the next call.
  inflate_status inflate(std::span<const std::uint8_t> in, std::size_t limit, std::span<const std::uint8_t>& out);

  /// Bytes this inflater holds (its output buffer; zlib's state is ~44 KiB more).
  std::size_t buffer_bytes() const noexcept { return _out.capacity(); }

 private:
  deflate_stats& _stats;
  z_stream_s* _z = nullptr;        // made at first use, owned
  std::vector<std::uint8_t> _out;  // grows to the largest message seen, at most limit + 1
};

}  // namespace sb::ws
