// EngineSnapshot on a scripted workload (every field against what the workload must give), flush_cache
// (refused while anything is pending, with or without the loop thread, and safe beside a running loop), and
// SGLang's "Prefill batch." / "Decode batch." log lines.

#include "engine/engine_metrics.h"

#include <atomic>
#include <chrono>
#include <regex>
#include <thread>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "engine/engine.h"
#include "engine/engine_test_support.h"

namespace radixlm {
namespace {

using namespace engine_testing;

using EngineMetricsTest = EngineTest;

TEST_F(EngineMetricsTest, SnapshotFollowsAScriptedWorkload) {
  EngineOptions o = engine_options(1, -1, true);
  o.scheduler.max_running_requests = 1;  // one at a time: the second finds the first's prefix cached
  auto engine = Engine::create(*model_, backend_, o);
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  const std::vector<int32_t>& first = prompts_[2];
  std::vector<int32_t> second(first.begin(), first.begin() + 20);
  second.insert(second.end(), {7, 8, 9});
  const auto first_len = static_cast<int64_t>(first.size());

  EngineSnapshot s = e.snapshot();
  EXPECT_EQ(s.num_running_reqs, 0);
  EXPECT_EQ(s.num_queue_reqs, 0);
  EXPECT_EQ(s.num_used_tokens, 0);
  EXPECT_EQ(s.max_total_num_tokens, 2048);
  EXPECT_EQ(s.max_running_requests, 1);
  EXPECT_EQ(s.context_length, model_->config().max_position_embeddings);
  EXPECT_EQ(s.page_size, 1);
  EXPECT_EQ(s.gen_throughput, 0.0);

  auto a = e.submit(greedy(first, 4));
  auto b = e.submit(greedy(second, 4));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(e.snapshot().num_queue_reqs, 2);  // posted, not yet taken: queued all the same

  e.step();  // the first is prefilled (and has its first token); the second waits for the slot
  s = e.snapshot();
  EXPECT_EQ(s.num_running_reqs, 1);
  EXPECT_EQ(s.num_queue_reqs, 1);
  EXPECT_EQ(s.num_used_tokens, first_len);  // its prompt's K/V, one slot per position
  EXPECT_DOUBLE_EQ(s.token_usage, static_cast<double>(first_len) / 2048.0);
  EXPECT_EQ(s.cache_hit_rate, 0.0);
  EXPECT_EQ(s.num_requests_total, 0);

  e.step();  // a decode step: one more slot
  s = e.snapshot();
  EXPECT_EQ(s.num_used_tokens, first_len + 1);
  EXPECT_GT(s.gen_throughput, 0.0);

  while (!e.idle()) e.step();
  s = e.snapshot();
  EXPECT_EQ(s.num_running_reqs, 0);
  EXPECT_EQ(s.num_queue_reqs, 0);
  EXPECT_EQ(s.num_used_tokens, 0);  // everything left is cached and evictable
  EXPECT_EQ(s.token_usage, 0.0);
  EXPECT_EQ(s.num_requests_total, 2);
  EXPECT_EQ(s.prompt_tokens_total, first_len + 23);
  EXPECT_EQ(s.generation_tokens_total, 8);
  EXPECT_EQ(s.cached_tokens_total, 20);
  EXPECT_DOUBLE_EQ(s.cache_hit_rate, 20.0 / static_cast<double>(first_len + 23));
  EXPECT_GT(s.gen_throughput, 0.0);
  const auto out_b = drain(**b);
  ASSERT_TRUE(out_b.has_value());
  EXPECT_EQ(out_b->cached_tokens, 20);
}

// The snapshot a client reads once its request's final chunk has reached it already counts the request as
// finished (get_server_info after /health_generate, /metrics after a response): the listener, called on the
// scheduler thread right after the push, reads the snapshot before the engine could publish another.
TEST_F(EngineMetricsTest, SnapshotCountsARequestFinishedBeforeItsStreamHearsOfIt) {
  EngineOptions o = engine_options(1, -1, true);
  auto engine = Engine::create(*model_, backend_, o);
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  auto stream = e.submit(greedy(prompts_[1], 3));
  ASSERT_TRUE(stream.ok());
  RequestStream& r = **stream;
  std::optional<EngineSnapshot> at_final;
  r.set_listener([&] {
    if (r.finished() && !at_final) at_final = e.snapshot();
  });
  while (!e.idle()) e.step();
  ASSERT_TRUE(at_final.has_value());
  EXPECT_EQ(at_final->num_running_reqs, 0);
  EXPECT_EQ(at_final->num_requests_total, 1);
  EXPECT_EQ(at_final->generation_tokens_total, 3);
  ASSERT_TRUE(drain(r).has_value());
}

TEST(EngineMetricsUnitTest, ThroughputIsOverTheRecentDecodeSteps) {
  EngineMetrics m(/*decode_log_interval=*/3);
  EXPECT_EQ(m.gen_throughput(), 0.0);
  EXPECT_FALSE(m.on_decode_step(0.0, 1.0, 10));
  EXPECT_DOUBLE_EQ(m.gen_throughput(), 10.0);
  EXPECT_FALSE(m.on_decode_step(1.0, 2.0, 20));
  EXPECT_TRUE(m.on_decode_step(2.0, 4.0, 30));  // the third step: a log line is due
  EXPECT_DOUBLE_EQ(m.gen_throughput(), 60.0 / 4.0);
  EXPECT_FALSE(m.on_decode_step(10.0, 11.0, 40));  // the window drops the first step
  EXPECT_DOUBLE_EQ(m.gen_throughput(), 90.0 / 10.0);
  m.on_admitted(100, 25);
  m.on_admitted(100, 0);
  m.on_finished(100, 7, 25);
  EngineSnapshot s;
  m.fill(s);
  EXPECT_DOUBLE_EQ(s.cache_hit_rate, 0.125);
  EXPECT_EQ(s.num_requests_total, 1);
  EXPECT_EQ(s.generation_tokens_total, 7);
  EXPECT_EQ(s.cached_tokens_total, 25);
  EXPECT_EQ(s.prompt_tokens_total, 100);
}

TEST_F(EngineMetricsTest, FlushCacheIsRefusedWhileRequestsArePending) {
  auto engine = Engine::create(*model_, backend_, engine_options(1, -1, true));
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  EXPECT_TRUE(e.flush_cache().ok());  // nothing cached yet: a no-op
  auto stream = e.submit(greedy(prompts_[2], 3));
  ASSERT_TRUE(stream.ok());
  Status refused = e.flush_cache();  // posted
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("Cache not flushed because there are pending requests"), std::string::npos);
  e.step();
  EXPECT_EQ(e.flush_cache().code(), StatusCode::kInvalidArgument);  // running
  while (!e.idle()) e.step();
  EXPECT_GT(e.scheduler().cache().cached_pages(), 0);
  ASSERT_TRUE(e.flush_cache().ok());
  EXPECT_EQ(e.scheduler().cache().cached_pages(), 0);
  EXPECT_EQ(e.scheduler().page_pool().num_free(), e.scheduler().page_pool().num_pages());
  // The same prompt again finds nothing cached.
  auto again = e.generate({greedy(prompts_[2], 3)});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].cached_tokens, 0);
}

