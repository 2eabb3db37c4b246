#pragma once
// Hand-built client WebSocket frames for the codec and deflate tests.

#include <cstdint>
#include <string_view>
#include <vector>

namespace sb::test_support {

using bytes = std::vector<std::uint8_t>;

enum class len_form { minimal, w16, w64 };

/// Options for a hand-built client frame.
struct frame_opts {
  bool fin = true;
  std::uint8_t rsv = 0;  // 3 bits, shifted into place
  bool masked = true;
  len_form form = len_form::minimal;
  std::uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  std::uint64_t raw_len = UINT64_MAX;  // overrides the encoded length when set
};

/// A client frame: header with the chosen length form, mask key, masked payload.
inline bytes client_frame(std::uint8_t op, std::string_view payload, frame_opts o = {}) {
  bytes f;
  f.push_back(static_cast<std::uint8_t>((o.fin ? 0x80 : 0) | (o.rsv << 4) | op));
  const std::uint64_t len = o.raw_len != UINT64_MAX ? o.raw_len : payload.size();
  const std::uint8_t m = o.masked ? 0x80 : 0;
  len_form form = o.form;
  if (form == len_form::minimal) form = len < 126 ? len_form::minimal : len <= 0xFFFF ? len_form::w16 : len_form::w64;
  if (form == len_form::minimal) {
    f.push_back(static_cast<std::uint8_t>(m | len));
  } else if (form == len_form::w16) {
    f.push_back(m | 126);
    f.push_back(static_cast<std::uint8_t>(len >> 8));
    f.push_back(static_cast<std::uint8_t>(len));
  } else {
    f.push_back(m | 127);
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<std::uint8_t>(len >> (8 * i)));
  }
  if (o.masked) f.insert(f.end(), o.key, o.key + 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    f.push_back(static_cast<std::uint8_t>(payload[i]) ^ (o.masked ? o.key[i % 4] : 0));
  }
  return f;
}

}  // namespace sb::test_support
