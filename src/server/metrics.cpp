#include "server/metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace radixlm::server {

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), buckets_(upper_bounds_.size() + 1, 0) {}

void Histogram::observe(double value, int64_t count, double sum) {
  if (count <= 0) return;
  // Prometheus buckets are "less than or equal"; NaN falls into +Inf as prometheus_client's does.
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin());
  std::lock_guard lock(mutex_);
  buckets_[std::isnan(value) ? upper_bounds_.size() : bucket] += count;
  sum_ += sum;
  count_ += count;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = upper_bounds_;
  std::lock_guard lock(mutex_);
  int64_t running = 0;
  for (int64_t b : buckets_) {
    running += b;
    s.cumulative.push_back(running);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

const std::vector<double>& time_to_first_token_buckets() {
  static const std::vector<double> buckets = {0.1, 0.2, 0.4, 0.6, 0.8, 1,  2,  4,   6,   8,
                                              10,  20,  40,  60,  80,  100, 200, 400};
  return buckets;
}

const std::vector<double>& inter_token_latency_buckets() {
  static const std::vector<double> buckets = {0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025,
                                              0.030, 0.035, 0.040, 0.060, 0.080, 0.100, 0.200, 0.400,
                                              0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000};
  return buckets;
}

const std::vector<double>& e2e_request_latency_buckets() {
  static const std::vector<double> buckets = {0.1, 0.2, 0.4, 0.6, 0.8, 1,   2,   4,   6,    8,    10,
                                              20,  40,  60,  80,  100, 200, 400, 600, 1200, 1800, 2400};
  return buckets;
}

ServerMetrics::ServerMetrics(std::string model_name)
    : model_name_(std::move(model_name)),
      ttft_(time_to_first_token_buckets()),
      itl_(inter_token_latency_buckets()),
      e2e_(e2e_request_latency_buckets()) {}

void ServerMetrics::observe_time_to_first_token(double seconds) { ttft_.observe(seconds); }

void ServerMetrics::observe_inter_token_latency(double interval_s, int64_t num_tokens) {
  if (num_tokens <= 0) return;
  itl_.observe(interval_s / static_cast<double>(num_tokens), num_tokens, interval_s);
}

void ServerMetrics::observe_finished_request(int64_t prompt_tokens, int64_t generation_tokens, int64_t cached_tokens,
                                             double e2e_latency_s, bool aborted) {
  {
    std::lock_guard lock(mutex_);
    counters_.prompt_tokens += prompt_tokens;
    counters_.generation_tokens += generation_tokens;
    counters_.cached_tokens += cached_tokens;
    counters_.requests += 1;
    if (aborted) counters_.aborted_requests += 1;
  }
  e2e_.observe(e2e_latency_s);
}

ServerMetrics::Counters ServerMetrics::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  std::string text = fmt::format("{}", value);
  // As prometheus_client writes floats: "1.0", not "1".
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

namespace {

class Writer {
 public:
  explicit Writer(const std::string& model_name)
      : label_("model_name=\"" + escape_label_value(model_name) + "\"") {}

  void header(const std::string& name, const char* help, const char* type) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(const std::string& name, double value, const std::string& extra_label = "") {
    out_ += name;
    out_ += '{';
    if (!extra_label.empty()) {
      out_ += extra_label;
      out_ += ',';
    }
    out_ += label_;
    out_ += "} ";
    out_ += format_metric_value(value);
    out_ += '\n';
  }
  void gauge(const std::string& name, const char* help, double value) {
    header(name, help, "gauge");
    sample(name, value);
  }
  void counter(const std::string& name, const char* help, double value) {
    header(name, help, "counter");
    sample(name, value);
  }
  void histogram(const std::string& name, const char* help, const Histogram::Snapshot& h) {
    header(name, help, "histogram");
    for (size_t i = 0; i < h.cumulative.size(); ++i) {
      const double bound = i < h.upper_bounds.size() ? h.upper_bounds[i] : INFINITY;
      sample(name + "_bucket", static_cast<double>(h.cumulative[i]), "le=\"" + format_metric_value(bound) + "\"");
    }
    sample(name + "_sum", h.sum);
    sample(name + "_count", static_cast<double>(h.count));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string label_;
  std::string out_;
};

}  // namespace

std::string ServerMetrics::render(const SchedulerGauges& gauges) const {
  Writer w(model_name_);
  w.gauge("sglang:num_running_reqs", "The number of running requests.", static_cast<double>(gauges.num_running_reqs));
  w.gauge("sglang:num_queue_reqs", "The number of requests in the waiting queue.",
          static_cast<double>(gauges.num_queue_reqs));
  w.gauge("sglang:token_usage", "The token usage.", gauges.token_usage);
  w.gauge("sglang:cache_hit_rate", "The prefix cache hit rate.", gauges.cache_hit_rate);
  w.gauge("sglang:gen_throughput", "The generation throughput (token/s).", gauges.gen_throughput);
  const Counters c = counters();
  w.counter("sglang:prompt_tokens_total", "Number of prefill tokens processed.", static_cast<double>(c.prompt_tokens));
  w.counter("sglang:generation_tokens_total", "Number of generation tokens processed.",
            static_cast<double>(c.generation_tokens));
  w.counter("sglang:cached_tokens_total", "Number of cached prompt tokens.", static_cast<double>(c.cached_tokens));
  w.counter("sglang:num_requests_total", "Number of requests processed.", static_cast<double>(c.requests));
  w.counter("sglang:num_aborted_requests_total", "Number of requests aborted.",
            static_cast<double>(c.aborted_requests));
  w.histogram("sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", ttft_.snapshot());
  w.histogram("sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", itl_.snapshot());
  w.histogram("sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds",
              e2e_.snapshot());
  return w.take();
}

}  // namespace radixlm::server
