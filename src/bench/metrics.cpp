#include "bench/metrics.h"

#include <cmath>

#include <fmt/format.h>

#include "bench/stats.h"

namespace radixlm::bench {
namespace {

LatencySummary summarize_ms(const std::vector<double>& seconds) {
  std::vector<double> ms;
  ms.reserve(seconds.size());
  for (double s : seconds) ms.push_back(s * 1000.0);
  LatencySummary summary;
  summary.mean = mean(ms);
  summary.median = median(ms);
  summary.std = stddev(ms);
  summary.p90 = percentile(ms, 90);
  summary.p95 = percentile(ms, 95);
  summary.p99 = percentile(ms, 99);
  summary.max = max_value(ms);
  return summary;
}

}  // namespace

BenchmarkMetrics compute_metrics(const std::vector<RequestResult>& results, double duration_s,
                                 const std::function<int64_t(std::string_view)>& retokenize) {
  BenchmarkMetrics m;
  m.duration_s = duration_s;
  std::vector<double> ttfts, tpots, itls, e2es;
  int64_t server_input = 0;
  bool server_input_complete = true;
  for (const RequestResult& r : results) {
    if (!r.success) {
      ++m.failed;
      continue;
    }
    ++m.completed;
    m.total_input += r.prompt_len;
    m.total_output += r.output_len;
    m.total_output_retokenized += retokenize ? retokenize(r.generated_text) : r.output_len;
    if (r.server_prompt_tokens) {
      server_input += *r.server_prompt_tokens;
    } else {
      server_input_complete = false;
    }
    if (r.output_len > 1) tpots.push_back((r.latency_s - r.ttft_s) / static_cast<double>(r.output_len - 1));
    itls.insert(itls.end(), r.itl_s.begin(), r.itl_s.end());
    ttfts.push_back(r.ttft_s);
    e2es.push_back(r.latency_s);
  }
  if (m.completed > 0 && server_input_complete) m.total_input_server = server_input;
  const double d = duration_s > 0 ? duration_s : 1e-9;
  m.request_throughput = static_cast<double>(m.completed) / d;
  m.input_throughput = static_cast<double>(m.total_input) / d;
  m.output_throughput = static_cast<double>(m.total_output) / d;
  m.total_throughput = static_cast<double>(m.total_input + m.total_output) / d;
  double e2e_sum = 0;
  for (double e : e2es) e2e_sum += e;
  m.concurrency = e2e_sum / d;
  m.ttft = summarize_ms(ttfts);
  m.tpot = summarize_ms(tpots);
  m.itl = summarize_ms(itls);
  m.e2e = summarize_ms(e2es);
  return m;
}

std::string format_result_table(const RunDescription& run, const BenchmarkMetrics& m) {
  std::string out;
  const auto line = [&out](std::string_view label, const std::string& value) {
    out += fmt::format("{:<40} {:<10}\n", label, value);
  };
  const auto number = [](double v) { return fmt::format("{:.2f}", v); };
  const auto count = [](int64_t v) { return std::to_string(v); };
  const auto section = [&out](std::string_view title, char fill) {  // centred as Python's "{:c^50}"
    const size_t pad = title.size() < 50 ? 50 - title.size() : 0;
    out += std::string(pad / 2, fill) + std::string(title) + std::string(pad - pad / 2, fill) + "\n";
  };
  out += "\n";
  section(" Serving Benchmark Result ", '=');
  line("Backend:", run.backend);
  line("Traffic request rate:", std::isinf(run.request_rate) ? "inf" : fmt::format("{}", run.request_rate));
  line("Max request concurrency:", run.max_concurrency > 0 ? count(run.max_concurrency) : "not set");
  line("Successful requests:", count(m.completed));
  line("Failed requests:", count(m.failed));
  line("Benchmark duration (s):", number(m.duration_s));
  line("Total input tokens:", count(m.total_input));
  line("Total generated tokens:", count(m.total_output));
  line("Total generated tokens (retokenized):", count(m.total_output_retokenized));
  line("Request throughput (req/s):", number(m.request_throughput));
  line("Input token throughput (tok/s):", number(m.input_throughput));
  line("Output token throughput (tok/s):", number(m.output_throughput));
  line("Total token throughput (tok/s):", number(m.total_throughput));
  line("Concurrency:", number(m.concurrency));
  const auto block = [&](std::string_view title, std::string_view name, const LatencySummary& s, bool itl_extras) {
    section(title, '-');
    line(fmt::format("Mean {} (ms):", name), number(s.mean));
    line(fmt::format("Median {} (ms):", name), number(s.median));
    line(fmt::format("P90 {} (ms):", name), number(s.p90));
    if (itl_extras) line(fmt::format("P95 {} (ms):", name), number(s.p95));
    line(fmt::format("P99 {} (ms):", name), number(s.p99));
    if (itl_extras) line(fmt::format("Max {} (ms):", name), number(s.max));
  };
  block("End-to-End Latency", "E2E Latency", m.e2e, false);
  block("Time to First Token", "TTFT", m.ttft, false);
  block("Time per Output Token (excl. 1st token)", "TPOT", m.tpot, false);
  block("Inter-Token Latency", "ITL", m.itl, true);
  out += std::string(50, '=') + "\n";
  return out;
}

nlohmann::json result_json(const RunDescription& run, const BenchmarkMetrics& m,
                           const std::vector<RequestResult>& results) {
  using nlohmann::json;
  json j;
  j["backend"] = run.backend;
  j["dataset_name"] = run.dataset_name;
  // JSON has no infinity; "inf" is what the flag takes.
  j["request_rate"] = std::isinf(run.request_rate) ? json("inf") : json(run.request_rate);
  j["max_concurrency"] = run.max_concurrency > 0 ? json(run.max_concurrency) : json(nullptr);
  j["num_prompts"] = run.num_prompts;
  j["sharegpt_output_len"] = run.sharegpt_output_len ? json(*run.sharegpt_output_len) : json(nullptr);
  j["random_input_len"] = run.random_input_len;
  j["random_output_len"] = run.random_output_len;
  j["random_range_ratio"] = run.random_range_ratio;
  j["seed"] = run.seed;
  j["base_url"] = run.base_url;
  j["model"] = run.model;

  j["duration"] = m.duration_s;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input;
  j["total_input_tokens_server"] = m.total_input_server ? json(*m.total_input_server) : json(nullptr);
  j["total_output_tokens"] = m.total_output;
  j["total_output_tokens_retokenized"] = m.total_output_retokenized;
  j["request_throughput"] = m.request_throughput;
  j["input_throughput"] = m.input_throughput;
  j["output_throughput"] = m.output_throughput;
  j["total_throughput"] = m.total_throughput;
  const auto put = [&j](std::string_view name, const LatencySummary& s, bool itl_extras) {
    j[fmt::format("mean_{}_ms", name)] = s.mean;
    j[fmt::format("median_{}_ms", name)] = s.median;
    j[fmt::format("std_{}_ms", name)] = s.std;
    j[fmt::format("p90_{}_ms", name)] = s.p90;
    j[fmt::format("p99_{}_ms", name)] = s.p99;
    if (itl_extras) {
      j[fmt::format("p95_{}_ms", name)] = s.p95;
      j[fmt::format("max_{}_ms", name)] = s.max;
    }
  };
  put("e2e_latency", m.e2e, false);
  put("ttft", m.ttft, false);
  put("tpot", m.tpot, false);
  put("itl", m.itl, true);
  j["concurrency"] = m.concurrency;

  json input_lens = json::array(), output_lens = json::array(), ttfts = json::array(), itls = json::array(),
       texts = json::array(), errors = json::array(), e2es = json::array(), starts = json::array();
  for (const RequestResult& r : results) {
    input_lens.push_back(r.prompt_len);
    output_lens.push_back(r.success ? r.output_len : 0);
    ttfts.push_back(r.ttft_s);
    itls.push_back(r.itl_s);
    texts.push_back(r.generated_text);
    errors.push_back(r.error);
    e2es.push_back(r.latency_s);
    starts.push_back(r.start_s);
  }
  j["input_lens"] = std::move(input_lens);
  j["output_lens"] = std::move(output_lens);
  j["ttfts"] = std::move(ttfts);
  j["itls"] = std::move(itls);
  j["generated_texts"] = std::move(texts);
  j["errors"] = std::move(errors);
  j["e2e_latencies"] = std::move(e2es);
  j["start_times"] = std::move(starts);
  return j;
}

}  // namespace radixlm::bench
