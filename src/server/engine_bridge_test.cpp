// start_generation against a real CPU Engine (the llama3.2-tiny-chat fixture) and a channel whose posted
// tasks run on a worker thread, as a connection's strand would: chunks arrive in order and add up to the
// final output, which matches the offline Engine::generate; submission is all-or-none; a live rid is
// refused; a disconnect aborts; the registry empties and the metrics count every request.

#include "server/engine_bridge.h"

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "server/metrics.h"
#include "server/request_registry.h"
#include "server/test_strand.h"

namespace radixlm::server {
namespace {

const std::filesystem::path kModel =
    std::filesystem::path(RADIXLM_FIXTURES_DIR) / "models" / "llama3.2-tiny-chat";

// A ResponseChannel whose post() runs tasks in order on its own thread (the strand) and which records
// what the route would have sent. disconnect() plays a client that goes away.
class StrandChannel final : public ResponseChannel {
 public:
  void respond(HttpResponse response) override {
    std::lock_guard lock(mutex_);
    responses_.push_back(std::move(response));
  }
  void begin_stream(int, std::string, std::vector<std::pair<std::string, std::string>>) override {}
  void write(std::string) override {}
  void end_stream() override {}

  void on_disconnect(std::function<void()> callback) override {
    bool now = false;
    {
      std::lock_guard lock(mutex_);
      if (disconnected_) {
        now = true;
      } else {
        disconnect_callback_ = std::move(callback);
      }
    }
    if (now) callback();
  }
  bool disconnected() const override {
    std::lock_guard lock(mutex_);
    return disconnected_;
  }
  void post(std::function<void()> task) override {
    std::lock_guard lock(mutex_);
    if (disconnected_) return;  // as the socket channel may: nothing runs for a client that is gone
    strand_.post(std::move(task));
  }

  void disconnect() {
    std::function<void()> callback;
    {
      std::lock_guard lock(mutex_);
      disconnected_ = true;
      callback = std::move(disconnect_callback_);
    }
    if (callback) callback();
  }

  bool on_strand() const { return strand_.runs_here(); }

 private:
  mutable std::mutex mutex_;
  std::vector<HttpResponse> responses_;
  std::function<void()> disconnect_callback_;
  bool disconnected_ = false;
  TestStrand strand_;  // last: destroyed (its queue run and joined) before what its tasks use
};

// What the callbacks saw, with a wait for on_done.
struct Seen {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::vector<int32_t>> tokens;  // per request, concatenated over chunks
  std::vector<int> final_chunks;
  int done_calls = 0;
  bool off_strand = false;
  std::vector<EngineOutput> outputs;

  explicit Seen(size_t n) : tokens(n), final_chunks(n, 0) {}

  GenerationCallbacks callbacks(StrandChannel& channel) {
    GenerationCallbacks cb;
    cb.on_chunk = [this, &channel](size_t index, const StreamChunk& chunk) {
      std::lock_guard lock(mutex);
      if (!channel.on_strand()) off_strand = true;
      tokens.at(index).insert(tokens.at(index).end(), chunk.token_ids.begin(), chunk.token_ids.end());
      if (chunk.finished) ++final_chunks.at(index);
    };
    cb.on_done = [this, &channel](std::vector<EngineOutput> out) {
      std::lock_guard lock(mutex);
      if (!channel.on_strand()) off_strand = true;
      ++done_calls;
      outputs = std::move(out);
      cv.notify_all();
    };
    return cb;
  }

