#include "session/codec.hpp"

#include "session/json_codec.hpp"
#include "session/protobuf_codec.hpp"

namespace sb::proto {

const char* to_string(format f) noexcept {
  switch (f) {
    case format::json: return "json";
    case format::protobuf: return "protobuf";
  }
  return "";
}

const reply_encoder* encoder_for(format f) noexcept {
  static const json_encoder json;
  static const protobuf_encoder protobuf;
  switch (f) {
    case format::json: return &json;
    case format::protobuf: return &protobuf;
  }
  return nullptr;
}

std::unique_ptr<command_decoder> make_decoder(format f) {
  switch (f) {
    case format::json: return std::make_unique<json_decoder>();
    case format::protobuf: return std::make_unique<protobuf_decoder>();
  }
  return nullptr;
}

}  // namespace sb::proto
