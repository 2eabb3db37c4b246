// The Protobuf format's own codec (session/protobuf_codec.hpp) against
// libprotobuf's generated classes (bench/proto/client.proto, Debian's
// libprotobuf 3.21), on what the gateway does with them: decoding a
// client's frame (a publish; a connect with a server-side subscription)
// and encoding a publication push (once per publication per shard) and a
// connect reply (once per session). libprotobuf gets its best use: one
// message object reused across iterations (no allocation in the steady
// state), sizes cached before serializing.
//
// Before timing, both sides are checked against each other: our encoder's
// bytes equal libprotobuf's serialization of the same message, and our
// decoder reads libprotobuf's encoding to the same fields. Figures in
// bench/RESULTS.md "Protobuf".
#include "client.pb.h"
#include "session/pb_wire.hpp"
#include "session/protobuf_codec.hpp"

#include <benchmark/benchmark.h>
#include <google/protobuf/io/coded_stream.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

namespace pbp = centrifugal::centrifuge::protocol;
using namespace sb::proto;

const std::string chat_data = R"({"text":"see you at the standup in five minutes","from":"alice","mentions":["bob"]})";
const std::string channel = "chat:room42";

// libprotobuf: one message, varint-delimited, appended to out.
void put_delimited(const google::protobuf::MessageLite& m, std::string& out) {
  const std::size_t n = m.ByteSizeLong();
  sb::pb::put_varint(out, n);
  const std::size_t at = out.size();
  out.resize(at + n);
  m.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(out.data() + at));
}

std::string libprotobuf_frame_publish() {
  pbp::Command c;
  c.set_id(7);
  c.mutable_publish()->set_channel(channel);
  c.mutable_publish()->set_data(chat_data);
  std::string out;
  put_delimited(c, out);
  return out;
}

std::string libprotobuf_frame_connect() {
  pbp::Command c;
  c.set_id(1);
  auto* q = c.mutable_connect();
  q->set_token("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1NDIiLCJleHAiOjE4OTM0NTYwMDB9.c2lnbmF0dXJlLXNpZ25hdHVyZQ");
  q->set_name("js");
  q->set_version("5.8.0");
  auto& s = (*q->mutable_subs())["personal:#u42"];
  s.set_recover(true);
  s.set_epoch("AbCd");
  s.set_offset(1234);
  std::string out;
  put_delimited(c, out);
  return out;
}

struct count_sink final : command_sink {
  std::size_t n = 0;
  bool on_command(const command& c) override {
    n += c.publish.channel.size() + c.publish.data_json.size() + c.connect.token.size() + c.connect.subs.size();
    return true;
  }
};

void fill_push(pbp::Reply& r) {
  auto* push = r.mutable_push();
  push->set_channel(channel);
  auto* pub = push->mutable_pub();
  pub->set_data(chat_data);
  pub->set_offset(98765);
  auto* info = pub->mutable_info();
  info->set_user("alice");
  info->set_client("3f1c2a7e-5b6d-4c8e-9f0a-1b2c3d4e5f60");
}

publication_view push_view() {
  publication_view p;
  p.channel = channel;
  p.data = chat_data;
  p.offset = 98765;
  p.has_info = true;
  p.info.user = "alice";
  p.info.client = "3f1c2a7e-5b6d-4c8e-9f0a-1b2c3d4e5f60";
  return p;
}

void fill_connect(pbp::Reply& r) {
  r.set_id(1);
  auto* c = r.mutable_connect();
  c->set_client("3f1c2a7e-5b6d-4c8e-9f0a-1b2c3d4e5f60");
  c->set_version("0.1.0");
  c->set_ping(25);
  c->set_pong(true);
  auto& s = (*c->mutable_subs())["personal:#u42"];
  s.set_recoverable(true);
  s.set_epoch("AbCd");
  s.set_offset(1234);
}

connect_result connect_view() {
  connect_result r;
  r.client = "3f1c2a7e-5b6d-4c8e-9f0a-1b2c3d4e5f60";
  r.version = "0.1.0";
  r.ping = 25;
  r.pong = true;
  sub_position s;
  s.channel = "personal:#u42";
  s.recoverable = true;
  s.epoch = "AbCd";
  s.offset = 1234;
  r.subs.push_back(s);
  return r;
}

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "protobuf_codec_bench: %s\n", what);
    std::exit(1);
  }
}

