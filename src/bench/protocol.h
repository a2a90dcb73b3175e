#pragma once
// What one benchmark request sends and how its answer is measured, per API, as sglang.bench_serving does:
//
//   sglang, sglang-native                     POST /generate              {"text" | "input_ids", "sampling_params"}
//   sglang-oai, vllm, lmdeploy                POST /v1/completions        {"model", "prompt", "max_tokens", ...}
//   chat, sglang-oai-chat, vllm-chat, ...     POST /v1/chat/completions   {"model", "messages", "max_tokens", ...}
//
// Greedy (temperature 0) with ignore_eos unless --disable-ignore-eos, so each request makes its full output.
// The OpenAI routes are asked for usage in the stream (stream_options.include_usage), because the output
// token count is the server's own (meta_info.completion_tokens / usage.completion_tokens), never a guess.
//
// Timing, for a streamed answer: TTFT is the time to the first event that carries output (text, or for
// /generate a rise in completion_tokens, which also covers token-id-only servers). Each later event that
// carries output adds inter-token latencies: on /generate the gap since the previous one is divided evenly
// over the tokens the event added (an event may bring several); on the OpenAI routes each event adds its gap
// as one latency. E2E latency is the time to the last byte. Without streaming, TTFT is the whole latency.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/dataset.h"
#include "bench/sse_parser.h"
#include "core/status.h"

namespace radixlm::bench {

enum class ApiKind { kGenerate, kCompletions, kChat };

Expected<ApiKind> backend_api(std::string_view backend);
std::string_view api_route(ApiKind api);

struct PayloadOptions {
  std::string model;
  bool stream = true;
  bool ignore_eos = true;
  nlohmann::json extra_body = nlohmann::json::object();  // merged over the payload's top level
};

Expected<nlohmann::json> build_payload(ApiKind api, const BenchPrompt& prompt, const PayloadOptions& options);

// One request's outcome, in seconds from when it was sent.
struct RequestResult {
  bool success = false;
  double ttft_s = 0.0;
  double latency_s = 0.0;
  std::vector<double> itl_s;
  int64_t prompt_len = 0;  // the dataset's count (what SGLang reports as input tokens)
  int64_t output_len = 0;  // the server's completion token count
  std::optional<int64_t> server_prompt_tokens;
  std::string generated_text;
  std::string error;
  double start_s = 0.0;  // when it was sent, from the start of the run
};

// Turns the bytes of one response into its RequestResult.
class ResponseAccumulator {
 public:
  ResponseAccumulator(ApiKind api, bool stream, const BenchPrompt& prompt);

  // The response's status line arrived.
  void on_status(int http_status) { http_status_ = http_status; }
  // Body bytes received `t_s` seconds after the request was sent (a streamed body as it arrives).
  void on_body(std::string_view bytes, double t_s);
  // The response is complete (`transport_error` empty) or broke off; `end_s` is when.
  RequestResult finish(const std::string& transport_error, double end_s);

 private:
  void on_event(std::string_view data, double t_s);
  void take_counts(const nlohmann::json& counts, const char* completion_key, const char* prompt_key);
  void mark_output(double t_s, int64_t new_tokens);

  ApiKind api_;
  bool stream_;
  int http_status_ = 0;
  std::string body_;  // a non-streamed body, or the start of an error body
  SseParser sse_;
  RequestResult result_;
  bool saw_output_ = false;
  bool saw_event_ = false;
  double last_output_s_ = 0.0;
  int64_t last_completion_tokens_ = 0;
  std::optional<int64_t> reported_completion_tokens_;
  std::string stream_error_;
};

// The "message" of an error body in OpenAI's shape ({"message"} or {"error": {"message"}}), else the body.
std::string error_message_of(std::string_view body);

}  // namespace radixlm::bench
