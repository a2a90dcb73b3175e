#include "server/native_routes.h"

#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "server/api_error.h"
#include "server/native_generate.h"
#include "server/request_registry.h"
#if RADIXLM_TEXT
#include "tokenizer/tokenizer.h"
#endif

namespace radixlm::server {
namespace {

using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;

// How long /health_generate waits for its one token before answering 503 (SGLang's HEALTH_CHECK_TIMEOUT).
constexpr auto kHealthGenerateTimeout = std::chrono::seconds(20);

HttpResponse json_response(const OJson& body, int status = 200) {
  HttpResponse response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, OJson::error_handler_t::replace);
  return response;
}

HttpResponse text_response(int status, std::string text) {
  HttpResponse response;
  response.status = status;
  response.content_type = "text/plain; charset=utf-8";
  response.body = std::move(text);
  return response;
}

// The JSON object a POST route reads; an empty body counts as {}.
Expected<Json> object_body(const HttpRequest& request) {
  if (request.body.find_first_not_of(" \t\r\n") == std::string::npos) return Json::object();
  Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return make_error(StatusCode::kInvalidArgument, "the request body is not valid JSON");
  if (!body.is_object()) return make_error(StatusCode::kInvalidArgument, "the request body must be a JSON object");
  return body;
}

bool is_secret_key(const std::string& key) { return key.find("api_key") != std::string::npos; }

void handle_health(const ServingContext& context, const std::shared_ptr<ResponseChannel>& channel) {
  const bool up = context.ready.load() && !context.draining.load();
  channel->respond(text_response(up ? 200 : 503, ""));
}

// A real one-token generation through the scheduler, outside the registry and the metrics (SGLang's health
// request has log_metrics off). A waiter thread answers 503 if it has not finished in time.
void handle_health_generate(ServingContext& context, const std::shared_ptr<ResponseChannel>& channel) {
  if (!context.ready.load() || context.draining.load() || context.engine == nullptr) {
    channel->respond(text_response(503, ""));
    return;
  }
  EngineRequest request;
  request.input_ids = {0};
  request.params.temperature = 0.0;
  request.params.max_new_tokens = 1;
  Expected<std::shared_ptr<RequestStream>> submitted = context.engine->submit(std::move(request));
  if (!submitted.ok()) {
    channel->respond(text_response(503, submitted.status().message() + "\n"));
    return;
  }
  struct Wait {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
  };
  auto wait = std::make_shared<Wait>();
  std::shared_ptr<RequestStream> stream = *submitted;
  const uint64_t id = stream->id();
  stream->set_listener([wait, channel, weak = std::weak_ptr<RequestStream>(stream)] {
    std::shared_ptr<RequestStream> s = weak.lock();
    if (!s) return;
    while (std::optional<StreamChunk> chunk = s->try_next()) {
      if (!chunk->finished) continue;
      const bool ok = chunk->output.has_value() && chunk->output->finish_reason != "abort";
      {
        std::lock_guard lock(wait->mutex);
        if (wait->done) return;
        wait->done = true;
      }
      wait->cv.notify_all();
      channel->respond(text_response(ok ? 200 : 503, ""));
    }
  });
  Engine* engine = context.engine;
  std::thread([wait, channel, engine, id, stream] {
    std::unique_lock lock(wait->mutex);
    if (wait->cv.wait_for(lock, kHealthGenerateTimeout, [&] { return wait->done; })) return;
    wait->done = true;
    lock.unlock();
    engine->abort(id);
    channel->respond(text_response(503, "the health check generation did not finish in time\n"));
  }).detach();
}

void handle_model_info(const ServingContext& context, const std::shared_ptr<ResponseChannel>& channel) {
  OJson info = OJson::object();
  info["model_path"] = context.model_path;
  const auto tokenizer_path = context.server_info.find("tokenizer_path");
  info["tokenizer_path"] = tokenizer_path != context.server_info.end() && !tokenizer_path->is_null()
                               ? OJson(*tokenizer_path)
                               : OJson(context.model_path);
  info["is_generation"] = true;
  info["preferred_sampling_params"] = nullptr;
  info["weight_version"] = "default";
  info["has_image_understanding"] = false;
  info["has_audio_understanding"] = false;
  info["model_type"] = nullptr;
  info["architectures"] = nullptr;
  channel->respond(json_response(info));
}

OJson snapshot_json(const ServingContext& context) {
  OJson s = OJson::object();
  if (context.engine == nullptr) return s;
  const EngineSnapshot snap = context.engine->snapshot();
  s["num_running_reqs"] = snap.num_running_reqs;
  s["num_queue_reqs"] = snap.num_queue_reqs;
  s["num_used_tokens"] = snap.num_used_tokens;
  s["max_total_num_tokens"] = snap.max_total_num_tokens;
  s["token_usage"] = snap.token_usage;
  s["cache_hit_rate"] = snap.cache_hit_rate;
  s["gen_throughput"] = snap.gen_throughput;
  s["max_running_requests"] = snap.max_running_requests;
  s["context_length"] = snap.context_length;
  s["page_size"] = snap.page_size;
  return s;
}

void handle_server_info(const ServingContext& context, const std::shared_ptr<ResponseChannel>& channel) {
  OJson info = OJson::object();
  for (const auto& [key, value] : context.server_info.items()) {
    if (!is_secret_key(key)) info[key] = value;
  }
  const OJson state = snapshot_json(context);
  // SGLang's scheduler_info keys at the top, the live state per scheduler in internal_states.
  for (const char* key : {"max_total_num_tokens", "max_running_requests", "context_length", "page_size"}) {
    if (state.contains(key)) info[key] = state[key];
  }
  info["internal_states"] = OJson::array({state});
  info["version"] = "radixlm";
  channel->respond(json_response(info));
}

void handle_flush_cache(ServingContext& context, const std::shared_ptr<ResponseChannel>& channel) {
  if (context.engine == nullptr) {
    channel->respond(text_response(400, "no engine to flush\n"));
    return;
  }
  const Status status = context.engine->flush_cache();
  if (!status.ok()) {
    channel->respond(text_response(400, status.message() + "\n"));
    return;
  }
  channel->respond(text_response(200, "Cache flushed.\n"));
}

void handle_abort_request(ServingContext& context, const HttpRequest& request,
                          const std::shared_ptr<ResponseChannel>& channel) {
  Expected<Json> body = object_body(request);
  if (!body.ok()) {
    channel->respond(error_response(body.status()));
    return;
  }
  bool abort_all = false;
  if (auto it = body->find("abort_all"); it != body->end() && !it->is_null()) {
    if (!it->is_boolean()) {
      channel->respond(error_response(400, "abort_all must be a boolean"));
      return;
    }
    abort_all = it->get<bool>();
  }
  std::string rid;
  if (auto it = body->find("rid"); it != body->end() && !it->is_null()) {
    if (!it->is_string()) {
      channel->respond(error_response(400, "rid must be a string"));
      return;
    }
    rid = it->get<std::string>();
  }
  if (!abort_all && rid.empty()) {
    channel->respond(error_response(400, "give a rid to abort, or abort_all: true"));
    return;
  }
  if (context.engine != nullptr && context.registry != nullptr) {
    std::vector<uint64_t> ids;
    if (abort_all) {
      ids = context.registry->all_engine_ids();
    } else if (auto found = context.registry->find(rid)) {
      ids = std::move(*found);
    }
    for (uint64_t id : ids) context.engine->abort(id);
  }
  // As SGLang: an unknown or finished rid is not an error.
  channel->respond(text_response(200, ""));
}

#if RADIXLM_TEXT
Expected<std::vector<int32_t>> token_ids(const Json& value, const std::string& name) {
  if (!value.is_array()) return make_error(StatusCode::kInvalidArgument, "{} must be a list of integers", name);
  std::vector<int32_t> ids;
  for (size_t i = 0; i < value.size(); ++i) {
    const Json& v = value[i];
    if (!v.is_number_integer() && !v.is_number_unsigned()) {
      return make_error(StatusCode::kInvalidArgument, "{}[{}] must be an integer", name, i);
    }
    const int64_t id = v.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX))
                                              : v.get<int64_t>();
    if (id < 0 || id > std::numeric_limits<int32_t>::max()) {
      return make_error(StatusCode::kInvalidArgument, "{}[{}] = {} is not a token id", name, i, id);
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}
#endif

void handle_tokenize(const ServingContext& context, const HttpRequest& request,
                     const std::shared_ptr<ResponseChannel>& channel) {
#if RADIXLM_TEXT
  if (context.tokenizer == nullptr) {
    channel->respond(error_response(400, "this server has no tokenizer (--skip-tokenizer-init)"));
    return;
  }
  Expected<Json> body = object_body(request);
  if (!body.ok()) {
    channel->respond(error_response(body.status()));
    return;
  }
  bool add_special_tokens = true;
  if (auto it = body->find("add_special_tokens"); it != body->end() && !it->is_null()) {
    if (!it->is_boolean()) {
      channel->respond(error_response(400, "add_special_tokens must be a boolean"));
      return;
    }
    add_special_tokens = it->get<bool>();
  }
  const auto prompt = body->find("prompt");
  OJson out = OJson::object();
  if (prompt != body->end() && prompt->is_string()) {
    const std::vector<int32_t> ids = context.tokenizer->encode(prompt->get<std::string>(), add_special_tokens);
    out["tokens"] = ids;
    out["count"] = ids.size();
  } else if (prompt != body->end() && prompt->is_array()) {
    OJson tokens = OJson::array();
    OJson counts = OJson::array();
    for (size_t i = 0; i < prompt->size(); ++i) {
      if (!(*prompt)[i].is_string()) {
        channel->respond(error_response(400, "prompt[" + std::to_string(i) + "] must be a string"));
        return;
      }
      const std::vector<int32_t> ids = context.tokenizer->encode((*prompt)[i].get<std::string>(), add_special_tokens);
      tokens.push_back(ids);
      counts.push_back(ids.size());
    }
    out["tokens"] = std::move(tokens);
    out["count"] = std::move(counts);
  } else {
    channel->respond(error_response(400, "prompt must be a string or a list of strings"));
    return;
  }
  out["max_model_len"] = context.context_length;
  channel->respond(json_response(out));
#else
  (void)context;
  (void)request;
  channel->respond(error_response(400, "this build of radixlm has no tokenizer"));
#endif
}

void handle_detokenize(const ServingContext& context, const HttpRequest& request,
                       const std::shared_ptr<ResponseChannel>& channel) {
#if RADIXLM_TEXT
  if (context.tokenizer == nullptr) {
    channel->respond(error_response(400, "this server has no tokenizer (--skip-tokenizer-init)"));
    return;
  }
  Expected<Json> body = object_body(request);
  if (!body.ok()) {
    channel->respond(error_response(body.status()));
    return;
  }
  bool skip_special_tokens = true;
  if (auto it = body->find("skip_special_tokens"); it != body->end() && !it->is_null()) {
    if (!it->is_boolean()) {
      channel->respond(error_response(400, "skip_special_tokens must be a boolean"));
      return;
    }
    skip_special_tokens = it->get<bool>();
  }
  const auto tokens = body->find("tokens");
  if (tokens == body->end() || !tokens->is_array()) {
    channel->respond(error_response(400, "tokens must be a list of token ids or a list of lists"));
    return;
  }
  OJson out = OJson::object();
  if (!tokens->empty() && (*tokens)[0].is_array()) {
    OJson texts = OJson::array();
    for (size_t i = 0; i < tokens->size(); ++i) {
      Expected<std::vector<int32_t>> ids = token_ids((*tokens)[i], "tokens[" + std::to_string(i) + "]");
      if (!ids.ok()) {
        channel->respond(error_response(ids.status()));
        return;
      }
      texts.push_back(context.tokenizer->decode(*ids, skip_special_tokens));
    }
    out["text"] = std::move(texts);
  } else {
    Expected<std::vector<int32_t>> ids = token_ids(*tokens, "tokens");
    if (!ids.ok()) {
      channel->respond(error_response(ids.status()));
      return;
    }
    out["text"] = context.tokenizer->decode(*ids, skip_special_tokens);
  }
  channel->respond(json_response(out));
#else
  (void)context;
  (void)request;
  channel->respond(error_response(400, "this build of radixlm has no tokenizer"));
#endif
}

void handle_metrics(const ServingContext& context, const std::shared_ptr<ResponseChannel>& channel) {
  if (context.metrics == nullptr) {
    // As SGLang, which only has the route with --enable-metrics.
    channel->respond(error_response(404, "metrics are off: start the server with --enable-metrics"));
    return;
  }
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = context.metrics->render(scheduler_gauges(context));
  channel->respond(std::move(response));
}

}  // namespace

