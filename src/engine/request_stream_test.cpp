// RequestStream: the hand-off the server builds on. Chunks come out in order and the final one ends the
// stream; the listener is called after every push (also when set after chunks are already waiting, so none is
// missed) and never after the final chunk; a producer and a consumer on different threads lose nothing.

#include "engine/request_stream.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

namespace radixlm {
namespace {

StreamChunk chunk_of(int32_t token, bool finished = false) {
  StreamChunk chunk;
  chunk.token_ids = {token};
  chunk.finished = finished;
  if (finished) chunk.output = EngineOutput{};
  return chunk;
}

TEST(RequestStreamTest, ChunksComeOutInOrderAndTheFinalOneEndsTheStream) {
  RequestStream stream(7);
  EXPECT_EQ(stream.id(), 7u);
  EXPECT_FALSE(stream.try_next().has_value());
  stream.push(chunk_of(1));
  stream.push(chunk_of(2));
  EXPECT_FALSE(stream.finished());
  stream.push(chunk_of(3, true));
  EXPECT_TRUE(stream.finished());
  stream.push(chunk_of(4));  // after the final chunk: dropped
  for (int32_t want : {1, 2, 3}) {
    auto chunk = stream.next();
    ASSERT_TRUE(chunk.has_value());
    EXPECT_EQ(chunk->token_ids, std::vector<int32_t>{want});
    EXPECT_EQ(chunk->finished, want == 3);
  }
  EXPECT_FALSE(stream.next().has_value());  // does not block once the final chunk was taken
  EXPECT_FALSE(stream.try_next().has_value());
}

TEST(RequestStreamTest, ListenerIsCalledAfterEachPush) {
  RequestStream stream(1);
  int calls = 0;
  size_t seen_when_called = 0;
  stream.set_listener([&] {
    ++calls;
    // The chunk is already there when the listener runs.
    while (auto chunk = stream.try_next()) ++seen_when_called;
  });
  EXPECT_EQ(calls, 0);  // nothing waiting yet
  stream.push(chunk_of(1));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen_when_called, 1u);
  stream.push(chunk_of(2));
  stream.push(chunk_of(3, true));
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(seen_when_called, 3u);
}

TEST(RequestStreamTest, ListenerSetAfterChunksWaitIsCalledAtOnce) {
  RequestStream stream(1);
  stream.push(chunk_of(1));
  stream.push(chunk_of(2));
  int calls = 0;
  stream.set_listener([&] { ++calls; });
  EXPECT_EQ(calls, 1);
  stream.push(chunk_of(3));
  EXPECT_EQ(calls, 2);
}

TEST(RequestStreamTest, ListenerIsNeverCalledAfterTheFinalChunk) {
  RequestStream stream(1);
  int calls = 0;
  stream.set_listener([&] { ++calls; });
  stream.push(chunk_of(1, true));
  EXPECT_EQ(calls, 1);
  stream.push(chunk_of(2));        // a late push (e.g. an abort racing the finish) is dropped silently
  stream.push(chunk_of(3, true));
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(stream.next().has_value());
  EXPECT_FALSE(stream.next().has_value());
  // Setting a listener once the final chunk was taken finds nothing waiting.
  int late_calls = 0;
  stream.set_listener([&] { ++late_calls; });
  EXPECT_EQ(late_calls, 0);
}

TEST(RequestStreamTest, ConcurrentPushAndListenerDrivenDrainLoseNothing) {
  // As the server uses it: the listener only signals another thread, which drains with try_next. If a push
  // ever went unsignalled (the listener set while chunks were arriving), the consumer would wait for ever;
  // it gives up after a few seconds and the test fails instead.
  constexpr int32_t kChunks = 20000;
  for (int round = 0; round < 3; ++round) {
    RequestStream stream(1);
    std::mutex mutex;
    std::condition_variable wake;
    int64_t signals = 0;
    int64_t calls_after_end = 0;
    bool ended = false;
    std::vector<int32_t> drained;
    bool timed_out = false;
    std::thread producer([&] {
      for (int32_t i = 0; i < kChunks; ++i) stream.push(chunk_of(i, i + 1 == kChunks));
      for (int32_t i = 0; i < 100; ++i) stream.push(chunk_of(-1));  // after the final: never signalled
    });
    std::thread consumer([&] {
      if (round > 0) std::this_thread::sleep_for(std::chrono::microseconds(200 * round));  // join mid-stream
      stream.set_listener([&] {
        std::lock_guard lock(mutex);
        ++signals;
        if (ended) ++calls_after_end;
        wake.notify_one();
      });
      while (true) {
        {
          std::unique_lock lock(mutex);
          if (!wake.wait_for(lock, std::chrono::seconds(10), [&] { return signals > 0; })) {
            timed_out = true;
            return;
          }
          signals = 0;
        }
        while (auto chunk = stream.try_next()) {
          drained.insert(drained.end(), chunk->token_ids.begin(), chunk->token_ids.end());
          if (chunk->finished) {
            std::lock_guard lock(mutex);
            ended = true;
            return;
          }
        }
      }
    });
    producer.join();
    consumer.join();
    ASSERT_FALSE(timed_out) << "a chunk arrived without a listener call (round " << round << ")";
    ASSERT_EQ(drained.size(), static_cast<size_t>(kChunks));
    for (int32_t i = 0; i < kChunks; ++i) ASSERT_EQ(drained[static_cast<size_t>(i)], i);
    // At most the final push's own call can land after the consumer took the final chunk; the 100 pushes
    // after it never call the listener.
    EXPECT_LE(calls_after_end, 1);
    EXPECT_FALSE(stream.next().has_value());
  }
}

TEST(RequestStreamTest, BlockingNextWakesForAChunkFromAnotherThread) {
  RequestStream stream(1);
  std::vector<int32_t> got;
  std::thread consumer([&] {
    while (auto chunk = stream.next()) got.push_back(chunk->token_ids[0]);
  });
  for (int32_t i = 0; i < 100; ++i) stream.push(chunk_of(i, i == 99));
  consumer.join();
  ASSERT_EQ(got.size(), 100u);
  for (int32_t i = 0; i < 100; ++i) EXPECT_EQ(got[static_cast<size_t>(i)], i);
}

}  // namespace
}  // namespace radixlm
