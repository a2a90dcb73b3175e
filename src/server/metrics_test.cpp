// ServerMetrics renders Prometheus text format 0.0.4 that a strict parser written here (from the format's
// specification, not from the renderer) accepts: HELP and TYPE before each family's samples, names and label
// syntax, escapes, cumulative buckets ending at +Inf == _count; the numbers are the ones observed, SGLang's
// bucket boundaries are used, and concurrent observations are all counted.

#include "server/metrics.h"

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace radixlm::server {
namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0.0;
};

struct Family {
  std::string help;
  std::string type;
  std::vector<Sample> samples;
};

double parse_value(const std::string& text) {
  if (text == "+Inf") return INFINITY;
  if (text == "-Inf") return -INFINITY;
  if (text == "NaN") return NAN;
  size_t used = 0;
  const double v = std::stod(text, &used);
  if (used != text.size()) throw std::runtime_error("bad value '" + text + "'");
  return v;
}

// Label set `{a="x",b="y"}` with \\, \" and \n escapes; throws on anything else.
std::map<std::string, std::string> parse_labels(const std::string& text) {
  std::map<std::string, std::string> labels;
  size_t i = 0;
  static const std::regex label_name("[a-zA-Z_][a-zA-Z0-9_]*");
  while (i < text.size()) {
    const size_t eq = text.find('=', i);
    if (eq == std::string::npos) throw std::runtime_error("label without '='");
    const std::string name = text.substr(i, eq - i);
    if (!std::regex_match(name, label_name)) throw std::runtime_error("bad label name '" + name + "'");
    if (eq + 1 >= text.size() || text[eq + 1] != '"') throw std::runtime_error("label value not quoted");
    std::string value;
    size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\') {
        if (j + 1 >= text.size()) throw std::runtime_error("dangling escape");
        const char e = text[++j];
        if (e == '\\') value += '\\';
        else if (e == '"') value += '"';
        else if (e == 'n') value += '\n';
        else throw std::runtime_error("bad escape");
      } else if (text[j] == '\n') {
        throw std::runtime_error("raw newline in a label value");
      } else {
        value += text[j];
      }
    }
    if (j >= text.size()) throw std::runtime_error("unterminated label value");
    if (!labels.emplace(name, value).second) throw std::runtime_error("repeated label " + name);
    i = j + 1;
    if (i < text.size()) {
      if (text[i] != ',') throw std::runtime_error("labels not separated by ','");
      ++i;
    }
  }
  return labels;
}

// The family a sample belongs to: histogram samples carry _bucket/_sum/_count after the family name.
std::string family_of(const std::string& sample, const std::map<std::string, Family>& families) {
  if (families.count(sample)) return sample;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (sample.size() > s.size() && sample.compare(sample.size() - s.size(), s.size(), s) == 0) {
      const std::string base = sample.substr(0, sample.size() - s.size());
      if (families.count(base) && families.at(base).type == "histogram") return base;
    }
  }
  throw std::runtime_error("sample " + sample + " has no TYPE line before it");
}

std::map<std::string, Family> parse_exposition(const std::string& text) {
  if (text.empty() || text.back() != '\n') throw std::runtime_error("the text must end with a newline");
  std::map<std::string, Family> families;
  static const std::regex metric_name("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex help_line("# HELP ([^ ]+) (.*)");
  static const std::regex type_line("# TYPE ([^ ]+) (counter|gauge|histogram|summary|untyped)");
  static const std::regex sample_line("([^{ ]+)(\\{(.*)\\})? ([^ ]+)");
  std::istringstream in(text);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (line.empty()) throw std::runtime_error("empty line");
    if (std::regex_match(line, m, help_line)) {
      if (!std::regex_match(m[1].str(), metric_name)) throw std::runtime_error("bad name in " + line);
      Family& f = families[m[1].str()];
      if (!f.help.empty() || !f.samples.empty()) throw std::runtime_error("HELP after samples or twice: " + line);
      f.help = m[2].str();
    } else if (std::regex_match(line, m, type_line)) {
      Family& f = families[m[1].str()];
      if (!f.type.empty() || !f.samples.empty()) throw std::runtime_error("TYPE after samples or twice: " + line);
      f.type = m[2].str();
    } else if (line[0] == '#') {
      throw std::runtime_error("unexpected comment: " + line);
    } else if (std::regex_match(line, m, sample_line)) {
      if (!std::regex_match(m[1].str(), metric_name)) throw std::runtime_error("bad sample name in " + line);
      Sample s{m[1].str(), parse_labels(m[3].str()), parse_value(m[4].str())};
      families[family_of(s.name, families)].samples.push_back(std::move(s));
    } else {
      throw std::runtime_error("unparseable line: " + line);
    }
  }
  return families;
}

