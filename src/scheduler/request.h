#pragma once
// A request as the scheduler keeps it, from submission to its last output.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/prefix_cache.h"
#include "sampling/logit_processors.h"
#include "sampling/sampling_params.h"
#include "sampling/stop_strings.h"

namespace radixlm {

// Ordered: a request only moves forward, except that a retracted one goes back to kWaiting.
enum class RequestState : uint8_t {
  kWaiting = 0,     // queued (new, or retracted with its output kept)
  kPrefilling = 1,  // its prompt (plus any output, after a retraction) is being computed, maybe in chunks
  kRunning = 2,     // decoding one token per step
  kFinished = 3,
};

const char* request_state_name(RequestState state);

enum class FinishKind : uint8_t { kNone, kStopToken, kStopString, kLength, kAbort };

struct FinishReason {
  FinishKind kind = FinishKind::kNone;
  int32_t matched_token = -1;  // kStopToken
  std::string matched_string;  // kStopString
  std::string message;         // kAbort: why
};

// "stop", "length" or "abort", as SGLang's finish_reason.type.
const char* finish_reason_type(const FinishReason& reason);

// Streaming detokenization of one request's output, supplied by the engine (the scheduler does not depend
// on tokenizer/). feed() returns the text that became final with this token, finish() the held-back rest.
class TextDecoder {
 public:
  virtual ~TextDecoder() = default;
  virtual std::string feed(int32_t token_id) = 0;
  virtual std::string finish() = 0;
};
using TextDecoderFactory = std::function<std::unique_ptr<TextDecoder>(const SamplingParams&)>;

// What a caller submits. `params` must already be validated, with the model's defaults applied.
struct RequestInput {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  SamplingParams params;
  std::string cache_namespace;  // cache_salt / extra_key: requests share KV only within one namespace
  int32_t priority = 0;         // the priority policy runs higher values first
  bool return_prompt_logits = false;  // every prompt position's logits (disables the prefix cache for it)
};

struct Request {
  uint64_t id = 0;
  RequestState state = RequestState::kWaiting;
  RequestInput input;
  std::vector<int32_t> tokens;  // prompt then output
  SamplingState sampling;
  CachedRow row;                // its page-table row
  int64_t kv_tokens = 0;        // positions whose K/V is in `row` (or queued to be written there)
  // Output tokens a planned step samples whose ids have not come back through complete() yet: 0 or 1
  // between steps, 2 for a moment with overlap scheduling (the step in flight and the one just planned).
  // With one pending, `kv_tokens` may count its position: the plan fed kFutureToken there.
  int32_t in_flight = 0;
  int64_t cached_tokens = 0;    // prompt tokens found in the prefix cache when first admitted
  bool ever_admitted = false;
  bool retracted = false;       // waiting again after a retraction
  int32_t retractions = 0;
  bool abort_requested = false;
  std::string abort_message;
  uint64_t arrival = 0;         // submission order
  uint64_t admission = 0;       // order of the latest admission: retraction takes the newest first
  std::unique_ptr<TextDecoder> decoder;
  std::optional<StopStringMatcher> stop_matcher;
  std::string text;             // the output text emitted so far
  FinishReason finish;

  int64_t prompt_len() const { return static_cast<int64_t>(input.prompt.size()); }
  // Tokens known or pending: the length the sequence will have once every planned step has come back.
  int64_t planned_len() const { return static_cast<int64_t>(tokens.size()) + in_flight; }
  int64_t num_output() const { return static_cast<int64_t>(tokens.size()) - prompt_len(); }
};

// The first prompt position of input_token_logprobs (SGLang's logprob_start_len, -1 meaning the last prompt
// token), or -1 when the request wants no input logprobs: return_logprob is off, or its output has begun
// (they are computed once, by the first prefill).
int64_t input_logprob_start(const Request& r);

}  // namespace radixlm
