// The OpenAI routes' registration, /v1/models, and the pieces the chat and completions handlers share.

#include "server/openai_routes.h"

#include <ctime>
#include <random>

#include <fmt/format.h>

#include "server/api_error.h"
#include "server/openai_route_common.h"
#if RADIXLM_TEXT
#include "tokenizer/tokenizer.h"
#endif

namespace radixlm::server {
namespace openai {

// Defined in openai_chat_route.cpp and openai_completion_route.cpp.
void handle_chat_completion(ServingContext& context, const HttpRequest& request, std::shared_ptr<ResponseChannel> channel);
void handle_completion(ServingContext& context, const HttpRequest& request, std::shared_ptr<ResponseChannel> channel);

namespace {

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

// When the server came up, which is when its one model was "created" as far as /v1/models can tell.
int64_t server_start_time() {
  static const int64_t started = now_unix();
  return started;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A path segment as the client meant it: "%2F" and friends decoded; a malformed escape stays as sent.
std::string percent_decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

void handle_list_models(ServingContext& context, std::shared_ptr<ResponseChannel> channel) {
  channel->respond(json_response(
      model_list_json(context.served_model_name, context.model_path, server_start_time(), context.context_length)));
}

void handle_retrieve_model(ServingContext& context, const HttpRequest& request, std::shared_ptr<ResponseChannel> channel) {
  constexpr std::string_view kPrefix = "/v1/models/";
  const std::string id = percent_decode(std::string_view(request.path).substr(kPrefix.size()));
  if (id != context.served_model_name) {
    channel->respond(error_response(404, fmt::format("The model `{}` does not exist.", id)));
    return;
  }
  channel->respond(
      json_response(model_card_json(context.served_model_name, context.model_path, server_start_time(), context.context_length)));
}

}  // namespace

std::optional<HttpResponse> unavailable(const ServingContext& context) {
  if (context.draining.load()) return error_response(503, "The server is shutting down and takes no new requests.");
  if (!context.ready.load()) return error_response(503, "The server is not ready yet: the model is still loading.");
  if (context.engine == nullptr) return error_response(503, "The server has no engine.");
  return std::nullopt;
}

ResponseMeta make_meta(const ServingContext& context, const CommonRequest& request, const std::string& prefix) {
  ResponseMeta meta;
  if (!request.rid.empty()) {
    meta.id = request.rid;
  } else {
    thread_local std::mt19937_64 random(std::random_device{}());
    meta.id = fmt::format("{}{:016x}{:016x}", prefix, random(), random());
  }
  meta.created = now_unix();
  meta.model = request.model.value_or(context.served_model_name);
  return meta;
}

TokenText token_text_function(const ServingContext& context) {
#if RADIXLM_TEXT
  if (const tokenizer::Tokenizer* tok = context.tokenizer) {
    return [tok](int32_t id) {
      const int32_t ids[1] = {id};
      return tok->decode(ids, /*skip_special_tokens=*/false);
    };
  }
#else
  (void)context;
#endif
  return [](int32_t id) { return fmt::format("token_id:{}", id); };
}

std::vector<EngineRequest> expand_samples(std::vector<int32_t> prompt, const SamplingParams& params) {
  EngineRequest request;
  request.input_ids = std::move(prompt);
  request.params = params;
  return expand_parallel_samples(std::move(request));
}

void SseStream::ensure_started() {
  if (started) return;
  started = true;
  channel->begin_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
  if (on_start) on_start();
}

void SseStream::send(const nlohmann::json& payload) {
  ensure_started();
  channel->write(sse_event(payload));
}

void SseStream::finish() {
  ensure_started();
  channel->write(std::string(kSseDone));
  channel->end_stream();
}

HttpResponse json_response(const nlohmann::json& body) {
  HttpResponse response;
  response.body = dump_json(body);
  return response;
}

}  // namespace openai

void add_openai_routes(Router& router, ServingContext& context) {
  ServingContext* ctx = &context;
  router.add("POST", "/v1/chat/completions", [ctx](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
    openai::handle_chat_completion(*ctx, request, std::move(channel));
  });
  router.add("POST", "/v1/completions", [ctx](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
    openai::handle_completion(*ctx, request, std::move(channel));
  });
  router.add("GET", "/v1/models", [ctx](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
    openai::handle_list_models(*ctx, std::move(channel));
  });
  router.add_prefix("GET", "/v1/models/", [ctx](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
    openai::handle_retrieve_model(*ctx, request, std::move(channel));
  });
}

}  // namespace radixlm::server