TEST_F(EngineMetricsTest, FlushCacheFromAnotherThreadBesideTheLoop) {
  EngineOptions o = engine_options(1, -1, true);
  o.scheduler.max_running_requests = 2;
  const std::vector<EngineRequest> requests = mixed_requests();
  const auto reference = alone(requests);
  auto engine = Engine::create(*model_, backend_, o);
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  e.start();
  // Refused while a request runs on the loop thread.
  auto long_one = e.submit(greedy(prompts_[2], 100000));
  ASSERT_TRUE(long_one.ok());
  ASSERT_TRUE((*long_one)->next().has_value());
  EXPECT_EQ(e.flush_cache().code(), StatusCode::kInvalidArgument);
  e.abort((*long_one)->id());
  ASSERT_TRUE(drain(**long_one).has_value());
  // Flushes race the loop while requests come and go; each either flushes between steps or is refused, and
  // no output changes (the integrity check runs after every scheduler call).
  std::atomic<bool> done{false};
  std::atomic<int> flushed{0};
  std::thread flusher([&] {
    while (!done.load()) {
      if (e.flush_cache().ok()) flushed.fetch_add(1);
      (void)e.snapshot();
      std::this_thread::yield();
    }
  });
  for (size_t i = 0; i < requests.size(); ++i) {
    auto stream = e.submit(requests[i]);
    ASSERT_TRUE(stream.ok());
    const auto out = drain(**stream);  // one at a time, so the engine is idle (flushable) between them
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(out->output_ids, reference[i]) << "request " << i;
    if (i % 4 == 0) {
      // Idle now: give the flusher a chance to succeed before the next request (bounded wait).
      const int before = flushed.load();
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (flushed.load() == before && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    }
  }
  done = true;
  flusher.join();
  EXPECT_GT(flushed.load(), 0);
  e.stop();
  EXPECT_TRUE(e.scheduler().check_integrity().ok());
}

// The engine's log lines, captured from spdlog's default logger.
class CapturedLog {
 public:
  CapturedLog() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)) {
    spdlog::default_logger()->sinks().push_back(sink_);
    level_ = spdlog::default_logger()->level();
    spdlog::default_logger()->set_level(spdlog::level::info);
  }
  ~CapturedLog() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    spdlog::default_logger()->set_level(level_);
  }
  std::vector<std::string> lines_starting(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const std::string& line : sink_->last_formatted()) {
      const size_t at = line.find(prefix);
      if (at != std::string::npos) out.push_back(line.substr(at, line.find_last_not_of("\r\n") + 1 - at));
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  spdlog::level::level_enum level_;
};

