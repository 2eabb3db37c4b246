// libFuzzer target for the Protobuf command decoder
// (session/protobuf_decoder.cpp), the bytes a protobuf client sends.
//
// The input is one binary frame. Checks: every command delivered keeps the
// protocol's rules (an id unless it is a pong or a send; a pong has no id),
// every view points into the frame and every string field is UTF-8; the
// decoder reused on the same frame gives the same commands (no state leaks
// between frames). Each delivered command's fields are then written back
// with the encoder as a reply and a publication push, and those frames read
// back with pb::reader: the encoder's output is always well-formed.
#include "session/pb_wire.hpp"
#include "session/protobuf_codec.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using namespace sb::proto;

struct checker final : command_sink {
  const char* begin = nullptr;
  const char* end = nullptr;
  std::vector<std::string> seen;  // a fingerprint per command, compared between the two runs

  void in_frame(std::string_view v) const {
    FUZZ_CHECK(v.empty() || (v.data() >= begin && v.data() + v.size() <= end));
  }
  void text(std::string_view v) const {
    in_frame(v);
    FUZZ_CHECK(simdjson::validate_utf8(v.data(), v.size()));
  }
  bool on_command(const command& c) override {
    if (c.m == method::none) FUZZ_CHECK(c.id == 0);
    if (c.m != method::none && c.m != method::send) FUZZ_CHECK(c.id != 0);
    std::string fp = std::to_string(c.id) + ":" + to_string(c.m);
    auto add = [&](std::string_view v) {
      fp += '|';
      fp.append(v);
    };
    switch (c.m) {
      case method::connect:
        text(c.connect.token), text(c.connect.name), text(c.connect.version), in_frame(c.connect.data_json);
        for (const auto& [ch, s] : c.connect.subs) text(ch), text(s.channel), text(s.epoch), add(ch);
        add(c.connect.token);
        break;
      case method::subscribe:
        text(c.subscribe.channel), text(c.subscribe.token), text(c.subscribe.epoch), text(c.subscribe.delta);
        in_frame(c.subscribe.data_json);
        add(c.subscribe.channel);
        break;
      case method::publish:
        text(c.publish.channel), in_frame(c.publish.data_json);
        add(c.publish.channel), add(c.publish.data_json);
        encode_back(c.publish.channel, c.publish.data_json);
        break;
      case method::history: text(c.history.channel), text(c.history.since_epoch), add(c.history.channel); break;
      case method::rpc: text(c.rpc.method_name), in_frame(c.rpc.data_json), add(c.rpc.method_name); break;
      case method::unsubscribe: text(c.unsubscribe.channel); break;
      case method::presence: text(c.presence.channel); break;
      case method::presence_stats: text(c.presence_stats.channel); break;
      case method::refresh: text(c.refresh.token); break;
      case method::sub_refresh: text(c.sub_refresh.channel), text(c.sub_refresh.token); break;
      case method::send: in_frame(c.send.data_json); break;
      case method::ping:
      case method::none: break;
    }
    seen.push_back(std::move(fp));
    return true;
  }

  // The encoder on what was decoded: its frames must read back whole.
  static void encode_back(std::string_view channel, std::string_view data) {
    static const protobuf_encoder enc;
    std::string out;
    publication_view p;
    p.channel = channel;
    p.data = data;
    p.offset = data.size();
    enc.publication_push(out, p);
    enc.rpc_reply(out, 7, data);
    enc.error_reply(out, 8, error_code::bad_request, channel, true);
    sb::pb::reader frames(out);
    int n = 0;
    while (!frames.done()) {
      std::string_view msg;
      FUZZ_CHECK(frames.bytes(msg));
      sb::pb::reader fields(msg);
      std::uint32_t f;
      sb::pb::wire w;
      while (fields.next(f, w)) FUZZ_CHECK(fields.skip(w));
      FUZZ_CHECK(!fields.bad);
      ++n;
    }
    FUZZ_CHECK(n == 3);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static protobuf_decoder decoder;  // reused across frames, as a shard's is
  const std::span<const std::uint8_t> frame(data, size);
  checker a, b;
  a.begin = b.begin = reinterpret_cast<const char*>(data);
  a.end = b.end = a.begin + size;
  const parse_error ea = decoder.decode(frame, a);
  const parse_error eb = decoder.decode(frame, b);
  FUZZ_CHECK(ea == eb);
  FUZZ_CHECK(a.seen == b.seen);
  return 0;
}
