// The JSON format behind the codec interfaces: replies of one frame are
// newline-joined, commands reach the sink in order, the sink can stop a
// frame, and the registry hands out JSON (Protobuf is not built in yet).
#include "session/json_codec.hpp"

#include "session/json_writer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sb::proto {
namespace {

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct collect final : command_sink {
  std::vector<std::pair<method, std::uint32_t>> seen;
  std::size_t stop_after = SIZE_MAX;
  bool on_command(const command& c) override {
    seen.emplace_back(c.m, c.id);
    return seen.size() < stop_after;
  }
};

TEST(json_codec, replies_of_a_frame_are_newline_joined) {
  const reply_encoder& enc = *encoder_for(format::json);
  EXPECT_EQ(enc.which(), format::json);
  EXPECT_FALSE(enc.binary_frames());
  std::string out;
  enc.empty_reply(out, 1, method::publish);
  enc.error_reply(out, 2, error_code::permission_denied);
  enc.ping(out);
  EXPECT_EQ(out, "{\"id\":1,\"publish\":{}}\n{\"id\":2,\"error\":{\"code\":103,\"message\":\"permission denied\"}}\n{}");
}

TEST(json_codec, each_call_matches_the_writer) {
  const reply_encoder& enc = *encoder_for(format::json);
  client_info_view who{"u", "c", R"({"a":1})", ""};
  publication_view pub;
  pub.channel = "ch";
  pub.data = R"({"x":1})";
  pub.offset = 7;
  pub.has_info = true;
  pub.info = who;
  std::string got, want;
  enc.publication_push(got, pub);
  encode_publication_push(want, pub);
  EXPECT_EQ(got, want);
  got.clear(), want.clear();
  enc.join_push(got, "ch", who);
  encode_join_push(want, "ch", who);
  EXPECT_EQ(got, want);
  got.clear(), want.clear();
  enc.unsubscribe_push(got, "ch", unsubscribe_code::server, "server unsubscribe");
  encode_unsubscribe_push(want, "ch", unsubscribe_code::server, "server unsubscribe");
  EXPECT_EQ(got, want);
  got.clear(), want.clear();
  enc.history_reply(got, 3, std::span<const publication_view>(&pub, 1), "ep", 7);
  encode_history_reply(want, 3, std::span<const publication_view>(&pub, 1), "ep", 7);
  EXPECT_EQ(got, want);
}

TEST(json_codec, decoder_hands_commands_to_the_sink_in_order) {
  auto dec = make_decoder(format::json);
  ASSERT_NE(dec, nullptr);
  collect sink;
  auto e = dec->decode(bytes("{\"id\":1,\"ping\":{}}\n{}\n{\"id\":2,\"unsubscribe\":{\"channel\":\"a\"}}"), sink);
  EXPECT_EQ(e, parse_error::none);
  ASSERT_EQ(sink.seen.size(), 3u);
  EXPECT_EQ(sink.seen[0], std::make_pair(method::ping, 1u));
  EXPECT_EQ(sink.seen[1], std::make_pair(method::none, 0u));
  EXPECT_EQ(sink.seen[2], std::make_pair(method::unsubscribe, 2u));
}

TEST(json_codec, sink_may_stop_and_errors_come_back) {
  auto dec = make_decoder(format::json);
  collect stop;
  stop.stop_after = 1;
  EXPECT_EQ(dec->decode(bytes("{\"id\":1,\"ping\":{}}\n{\"id\":2,\"ping\":{}}\nnot json"), stop), parse_error::none);
  EXPECT_EQ(stop.seen.size(), 1u);
  collect all;
  EXPECT_EQ(dec->decode(bytes("{\"id\":1,\"ping\":{}}\n{\"id\":2,"), all), parse_error::bad_json);
  EXPECT_EQ(all.seen.size(), 1u);
}

TEST(json_codec, registry) {
  EXPECT_NE(encoder_for(format::json), nullptr);
  ASSERT_NE(encoder_for(format::protobuf), nullptr);
  EXPECT_TRUE(encoder_for(format::protobuf)->binary_frames());
  EXPECT_NE(make_decoder(format::protobuf), nullptr);
  EXPECT_STREQ(to_string(format::json), "json");
  EXPECT_STREQ(to_string(format::protobuf), "protobuf");
}

}  // namespace
}  // namespace sb::proto
