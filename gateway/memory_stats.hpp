#pragma once
// The process's memory figures for /stats (and /metrics later): RSS from the
// kernel and, when jemalloc is the allocator, its own counters. Main thread
// (the ops endpoint); reading them takes no lock on the data path.

#include <cstdint>
#include <optional>

namespace sb {

struct memory_figures {
  std::uint64_t rss_bytes = 0;
  /// jemalloc's stats.allocated / active / resident / mapped; absent when
  /// jemalloc is not the allocator (sanitizer builds).
  struct allocator {
    std::uint64_t allocated = 0;  // bytes in live allocations
    std::uint64_t active = 0;     // bytes in pages holding live allocations
    std::uint64_t resident = 0;   // bytes the allocator keeps resident (incl. its metadata, dirty pages)
    std::uint64_t mapped = 0;
  };
  std::optional<allocator> jemalloc;
};

memory_figures read_memory_figures();

}  // namespace sb