  bool wait_done() {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(60), [this] { return done_calls > 0; });
  }
};

EngineRequest greedy(std::vector<int32_t> ids, int32_t max_new_tokens) {
  EngineRequest r;
  r.input_ids = std::move(ids);
  r.params.temperature = 0.0;
  r.params.max_new_tokens = max_new_tokens;
  r.params.ignore_eos = true;
  return r;
}

bool wait_until(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

class EngineBridgeTest : public testing::Test {
 protected:
  void SetUp() override {
    auto config = load_model_config(kModel);
    ASSERT_TRUE(config.ok()) << config.status().to_string();
    auto weights = open_checkpoint(kModel);
    ASSERT_TRUE(weights.ok()) << weights.status().to_string();
    weights_ = std::move(*weights);
    auto model = load_model(*config, *weights_, backend_, ModelOptions{});
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    model_ = std::move(*model);
    EngineOptions options;
    options.scheduler.page_size = 1;
    options.scheduler.max_total_tokens = 8192;
    options.eos_token_ids = {128009};
    auto engine = Engine::create(*model_, backend_, options);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    engine_ = std::move(*engine);
    context_.engine = engine_.get();
    context_.metrics = &metrics_;
    context_.registry = &registry_;
  }

  void TearDown() override {
    if (engine_) engine_->stop();
  }

  // The same requests through the offline API, in a fresh engine (no shared cache state).
  std::vector<EngineOutput> offline(const std::vector<EngineRequest>& requests) {
    EngineOptions options;
    options.scheduler.page_size = 1;
    options.scheduler.max_total_tokens = 8192;
    options.eos_token_ids = {128009};
    auto engine = Engine::create(*model_, backend_, options);
    EXPECT_TRUE(engine.ok());
    auto outputs = (*engine)->generate(requests);
    EXPECT_TRUE(outputs.ok()) << outputs.status().to_string();
    return outputs.ok() ? *outputs : std::vector<EngineOutput>{};
  }

  CpuBackend backend_{2};
  std::unique_ptr<WeightSource> weights_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Engine> engine_;
  ServerMetrics metrics_{"tiny"};
  RequestRegistry registry_;
  ServingContext context_;
};

TEST_F(EngineBridgeTest, ChunksAddUpToTheOfflineOutputAndMetricsCountThem) {
  engine_->start();
  const std::vector<EngineRequest> requests = {greedy({128000, 9906, 1917, 374}, 12),
                                               greedy({128000, 791, 6864, 315, 9822, 374}, 7)};
  const std::vector<EngineOutput> want = offline(requests);
  ASSERT_EQ(want.size(), 2u);

  auto channel = std::make_shared<StrandChannel>();
  Seen seen(2);
  ASSERT_TRUE(start_generation(context_, channel, requests, "my-rid", seen.callbacks(*channel)).ok());
  ASSERT_TRUE(seen.wait_done());
  std::lock_guard lock(seen.mutex);
  EXPECT_EQ(seen.done_calls, 1);
  EXPECT_FALSE(seen.off_strand);
  ASSERT_EQ(seen.outputs.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(seen.final_chunks[i], 1);
    EXPECT_EQ(seen.tokens[i], want[i].output_ids) << i;
    EXPECT_EQ(seen.outputs[i].output_ids, want[i].output_ids) << i;
    EXPECT_EQ(seen.outputs[i].finish_reason, "length");
  }
  EXPECT_EQ(registry_.size(), 0u);

  const ServerMetrics::Counters c = metrics_.counters();
  EXPECT_EQ(c.requests, 2);
  EXPECT_EQ(c.aborted_requests, 0);
  EXPECT_EQ(c.prompt_tokens, 4 + 6);
  EXPECT_EQ(c.generation_tokens, 12 + 7);
  EXPECT_EQ(metrics_.time_to_first_token().snapshot().count, 2);
  // Every token after each request's first is one inter-token observation.
  EXPECT_EQ(metrics_.inter_token_latency().snapshot().count, 11 + 6);
  EXPECT_EQ(metrics_.e2e_request_latency().snapshot().count, 2);
}

TEST_F(EngineBridgeTest, OneRefusedRequestSubmitsNone) {
  engine_->start();
  auto channel = std::make_shared<StrandChannel>();
  Seen seen(2);
  const std::vector<EngineRequest> requests = {greedy({128000, 9906}, 2000), greedy({128000, 999999}, 4)};
  const Status status = start_generation(context_, channel, requests, "refused", seen.callbacks(*channel));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find("999999"), std::string::npos) << status.message();
  EXPECT_EQ(registry_.size(), 0u);
  // The first request, already submitted, was aborted rather than left to run its 2000 tokens.
  ASSERT_TRUE(wait_until([&] { return engine_->idle(); }));
  EXPECT_LT(engine_->stats().decode_tokens, 1000);
  std::lock_guard lock(seen.mutex);
  EXPECT_EQ(seen.done_calls, 0);
}

TEST_F(EngineBridgeTest, LiveRidIsRefusedAndAbortByRidFinishesTheGroup) {
  engine_->start();
  auto first = std::make_shared<StrandChannel>();
  Seen seen(2);
  std::vector<EngineRequest> requests = {greedy({128000, 9906}, 4000), greedy({128000, 9906}, 4000)};
  ASSERT_TRUE(start_generation(context_, first, requests, "same", seen.callbacks(*first)).ok());
  ASSERT_TRUE(registry_.contains("same"));

  auto second = std::make_shared<StrandChannel>();
  Seen refused(1);
  const Status status =
      start_generation(context_, second, {greedy({128000, 1}, 2)}, "same", refused.callbacks(*second));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("Duplicate request ID"), std::string::npos) << status.message();

