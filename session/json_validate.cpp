#include "session/json_validate.hpp"

namespace sb::proto::json {

namespace {
bool is_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
}  // namespace

std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

std::size_t number_length(std::string_view s) noexcept {
  std::size_t i = 0, n = s.size();
  auto digit = [&](std::size_t k) { return k < n && s[k] >= '0' && s[k] <= '9'; };
  if (i < n && s[i] == '-') ++i;
  if (!digit(i)) return 0;
  if (s[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digit(i)) return 0;
    while (digit(i)) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digit(i)) return 0;
    while (digit(i)) ++i;
  }
  return i;
}

bool valid_number(std::string_view s) noexcept { return !s.empty() && number_length(s) == s.size(); }

parse_error validate(std::string_view s, std::size_t max_depth) noexcept {
  bool in_object[max_validate_depth + 1];  // per open container: object or array
  std::size_t depth = 0, i = 0;
  const std::size_t n = s.size();
  auto skip_ws = [&] {
    while (i < n && is_ws(s[i])) ++i;
  };
  auto string = [&]() -> bool {  // at '"'
    ++i;
    while (i < n) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c == '"') {
        ++i;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i >= n) return false;
        char e = s[i];
        if (e == 'u') {
          if (i + 4 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) || !is_hex(s[i + 4])) {
            return false;
          }
          i += 4;
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't') {
          return false;
        }
      }
      ++i;
    }
    return false;
  };
  enum class st { value, key, after };
  st state = st::value;
  for (;;) {
    skip_ws();
    if (state == st::value) {
      if (i >= n) return parse_error::bad_json;
      char c = s[i];
      if (c == '{' || c == '[') {
        if (++depth > max_depth) return parse_error::bad_command;
        in_object[depth] = c == '{';
        ++i;
        skip_ws();
        if (i < n && s[i] == (c == '{' ? '}' : ']')) {
          ++i;
          --depth;
          state = st::after;
        } else {
          state = c == '{' ? st::key : st::value;
        }
        continue;
      }
      if (c == '"') {
        if (!string()) return parse_error::bad_json;
      } else if (s.substr(i, 4) == "true" || s.substr(i, 4) == "null") {
        i += 4;
      } else if (s.substr(i, 5) == "false") {
        i += 5;
      } else {
        std::size_t len = number_length(s.substr(i));
        if (len == 0) return parse_error::bad_json;
        i += len;
      }
      state = st::after;
    } else if (state == st::key) {
      if (i >= n || s[i] != '"' || !string()) return parse_error::bad_json;
      skip_ws();
      if (i >= n || s[i] != ':') return parse_error::bad_json;
      ++i;
      state = st::value;
    } else {  // after a value
      if (depth == 0) return i == n ? parse_error::none : parse_error::bad_json;
      if (i >= n) return parse_error::bad_json;
      if (s[i] == ',') {
        ++i;
        state = in_object[depth] ? st::key : st::value;
      } else if (s[i] == (in_object[depth] ? '}' : ']')) {
        ++i;
        --depth;
      } else {
        return parse_error::bad_json;
      }
    }
  }
}

}  // namespace sb::proto::json
