// Publications as push frames: what the router calls once per publication
// per shard per push format (a wire format, plain or compressed), so that
// every subscriber of that format on the shard shares one frame.
#include "gateway/client.hpp"

#include "session/codec.hpp"
#include "session/ws_deflate.hpp"

#include <string>

namespace sb {

namespace {

// The push formats (routing::subscribe_flags::push_format): the wire
// format in bit 0, permessage-deflate in bit 1 (client_state.hpp).
constexpr std::size_t compressed_bit = 2;
static_assert(proto::format_count * 2 <= routing::max_push_formats, "a push format per wire format, plain and compressed");

template <proto::format F, bool Compressed>
frame_ref encode_publication(void* arg, frame_pool& pool, const routing::publication& pub) {
  // Once per publication per shard per format: every subscriber reading
  // that format shares these bytes.
  const proto::reply_encoder& enc = *proto::encoder_for(F);
  thread_local std::string text;
  text.clear();
  proto::publication_view p;
  p.channel = pub.channel;
  p.data = pub.data;
  p.offset = pub.offset;
  if (pub.has_info) {
    p.has_info = true;
    p.info.user = pub.info.user;
    p.info.client = pub.info.client;
    p.info.conn_info = pub.info.conn_info;
    p.info.chan_info = pub.info.chan_info;
  }
  switch (pub.what) {
    case routing::publication::kind::publication: enc.publication_push(text, p); break;
    case routing::publication::kind::join: enc.join_push(text, pub.channel, p.info); break;
    case routing::publication::kind::leave: enc.leave_push(text, pub.channel, p.info); break;
  }
  const auto op = enc.binary_frames() ? ws::opcode::binary : ws::opcode::text;
  frame_ref frame = Compressed ? static_cast<ws::deflater*>(arg)->frame(pool, op, text) : ws::make_frame(pool, op, text);
  // Publications carry their entry time for publish_to_write; joins and
  // leaves do not count there.
  if (pub.what == routing::publication::kind::publication) frame.set_stamp(pub.entered_ns);
  return frame;
}

}  // namespace

routing::push_encoders centrifuge_handler::push_encoders(ws::deflater& deflater) {
  routing::push_encoders e{};
  constexpr auto json = static_cast<std::size_t>(proto::format::json);
  constexpr auto protobuf = static_cast<std::size_t>(proto::format::protobuf);
  e[json] = {&encode_publication<proto::format::json, false>, nullptr};
  e[json | compressed_bit] = {&encode_publication<proto::format::json, true>, &deflater};
  e[protobuf] = {&encode_publication<proto::format::protobuf, false>, nullptr};
  e[protobuf | compressed_bit] = {&encode_publication<proto::format::protobuf, true>, &deflater};
  return e;
}

}  // namespace sb
