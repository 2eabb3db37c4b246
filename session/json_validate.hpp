#pragma once
// Checks of JSON text that the reader keeps or skips without simdjson
// reading it whole: raw values (`data`, unknown fields) are passed on byte
// for byte, so they are checked here first (RFC 8259, with a depth limit).
// Why not simdjson's DOM parser: 3.0.1 rejects valid JSON that Centrifuge
// passes through (integers beyond 64 bits, lone surrogate escapes such as
// "\ud800", which JSON.stringify emits).
//
// Pure functions: any thread.

#include "session/protocol.hpp"

#include <cstddef>
#include <string_view>

namespace sb::proto::json {

/// The deepest nesting validate() can check (its stack array's size).
inline constexpr std::size_t max_validate_depth = 1024;

/// JSON whitespace (space, tab, CR, LF).
constexpr bool is_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/// `s` without trailing JSON whitespace.
std::string_view trim_right(std::string_view s) noexcept;

/// Length of the JSON number at the start of s (grammar
/// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), or 0 if none.
std::size_t number_length(std::string_view s) noexcept;

/// Whether all of `s` is one JSON number.
bool valid_number(std::string_view s) noexcept;

/// Full check of one JSON value (no trailing bytes). Nesting deeper than
/// `max_depth` (at most max_validate_depth) is bad_command, anything else
/// malformed bad_json. UTF-8 is not checked here: the reader's stage 1 has
/// validated the whole line.
parse_error validate(std::string_view s, std::size_t max_depth) noexcept;

}  // namespace sb::proto::json
