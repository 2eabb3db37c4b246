#pragma once
// Minimal structured-enough logging: one line per event on stderr, with a
// UTC timestamp, a level and the thread's name (shard). Startup and rare
// events only; the data path counts instead of logging.

#include <fmt/core.h>

#include <optional>
#include <string_view>

namespace sb::log {

enum class level { debug, info, warn, error };

/// Any thread: writes one complete line (a single write(2), so lines from
/// different shards never interleave).
void write(level lv, std::string_view msg);

/// Any thread: sets the name printed with this thread's lines ("main", "shard-3").
void set_thread_name(std::string_view name);

/// Any thread: lines below `lv` are not written (config `log_level`,
/// reloaded on SIGHUP). Default: info.
void set_min_level(level lv) noexcept;
level min_level() noexcept;
/// "debug", "info", "warn", "error"; nullopt for anything else.
std::optional<level> parse_level(std::string_view name) noexcept;

template <typename... A>
void debug(fmt::format_string<A...> f, A&&... a) {
  if (min_level() <= level::debug) write(level::debug, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void info(fmt::format_string<A...> f, A&&... a) { write(level::info, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A>
void warn(fmt::format_string<A...> f, A&&... a) { write(level::warn, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A>
void error(fmt::format_string<A...> f, A&&... a) { write(level::error, fmt::format(f, std::forward<A>(a)...)); }

}  // namespace sb::log