TEST_F(EngineMetricsTest, PrefillAndDecodeLogLinesAsSglangWritesThem) {
  EXPECT_EQ(prefill_log_line(2, 300, 16, 0.123, 1, 4),
            "Prefill batch. #new-seq: 2, #new-token: 300, #cached-token: 16, token usage: 0.12, #running-req: 1, "
            "#queue-req: 4");
  EXPECT_EQ(decode_log_line(3, 520, 0.254, 1234.5678, 0),
            "Decode batch. #running-req: 3, #token: 520, token usage: 0.25, gen throughput (token/s): 1234.57, "
            "#queue-req: 0");

  EngineOptions o = engine_options(1, -1, true);
  o.scheduler.max_running_requests = 1;
  o.decode_log_interval = 4;
  auto engine = Engine::create(*model_, backend_, o);
  ASSERT_TRUE(engine.ok());
  std::vector<int32_t> second(prompts_[2].begin(), prompts_[2].begin() + 20);
  second.push_back(5);
  CapturedLog log;
  // 1 prefill + 9 decode steps, then 1 prefill (20 cached) + 9 decode steps.
  ASSERT_TRUE((*engine)->generate({greedy(prompts_[2], 10), greedy(second, 10)}).ok());
  const auto prefill = log.lines_starting("Prefill batch.");
  ASSERT_EQ(prefill.size(), 2u);
  const int64_t len = static_cast<int64_t>(prompts_[2].size());
  EXPECT_EQ(prefill[0], fmt::format("Prefill batch. #new-seq: 1, #new-token: {}, #cached-token: 0, token usage: {:.2f}, "
                                    "#running-req: 0, #queue-req: 1",
                                    len, static_cast<double>(len) / 2048.0));
  EXPECT_NE(prefill[1].find("#new-seq: 1, #new-token: 1, #cached-token: 20, "), std::string::npos) << prefill[1];
  EXPECT_NE(prefill[1].find("#running-req: 0, #queue-req: 0"), std::string::npos) << prefill[1];
  const auto decode = log.lines_starting("Decode batch.");
  EXPECT_EQ(decode.size(), 18u / 4u);  // every 4th of the 18 decode steps
  const std::regex shape(
      R"(Decode batch\. #running-req: 1, #token: \d+, token usage: 0\.\d\d, gen throughput \(token/s\): \d+\.\d\d, #queue-req: [01])");
  for (const std::string& line : decode) EXPECT_TRUE(std::regex_match(line, shape)) << line;
}

}  // namespace
}  // namespace radixlm
