// swload's wire helpers: the HTTP upgrade request, client WebSocket frames
// (masked with a zero key, so the payload goes out unchanged), server frame
// headers, HS256 connection tokens, the few JSON numbers swload reads
// from a publication ("t", "s", "p") without parsing the whole document, a
// top-level member lookup for the few replies swload reads more of, and one
// blocking HTTP POST for the gateway's server API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace swload::wire {

// "GET <path>" upgrade request with a fixed Sec-WebSocket-Key; `deflate`
// offers permessage-deflate (as browsers do: client_max_window_bits).
std::string upgrade_request(const std::string& host, int port, const std::string& path, bool deflate = false);

// Writes a masked client text frame carrying `payload` into out, which must
// hold payload.size() + max_client_header bytes; returns the frame's size.
constexpr std::size_t max_client_header = 14;
std::size_t text_frame(char* out, std::string_view payload);
// A masked client frame of any opcode with a payload under 126 bytes (pong).
std::size_t control_frame(char* out, unsigned opcode, std::string_view payload);

// One server (unmasked) frame at the start of a buffer.
struct frame {
  unsigned opcode = 0;
  bool fin = false;
  bool rsv1 = false;        // permessage-deflate: the message is compressed
  std::size_t header = 0;   // bytes before the payload
  std::uint64_t length = 0; // payload bytes
};
// Fills f and returns true when buf holds the whole frame header; the
// payload may still be incomplete (check header + length against size).
bool parse_header(const unsigned char* buf, std::size_t size, frame& f);

// tmpl with every "{i}" replaced by i.
std::string expand(std::string_view tmpl, long i);

// The Centrifuge connect command with an HS256 token: {"sub":user} plus
// {"channels":[channel]} when channel is not empty.
std::string connect_command(const std::string& secret, const std::string& user, const std::string& channel);

// The unsigned integer after the first `"<key>":` in s; false when absent.
bool find_number(std::string_view s, std::string_view key, std::uint64_t& out);

// The raw text of member `key` at the top level of the JSON object obj (a
// string keeps its quotes, an object its braces); empty when obj is not an
// object or has no such member. Nested members of the same name are skipped.
std::string_view member(std::string_view obj, std::string_view key);
// A member's unsigned integer / string value (without quotes, unescaped
// as is); false when v is not one.
bool to_u64(std::string_view v, std::uint64_t& out);
bool to_str(std::string_view v, std::string_view& out);
// Steps through the JSON array arr: start with pos 0; each call puts the
// next element's raw text in out, false at the end (or on bad input).
bool next_element(std::string_view arr, std::size_t& pos, std::string_view& out);

// POSTs a JSON body to http://host:port/path with `X-API-Key: api_key`, on
// a blocking socket bounded by timeout_s; returns the HTTP status (0: no
// answer) and puts the response body in reply.
int http_post(const std::string& host, int port, const std::string& path, const std::string& api_key,
              const std::string& body, double timeout_s, std::string& reply);

}  // namespace swload::wire
