// POST /v1/completions: one prompt or a batch (text or token ids), n samples each, answered whole or as
// SSE. Choice i * n + s is sample s of prompt i, as SGLang and vLLM number them. Text prompts are tokenized
// as HF's tokenizer(text) does, special tokens added.

#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "server/api_error.h"
#include "server/openai_route_common.h"
#if RADIXLM_TEXT
#include "tokenizer/tokenizer.h"
#endif

namespace radixlm::server::openai {
namespace {

using Json = nlohmann::json;

struct PreparedPrompt {
  std::vector<int32_t> ids;
  std::string text;  // what echo shows
};

Expected<std::vector<PreparedPrompt>> prepare_prompts(const ServingContext& context, const CompletionRequest& request) {
#if RADIXLM_TEXT
  const tokenizer::Tokenizer* tok = context.tokenizer;
#else
  const void* tok = nullptr;
#endif
  if (tok == nullptr) {
    return Status(StatusCode::kInvalidArgument,
                  "This server runs without a tokenizer (--skip-tokenizer-init or a build without text support): "
                  "completions need one; use /generate with input_ids.");
  }
  std::vector<PreparedPrompt> prompts;
  for (const CompletionPrompt& prompt : request.prompts) {
    PreparedPrompt prepared;
#if RADIXLM_TEXT
    if (prompt.text) {
      prepared.ids = tok->encode(*prompt.text, /*add_special_tokens=*/true);
      prepared.text = *prompt.text;
    } else {
      prepared.ids = prompt.token_ids;
      if (request.echo) prepared.text = tok->decode(prepared.ids, /*skip_special_tokens=*/false);
    }
#else
    (void)prompt;
#endif
    RADIXLM_RETURN_IF_ERROR(check_context_length(static_cast<int64_t>(prepared.ids.size()), request.params.max_new_tokens,
                                                 context.context_length));
    prompts.push_back(std::move(prepared));
  }
  return prompts;
}

// The echoed prompt's logprob entries: the engine's input_token_logprobs (from position 0, the first
// without a logprob: NaN, written null as OpenAI shows it).
CompletionLogprobs echo_logprobs(std::span<const SampledToken> prompt_logprobs, const TokenText& token_text) {
  CompletionLogprobs logprobs;
  for (const SampledToken& token : prompt_logprobs) {
    const std::optional<float> logprob = std::isnan(token.logprob) ? std::nullopt : std::optional<float>(token.logprob);
    logprobs.add(token.token_id, logprob, token.top_logprobs, token_text);
  }
  return logprobs;
}

struct CompletionStream {
  SseStream sse;
  ResponseMeta meta;
  TokenText token_text;
  bool logprobs = false;
  bool include_usage = false;
  int32_t n = 1;
  std::vector<CompletionLogprobs> offsets;  // per choice: where its next token's text_offset starts
  bool echo = false;
  std::vector<PreparedPrompt> prompts;
  std::vector<bool> echoed;

