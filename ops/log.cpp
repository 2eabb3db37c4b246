#include "ops/log.hpp"

#include <fmt/chrono.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

namespace sb::log {
namespace {
thread_local std::string t_name = "main";
std::atomic<level> g_min{level::info};

const char* level_name(level lv) {
  switch (lv) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "WARN";
    case level::error: return "ERROR";
  }
  return "?";
}
}  // namespace

void set_thread_name(std::string_view name) { t_name.assign(name); }

void set_min_level(level lv) noexcept { g_min.store(lv, std::memory_order_relaxed); }
level min_level() noexcept { return g_min.load(std::memory_order_relaxed); }

std::optional<level> parse_level(std::string_view name) noexcept {
  if (name == "debug") return level::debug;
  if (name == "info") return level::info;
  if (name == "warn") return level::warn;
  if (name == "error") return level::error;
  return std::nullopt;
}

void write(level lv, std::string_view msg) {
  if (lv < min_level()) return;
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::string line = fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z {} [{}] {}\n",
                                 std::chrono::floor<std::chrono::seconds>(now), ms.count(), level_name(lv), t_name, msg);
  // One write(2) per line so concurrent shards never interleave mid-line.
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace sb::log
