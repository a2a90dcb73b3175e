#pragma once
// The engine's load and throughput figures for /metrics and /get_server_info (EngineSnapshot), and the
// bookkeeping behind them and behind SGLang's "Prefill batch." / "Decode batch." log lines. EngineMetrics
// lives on the scheduler thread; the engine copies a snapshot out under its lock after every step.

#include <cstdint>
#include <deque>
#include <string>

namespace radixlm {

// As SGLang reports them. Token counts are KV slots (positions); "used" is SGLang's num_used: the pool minus
// its free and evictable slots, i.e. what running requests hold plus cached prefixes they lock.
struct EngineSnapshot {
  int64_t num_running_reqs = 0;      // admitted and not finished (decoding, or prefilling)
  int64_t num_queue_reqs = 0;        // posted but not yet taken, plus the scheduler's waiting queue
  int64_t num_used_tokens = 0;
  int64_t max_total_num_tokens = 0;  // the KV pool
  double token_usage = 0.0;          // num_used_tokens / max_total_num_tokens
  double cache_hit_rate = 0.0;       // cached / prompt tokens of admitted requests, since the start
  double gen_throughput = 0.0;       // output tokens/s over the recent decode steps (decode_log_interval)
  int64_t max_running_requests = 0;
  int64_t context_length = 0;
  int64_t page_size = 0;
  // Cumulative, counted when a request finishes (any reason, abort included).
  int64_t prompt_tokens_total = 0;
  int64_t generation_tokens_total = 0;
  int64_t num_requests_total = 0;
  int64_t cached_tokens_total = 0;
};

class EngineMetrics {
 public:
  explicit EngineMetrics(int32_t decode_log_interval);

  // A request's first admission: its prompt and the part of it found in the prefix cache.
  void on_admitted(int64_t prompt_tokens, int64_t cached_tokens);
  void on_finished(int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens);
  // A step that decoded `tokens` running requests, from `start` to `end` (seconds). True when it is the
  // decode_log_interval-th decode step since the last log line.
  bool on_decode_step(double start, double end, int64_t tokens);

  // Output tokens per second over the last decode_log_interval decode steps: their tokens over the time from
  // the first one's start to the last one's end (idle time between them counts, as in SGLang's log).
  double gen_throughput() const;
  // The cumulative fields and the rates; the caller fills the load fields.
  void fill(EngineSnapshot& snapshot) const;

 private:
  struct DecodeStep {
    double start = 0.0;
    double end = 0.0;
    int64_t tokens = 0;
  };
  size_t window_;
  std::deque<DecodeStep> recent_;
  int64_t steps_since_log_ = 0;
  int64_t admitted_prompt_tokens_ = 0;
  int64_t admitted_cached_tokens_ = 0;
  int64_t prompt_tokens_total_ = 0;
  int64_t generation_tokens_total_ = 0;
  int64_t num_requests_total_ = 0;
  int64_t cached_tokens_total_ = 0;
};

// SGLang's log lines, with its wording and field order.
std::string prefill_log_line(int64_t new_seqs, int64_t new_tokens, int64_t cached_tokens, double token_usage,
                             int64_t running_reqs, int64_t queue_reqs);
std::string decode_log_line(int64_t running_reqs, int64_t used_tokens, double token_usage, double gen_throughput,
                            int64_t queue_reqs);

}  // namespace radixlm
