#pragma once
// The OpenAI wire protocol as SGLang and vLLM serve it, as pure functions: request JSON in (every field
// type- and range-checked, SGLang's extensions read, unknown fields ignored), response and SSE chunk JSON
// out. No engine, no socket: openai_routes.cpp joins these to the engine bridge, and the unit tests check
// them alone.
//
// Decisions where servers differ (each is SGLang's unless it says otherwise):
//   - `model` in a generation request is not checked: SGLang serves any name (it selects LoRA adapters) and
//     echoes it back; GET /v1/models/{id} answers 404 for a name other than the served one.
//   - Completions' `max_tokens` defaults to 16 (OpenAI, SGLang); chat's to the rest of the context.
//   - `stream_options` without `stream` is a 400, as vLLM and OpenAI answer it.
//   - A prompt and max_tokens past the context length is a 400 in OpenAI's words, as vLLM answers it.
//   - Chat message content given as a list of text parts is joined with "\n" for the template.
//   - `usage.prompt_tokens` counts each distinct prompt once however large n is; completion and cached
//     tokens are summed over every choice.

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "engine/request_stream.h"
#include "sampling/sampling_params.h"

namespace radixlm::server::openai {

// Fields chat and completions share.
struct CommonRequest {
  std::optional<std::string> model;  // absent: the served name is used in the response
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  SamplingParams params;       // n, seed, stop, max_new_tokens, the logprob request, ...
  std::string rid;             // SGLang's: names the request for /abort_request and becomes the response id
};

struct ChatRequest : CommonRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // content normalised to strings
  nlohmann::ordered_json tools;                                        // null when absent
  nlohmann::ordered_json chat_template_kwargs;                         // null when absent
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  bool logprobs = false;
  int32_t top_logprobs = 0;
};

// One completions prompt: text to tokenize, or token ids as given.
struct CompletionPrompt {
  std::optional<std::string> text;
  std::vector<int32_t> token_ids;
};

struct CompletionRequest : CommonRequest {
  std::vector<CompletionPrompt> prompts;  // a batch: choices are indexed prompt * n + sample
  bool echo = false;
  std::optional<int32_t> logprobs;  // the legacy integer: top alternatives per token
};

Expected<ChatRequest> parse_chat_request(std::string_view body);
Expected<CompletionRequest> parse_completion_request(std::string_view body);

// For chat with continue_final_message: the rendered prompt cut right after the final assistant message's
// content (as transformers' apply_chat_template does), or an error when the template dropped it.
Expected<std::string> cut_after_final_message(const std::string& rendered, const std::string& final_content);

// A 400 in OpenAI's words when the prompt alone, or the prompt with max_tokens, exceeds the context length.
Status check_context_length(int64_t prompt_tokens, std::optional<int32_t> max_new_tokens, int64_t context_length);

// ---- Responses ----

// Text of one token as the logprob fields show it (the tokenizer's decode of that id alone).
using TokenText = std::function<std::string(int32_t token_id)>;

struct ResponseMeta {
  std::string id;  // "chatcmpl-..." / "cmpl-..." (or the client's rid)
  int64_t created = 0;
  std::string model;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
};
nlohmann::json usage_json(const Usage& usage);
// Sums `outputs` (prompt tokens once per group of n).
Usage sum_usage(std::span<const EngineOutput> outputs, int32_t n);

// "stop", "length", "abort" (SGLang's finish types); null while unfinished.
nlohmann::json finish_reason_json(const EngineOutput& output);
// SGLang's `matched_stop`: the stop token id, the stop string, or null.
nlohmann::json matched_stop_json(const EngineOutput& output);

// Chat: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}.
nlohmann::json chat_logprobs_json(std::span<const SampledToken> tokens, const TokenText& token_text);

// Completions' legacy shape, built as tokens arrive: tokens, token_logprobs, top_logprobs (a {token: logprob}
// object per position) and text_offset (code points from the start of the choice's text).
class CompletionLogprobs {
 public:
  explicit CompletionLogprobs(size_t initial_offset = 0) : offset_(initial_offset) {}
  // A prompt position with no logprob (the first one) passes `logprob` = nullopt.
  void add(int32_t token_id, std::optional<float> logprob, std::span<const TokenLogprob> top,
           const TokenText& token_text);
  void add(std::span<const SampledToken> tokens, const TokenText& token_text);
  nlohmann::json json() const;
  bool empty() const { return tokens_.empty(); }
  // Starts a fresh piece (a stream chunk) that continues this one's text offsets.
  CompletionLogprobs continuation() const { return CompletionLogprobs(offset_); }

 private:
  nlohmann::json tokens_ = nlohmann::json::array();
  nlohmann::json token_logprobs_ = nlohmann::json::array();
  nlohmann::json top_logprobs_ = nlohmann::json::array();
  nlohmann::json text_offset_ = nlohmann::json::array();
  size_t offset_ = 0;
};

// Number of Unicode code points in UTF-8 `text` (what OpenAI's text_offset counts).
size_t utf8_length(std::string_view text);

nlohmann::json chat_response_json(const ResponseMeta& meta, nlohmann::json choices, const Usage& usage);
nlohmann::json chat_choice_json(size_t index, const std::string& content, const EngineOutput& output,
                                nlohmann::json logprobs);
// One streamed chat chunk holding one choice.
nlohmann::json chat_chunk_json(const ResponseMeta& meta, size_t index, nlohmann::json delta, nlohmann::json logprobs,
                               nlohmann::json finish_reason, nlohmann::json matched_stop);

nlohmann::json completion_response_json(const ResponseMeta& meta, nlohmann::json choices, const Usage& usage);
nlohmann::json completion_choice_json(size_t index, const std::string& text, const EngineOutput& output,
                                      nlohmann::json logprobs);
nlohmann::json completion_chunk_json(const ResponseMeta& meta, size_t index, const std::string& text,
                                     nlohmann::json logprobs, nlohmann::json finish_reason,
                                     nlohmann::json matched_stop);

// The final chunk of stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk_json(const ResponseMeta& meta, const char* object, const Usage& usage);

nlohmann::json model_card_json(const std::string& id, const std::string& root, int64_t created,
                               int64_t max_model_len);
nlohmann::json model_list_json(const std::string& id, const std::string& root, int64_t created,
                               int64_t max_model_len);

// Server-sent events: exactly "data: <json>\n\n"; the stream ends with kSseDone.
std::string sse_event(const nlohmann::json& payload);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// JSON text for the wire: invalid UTF-8 from a model's partial characters is replaced, never thrown on.
std::string dump_json(const nlohmann::json& value);

}  // namespace radixlm::server::openai
