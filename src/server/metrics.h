#pragma once
// The server's Prometheus metrics, with SGLang's names (`sglang:` prefix, a model_name label) and its default
// histogram buckets (python/sglang/srt/metrics/collector.py), rendered in the text exposition format 0.0.4.
// The engine bridge observes latencies and counts tokens as requests run (any thread); the scheduler's gauges
// are not kept here but read from the engine when /metrics is served and passed to render().

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace radixlm::server {

// A cumulative Prometheus histogram. Thread-safe.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);

  // `count` observations of `value` at once, adding `sum` to the total (SGLang's inter-token latency counts
  // an interval of k tokens as k observations of interval/k whose sum is the interval).
  void observe(double value, int64_t count, double sum);
  void observe(double value) { observe(value, 1, value); }

  struct Snapshot {
    std::vector<double> upper_bounds;     // finite, ascending; +Inf is implied
    std::vector<int64_t> cumulative;      // one per bound, then the +Inf bucket (== count)
    double sum = 0.0;
    int64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> upper_bounds_;
  mutable std::mutex mutex_;
  std::vector<int64_t> buckets_;  // non-cumulative, one per bound plus +Inf
  double sum_ = 0.0;
  int64_t count_ = 0;
};

// The scheduler's state at the moment /metrics is served (from Engine::snapshot()).
struct SchedulerGauges {
  int64_t num_running_reqs = 0;
  int64_t num_queue_reqs = 0;
  double token_usage = 0.0;     // fraction of the KV pool in use
  double cache_hit_rate = 0.0;  // prefix-cache hit rate
  double gen_throughput = 0.0;  // tokens/s
};

// SGLang's default buckets, seconds.
const std::vector<double>& time_to_first_token_buckets();
const std::vector<double>& inter_token_latency_buckets();
const std::vector<double>& e2e_request_latency_buckets();

class ServerMetrics {
 public:
  explicit ServerMetrics(std::string model_name);

  void observe_time_to_first_token(double seconds);
  // `interval_s` since the previous chunk with tokens, which brought `num_tokens` (>= 1) new tokens.
  void observe_inter_token_latency(double interval_s, int64_t num_tokens);
  // At a request's end: SGLang's observe_one_finished_request (token counters, request counter, e2e).
  void observe_finished_request(int64_t prompt_tokens, int64_t generation_tokens, int64_t cached_tokens,
                                double e2e_latency_s, bool aborted);

  // The whole exposition text (Content-Type: text/plain; version=0.0.4).
  std::string render(const SchedulerGauges& gauges) const;

  const std::string& model_name() const { return model_name_; }

  struct Counters {
    int64_t prompt_tokens = 0;
    int64_t generation_tokens = 0;
    int64_t cached_tokens = 0;
    int64_t requests = 0;
    int64_t aborted_requests = 0;
  };
  Counters counters() const;
  const Histogram& time_to_first_token() const { return ttft_; }
  const Histogram& inter_token_latency() const { return itl_; }
  const Histogram& e2e_request_latency() const { return e2e_; }

 private:
  std::string model_name_;
  mutable std::mutex mutex_;
  Counters counters_;
  Histogram ttft_;
  Histogram itl_;
  Histogram e2e_;
};

// A Prometheus label value with its escapes (backslash, double quote, newline).
std::string escape_label_value(const std::string& value);
// A sample value as Prometheus writes it: shortest round-trip decimal, "+Inf", "-Inf", "NaN".
std::string format_metric_value(double value);

}  // namespace radixlm::server
