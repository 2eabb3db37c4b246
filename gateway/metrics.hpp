#pragma once
// GET /metrics: the Prometheus text exposition format (version 0.0.4),
// rendered at scrape time on the main thread from the same relaxed counters
// as /stats (never a lock on a shard). docs/ops.md lists the metrics.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sb {

class shard;
class mesh;

/// The Content-Type of the exposition format.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric family, per shard (label shard="N") where the figure belongs
/// to a shard, process-wide otherwise. `fds_per_shard` is what each shard's
/// table may hold for clients; `version` goes into switchboard_info.
std::string metrics_text(const std::vector<std::unique_ptr<shard>>& shards, const mesh& m,
                         std::uint64_t fds_per_shard, std::string_view version);

}  // namespace sb
