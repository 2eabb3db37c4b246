#pragma once
// The seam between the protocol handler (gateway/client.cpp) and the wire
// format of the Centrifuge protocol: a connection speaks one format, chosen
// when it upgrades, and the handler reads its frames through that format's
// command_decoder and writes its replies and pushes through that format's
// reply_encoder. JSON (session/json_codec.hpp) is the first format;
// Protobuf (centrifuge-js's `?cf_protocol=protobuf`) stands beside it behind
// the same two interfaces.
//
// A publication is encoded once per format per shard (routing/ keeps one
// frame per format it was asked for, shared by every subscriber of that
// format), so nothing here is per subscriber.

#include "session/protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace sb::proto {

/// A wire format of the protocol; small, so that a connection keeps it in
/// one byte and push frames can be kept per format.
enum class format : std::uint8_t { json, protobuf };
inline constexpr std::size_t format_count = 2;

/// Name for logs and metrics ("json", "protobuf"). Any thread.
const char* to_string(format f) noexcept;

/// Receives the commands of one frame from a command_decoder, in order.
/// Called on the decoding thread, during decode().
class command_sink {
 public:
  /// One command; its views are valid during the call only. Returning false
  /// stops the frame (e.g. the connection is closing).
  virtual bool on_command(const command& c) = 0;

 protected:
  ~command_sink() = default;
};

/// Reads the commands of a frame. Stateful (it keeps its buffers between
/// frames so that the steady state does not allocate): one instance per
/// format per shard, used only by that shard's thread.
class command_decoder {
 public:
  virtual ~command_decoder() = default;
  /// Decodes every command of `frame` in order, handing each to `sink`
  /// before decoding the next. Stops at the first bad command and returns
  /// its error (the commands before it were delivered); none when the frame
  /// was read to its end or the sink stopped it.
  virtual parse_error decode(std::span<const std::uint8_t> frame, command_sink& sink) = 0;
};

/// Writes replies and pushes. Each call appends ONE reply or push to `out`
/// together with the format's separation between the replies of a frame
/// (JSON: newline-joined; Protobuf: length-delimited), so that `out` always
/// holds a whole frame's payload. Stateless: one shared instance per
/// format, any thread.
class reply_encoder {
 public:
  virtual ~reply_encoder() = default;
  virtual format which() const noexcept = 0;
  /// Whether this format travels in binary WebSocket frames (else text).
  virtual bool binary_frames() const noexcept = 0;

  virtual void error_reply(std::string& out, std::uint32_t id, std::uint32_t code, std::string_view message,
                           bool temporary) const = 0;
  /// A built-in error, with its documented message and temporary flag.
  void error_reply(std::string& out, std::uint32_t id, std::uint32_t code) const {
    error_reply(out, id, code, error_message(code), error_temporary(code));
  }
  virtual void connect_reply(std::string& out, std::uint32_t id, const connect_result& r) const = 0;
  virtual void subscribe_reply(std::string& out, std::uint32_t id, const subscribe_result& r) const = 0;
  virtual void refresh_reply(std::string& out, std::uint32_t id, const refresh_result& r) const = 0;
  virtual void sub_refresh_reply(std::string& out, std::uint32_t id, bool expires, std::uint32_t ttl) const = 0;
  /// A result without fields (unsubscribe, publish, ping, and refresh /
  /// sub_refresh when nothing expires).
  virtual void empty_reply(std::string& out, std::uint32_t id, method m) const = 0;
  virtual void presence_reply(std::string& out, std::uint32_t id, std::span<const client_info_view> clients) const = 0;
  virtual void presence_stats_reply(std::string& out, std::uint32_t id, std::uint32_t num_clients,
                                    std::uint32_t num_users) const = 0;
  virtual void history_reply(std::string& out, std::uint32_t id, std::span<const publication_view> pubs,
                             std::string_view epoch, std::uint64_t offset) const = 0;
  virtual void rpc_reply(std::string& out, std::uint32_t id, std::string_view data) const = 0;

  /// A publication on `p.channel`: once per publication per shard per format.
  virtual void publication_push(std::string& out, const publication_view& p) const = 0;
  virtual void join_push(std::string& out, std::string_view channel, const client_info_view& info) const = 0;
  virtual void leave_push(std::string& out, std::string_view channel, const client_info_view& info) const = 0;
  virtual void unsubscribe_push(std::string& out, std::string_view channel, std::uint32_t code,
                                std::string_view reason) const = 0;
  virtual void subscribe_push(std::string& out, std::string_view channel, const server_subscription& s) const = 0;
  virtual void message_push(std::string& out, std::string_view data) const = 0;
  virtual void refresh_push(std::string& out, bool expires, std::uint32_t ttl) const = 0;
  /// Server ping (the client answers with an empty command, a pong).
  virtual void ping(std::string& out) const = 0;
};

/// The shared encoder of `f`, or null when the format is not built in.
/// Any thread.
const reply_encoder* encoder_for(format f) noexcept;

/// A new decoder of `f` for the calling shard, or null when the format is
/// not built in. Shard setup (allocates).
std::unique_ptr<command_decoder> make_decoder(format f);

}  // namespace sb::proto
