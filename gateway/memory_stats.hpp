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

/// Entries of /proc/self/fd, not counting the one the count itself opens.
/// With private fd tables (one per shard thread) this is the calling
/// thread's table only.
std::uint64_t open_fd_count();

}  // namespace sb
