#pragma once
// The order in which waiting requests are offered to the prefill adder, as SGLang's SchedulePolicy:
//   fcfs        arrival order
//   lpm         longest cached prefix first (ties: arrival); past 128 waiting it falls back to fcfs, since
//               matching every request each step gets expensive
//   dfs-weight  a depth-first walk of the radix tree, heavier subtrees (more waiting requests) first, so
//               requests sharing a prefix run together
//   random      a shuffle from the scheduler's seeded generator
//   priority    higher `priority` first, then arrival

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cache/prefix_cache.h"
#include "core/status.h"
#include "scheduler/request.h"

namespace radixlm {

enum class SchedulePolicy { kFcfs, kLpm, kDfsWeight, kRandom, kPriority };

inline constexpr size_t kLpmFallbackQueueLength = 128;

Expected<SchedulePolicy> parse_schedule_policy(const std::string& name);

// Reorders `waiting` in place.
void order_waiting_requests(SchedulePolicy policy, std::vector<Request*>& waiting, PrefixCache& cache,
                            std::mt19937_64& rng);

}  // namespace radixlm
