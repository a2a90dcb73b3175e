#include "server/native_generate.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <random>
#include <set>

#include <fmt/format.h>

#include "sampling/sampling_params_json.h"
#include "server/api_error.h"
#include "server/engine_bridge.h"
#if RADIXLM_TEXT
#include "tokenizer/tokenizer.h"
#endif

namespace radixlm::server::native {
namespace {

using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;

const char* type_name(const Json& value) {
  switch (value.type()) {
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "a list";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a number";
    case Json::value_t::null: return "null";
    default: return "an unknown value";
  }
}

const Json* field(const Json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string random_rid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

Expected<std::vector<int32_t>> token_list(const Json& value, const std::string& name) {
  if (!value.is_array()) return make_error(StatusCode::kInvalidArgument, "{} must be a list of token ids, got {}", name, type_name(value));
  std::vector<int32_t> ids;
  ids.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const Json& v = value[i];
    if (!v.is_number_integer() && !v.is_number_unsigned()) {
      return make_error(StatusCode::kInvalidArgument, "{}[{}] must be an integer token id, got {}", name, i, type_name(v));
    }
    if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())
                               : (v.get<int64_t>() < 0 || v.get<int64_t>() > std::numeric_limits<int32_t>::max())) {
      return make_error(StatusCode::kInvalidArgument, "{}[{}] = {} is not a token id", name, i, v.dump());
    }
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  if (ids.empty()) return make_error(StatusCode::kInvalidArgument, "{} must not be empty", name);
  return ids;
}

// The value of a per-item field for item `i`: a list gives one per item (only in a batch), anything else
// applies to every item.
Expected<const Json*> per_item(const Json& body, const char* key, size_t i, size_t count, bool batch) {
  const Json* value = field(body, key);
  if (value == nullptr || !value->is_array()) return value;
  if (!batch) return make_error(StatusCode::kInvalidArgument, "{} must not be a list for a single prompt", key);
  if (value->size() != count) {
    return make_error(StatusCode::kInvalidArgument, "{} has {} entries for a batch of {} prompts", key, value->size(), count);
  }
  const Json& element = (*value)[i];
  return element.is_null() ? nullptr : &element;
}

Json logprob_value(float logprob) {
  if (std::isnan(logprob)) return nullptr;
  return static_cast<double>(logprob);
}

Json token_text(const ServingContext& context, int32_t id, bool with_text) {
#if RADIXLM_TEXT
  if (with_text && context.tokenizer != nullptr) {
    const int32_t ids[1] = {id};
    return context.tokenizer->decode(ids, /*skip_special_tokens=*/false);
  }
#else
  (void)context;
  (void)id;
  (void)with_text;
#endif
  return nullptr;
}

OJson logprob_triples(const std::vector<SampledToken>& tokens, const ServingContext& context, bool with_text) {
  OJson out = OJson::array();
  for (const SampledToken& t : tokens) out.push_back({logprob_value(t.logprob), t.token_id, token_text(context, t.token_id, with_text)});
  return out;
}

OJson top_logprob_lists(const std::vector<SampledToken>& tokens, const ServingContext& context, bool with_text) {
  OJson out = OJson::array();
  for (const SampledToken& t : tokens) {
    if (t.top_logprobs.empty()) {
      out.push_back(nullptr);
      continue;
    }
    OJson position = OJson::array();
    for (const TokenLogprob& top : t.top_logprobs) {
      position.push_back({logprob_value(top.logprob), top.token_id, token_text(context, top.token_id, with_text)});
    }
    out.push_back(std::move(position));
  }
  return out;
}

Expected<std::vector<int32_t>> encode_text(const Json& value, const std::string& name, const ServingContext& context) {
  if (!value.is_string()) return make_error(StatusCode::kInvalidArgument, "{} must be a string, got {}", name, type_name(value));
#if RADIXLM_TEXT
  if (context.tokenizer == nullptr) {
    return make_error(StatusCode::kInvalidArgument,
                      "text prompts need the tokenizer, which this server does not load (--skip-tokenizer-init): send input_ids");
  }
  std::vector<int32_t> ids = context.tokenizer->encode(value.get<std::string>(), /*add_special_tokens=*/true);
  if (ids.empty()) return make_error(StatusCode::kInvalidArgument, "{} encodes to no tokens", name);
  return ids;
#else
  (void)context;
  return make_error(StatusCode::kInvalidArgument,
                    "text prompts need the tokenizer, which this build of radixlm does not have: send input_ids");
#endif
}

}  // namespace

