#include "bench/metrics.h"

#include <limits>

#include <gtest/gtest.h>

namespace radixlm::bench {
namespace {

RequestResult ok_result(int64_t prompt_len, int64_t output_len, double ttft, double latency, std::vector<double> itl) {
  RequestResult r;
  r.success = true;
  r.prompt_len = prompt_len;
  r.output_len = output_len;
  r.ttft_s = ttft;
  r.latency_s = latency;
  r.itl_s = std::move(itl);
  r.generated_text = std::string(static_cast<size_t>(output_len), 'x');
  return r;
}

TEST(Metrics, AsBenchServingComputesThem) {
  std::vector<RequestResult> results;
  results.push_back(ok_result(10, 5, 0.1, 0.5, {0.1, 0.1, 0.1, 0.1}));
  results.push_back(ok_result(20, 1, 0.2, 0.2, {}));  // one output token: no TPOT
  RequestResult failed;
  failed.prompt_len = 30;
  failed.error = "HTTP 429: full";
  results.push_back(failed);
  results.push_back(ok_result(30, 3, 0.3, 0.9, {0.2, 0.4}));

  const BenchmarkMetrics m = compute_metrics(results, 2.0, {});
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_input, 60);
  EXPECT_EQ(m.total_output, 9);
  EXPECT_EQ(m.total_output_retokenized, 9);
  EXPECT_DOUBLE_EQ(m.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(m.input_throughput, 30.0);
  EXPECT_DOUBLE_EQ(m.output_throughput, 4.5);
  EXPECT_DOUBLE_EQ(m.total_throughput, 34.5);
  EXPECT_NEAR(m.concurrency, (0.5 + 0.2 + 0.9) / 2.0, 1e-12);
  EXPECT_NEAR(m.ttft.mean, 200.0, 1e-9);
  EXPECT_NEAR(m.ttft.median, 200.0, 1e-9);
  // TPOT: (0.5 - 0.1) / 4 = 0.1 s and (0.9 - 0.3) / 2 = 0.3 s.
  EXPECT_NEAR(m.tpot.mean, 200.0, 1e-9);
  EXPECT_NEAR(m.tpot.p90, 280.0, 1e-9);
  // ITL pools 0.1 x4, 0.2, 0.4.
  EXPECT_NEAR(m.itl.mean, 1000.0 * 1.0 / 6.0, 1e-9);
  EXPECT_NEAR(m.itl.max, 400.0, 1e-9);
  EXPECT_NEAR(m.e2e.p99, 1000.0 * (0.5 + 0.98 * 0.4), 1e-9);  // sorted 0.2, 0.5, 0.9: rank 1.98
  EXPECT_FALSE(m.total_input_server.has_value());

  const BenchmarkMetrics retok = compute_metrics(results, 2.0, [](std::string_view text) {
    return static_cast<int64_t>(text.size()) * 2;
  });
  EXPECT_EQ(retok.total_output_retokenized, 18);
}

TEST(Metrics, AllFailedGivesZerosNotNaN) {
  RequestResult failed;
  failed.error = "connect: refused";
  const BenchmarkMetrics m = compute_metrics({failed, failed}, 0.0, {});
  EXPECT_EQ(m.completed, 0);
  EXPECT_EQ(m.failed, 2);
  EXPECT_EQ(m.ttft.mean, 0.0);
  EXPECT_EQ(m.request_throughput, 0.0);
}

TEST(Metrics, TableAndJson) {
  std::vector<RequestResult> results{ok_result(10, 4, 0.1, 0.4, {0.1, 0.1, 0.1})};
  results[0].server_prompt_tokens = 11;
  const BenchmarkMetrics m = compute_metrics(results, 1.0, {});
  RunDescription run;
  run.backend = "sglang";
  run.dataset_name = "random";
  run.request_rate = std::numeric_limits<double>::infinity();
  run.num_prompts = 1;
  const std::string table = format_result_table(run, m);
  EXPECT_NE(table.find("============ Serving Benchmark Result ============\n"), std::string::npos);
  EXPECT_NE(table.find("Backend:                                 sglang    \n"), std::string::npos);
  EXPECT_NE(table.find("Traffic request rate:                    inf"), std::string::npos);
  EXPECT_NE(table.find("Max request concurrency:                 not set"), std::string::npos);
  EXPECT_NE(table.find("Successful requests:                     1"), std::string::npos);
  EXPECT_NE(table.find("---------------Time to First Token----------------\n"), std::string::npos);
  EXPECT_NE(table.find("Mean TTFT (ms):                          100.00"), std::string::npos);
  EXPECT_NE(table.find("P90 ITL (ms):"), std::string::npos);

  const nlohmann::json j = result_json(run, m, results);
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_TRUE(j["max_concurrency"].is_null());
  EXPECT_EQ(j["completed"], 1);
  EXPECT_EQ(j["total_input_tokens_server"], 11);
  for (const char* key : {"duration", "request_throughput", "input_throughput", "output_throughput",
                          "mean_ttft_ms", "median_ttft_ms", "p90_ttft_ms", "p99_ttft_ms", "mean_tpot_ms",
                          "median_tpot_ms", "p90_tpot_ms", "p99_tpot_ms", "mean_itl_ms", "median_itl_ms",
                          "p90_itl_ms", "p95_itl_ms", "p99_itl_ms", "max_itl_ms", "mean_e2e_latency_ms",
                          "median_e2e_latency_ms", "p90_e2e_latency_ms", "p99_e2e_latency_ms", "concurrency"}) {
    EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_TRUE(j[key].is_number()) << key;
  }
  EXPECT_EQ(j["output_lens"], nlohmann::json({4}));
  EXPECT_EQ(j["itls"][0].size(), 3u);
}

}  // namespace
}  // namespace radixlm::bench