SchedulerGauges scheduler_gauges(const ServingContext& context) {
  SchedulerGauges gauges;
  if (context.engine == nullptr) return gauges;
  const EngineSnapshot snap = context.engine->snapshot();
  gauges.num_running_reqs = snap.num_running_reqs;
  gauges.num_queue_reqs = snap.num_queue_reqs;
  gauges.token_usage = snap.token_usage;
  gauges.cache_hit_rate = snap.cache_hit_rate;
  gauges.gen_throughput = snap.gen_throughput;
  return gauges;
}

void add_native_routes(Router& router, ServingContext& context) {
  ServingContext* ctx = &context;
  for (const char* method : {"POST", "PUT"}) {
    router.add(method, "/generate", [ctx](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
      native::handle_generate(request, channel, *ctx);
    });
  }
  router.add("GET", "/health", [ctx](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
    handle_health(*ctx, channel);
  });
  router.add("GET", "/health_generate", [ctx](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
    handle_health_generate(*ctx, channel);
  });
  for (const char* path : {"/get_model_info", "/model_info"}) {
    router.add("GET", path, [ctx](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
      handle_model_info(*ctx, channel);
    });
  }
  for (const char* path : {"/get_server_info", "/server_info"}) {
    router.add("GET", path, [ctx](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
      handle_server_info(*ctx, channel);
    });
  }
  for (const char* method : {"GET", "POST"}) {
    router.add(method, "/flush_cache", [ctx](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
      handle_flush_cache(*ctx, channel);
    });
  }
  router.add("POST", "/abort_request", [ctx](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
    handle_abort_request(*ctx, request, channel);
  });
  for (const char* path : {"/v1/tokenize", "/tokenize"}) {
    router.add("POST", path, [ctx](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
      handle_tokenize(*ctx, request, channel);
    });
  }
  for (const char* path : {"/v1/detokenize", "/detokenize"}) {
    router.add("POST", path, [ctx](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
      handle_detokenize(*ctx, request, channel);
    });
  }
  router.add("GET", "/metrics", [ctx](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
    handle_metrics(*ctx, channel);
  });
}

}  // namespace radixlm::server
