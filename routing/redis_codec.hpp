#pragma once
// How publications and presence entries are written into Redis by the
// Redis engine (routing/redis_engine.hpp), the same on every node: plain
// bytes, no JSON parse on the way back (the data is kept as it came).
//
//   body      a flags byte (bit 0: has_info), then data, user, client,
//             conn_info and chan_info, each a varint length and its bytes.
//   message   what a node receives on a channel's pub/sub channel:
//               'p' OFFSET ':' EPOCH ':' body   a publication (OFFSET 0 and
//                                               no EPOCH without history)
//               'j' body / 'l' body             a join / a leave
//             The publish script (routing/redis_scripts.hpp) writes the
//             'p' prefix itself, with the offset it stamped.
//   presence  a presence hash's value: the client's body (no data).
//
// Decoding never trusts its input (another node's, or anyone's with access
// to Redis): every length is checked, a bad message is reported as false.
// Plain functions: any thread.

#include "routing/publication.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace sb::routing::redis_codec {

/// Appends `p`'s body to `out`.
void encode_body(const publication& p, std::string& out);
/// Appends a presence value (who, no data) to `out`.
void encode_info(const client_info& who, std::string& out);
/// Reads a body into `p` (data, has_info, info). False when malformed.
bool decode_body(std::string_view in, publication& p);
/// Reads a presence value. False when malformed.
bool decode_info(std::string_view in, client_info& who);

/// A message as received, its parts pointing into the payload.
struct message {
  publication::kind what = publication::kind::publication;
  std::uint64_t offset = 0;
  std::string_view epoch;
  std::string_view body;
};

/// Splits a pub/sub payload. False when malformed.
bool decode_message(std::string_view payload, message& m);
/// A join ('j') or leave ('l') message for `who`.
std::string encode_presence_message(publication::kind what, const client_info& who);
/// A publication without history: offset 0, no epoch.
std::string encode_plain_message(const publication& p);

}  // namespace sb::routing::redis_codec