Expected<GenerateInput> parse_generate_request(const Json& body, const ServingContext& context) {
  if (!body.is_object()) return make_error(StatusCode::kInvalidArgument, "the request body must be a JSON object");
  GenerateInput input;
  const Json* text = field(body, "text");
  const Json* ids = field(body, "input_ids");
  if (field(body, "input_embeds") != nullptr) {
    return make_error(StatusCode::kInvalidArgument, "input_embeds is not supported: send text or input_ids");
  }
  if ((text == nullptr) == (ids == nullptr)) {
    return make_error(StatusCode::kInvalidArgument, "give exactly one of text or input_ids");
  }

  std::vector<std::vector<int32_t>> prompts;
  if (text != nullptr) {
    if (text->is_array()) {
      input.batch = true;
      if (text->empty()) return make_error(StatusCode::kInvalidArgument, "text must not be an empty list");
      for (size_t i = 0; i < text->size(); ++i) {
        RADIXLM_ASSIGN_OR_RETURN(auto p, encode_text((*text)[i], fmt::format("text[{}]", i), context));
        prompts.push_back(std::move(p));
      }
    } else {
      RADIXLM_ASSIGN_OR_RETURN(auto p, encode_text(*text, "text", context));
      prompts.push_back(std::move(p));
    }
  } else {
    if (!ids->is_array()) return make_error(StatusCode::kInvalidArgument, "input_ids must be a list, got {}", type_name(*ids));
    if (ids->empty()) return make_error(StatusCode::kInvalidArgument, "input_ids must not be empty");
    if ((*ids)[0].is_array()) {
      input.batch = true;
      for (size_t i = 0; i < ids->size(); ++i) {
        RADIXLM_ASSIGN_OR_RETURN(auto p, token_list((*ids)[i], fmt::format("input_ids[{}]", i)));
        prompts.push_back(std::move(p));
      }
    } else {
      RADIXLM_ASSIGN_OR_RETURN(auto p, token_list(*ids, "input_ids"));
      prompts.push_back(std::move(p));
    }
  }

  if (const Json* stream = field(body, "stream")) {
    if (!stream->is_boolean()) return make_error(StatusCode::kInvalidArgument, "stream must be a boolean, got {}", type_name(*stream));
    input.stream = stream->get<bool>();
  }
  if (const Json* with_text = field(body, "return_text_in_logprobs")) {
    if (!with_text->is_boolean()) {
      return make_error(StatusCode::kInvalidArgument, "return_text_in_logprobs must be a boolean, got {}", type_name(*with_text));
    }
    input.return_text_in_logprobs = with_text->get<bool>();
  }
  const Json* rid = field(body, "rid");
  if (rid != nullptr && !rid->is_string() && !(rid->is_array() && input.batch)) {
    return make_error(StatusCode::kInvalidArgument, "rid must be a string{}, got {}", input.batch ? " or a list of strings" : "",
                      type_name(*rid));
  }
  if (rid != nullptr && rid->is_string() && input.batch) {
    return make_error(StatusCode::kInvalidArgument, "rid must be a list of {} strings for a batch", prompts.size());
  }

  const size_t count = prompts.size();
  std::set<std::string> rids;
  for (size_t i = 0; i < count; ++i) {
    GenerateItem item;
    item.input_ids = std::move(prompts[i]);
    RADIXLM_ASSIGN_OR_RETURN(const Json* sampling, per_item(body, "sampling_params", i, count, input.batch));
    if (sampling != nullptr && !sampling->is_object()) {
      return make_error(StatusCode::kInvalidArgument, "sampling_params must be an object, got {}", type_name(*sampling));
    }
    auto params = parse_sampling_params(sampling != nullptr ? *sampling : Json());
    if (!params.ok()) return make_error(params.status().code(), "sampling_params: {}", params.status().message());
    item.params = std::move(*params);
    Json logprob_fields = Json::object();
    for (const char* key : {"return_logprob", "top_logprobs_num", "logprob_start_len"}) {
      RADIXLM_ASSIGN_OR_RETURN(const Json* value, per_item(body, key, i, count, input.batch));
      if (value != nullptr) logprob_fields[key] = *value;
    }
    RADIXLM_RETURN_IF_ERROR(parse_logprob_fields(logprob_fields, item.params));

    if (rid != nullptr && rid->is_array()) {
      if (rid->size() != count) {
        return make_error(StatusCode::kInvalidArgument, "rid has {} entries for a batch of {} prompts", rid->size(), count);
      }
      if (!(*rid)[i].is_string()) {
        return make_error(StatusCode::kInvalidArgument, "rid[{}] must be a string, got {}", i, type_name((*rid)[i]));
      }
      item.rid = (*rid)[i].get<std::string>();
    } else if (rid != nullptr) {
      item.rid = rid->get<std::string>();
    }
    if (item.rid.empty()) item.rid = random_rid();
    if (!rids.insert(item.rid).second) {
      return make_error(StatusCode::kInvalidArgument, "Duplicate request ID: rid '{}' is given to two prompts", item.rid);
    }

    const int64_t prompt_len = static_cast<int64_t>(item.input_ids.size());
    const std::string which = input.batch ? fmt::format("prompt {}", i) : std::string("the prompt");
    if (context.context_length > 0 && prompt_len >= context.context_length) {
      return make_error(StatusCode::kInvalidArgument,
                        "{} has {} tokens, which does not fit the model's context length of {} tokens", which,
                        prompt_len, context.context_length);
    }
    if (context.context_length > 0 && item.params.max_new_tokens.has_value() &&
        prompt_len + *item.params.max_new_tokens > context.context_length) {
      return make_error(StatusCode::kInvalidArgument,
                        "{} has {} tokens and max_new_tokens is {}: together more than the model's context length of "
                        "{} tokens",
                        which, prompt_len, *item.params.max_new_tokens, context.context_length);
    }
    if (item.params.return_logprob && item.params.logprob_start_len >= prompt_len) {
      return make_error(StatusCode::kInvalidArgument, "logprob_start_len ({}) must be less than the {} tokens of {}",
                        item.params.logprob_start_len, prompt_len, which);
    }
    input.items.push_back(std::move(item));
  }
  return input;
}

