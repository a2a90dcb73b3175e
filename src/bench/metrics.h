#pragma once
// The run's figures, computed as sglang.bench_serving's calculate_metrics() computes them, and printed in its
// table layout. Over the successful requests: input tokens are the dataset's prompt lengths, output tokens
// the server's completion counts; TPOT per request is (latency - TTFT) / (output tokens - 1) for requests
// with more than one output token; ITL pools every request's inter-token latencies; throughputs divide by
// the run's duration; concurrency is the summed E2E latency over the duration.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/protocol.h"

namespace radixlm::bench {

struct LatencySummary {  // milliseconds
  double mean = 0, median = 0, std = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
};

struct BenchmarkMetrics {
  int64_t completed = 0;
  int64_t failed = 0;
  int64_t total_input = 0;
  int64_t total_output = 0;
  int64_t total_output_retokenized = 0;
  std::optional<int64_t> total_input_server;  // the server's prompt token counts, when every answer had one
  double duration_s = 0;
  double request_throughput = 0, input_throughput = 0, output_throughput = 0, total_throughput = 0;
  double concurrency = 0;
  LatencySummary ttft, tpot, itl, e2e;
};

// `retokenize` (may be empty) counts the tokens of a generated text; without it the retokenized total is
// the server's total.
BenchmarkMetrics compute_metrics(const std::vector<RequestResult>& results, double duration_s,
                                 const std::function<int64_t(std::string_view)>& retokenize);

// The run's settings as they appear in the result table and JSON.
struct RunDescription {
  std::string backend;
  std::string dataset_name;
  double request_rate = 0;   // inf allowed
  int64_t max_concurrency = 0;  // 0: not set
  int64_t num_prompts = 0;
  std::optional<int64_t> sharegpt_output_len;
  int64_t random_input_len = 0;
  int64_t random_output_len = 0;
  double random_range_ratio = 0;
  uint64_t seed = 0;
  std::string base_url;
  std::string model;
};

std::string format_result_table(const RunDescription& run, const BenchmarkMetrics& metrics);

// One JSON object with every metric (SGLang's key names) and the per-request details (input_lens,
// output_lens, ttfts, itls, generated_texts, errors, e2e_latencies, start_times; seconds, as SGLang's).
nlohmann::json result_json(const RunDescription& run, const BenchmarkMetrics& metrics,
                           const std::vector<RequestResult>& results);

}  // namespace radixlm::bench
