#pragma once
// What the chat and completions handlers share: the readiness check, response ids, the served model's name,
// token text for logprobs, the SSE stream's start, and the submission of expanded engine requests.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "server/engine_bridge.h"
#include "server/http_server.h"
#include "server/openai_protocol.h"
#include "server/serving_context.h"

namespace radixlm::server::openai {

// 503 while the server is loading or draining, else nullopt.
std::optional<HttpResponse> unavailable(const ServingContext& context);

// The response's id (the client's rid, else prefix + 32 random hex digits), now, and the model name echoed.
ResponseMeta make_meta(const ServingContext& context, const CommonRequest& request, const std::string& prefix);

// A token's text for logprob fields: the tokenizer's decode of it alone, special tokens kept.
TokenText token_text_function(const ServingContext& context);

// The n engine requests of one prompt, in sample order.
std::vector<EngineRequest> expand_samples(std::vector<int32_t> prompt, const SamplingParams& params);

// Writes the SSE header once, on the channel's strand, before anything else in the stream.
struct SseStream {
  std::shared_ptr<ResponseChannel> channel;
  bool started = false;
  std::function<void()> on_start;  // the first events (the role chunks, echoed prompts)

  void ensure_started();
  void send(const nlohmann::json& payload);
  void finish();  // [DONE] and the end of the stream
};

HttpResponse json_response(const nlohmann::json& body);

}  // namespace radixlm::server::openai