OJson finish_reason_json(const EngineOutput& output) {
  if (output.finish_reason == "stop") {
    OJson reason = {{"type", "stop"}};
    if (output.matched_string.has_value()) {
      reason["matched"] = *output.matched_string;
    } else if (output.matched_token.has_value()) {
      reason["matched"] = *output.matched_token;
    } else {
      reason["matched"] = nullptr;
    }
    return reason;
  }
  if (output.finish_reason == "length") return {{"type", "length"}, {"length", output.completion_tokens}};
  return {{"type", "abort"}, {"message", output.abort_message}};
}

OJson format_output(const OutputView& view, const ServingContext& context, bool return_text_in_logprobs) {
  OJson out = OJson::object();
  if (context.tokenizer != nullptr) out["text"] = *view.text;
  out["output_ids"] = *view.output_ids;
  OJson meta = OJson::object();
  meta["id"] = *view.rid;
  meta["finish_reason"] = view.finished != nullptr ? finish_reason_json(*view.finished) : OJson(nullptr);
  meta["prompt_tokens"] = view.prompt_tokens;
  meta["weight_version"] = "default";
  meta["completion_tokens"] = static_cast<int64_t>(view.output_ids->size());
  meta["cached_tokens"] = view.finished != nullptr ? view.finished->cached_tokens : 0;
  if (view.params->return_logprob) {
    const bool with_text = return_text_in_logprobs && context.tokenizer != nullptr;
    meta["input_token_logprobs"] = logprob_triples(*view.input_logprobs, context, with_text);
    meta["output_token_logprobs"] = logprob_triples(*view.output_logprobs, context, with_text);
    if (view.params->top_logprobs_num > 0) {
      meta["input_top_logprobs"] = top_logprob_lists(*view.input_logprobs, context, with_text);
      meta["output_top_logprobs"] = top_logprob_lists(*view.output_logprobs, context, with_text);
    }
  }
  if (view.finished != nullptr) meta["e2e_latency"] = view.e2e_latency_s;
  out["meta_info"] = std::move(meta);
  return out;
}

namespace {

// One engine request of the exchange, as the response reports it.
struct Slot {
  size_t item = 0;
  std::string rid;  // the item's rid, with _<sample> when the item has n > 1
  std::vector<int32_t> output_ids;
  std::string text;
  std::vector<SampledToken> output_logprobs;
  std::vector<SampledToken> input_logprobs;
  std::optional<EngineOutput> finished;
};

struct Exchange {
  ServingContext* context = nullptr;
  std::shared_ptr<ResponseChannel> channel;
  GenerateInput input;
  std::vector<Slot> slots;
  bool single_object = false;  // one prompt, one sample: an object rather than a list
  double started_at = 0.0;
  std::atomic<bool> stream_started{false};  // the handler and the first drain may both start it

  OJson view(const Slot& slot, double now) const {
    const GenerateItem& item = input.items[slot.item];
    OutputView v;
    v.rid = &slot.rid;
    v.params = &item.params;
    v.prompt_tokens = static_cast<int64_t>(item.input_ids.size());
    v.output_ids = &slot.output_ids;
    v.text = &slot.text;
    v.output_logprobs = &slot.output_logprobs;
    v.input_logprobs = &slot.input_logprobs;
    v.finished = slot.finished ? &*slot.finished : nullptr;
    v.e2e_latency_s = now - started_at;
    return format_output(v, *context, input.return_text_in_logprobs);
  }

