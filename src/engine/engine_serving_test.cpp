// What the HTTP server relies on from the engine besides generation itself: the synchronous queue limit
// (--max-queued-requests), and stop() finishing every request in flight with an "abort" chunk.

#include <atomic>
#include <thread>

#include "engine/engine.h"
#include "engine/engine_test_support.h"

namespace radixlm {
namespace {

using namespace engine_testing;

using EngineServingTest = EngineTest;

TEST_F(EngineServingTest, QueueLimitCountsPostedAndWaitingButNotRunning) {
  EngineOptions o = engine_options(1, -1, true);
  o.scheduler.max_queued_requests = 2;
  o.scheduler.max_running_requests = 1;
  auto engine = Engine::create(*model_, backend_, o);
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 2; ++i) {
    auto stream = e.submit(greedy(prompts_[0], 4));
    ASSERT_TRUE(stream.ok()) << stream.status().to_string();
    streams.push_back(*stream);
  }
  // Two posted, none taken yet: the third is refused at once.
  auto refused = e.submit(greedy(prompts_[0], 4));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("queue is full"), std::string::npos) << refused.status().message();
  // One step: the first runs (one slot), the second waits. Running requests do not count.
  e.step();
  EXPECT_EQ(e.scheduler().running_ids().size(), 1u);
  EXPECT_EQ(e.scheduler().waiting_ids().size(), 1u);
  auto third = e.submit(greedy(prompts_[1], 4));
  ASSERT_TRUE(third.ok()) << third.status().to_string();
  streams.push_back(*third);
  EXPECT_EQ(e.submit(greedy(prompts_[1], 4)).status().code(), StatusCode::kResourceExhausted);
  while (!e.idle()) e.step();
  for (auto& stream : streams) {
    const auto out = drain(*stream);
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(out->finish_reason, "length");
    EXPECT_EQ(out->output_ids.size(), 4u);
  }
  // Idle again: the queue is empty and takes two more.
  EXPECT_TRUE(e.submit(greedy(prompts_[1], 1)).ok());
  EXPECT_TRUE(e.submit(greedy(prompts_[1], 1)).ok());
  EXPECT_FALSE(e.submit(greedy(prompts_[1], 1)).ok());
  // The offline API knows its whole batch up front: the limit does not apply to it.
  std::vector<EngineRequest> batch(5, greedy(prompts_[0], 2));
  auto outputs = e.generate(batch);
  ASSERT_TRUE(outputs.ok()) << outputs.status().to_string();
  EXPECT_EQ(outputs->size(), 5u);
}

TEST_F(EngineServingTest, QueueLimitZeroRefusesEverythingAndUnsetIsUnlimited) {
  EngineOptions o = engine_options(1, -1, true);
  o.scheduler.max_queued_requests = 0;
  auto zero = Engine::create(*model_, backend_, o);
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ((*zero)->submit(greedy(prompts_[0], 1)).status().code(), StatusCode::kResourceExhausted);
  o.scheduler.max_queued_requests = -1;
  auto unlimited = Engine::create(*model_, backend_, o);
  ASSERT_TRUE(unlimited.ok());
  for (int i = 0; i < 300; ++i) ASSERT_TRUE((*unlimited)->submit(greedy(prompts_[0], 1)).ok()) << i;
}

TEST_F(EngineServingTest, QueueLimitHoldsUnderConcurrentSubmits) {
  EngineOptions o = engine_options(1, -1, true);
  o.scheduler.max_queued_requests = 37;
  auto engine = Engine::create(*model_, backend_, o);
  ASSERT_TRUE(engine.ok());
  std::atomic<int> accepted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        auto stream = (*engine)->submit(greedy(prompts_[0], 1));
        (stream.ok() ? accepted : refused).fetch_add(1);
        if (!stream.ok()) {
          EXPECT_EQ(stream.status().code(), StatusCode::kResourceExhausted);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 37);
  EXPECT_EQ(refused.load(), 8 * 25 - 37);
}

TEST_F(EngineServingTest, StopAbortsEveryRequestInFlight) {
  EngineOptions o = engine_options(1, -1, true);
  o.scheduler.max_running_requests = 1;
  auto engine = Engine::create(*model_, backend_, o);
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  e.start();
  auto running = e.submit(greedy(prompts_[2], 100000));
  ASSERT_TRUE(running.ok());
  ASSERT_TRUE((*running)->next().has_value());  // it has produced a token: it is running
  std::vector<std::shared_ptr<RequestStream>> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(*e.submit(greedy(prompts_[i], 100000)));  // waiting behind it
  e.stop();
  for (auto* stream : {running->get(), queued[0].get(), queued[1].get(), queued[2].get()}) {
    ASSERT_TRUE(stream->finished());  // without waiting: stop() delivered it
    const auto out = drain(*stream);
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(out->finish_reason, "abort");
    EXPECT_FALSE(out->abort_message.empty());
  }
  EXPECT_TRUE(e.idle());
  EXPECT_TRUE(e.scheduler().check_integrity().ok());
  // Stopped: new work is refused until the engine starts again.
  EXPECT_EQ(e.submit(greedy(prompts_[0], 2)).status().code(), StatusCode::kResourceExhausted);
  e.start();
  auto again = e.submit(greedy(prompts_[0], 2));
  ASSERT_TRUE(again.ok());
  const auto out = drain(**again);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->finish_reason, "length");
  e.stop();
}

TEST_F(EngineServingTest, StopWithoutALoopThreadAbortsWhatWasPosted) {
  auto engine = Engine::create(*model_, backend_, engine_options(1, -1, true));
  ASSERT_TRUE(engine.ok());
  auto stepped = (*engine)->submit(greedy(prompts_[0], 50));
  ASSERT_TRUE(stepped.ok());
  (*engine)->step();  // prefilled, running
  auto posted = (*engine)->submit(greedy(prompts_[1], 50));
  ASSERT_TRUE(posted.ok());
  engine->reset();  // the destructor stops the engine
  for (auto& stream : {*stepped, *posted}) {
    ASSERT_TRUE(stream->finished());
    const auto out = drain(*stream);
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(out->finish_reason, "abort");
  }
}

}  // namespace
}  // namespace radixlm
