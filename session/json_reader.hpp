#pragma once
// Centrifuge protocol v2, JSON format, reading: the commands of a WebSocket
// text frame, one JSON object per line (docs/protocol.md). A pong is an
// empty object ({}). Raw values (`data`) are kept byte for byte as the
// client sent them and validated as JSON.
//
// No I/O, no shared state, no exceptions on the data path: one parser per
// shard, used only by that shard's thread.

#include "session/protocol.hpp"

#include <cstddef>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sb::proto {

/// Parses frames of newline-delimited commands. One instance per shard,
/// used only by its thread (simdjson parsers are not thread-safe and the
/// instance keeps its buffers between frames, so the steady state does not
/// allocate).
///
/// Padding: simdjson reads up to SIMDJSON_PADDING bytes past the input, and
/// frames come unmasked in the shard's scratch buffer, whose tail we do not
/// own. So parse() copies the frame once into the parser's own padded buffer
/// (grown to the largest frame seen, never shrunk; the session's frame size
/// limit bounds it). One memcpy per frame is cheaper than making every
/// producer of frames reason about padding.
class command_parser {
 public:
  /// Nesting deeper than this (counting from inside each raw JSON value
  /// such as `data`) is refused with bad_command.
  static constexpr std::size_t default_max_depth = 64;

  /// Startup/shard setup: allocates the parser state (throws bad_alloc only).
  explicit command_parser(std::size_t max_depth = default_max_depth);
  ~command_parser();
  command_parser(command_parser&&) noexcept;
  command_parser& operator=(command_parser&&) noexcept;
  command_parser(const command_parser&) = delete;
  command_parser& operator=(const command_parser&) = delete;

  /// Owner thread. Parses every command of `frame` in order and calls
  /// on_command(const command&) for each one before parsing the next (so
  /// the views in the command stay valid for the whole call). Blank lines
  /// are skipped. Stops at the first bad line and returns its error; the
  /// commands before it have been delivered. If on_command returns bool,
  /// false stops the frame early (e.g. the session is closing) with none.
  template <class F>
  parse_error parse(std::string_view frame, F&& on_command) {
    if (parse_error e = load(frame); e != parse_error::none) return e;
    for (;;) {
      bool have = false;
      if (parse_error e = next(have); e != parse_error::none) return e;
      if (!have) return parse_error::none;
      if constexpr (std::is_same_v<std::invoke_result_t<F&, const command&>, bool>) {
        if (!on_command(std::as_const(_cmd))) return parse_error::none;
      } else {
        on_command(std::as_const(_cmd));
      }
    }
  }

 private:
  struct impl;
  parse_error load(std::string_view frame) noexcept;
  parse_error next(bool& have) noexcept;

  std::unique_ptr<impl> _impl;
  command _cmd;
};

}  // namespace sb::proto
