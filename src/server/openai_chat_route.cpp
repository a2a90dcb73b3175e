// POST /v1/chat/completions: messages through the chat template into the engine, answered whole or as SSE.
// The conversation becomes a prompt as SGLang makes it: the template rendered with add_generation_prompt,
// then tokenized without adding special tokens again.

#include <memory>
#include <string>
#include <vector>

#include "server/api_error.h"
#include "server/openai_route_common.h"
#if RADIXLM_TEXT
#include "chat/chat_template.h"
#include "tokenizer/tokenizer.h"
#endif

namespace radixlm::server::openai {
namespace {

using Json = nlohmann::json;

#if RADIXLM_TEXT
Expected<std::vector<int32_t>> chat_prompt(const ServingContext& context, const ChatRequest& request) {
  if (context.tokenizer == nullptr) {
    return Status(StatusCode::kInvalidArgument,
                  "This server runs without a tokenizer (--skip-tokenizer-init): chat completions need one; use "
                  "/generate with input_ids.");
  }
  if (context.chat_template == nullptr) {
    return Status(StatusCode::kInvalidArgument, "The model has no chat template: use /v1/completions.");
  }
  auto rendered = context.chat_template->render(request.messages, request.tools, request.add_generation_prompt,
                                                request.chat_template_kwargs);
  if (!rendered.ok()) {
    return Status(StatusCode::kInvalidArgument, "The chat template failed on these messages: " + rendered.status().message());
  }
  std::string prompt = std::move(*rendered);
  if (request.continue_final_message) {
    RADIXLM_ASSIGN_OR_RETURN(prompt, cut_after_final_message(prompt, request.messages.back()["content"].get<std::string>()));
  }
  return context.tokenizer->encode(prompt, /*add_special_tokens=*/false);
}
#else
Expected<std::vector<int32_t>> chat_prompt(const ServingContext&, const ChatRequest&) {
  return Status(StatusCode::kInvalidArgument, "This radixlm was built without text support: chat completions need it.");
}
#endif

// Streaming state, touched only on the channel's strand.
struct ChatStream {
  SseStream sse;
  ResponseMeta meta;
  TokenText token_text;
  bool logprobs = false;
  bool include_usage = false;
  int32_t n = 1;
};

void start_stream(ServingContext& context, std::shared_ptr<ResponseChannel> channel, const ChatRequest& request,
                  std::vector<EngineRequest> engine_requests) {
  auto state = std::make_shared<ChatStream>();
  state->sse.channel = channel;
  state->meta = make_meta(context, request, "chatcmpl-");
  state->token_text = token_text_function(context);
  state->logprobs = request.logprobs;
  state->include_usage = request.include_usage;
  state->n = request.params.n;
  const size_t choices = engine_requests.size();
  // Each choice opens with the assistant's role, as OpenAI's first chunk does.
  state->sse.on_start = [raw = state.get(), choices] {
    for (size_t i = 0; i < choices; ++i) {
      raw->sse.channel->write(sse_event(
          chat_chunk_json(raw->meta, i, Json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr, nullptr)));
    }
  };

  GenerationCallbacks callbacks;
  callbacks.on_chunk = [state](size_t index, const StreamChunk& chunk) {
    if (!chunk.text.empty() || (state->logprobs && !chunk.logprobs.empty())) {
      Json logprobs = state->logprobs ? chat_logprobs_json(chunk.logprobs, state->token_text) : Json(nullptr);
      state->sse.send(chat_chunk_json(state->meta, index, Json{{"content", chunk.text}}, std::move(logprobs), nullptr, nullptr));
    }
    if (chunk.finished && chunk.output) {
      state->sse.send(chat_chunk_json(state->meta, index, Json::object(), nullptr, finish_reason_json(*chunk.output),
                                      matched_stop_json(*chunk.output)));
    }
  };
  callbacks.on_done = [state](std::vector<EngineOutput> outputs) {
    if (state->include_usage) {
      state->sse.send(usage_chunk_json(state->meta, "chat.completion.chunk", sum_usage(outputs, state->n)));
    }
    state->sse.finish();
  };
  const Status status = start_generation(context, channel, std::move(engine_requests), request.rid, std::move(callbacks));
  if (!status.ok()) {
    channel->respond(error_response(status));
    return;
  }
  // Headers go out now, so a client sees the response begin before the first token.
  channel->post([state] { state->sse.ensure_started(); });
}

void start_whole(ServingContext& context, std::shared_ptr<ResponseChannel> channel, const ChatRequest& request,
                 std::vector<EngineRequest> engine_requests) {
  GenerationCallbacks callbacks;
  callbacks.on_done = [channel, meta = make_meta(context, request, "chatcmpl-"), token_text = token_text_function(context),
                       logprobs = request.logprobs, n = request.params.n](std::vector<EngineOutput> outputs) {
    Json choices = Json::array();
    for (size_t i = 0; i < outputs.size(); ++i) {
      Json lp = logprobs ? chat_logprobs_json(outputs[i].output_logprobs, token_text) : Json(nullptr);
      choices.push_back(chat_choice_json(i, outputs[i].text, outputs[i], std::move(lp)));
    }
    channel->respond(json_response(chat_response_json(meta, std::move(choices), sum_usage(outputs, n))));
  };
  const Status status = start_generation(context, channel, std::move(engine_requests), request.rid, std::move(callbacks));
  if (!status.ok()) channel->respond(error_response(status));
}

}  // namespace

void handle_chat_completion(ServingContext& context, const HttpRequest& http, std::shared_ptr<ResponseChannel> channel) {
  if (auto refusal = unavailable(context)) {
    channel->respond(std::move(*refusal));
    return;
  }
  auto request = parse_chat_request(http.body);
  if (!request.ok()) {
    channel->respond(error_response(request.status()));
    return;
  }
  auto prompt = chat_prompt(context, *request);
  if (!prompt.ok()) {
    channel->respond(error_response(prompt.status()));
    return;
  }
  const Status fits = check_context_length(static_cast<int64_t>(prompt->size()), request->params.max_new_tokens,
                                           context.context_length);
  if (!fits.ok()) {
    channel->respond(error_response(fits));
    return;
  }
  std::vector<EngineRequest> engine_requests = expand_samples(std::move(*prompt), request->params);
  if (request->stream) {
    start_stream(context, std::move(channel), *request, std::move(engine_requests));
  } else {
    start_whole(context, std::move(channel), *request, std::move(engine_requests));
  }
}

}  // namespace radixlm::server::openai
