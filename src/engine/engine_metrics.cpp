#include "engine/engine_metrics.h"

#include <algorithm>

#include <fmt/format.h>

namespace radixlm {

EngineMetrics::EngineMetrics(int32_t decode_log_interval)
    : window_(static_cast<size_t>(std::max(decode_log_interval, 1))) {}

void EngineMetrics::on_admitted(int64_t prompt_tokens, int64_t cached_tokens) {
  admitted_prompt_tokens_ += prompt_tokens;
  admitted_cached_tokens_ += cached_tokens;
}

void EngineMetrics::on_finished(int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens) {
  prompt_tokens_total_ += prompt_tokens;
  generation_tokens_total_ += completion_tokens;
  cached_tokens_total_ += cached_tokens;
  ++num_requests_total_;
}

bool EngineMetrics::on_decode_step(double start, double end, int64_t tokens) {
  recent_.push_back(DecodeStep{start, end, tokens});
  while (recent_.size() > window_) recent_.pop_front();
  if (++steps_since_log_ < static_cast<int64_t>(window_)) return false;
  steps_since_log_ = 0;
  return true;
}

double EngineMetrics::gen_throughput() const {
  if (recent_.empty()) return 0.0;
  int64_t tokens = 0;
  for (const DecodeStep& s : recent_) tokens += s.tokens;
  const double seconds = recent_.back().end - recent_.front().start;
  return seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0;
}

void EngineMetrics::fill(EngineSnapshot& snapshot) const {
  snapshot.cache_hit_rate = admitted_prompt_tokens_ > 0 ? static_cast<double>(admitted_cached_tokens_) /
                                                              static_cast<double>(admitted_prompt_tokens_)
                                                        : 0.0;
  snapshot.gen_throughput = gen_throughput();
  snapshot.prompt_tokens_total = prompt_tokens_total_;
  snapshot.generation_tokens_total = generation_tokens_total_;
  snapshot.num_requests_total = num_requests_total_;
  snapshot.cached_tokens_total = cached_tokens_total_;
}

std::string prefill_log_line(int64_t new_seqs, int64_t new_tokens, int64_t cached_tokens, double token_usage,
                             int64_t running_reqs, int64_t queue_reqs) {
  return fmt::format(
      "Prefill batch. #new-seq: {}, #new-token: {}, #cached-token: {}, token usage: {:.2f}, #running-req: {}, "
      "#queue-req: {}",
      new_seqs, new_tokens, cached_tokens, token_usage, running_reqs, queue_reqs);
}

std::string decode_log_line(int64_t running_reqs, int64_t used_tokens, double token_usage, double gen_throughput,
                            int64_t queue_reqs) {
  return fmt::format(
      "Decode batch. #running-req: {}, #token: {}, token usage: {:.2f}, gen throughput (token/s): {:.2f}, "
      "#queue-req: {}",
      running_reqs, used_tokens, token_usage, gen_throughput, queue_reqs);
}

}  // namespace radixlm
