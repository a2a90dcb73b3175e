#pragma once
// The thread-safe hand-off of one request's outputs from the scheduler thread to whoever submitted it (the
// HTTP side, or Engine::generate): per-step chunks of new token ids and text, the last one carrying the
// finished output.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sampling/sampler.h"

namespace radixlm {

struct EngineOutput {
  uint64_t id = 0;
  std::vector<int32_t> output_ids;
  std::string text;
  std::string finish_reason;               // "stop", "length" or "abort"
  std::optional<int32_t> matched_token;    // stop by an eos id or a stop_token_id
  std::optional<std::string> matched_string;  // stop by a stop string
  std::string abort_message;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  double time_to_first_token_s = 0.0;
  double e2e_latency_s = 0.0;
  std::vector<SampledToken> output_logprobs;      // one per output token, with return_logprob
  std::vector<std::vector<float>> prompt_logits;  // one row per prompt position, with return_prompt_logits
  // With return_logprob (SGLang's input_token_logprobs and input_top_logprobs): one entry per prompt token
  // from logprob_start_len (-1: the last prompt token only), each the log-probability of that token given
  // the ones before it, under the same temperature as the output logprobs and without penalties. As in
  // SGLang, the first entry has no logprob: its logprob is NaN (write null) and its top_logprobs are empty.
  std::vector<SampledToken> input_token_logprobs;
};

struct StreamChunk {
  std::vector<int32_t> token_ids;
  std::vector<SampledToken> logprobs;  // with return_logprob
  std::vector<SampledToken> input_token_logprobs;  // with return_logprob, on the first chunk only (see EngineOutput)
  std::string text;
  bool finished = false;
  std::optional<EngineOutput> output;  // on the final chunk
};

class RequestStream {
 public:
  explicit RequestStream(uint64_t id) : id_(id) {}
  uint64_t id() const { return id_; }

  // Scheduler side. After each push the listener (if set) is called, on the scheduler thread: it must only
  // hand work to another thread (the server posts to the connection's strand), never block.
  void push(StreamChunk chunk);

  // Set once, before or after chunks arrive; it is called at once if chunks are already waiting, so none is
  // missed.
  void set_listener(std::function<void()> listener);

  // Client side: the next chunk, waiting for it; nullopt once the final chunk has been taken.
  std::optional<StreamChunk> next();
  // Without waiting: nullopt when nothing is ready.
  std::optional<StreamChunk> try_next();
  bool finished() const;

 private:
  uint64_t id_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<StreamChunk> chunks_;
  bool final_pushed_ = false;
  bool final_taken_ = false;
  std::function<void()> listener_;
};

}  // namespace radixlm
