// libFuzzer target for routing/redis_codec.cpp: what another node (or
// anyone with access to Redis) wrote is read as a pub/sub message, its body
// and a presence value. Whatever decodes must encode back to something that
// decodes to the same fields (the layout is one-to-one up to varint
// padding), and nothing may be read past the input (ASan).

#include "routing/redis_codec.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace codec = sb::routing::redis_codec;
using sb::routing::client_info;
using sb::routing::publication;

namespace {

bool same(const client_info& a, const client_info& b) {
  return a.user == b.user && a.client == b.client && a.conn_info == b.conn_info && a.chan_info == b.chan_info;
}

void check_body(std::string_view in) {
  publication p;
  if (!codec::decode_body(in, p)) return;
  std::string again;
  codec::encode_body(p, again);
  publication q;
  if (!codec::decode_body(again, q) || q.data != p.data || q.has_info != p.has_info ||
      (p.has_info && !same(q.info, p.info)))
    std::abort();
}

void check_info(std::string_view in) {
  client_info who;
  if (!codec::decode_info(in, who)) return;
  std::string again;
  codec::encode_info(who, again);
  client_info back;
  if (!codec::decode_info(again, back) || !same(back, who)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A copy of exactly `size` bytes so ASan sees any read past the end.
  std::string copy(reinterpret_cast<const char*>(data), size);
  std::string_view in(copy);
  codec::message m;
  if (codec::decode_message(in, m)) {
    if (m.body.data() < copy.data() || m.body.data() + m.body.size() > copy.data() + copy.size()) std::abort();
    check_body(m.body);
  }
  check_body(in);
  check_info(in);
  return 0;
}