// A histogram family's buckets: bounds ascending, counts cumulative, +Inf last and equal to _count.
void check_histogram(const Family& f, const std::vector<double>& want_bounds, int64_t want_count, double want_sum) {
  std::vector<double> bounds;
  std::vector<double> counts;
  double sum = NAN, count = NAN;
  for (const Sample& s : f.samples) {
    if (s.name.size() > 7 && s.name.substr(s.name.size() - 7) == "_bucket") {
      ASSERT_TRUE(s.labels.count("le"));
      bounds.push_back(parse_value(s.labels.at("le")));
      counts.push_back(s.value);
    } else if (s.name.substr(s.name.size() - 4) == "_sum") {
      sum = s.value;
    } else {
      count = s.value;
    }
  }
  ASSERT_FALSE(bounds.empty());
  EXPECT_TRUE(std::isinf(bounds.back()));
  for (size_t i = 1; i < bounds.size(); ++i) {
    EXPECT_LT(bounds[i - 1], bounds[i]);
    EXPECT_LE(counts[i - 1], counts[i]);
  }
  std::vector<double> finite(bounds.begin(), bounds.end() - 1);
  EXPECT_EQ(finite, want_bounds);
  EXPECT_EQ(counts.back(), count);
  EXPECT_EQ(count, static_cast<double>(want_count));
  EXPECT_NEAR(sum, want_sum, 1e-9);
}

double bucket_count(const Family& f, const std::string& le) {
  for (const Sample& s : f.samples) {
    if (s.labels.count("le") && s.labels.at("le") == le) return s.value;
  }
  return NAN;
}

TEST(Metrics, RendersStrictlyParseableTextWithTheObservedNumbers) {
  ServerMetrics metrics("org/model \"quoted\" \\ back\nslash");
  metrics.observe_time_to_first_token(0.15);
  metrics.observe_time_to_first_token(3.0);
  metrics.observe_inter_token_latency(0.009, 3);  // three tokens of 3 ms: the 0.004 bucket
  metrics.observe_inter_token_latency(0.05, 1);
  metrics.observe_finished_request(10, 4, 2, 0.5, false);
  metrics.observe_finished_request(7, 0, 0, 5000.0, true);  // beyond every e2e bucket: only +Inf

  SchedulerGauges gauges;
  gauges.num_running_reqs = 3;
  gauges.num_queue_reqs = 5;
  gauges.token_usage = 0.25;
  gauges.cache_hit_rate = 0.5;
  gauges.gen_throughput = 123.5;
  const std::string text = metrics.render(gauges);
  std::map<std::string, Family> families;
  ASSERT_NO_THROW(families = parse_exposition(text)) << text;

  for (const auto& [name, f] : families) {
    EXPECT_EQ(name.rfind("sglang:", 0), 0u) << name;
    EXPECT_FALSE(f.help.empty()) << name;
    EXPECT_FALSE(f.type.empty()) << name;
    ASSERT_FALSE(f.samples.empty()) << name;
    for (const Sample& s : f.samples) EXPECT_EQ(s.labels.at("model_name"), "org/model \"quoted\" \\ back\nslash");
  }
  auto value = [&](const std::string& name) {
    EXPECT_EQ(families.at(name).samples.size(), 1u) << name;
    return families.at(name).samples.at(0).value;
  };
  EXPECT_EQ(families.at("sglang:num_running_reqs").type, "gauge");
  EXPECT_EQ(value("sglang:num_running_reqs"), 3);
  EXPECT_EQ(value("sglang:num_queue_reqs"), 5);
  EXPECT_EQ(value("sglang:token_usage"), 0.25);
  EXPECT_EQ(value("sglang:cache_hit_rate"), 0.5);
  EXPECT_EQ(value("sglang:gen_throughput"), 123.5);
  EXPECT_EQ(families.at("sglang:prompt_tokens_total").type, "counter");
  EXPECT_EQ(value("sglang:prompt_tokens_total"), 17);
  EXPECT_EQ(value("sglang:generation_tokens_total"), 4);
  EXPECT_EQ(value("sglang:cached_tokens_total"), 2);
  EXPECT_EQ(value("sglang:num_requests_total"), 2);
  EXPECT_EQ(value("sglang:num_aborted_requests_total"), 1);

  const Family& ttft = families.at("sglang:time_to_first_token_seconds");
  EXPECT_EQ(ttft.type, "histogram");
  check_histogram(ttft, {0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400}, 2, 3.15);
  EXPECT_EQ(bucket_count(ttft, "0.1"), 0);
  EXPECT_EQ(bucket_count(ttft, "0.2"), 1);
  EXPECT_EQ(bucket_count(ttft, "2.0"), 1);
  EXPECT_EQ(bucket_count(ttft, "4.0"), 2);

  const Family& itl = families.at("sglang:inter_token_latency_seconds");
  check_histogram(itl,
                  {0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060, 0.080, 0.100,
                   0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000},
                  4, 0.059);
  EXPECT_EQ(bucket_count(itl, "0.002"), 0);
  EXPECT_EQ(bucket_count(itl, "0.004"), 3);
  EXPECT_EQ(bucket_count(itl, "0.04"), 3);
  EXPECT_EQ(bucket_count(itl, "0.06"), 4);

  const Family& e2e = families.at("sglang:e2e_request_latency_seconds");
  check_histogram(e2e, {0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 600, 1200, 1800, 2400},
                  2, 5000.5);
  EXPECT_EQ(bucket_count(e2e, "2400.0"), 1);
  EXPECT_EQ(bucket_count(e2e, "+Inf"), 2);
}