// Both codecs agree, byte for byte and field for field.
void cross_check() {
  const protobuf_encoder enc;
  std::string ours, theirs;
  enc.publication_push(ours, push_view());
  pbp::Reply r;
  fill_push(r);
  put_delimited(r, theirs);
  require(ours == theirs, "publication push: our bytes differ from libprotobuf's");
  ours.clear();
  theirs.clear();
  enc.connect_reply(ours, 1, connect_view());
  pbp::Reply c;
  fill_connect(c);
  put_delimited(c, theirs);
  require(ours == theirs, "connect reply: our bytes differ from libprotobuf's");

  protobuf_decoder dec;
  struct check_sink final : command_sink {
    bool ok = false;
    bool on_command(const command& c) override {
      ok = c.id == 7 && c.m == method::publish && c.publish.channel == channel && c.publish.data_json == chat_data;
      return true;
    }
  } sink;
  const std::string frame = libprotobuf_frame_publish();
  require(dec.decode({reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size()}, sink) == parse_error::none &&
              sink.ok,
          "our decoder does not read libprotobuf's publish command");
}

void decode_ours(benchmark::State& st, const std::string& frame) {
  protobuf_decoder dec;
  count_sink sink;
  for (auto _ : st) {
    dec.decode({reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size()}, sink);
    benchmark::DoNotOptimize(sink.n);
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * frame.size()));
}

void decode_libprotobuf(benchmark::State& st, const std::string& frame) {
  pbp::Command c;  // reused: no allocation once its strings have grown
  std::size_t n = 0;
  for (auto _ : st) {
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(frame.data()),
                                              static_cast<int>(frame.size()));
    std::uint32_t len;
    while (in.ReadVarint32(&len)) {
      auto limit = in.PushLimit(static_cast<int>(len));
      c.Clear();
      if (!c.MergeFromCodedStream(&in)) break;
      in.PopLimit(limit);
      n += c.publish().channel().size() + c.publish().data().size() + c.connect().token().size() +
           c.connect().subs_size();
    }
    benchmark::DoNotOptimize(n);
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * frame.size()));
}

void BM_decode_publish_ours(benchmark::State& st) { decode_ours(st, libprotobuf_frame_publish()); }
void BM_decode_publish_libprotobuf(benchmark::State& st) { decode_libprotobuf(st, libprotobuf_frame_publish()); }
void BM_decode_connect_ours(benchmark::State& st) { decode_ours(st, libprotobuf_frame_connect()); }
void BM_decode_connect_libprotobuf(benchmark::State& st) { decode_libprotobuf(st, libprotobuf_frame_connect()); }

void BM_encode_push_ours(benchmark::State& st) {
  const protobuf_encoder enc;
  const publication_view p = push_view();
  std::string out;
  for (auto _ : st) {
    out.clear();
    enc.publication_push(out, p);
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_encode_push_libprotobuf(benchmark::State& st) {
  pbp::Reply r;
  std::string out;
  for (auto _ : st) {
    out.clear();
    fill_push(r);  // the views copied in, as a caller would
    put_delimited(r, out);
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_encode_connect_ours(benchmark::State& st) {
  const protobuf_encoder enc;
  const connect_result r = connect_view();
  std::string out;
  for (auto _ : st) {
    out.clear();
    enc.connect_reply(out, 1, r);
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_encode_connect_libprotobuf(benchmark::State& st) {
  pbp::Reply r;
  std::string out;
  for (auto _ : st) {
    out.clear();
    r.Clear();
    fill_connect(r);
    put_delimited(r, out);
    benchmark::DoNotOptimize(out.data());
  }
}

BENCHMARK(BM_decode_publish_ours);
BENCHMARK(BM_decode_publish_libprotobuf);
BENCHMARK(BM_decode_connect_ours);
BENCHMARK(BM_decode_connect_libprotobuf);
BENCHMARK(BM_encode_push_ours);
BENCHMARK(BM_encode_push_libprotobuf);
BENCHMARK(BM_encode_connect_ours);
BENCHMARK(BM_encode_connect_libprotobuf);

}  // namespace

int main(int argc, char** argv) {
  cross_check();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