  const auto ids = registry_.find("same");
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(ids->size(), 2u);
  for (uint64_t id : *ids) engine_->abort(id);
  ASSERT_TRUE(seen.wait_done());
  std::lock_guard lock(seen.mutex);
  ASSERT_EQ(seen.outputs.size(), 2u);
  for (const EngineOutput& out : seen.outputs) {
    EXPECT_EQ(out.finish_reason, "abort");
    EXPECT_LT(out.completion_tokens, 4000);
  }
  EXPECT_FALSE(registry_.contains("same"));
  EXPECT_EQ(metrics_.counters().aborted_requests, 2);
  // The rid is free again.
  Seen again(1);
  auto third = std::make_shared<StrandChannel>();
  EXPECT_TRUE(start_generation(context_, third, {greedy({128000, 1}, 2)}, "same", again.callbacks(*third)).ok());
  EXPECT_TRUE(again.wait_done());
}

TEST_F(EngineBridgeTest, DisconnectAbortsAndStillAccountsForTheRequests) {
  engine_->start();
  auto channel = std::make_shared<StrandChannel>();
  Seen seen(1);
  ASSERT_TRUE(start_generation(context_, channel, {greedy({128000, 9906}, 4000)}, "", seen.callbacks(*channel)).ok());
  EXPECT_EQ(registry_.size(), 1u);  // anonymous, but abort_all still sees it
  EXPECT_EQ(registry_.all_engine_ids().size(), 1u);
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard lock(seen.mutex);
    return !seen.tokens[0].empty();
  }));
  channel->disconnect();
  ASSERT_TRUE(wait_until([&] { return registry_.size() == 0; }));
  ASSERT_TRUE(wait_until([&] { return engine_->idle(); }));
  EXPECT_LT(engine_->stats().decode_tokens, 1000);
  EXPECT_EQ(metrics_.counters().requests, 1);
  EXPECT_EQ(metrics_.counters().aborted_requests, 1);
  std::lock_guard lock(seen.mutex);
  EXPECT_EQ(seen.done_calls, 0);  // nobody to answer
}

TEST_F(EngineBridgeTest, AClientGoneBeforeStartAbortsAtOnce) {
  engine_->start();
  auto channel = std::make_shared<StrandChannel>();
  channel->disconnect();
  Seen seen(1);
  ASSERT_TRUE(start_generation(context_, channel, {greedy({128000, 9906}, 4000)}, "gone", seen.callbacks(*channel)).ok());
  ASSERT_TRUE(wait_until([&] { return registry_.size() == 0; }));
  EXPECT_EQ(metrics_.counters().aborted_requests, 1);
}

TEST_F(EngineBridgeTest, NoEngineOrNoRequestsIsAnError) {
  auto channel = std::make_shared<StrandChannel>();
  Seen seen(1);
  EXPECT_FALSE(start_generation(context_, channel, {}, "", seen.callbacks(*channel)).ok());
  ServingContext empty;
  EXPECT_FALSE(start_generation(empty, channel, {greedy({1}, 1)}, "", seen.callbacks(*channel)).ok());
}

}  // namespace
}  // namespace radixlm::server
