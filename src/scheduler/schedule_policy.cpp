#include "scheduler/schedule_policy.h"

#include <algorithm>
#include <map>
#include <span>

#include "cache/radix_cache.h"

namespace radixlm {
namespace {

bool by_arrival(const Request* a, const Request* b) { return a->arrival < b->arrival; }

std::span<const int32_t> matchable(const Request& r) {
  // The last token is always computed (its logits give the next token), so it never counts as cached.
  return std::span<const int32_t>(r.tokens).first(r.tokens.size() - 1);
}

void order_by_dfs_weight(std::vector<Request*>& waiting, RadixCache& cache) {
  // Each request hangs at the node its cached prefix ends at; a node's weight is the number of requests in
  // its subtree. The walk visits children heaviest first (ties: the lower node id, the older node).
  std::map<int64_t, std::vector<Request*>> at_node;
  std::map<int64_t, int64_t> weight;
  std::map<int64_t, std::vector<int64_t>> children;
  for (Request* r : waiting) {
    const int64_t node = cache.match_prefix(r->input.cache_namespace, matchable(*r), false).node;
    at_node[node].push_back(r);
    for (int64_t n = node;; n = cache.parent_of(n)) {
      if (weight[n]++ == 0 && n != kRootNode) children[cache.parent_of(n)].push_back(n);
      if (n == kRootNode) break;
    }
  }
  // Post-order, as SGLang's get_dfs_priority: a subtree's deeper requests go before the node's own.
  std::vector<Request*> ordered;
  std::vector<std::pair<int64_t, bool>> stack = {{kRootNode, false}};
  while (!stack.empty()) {
    const auto [node, children_done] = stack.back();
    stack.pop_back();
    if (children_done) {
      std::vector<Request*>& here = at_node[node];
      std::sort(here.begin(), here.end(), by_arrival);
      ordered.insert(ordered.end(), here.begin(), here.end());
      continue;
    }
    stack.emplace_back(node, true);
    std::vector<int64_t>& kids = children[node];
    std::sort(kids.begin(), kids.end(), [&](int64_t a, int64_t b) {
      return weight[a] != weight[b] ? weight[a] > weight[b] : a < b;
    });
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.emplace_back(*it, false);  // first kid on top
  }
  waiting = std::move(ordered);
}

}  // namespace

Expected<SchedulePolicy> parse_schedule_policy(const std::string& name) {
  if (name == "fcfs") return SchedulePolicy::kFcfs;
  if (name == "lpm") return SchedulePolicy::kLpm;
  if (name == "dfs-weight") return SchedulePolicy::kDfsWeight;
  if (name == "random") return SchedulePolicy::kRandom;
  if (name == "priority") return SchedulePolicy::kPriority;
  return make_error(StatusCode::kInvalidArgument,
                    "--schedule-policy '{}': want fcfs, lpm, dfs-weight, random or priority", name);
}

void order_waiting_requests(SchedulePolicy policy, std::vector<Request*>& waiting, PrefixCache& cache,
                            std::mt19937_64& rng) {
  std::sort(waiting.begin(), waiting.end(), by_arrival);
  auto* radix = dynamic_cast<RadixCache*>(&cache);
  switch (policy) {
    case SchedulePolicy::kFcfs:
      return;
    case SchedulePolicy::kLpm: {
      if (waiting.size() > kLpmFallbackQueueLength || radix == nullptr) return;
      std::map<uint64_t, int64_t> prefix;
      for (Request* r : waiting) prefix[r->id] = cache.match_prefix(r->input.cache_namespace, matchable(*r), false).num_tokens;
      std::stable_sort(waiting.begin(), waiting.end(),
                       [&](const Request* a, const Request* b) { return prefix[a->id] > prefix[b->id]; });
      return;
    }
    case SchedulePolicy::kDfsWeight:
      if (radix != nullptr) order_by_dfs_weight(waiting, *radix);
      return;
    case SchedulePolicy::kRandom:
      std::shuffle(waiting.begin(), waiting.end(), rng);
      return;
    case SchedulePolicy::kPriority:
      std::stable_sort(waiting.begin(), waiting.end(),
                       [](const Request* a, const Request* b) { return a->input.priority > b->input.priority; });
      return;
  }
}

}  // namespace radixlm
