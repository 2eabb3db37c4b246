#include "gateway/memory_stats.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <system_error>
#include <cstdio>

namespace sb {

namespace {

using mallctl_fn = int (*)(const char*, void*, std::size_t*, void*, std::size_t);

// Looked up at run time so the gateway library links without jemalloc (the
// sanitizer builds use their own allocator).
mallctl_fn find_mallctl() {
  static mallctl_fn fn = reinterpret_cast<mallctl_fn>(dlsym(RTLD_DEFAULT, "mallctl"));
  return fn;
}

}  // namespace

memory_figures read_memory_figures() {
  memory_figures m;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long long size = 0, resident = 0;
    if (std::fscanf(f, "%llu %llu", &size, &resident) == 2) {
      m.rss_bytes = resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    }
    std::fclose(f);
  }
  if (mallctl_fn mallctl = find_mallctl()) {
    // jemalloc caches its statistics; advancing the epoch refreshes them.
    std::uint64_t epoch = 1;
    std::size_t len = sizeof(epoch);
    mallctl("epoch", &epoch, &len, &epoch, len);
    memory_figures::allocator a;
    auto read = [&](const char* name, std::uint64_t& out) {
      std::size_t v = 0, n = sizeof(v);
      if (mallctl(name, &v, &n, nullptr, 0) == 0) out = v;
    };
    read("stats.allocated", a.allocated);
    read("stats.active", a.active);
    read("stats.resident", a.resident);
    read("stats.mapped", a.mapped);
    m.jemalloc = a;
  }
  return m;
}

std::uint64_t open_fd_count() {
  std::uint64_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n > 0 ? n - 1 : 0;
}

}  // namespace sb
