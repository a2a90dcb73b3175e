// OpenAI response, chunk and logprob JSON, in the shapes the official client parses.

#include <string>

#include "server/openai_protocol.h"

namespace radixlm::server::openai {
namespace {

using Json = nlohmann::json;

Json bytes_json(const std::string& text) {
  Json bytes = Json::array();
  for (unsigned char c : text) bytes.push_back(static_cast<int>(c));
  return bytes;
}

Json chat_token_json(int32_t token_id, float logprob, const TokenText& token_text) {
  const std::string text = token_text(token_id);
  return Json{{"token", text}, {"logprob", logprob}, {"bytes", bytes_json(text)}};
}

}  // namespace

size_t utf8_length(std::string_view text) {
  size_t count = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++count;  // every byte but a continuation byte starts a code point
  }
  return count;
}

Json usage_json(const Usage& usage) {
  return Json{{"prompt_tokens", usage.prompt_tokens},
              {"completion_tokens", usage.completion_tokens},
              {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", usage.cached_tokens}}}};
}

Usage sum_usage(std::span<const EngineOutput> outputs, int32_t n) {
  Usage usage;
  const size_t group = n > 0 ? static_cast<size_t>(n) : 1;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (i % group == 0) usage.prompt_tokens += outputs[i].prompt_tokens;
    usage.completion_tokens += outputs[i].completion_tokens;
    usage.cached_tokens += outputs[i].cached_tokens;
  }
  return usage;
}

Json finish_reason_json(const EngineOutput& output) {
  if (output.finish_reason.empty()) return nullptr;
  return output.finish_reason;
}

Json matched_stop_json(const EngineOutput& output) {
  if (output.matched_string) return *output.matched_string;
  if (output.matched_token) return *output.matched_token;
  return nullptr;
}

Json chat_logprobs_json(std::span<const SampledToken> tokens, const TokenText& token_text) {
  Json content = Json::array();
  for (const SampledToken& token : tokens) {
    Json entry = chat_token_json(token.token_id, token.logprob, token_text);
    Json top = Json::array();
    for (const TokenLogprob& alternative : token.top_logprobs) {
      top.push_back(chat_token_json(alternative.token_id, alternative.logprob, token_text));
    }
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  return Json{{"content", std::move(content)}};
}

void CompletionLogprobs::add(int32_t token_id, std::optional<float> logprob, std::span<const TokenLogprob> top,
                             const TokenText& token_text) {
  const std::string text = token_text(token_id);
  tokens_.push_back(text);
  token_logprobs_.push_back(logprob ? Json(*logprob) : Json(nullptr));
  if (!logprob) {
    top_logprobs_.push_back(nullptr);
  } else {
    Json alternatives = Json::object();
    // Two ids may decode alike (a partial character): keep the likelier, which comes first.
    for (const TokenLogprob& alternative : top) {
      const std::string key = token_text(alternative.token_id);
      if (!alternatives.contains(key)) alternatives[key] = alternative.logprob;
    }
    top_logprobs_.push_back(std::move(alternatives));
  }
  text_offset_.push_back(offset_);
  offset_ += utf8_length(text);
}

void CompletionLogprobs::add(std::span<const SampledToken> tokens, const TokenText& token_text) {
  for (const SampledToken& token : tokens) add(token.token_id, token.logprob, token.top_logprobs, token_text);
}

Json CompletionLogprobs::json() const {
  return Json{{"tokens", tokens_}, {"token_logprobs", token_logprobs_}, {"top_logprobs", top_logprobs_},
              {"text_offset", text_offset_}};
}

Json chat_choice_json(size_t index, const std::string& content, const EngineOutput& output, Json logprobs) {
  return Json{{"index", index},
              {"message", {{"role", "assistant"}, {"content", content}, {"reasoning_content", nullptr}, {"tool_calls", nullptr}}},
              {"logprobs", std::move(logprobs)},
              {"finish_reason", finish_reason_json(output)},
              {"matched_stop", matched_stop_json(output)}};
}

Json chat_response_json(const ResponseMeta& meta, Json choices, const Usage& usage) {
  return Json{{"id", meta.id},       {"object", "chat.completion"}, {"created", meta.created},
              {"model", meta.model}, {"choices", std::move(choices)}, {"usage", usage_json(usage)}};
}

Json chat_chunk_json(const ResponseMeta& meta, size_t index, Json delta, Json logprobs, Json finish_reason,
                     Json matched_stop) {
  Json choice = {{"index", index},
                 {"delta", std::move(delta)},
                 {"logprobs", std::move(logprobs)},
                 {"finish_reason", std::move(finish_reason)}};
  if (!matched_stop.is_null()) choice["matched_stop"] = std::move(matched_stop);
  return Json{{"id", meta.id},       {"object", "chat.completion.chunk"}, {"created", meta.created},
              {"model", meta.model}, {"choices", Json::array({std::move(choice)})}};
}

Json completion_choice_json(size_t index, const std::string& text, const EngineOutput& output, Json logprobs) {
  return Json{{"index", index},
              {"text", text},
              {"logprobs", std::move(logprobs)},
              {"finish_reason", finish_reason_json(output)},
              {"matched_stop", matched_stop_json(output)}};
}

Json completion_response_json(const ResponseMeta& meta, Json choices, const Usage& usage) {
  return Json{{"id", meta.id},       {"object", "text_completion"}, {"created", meta.created},
              {"model", meta.model}, {"choices", std::move(choices)}, {"usage", usage_json(usage)}};
}

Json completion_chunk_json(const ResponseMeta& meta, size_t index, const std::string& text, Json logprobs,
                           Json finish_reason, Json matched_stop) {
  Json choice = {{"index", index},
                 {"text", text},
                 {"logprobs", std::move(logprobs)},
                 {"finish_reason", std::move(finish_reason)}};
  if (!matched_stop.is_null()) choice["matched_stop"] = std::move(matched_stop);
  return Json{{"id", meta.id},       {"object", "text_completion"}, {"created", meta.created},
              {"model", meta.model}, {"choices", Json::array({std::move(choice)})}};
}

Json usage_chunk_json(const ResponseMeta& meta, const char* object, const Usage& usage) {
  return Json{{"id", meta.id},       {"object", object},          {"created", meta.created},
              {"model", meta.model}, {"choices", Json::array()}, {"usage", usage_json(usage)}};
}

Json model_card_json(const std::string& id, const std::string& root, int64_t created, int64_t max_model_len) {
  return Json{{"id", id},       {"object", "model"}, {"created", created}, {"owned_by", "radixlm"},
              {"root", root},   {"parent", nullptr}, {"max_model_len", max_model_len}};
}

Json model_list_json(const std::string& id, const std::string& root, int64_t created, int64_t max_model_len) {
  return Json{{"object", "list"}, {"data", Json::array({model_card_json(id, root, created, max_model_len)})}};
}

std::string dump_json(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string sse_event(const Json& payload) {
  std::string event = "data: ";
  event += dump_json(payload);
  event += "\n\n";
  return event;
}

}  // namespace radixlm::server::openai