  // A choice's first chunk opens with its prompt, and the prompt's logprobs that come with that chunk, as
  // SGLang streams an echo.
  void echo_prompt(size_t index, const StreamChunk& chunk) {
    if (!echo || echoed[index]) return;
    echoed[index] = true;
    const PreparedPrompt& prompt = prompts[index / static_cast<size_t>(n)];
    Json logprobs = nullptr;
    if (this->logprobs) {
      CompletionLogprobs echoed_logprobs = echo_logprobs(chunk.input_token_logprobs, token_text);
      logprobs = echoed_logprobs.json();
      offsets[index] = echoed_logprobs.continuation();
    }
    sse.send(completion_chunk_json(meta, index, prompt.text, std::move(logprobs), nullptr, nullptr));
  }
};

void start_stream(ServingContext& context, std::shared_ptr<ResponseChannel> channel, const CompletionRequest& request,
                  std::vector<PreparedPrompt> prompts, std::vector<EngineRequest> engine_requests) {
  auto state = std::make_shared<CompletionStream>();
  state->sse.channel = channel;
  state->meta = make_meta(context, request, "cmpl-");
  state->token_text = token_text_function(context);
  state->logprobs = request.logprobs.has_value();
  state->include_usage = request.include_usage;
  state->n = request.params.n;
  state->offsets.resize(engine_requests.size());
  state->echo = request.echo;
  state->prompts = std::move(prompts);
  state->echoed.assign(engine_requests.size(), false);

  GenerationCallbacks callbacks;
  callbacks.on_chunk = [state](size_t index, const StreamChunk& chunk) {
    state->echo_prompt(index, chunk);
    if (!chunk.text.empty() || (state->logprobs && !chunk.logprobs.empty())) {
      Json logprobs = nullptr;
      if (state->logprobs) {
        CompletionLogprobs piece = state->offsets[index].continuation();
        piece.add(chunk.logprobs, state->token_text);
        logprobs = piece.json();
        state->offsets[index] = piece.continuation();
      }
      state->sse.send(completion_chunk_json(state->meta, index, chunk.text, std::move(logprobs), nullptr, nullptr));
    }
    if (chunk.finished && chunk.output) {
      state->sse.send(completion_chunk_json(state->meta, index, "", nullptr, finish_reason_json(*chunk.output),
                                            matched_stop_json(*chunk.output)));
    }
  };
  callbacks.on_done = [state](std::vector<EngineOutput> outputs) {
    if (state->include_usage) state->sse.send(usage_chunk_json(state->meta, "text_completion", sum_usage(outputs, state->n)));
    state->sse.finish();
  };
  const Status status = start_generation(context, channel, std::move(engine_requests), request.rid, std::move(callbacks));
  if (!status.ok()) {
    channel->respond(error_response(status));
    return;
  }
  channel->post([state] { state->sse.ensure_started(); });
}

void start_whole(ServingContext& context, std::shared_ptr<ResponseChannel> channel, const CompletionRequest& request,
                 std::vector<PreparedPrompt> prompts, std::vector<EngineRequest> engine_requests) {
  GenerationCallbacks callbacks;
  callbacks.on_done = [channel, meta = make_meta(context, request, "cmpl-"), token_text = token_text_function(context),
                       logprobs = request.logprobs.has_value(), echo = request.echo, n = request.params.n,
                       prompts = std::move(prompts)](std::vector<EngineOutput> outputs) {
    Json choices = Json::array();
    for (size_t i = 0; i < outputs.size(); ++i) {
      const PreparedPrompt& prompt = prompts[i / static_cast<size_t>(n)];
      Json lp = nullptr;
      if (logprobs) {
        CompletionLogprobs entries =
            echo ? echo_logprobs(outputs[i].input_token_logprobs, token_text) : CompletionLogprobs();
        entries.add(outputs[i].output_logprobs, token_text);
        lp = entries.json();
      }
      const std::string text = echo ? prompt.text + outputs[i].text : outputs[i].text;
      choices.push_back(completion_choice_json(i, text, outputs[i], std::move(lp)));
    }
    channel->respond(json_response(completion_response_json(meta, std::move(choices), sum_usage(outputs, n))));
  };
  const Status status = start_generation(context, channel, std::move(engine_requests), request.rid, std::move(callbacks));
  if (!status.ok()) channel->respond(error_response(status));
}

}  // namespace

void handle_completion(ServingContext& context, const HttpRequest& http, std::shared_ptr<ResponseChannel> channel) {
  if (auto refusal = unavailable(context)) {
    channel->respond(std::move(*refusal));
    return;
  }
  auto request = parse_completion_request(http.body);
  if (!request.ok()) {
    channel->respond(error_response(request.status()));
    return;
  }
  auto prompts = prepare_prompts(context, *request);
  if (!prompts.ok()) {
    channel->respond(error_response(prompts.status()));
    return;
  }
  std::vector<EngineRequest> engine_requests;
  for (const PreparedPrompt& prompt : *prompts) {
    for (EngineRequest& sample : expand_samples(prompt.ids, request->params)) engine_requests.push_back(std::move(sample));
  }
  if (request->stream) {
    start_stream(context, std::move(channel), *request, std::move(*prompts), std::move(engine_requests));
  } else {
    start_whole(context, std::move(channel), *request, std::move(*prompts), std::move(engine_requests));
  }
}

}  // namespace radixlm::server::openai