TEST(Metrics, AValueOnABoundaryCountsInThatBucket) {
  Histogram h({0.1, 1.0});
  h.observe(0.1);
  h.observe(1.0);
  h.observe(NAN);
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<int64_t>{1, 2, 3}));
}

TEST(Metrics, ConcurrentObservationsAreAllCounted) {
  ServerMetrics metrics("m");
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        metrics.observe_time_to_first_token(0.3);
        metrics.observe_inter_token_latency(0.02, 2);
        metrics.observe_finished_request(3, 2, 1, 0.7, i % 2 == 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(metrics.time_to_first_token().snapshot().count, 8000);
  EXPECT_EQ(metrics.inter_token_latency().snapshot().count, 16000);
  EXPECT_EQ(metrics.e2e_request_latency().snapshot().count, 8000);
  const ServerMetrics::Counters c = metrics.counters();
  EXPECT_EQ(c.prompt_tokens, 24000);
  EXPECT_EQ(c.generation_tokens, 16000);
  EXPECT_EQ(c.cached_tokens, 8000);
  EXPECT_EQ(c.requests, 8000);
  EXPECT_EQ(c.aborted_requests, 4000);
  EXPECT_NO_THROW(parse_exposition(metrics.render({})));
}

TEST(Metrics, ValuesAreWrittenAsPrometheusReadsThem) {
  EXPECT_EQ(format_metric_value(1.0), "1.0");
  EXPECT_EQ(format_metric_value(0.25), "0.25");
  EXPECT_EQ(format_metric_value(1e-7), "1e-07");
  EXPECT_EQ(format_metric_value(INFINITY), "+Inf");
  EXPECT_EQ(format_metric_value(-INFINITY), "-Inf");
  EXPECT_EQ(format_metric_value(NAN), "NaN");
  EXPECT_EQ(parse_value(format_metric_value(0.1 + 0.2)), 0.1 + 0.2);  // round-trips exactly
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(Metrics, TheParserRejectsMalformedText) {
  // The checks above are only as good as this parser: it must refuse what Prometheus refuses.
  EXPECT_THROW(parse_exposition("x 1\n"), std::runtime_error);                                  // no TYPE
  EXPECT_THROW(parse_exposition("# TYPE x gauge\nx{a=\"b} 1\n"), std::runtime_error);           // unterminated
  EXPECT_THROW(parse_exposition("# TYPE x gauge\nx{a=\"b\\q\"} 1\n"), std::runtime_error);      // bad escape
  EXPECT_THROW(parse_exposition("# TYPE x gauge\nx 1x\n"), std::runtime_error);                 // bad value
  EXPECT_THROW(parse_exposition("# TYPE x gauge\nx 1"), std::runtime_error);                    // no final newline
  EXPECT_THROW(parse_exposition("# TYPE x gauge\nx 1\n# TYPE x gauge\n"), std::runtime_error);  // TYPE twice
  EXPECT_THROW(parse_exposition("# TYPE x gauge\nx_bucket{le=\"1\"} 1\n"), std::runtime_error); // not a histogram
  EXPECT_NO_THROW(parse_exposition("# HELP x h\n# TYPE x gauge\nx{a=\"\\\"\"} 1.5\n"));
}

}  // namespace
}  // namespace radixlm::server
