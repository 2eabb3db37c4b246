#include "ops/dashboard.hpp"

namespace sb::ops {

const dashboard_asset* find_dashboard_asset(std::string_view path) noexcept {
  for (const auto& a : dashboard_assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

}  // namespace sb::ops