  void start_stream() {
    if (stream_started.exchange(true)) return;
    channel->begin_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
  }
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string sse_event(const OJson& payload) {
  return "data: " + payload.dump(-1, ' ', false, OJson::error_handler_t::replace) + "\n\n";
}

}  // namespace

void handle_generate(const HttpRequest& request, const std::shared_ptr<ResponseChannel>& channel,
                     ServingContext& context) {
  if (!context.ready.load() || context.draining.load() || context.engine == nullptr) {
    channel->respond(error_response(503, context.draining.load() ? "the server is shutting down"
                                                                 : "the server is not ready yet"));
    return;
  }
  const Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    channel->respond(error_response(400, "the request body is not valid JSON"));
    return;
  }
  Expected<GenerateInput> parsed = parse_generate_request(body, context);
  if (!parsed.ok()) {
    channel->respond(error_response(parsed.status()));
    return;
  }

  auto exchange = std::make_shared<Exchange>();
  exchange->context = &context;
  exchange->channel = channel;
  exchange->input = std::move(*parsed);
  exchange->started_at = now_s();
  const GenerateInput& input = exchange->input;
  exchange->single_object = !input.batch && input.items[0].params.n == 1;

  std::vector<EngineRequest> requests;
  std::vector<std::string> group_rids;
  for (size_t i = 0; i < input.items.size(); ++i) {
    const GenerateItem& item = input.items[i];
    EngineRequest base;
    base.input_ids = item.input_ids;
    base.params = item.params;
    std::vector<EngineRequest> copies = expand_parallel_samples(std::move(base));
    for (size_t s = 0; s < copies.size(); ++s) {
      Slot slot;
      slot.item = i;
      slot.rid = copies.size() > 1 ? fmt::format("{}_{}", item.rid, s) : item.rid;
      exchange->slots.push_back(std::move(slot));
      requests.push_back(std::move(copies[s]));
      group_rids.push_back(item.rid);
    }
  }

  GenerationCallbacks callbacks;
  if (input.stream) {
    callbacks.on_chunk = [exchange](size_t index, const StreamChunk& chunk) {
      Slot& slot = exchange->slots[index];
      if (!chunk.input_token_logprobs.empty()) slot.input_logprobs = chunk.input_token_logprobs;
      slot.output_ids.insert(slot.output_ids.end(), chunk.token_ids.begin(), chunk.token_ids.end());
      slot.text += chunk.text;
      slot.output_logprobs.insert(slot.output_logprobs.end(), chunk.logprobs.begin(), chunk.logprobs.end());
      if (chunk.finished && chunk.output) {
        slot.finished = *chunk.output;
        // The final output is authoritative (a stop string may have been cut from the text).
        slot.output_ids = chunk.output->output_ids;
        slot.text = chunk.output->text;
        if (!chunk.output->output_logprobs.empty()) slot.output_logprobs = chunk.output->output_logprobs;
        if (!chunk.output->input_token_logprobs.empty()) slot.input_logprobs = chunk.output->input_token_logprobs;
      } else if (chunk.token_ids.empty()) {
        return;  // nothing new to tell
      }
      OJson event = exchange->view(slot, now_s());
      if (!exchange->single_object) event["index"] = index;
      exchange->start_stream();
      exchange->channel->write(sse_event(event));
    };
    callbacks.on_done = [exchange](std::vector<EngineOutput>) {
      exchange->start_stream();
      exchange->channel->write("data: [DONE]\n\n");
      exchange->channel->end_stream();
    };
  } else {
    callbacks.on_done = [exchange](std::vector<EngineOutput> outputs) {
      const double now = now_s();
      OJson results = OJson::array();
      for (size_t k = 0; k < outputs.size(); ++k) {
        Slot& slot = exchange->slots[k];
        slot.output_ids = outputs[k].output_ids;
        slot.text = outputs[k].text;
        slot.output_logprobs = outputs[k].output_logprobs;
        slot.input_logprobs = outputs[k].input_token_logprobs;
        slot.finished = std::move(outputs[k]);
        results.push_back(exchange->view(slot, now));
      }
      HttpResponse response;
      const OJson& body = exchange->single_object ? results[0] : results;
      response.body = body.dump(-1, ' ', false, OJson::error_handler_t::replace);
      exchange->channel->respond(std::move(response));
    };
  }

  const Status status = start_generation(context, channel, std::move(requests), group_rids, std::move(callbacks));
  if (!status.ok()) {
    channel->respond(error_response(status));
    return;
  }
  if (input.stream) exchange->start_stream();
}

}  // namespace radixlm::server::native
