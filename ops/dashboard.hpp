#pragma once
// The operator's dashboard on the ops port (ops/dashboard/): the page, its
// script and stylesheet, and uPlot's dist files, embedded at build time by
// ops/dashboard/embed.cmake, so that the gateway serves them without
// node_modules or the network. The page polls GET /stats.

#include <span>
#include <string_view>

namespace sb::ops {

/// One embedded file, served at an exact path.
struct dashboard_asset {
  std::string_view path;          // "/", "/dashboard.js", "/uplot.min.js"...
  std::string_view content_type;  // "text/html; charset=utf-8"...
  std::string_view bytes;         // the file as it is in the source tree
};

/// Every embedded file (for registering one route each). Static storage.
std::span<const dashboard_asset> dashboard_assets() noexcept;

/// The file served at `path` (exact match, no query), or nullptr.
const dashboard_asset* find_dashboard_asset(std::string_view path) noexcept;

}  // namespace sb::ops
