#include "bench/protocol.h"

#include <algorithm>

namespace radixlm::bench {

using nlohmann::json;

Expected<ApiKind> backend_api(std::string_view backend) {
  if (backend == "sglang" || backend == "sglang-native") return ApiKind::kGenerate;
  if (backend == "sglang-oai" || backend == "vllm" || backend == "lmdeploy") return ApiKind::kCompletions;
  if (backend == "chat" || backend == "sglang-oai-chat" || backend == "vllm-chat" || backend == "lmdeploy-chat") {
    return ApiKind::kChat;
  }
  return make_error(StatusCode::kInvalidArgument,
                    "unknown --backend '{}' (sglang, sglang-native, sglang-oai, vllm, lmdeploy, chat, "
                    "sglang-oai-chat, vllm-chat, lmdeploy-chat)",
                    backend);
}

std::string_view api_route(ApiKind api) {
  switch (api) {
    case ApiKind::kGenerate: return "/generate";
    case ApiKind::kCompletions: return "/v1/completions";
    case ApiKind::kChat: return "/v1/chat/completions";
  }
  return "/generate";
}

Expected<json> build_payload(ApiKind api, const BenchPrompt& prompt, const PayloadOptions& options) {
  const bool as_ids = prompt.text.empty() && !prompt.input_ids.empty();
  json payload;
  switch (api) {
    case ApiKind::kGenerate:
      if (as_ids) {
        payload["input_ids"] = prompt.input_ids;
      } else {
        payload["text"] = prompt.text;
      }
      payload["sampling_params"] = {
          {"temperature", 0.0}, {"max_new_tokens", prompt.output_len}, {"ignore_eos", options.ignore_eos}};
      payload["stream"] = options.stream;
      break;
    case ApiKind::kCompletions:
      payload["model"] = options.model;
      if (as_ids) {
        payload["prompt"] = prompt.input_ids;  // OpenAI takes a prompt as a list of token ids too
      } else {
        payload["prompt"] = prompt.text;
      }
      payload["temperature"] = 0.0;
      payload["best_of"] = 1;
      payload["max_tokens"] = prompt.output_len;
      payload["stream"] = options.stream;
      payload["ignore_eos"] = options.ignore_eos;
      if (options.stream) payload["stream_options"] = {{"include_usage", true}};
      break;
    case ApiKind::kChat:
      if (as_ids) {
        return make_error(StatusCode::kInvalidArgument,
                          "chat completions need text prompts: give --tokenizer (a radixlm built with text support)");
      }
      payload["model"] = options.model;
      payload["messages"] = json::array({{{"role", "user"}, {"content", prompt.text}}});
      payload["temperature"] = 0.0;
      payload["max_tokens"] = prompt.output_len;
      payload["stream"] = options.stream;
      payload["ignore_eos"] = options.ignore_eos;
      if (options.stream) payload["stream_options"] = {{"include_usage", true}};
      break;
  }
  if (options.extra_body.is_object()) {
    for (auto it = options.extra_body.begin(); it != options.extra_body.end(); ++it) payload[it.key()] = it.value();
  }
  return payload;
}

std::string error_message_of(std::string_view body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    const json* holder = &parsed;
    if (auto it = parsed.find("error"); it != parsed.end()) {
      if (it->is_string()) return it->get<std::string>();
      if (it->is_object()) holder = &*it;
    }
    if (auto it = holder->find("message"); it != holder->end() && it->is_string()) return it->get<std::string>();
  }
  constexpr size_t kMaxShown = 300;
  return std::string(body.substr(0, kMaxShown));
}

ResponseAccumulator::ResponseAccumulator(ApiKind api, bool stream, const BenchPrompt& prompt)
    : api_(api), stream_(stream) {
  result_.prompt_len = prompt.prompt_len;
  result_.output_len = prompt.output_len;  // replaced by the server's count when it reports one
}

void ResponseAccumulator::on_body(std::string_view bytes, double t_s) {
  if (http_status_ != 200 || !stream_) {
    constexpr size_t kMaxKept = 64u << 20;
    if (body_.size() < kMaxKept) body_.append(bytes.substr(0, kMaxKept - body_.size()));
    return;
  }
  for (const std::string& event : sse_.feed(bytes)) on_event(event, t_s);
}

void ResponseAccumulator::take_counts(const json& counts, const char* completion_key, const char* prompt_key) {
  if (!counts.is_object()) return;
  if (auto it = counts.find(completion_key); it != counts.end() && it->is_number_integer()) {
    reported_completion_tokens_ = it->get<int64_t>();
  }
  if (auto it = counts.find(prompt_key); it != counts.end() && it->is_number_integer()) {
    result_.server_prompt_tokens = it->get<int64_t>();
  }
}

void ResponseAccumulator::mark_output(double t_s, int64_t new_tokens) {
  if (!saw_output_) {
    saw_output_ = true;
    result_.ttft_s = t_s;
  } else if (new_tokens > 0) {
    const double gap = (t_s - last_output_s_) / static_cast<double>(new_tokens);
    result_.itl_s.insert(result_.itl_s.end(), static_cast<size_t>(new_tokens), gap);
  }
  last_output_s_ = t_s;
}

void ResponseAccumulator::on_event(std::string_view data, double t_s) {
  saw_event_ = true;
  if (data == "[DONE]") return;
  json event = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!event.is_object()) {
    if (stream_error_.empty()) stream_error_ = "unparsable stream event: " + std::string(data.substr(0, 200));
    return;
  }
  if (auto it = event.find("error"); it != event.end() && !it->is_null()) {
    if (stream_error_.empty()) stream_error_ = "error in the stream: " + error_message_of(data);
    return;
  }
  switch (api_) {
    case ApiKind::kGenerate: {
      std::string text;
      if (auto it = event.find("text"); it != event.end() && it->is_string()) text = it->get<std::string>();
      if (auto it = event.find("meta_info"); it != event.end()) take_counts(*it, "completion_tokens", "prompt_tokens");
      const int64_t tokens = reported_completion_tokens_.value_or(last_completion_tokens_);
      const bool carries_output = tokens > last_completion_tokens_ || (!reported_completion_tokens_ && !text.empty());
      if (!text.empty()) {
        // SGLang streams the text so far in each event; a server streaming increments instead is appended.
        if (text.size() >= result_.generated_text.size() && text.compare(0, result_.generated_text.size(),
                                                                         result_.generated_text) == 0) {
          result_.generated_text = std::move(text);
        } else {
          result_.generated_text += text;
        }
      }
      if (carries_output) {
        mark_output(t_s, std::max<int64_t>(tokens - last_completion_tokens_, 1));
        last_completion_tokens_ = tokens;
      }
      break;
    }
    case ApiKind::kCompletions:
    case ApiKind::kChat: {
      if (auto it = event.find("usage"); it != event.end()) take_counts(*it, "completion_tokens", "prompt_tokens");
      auto choices = event.find("choices");
      if (choices == event.end() || !choices->is_array() || choices->empty() || !(*choices)[0].is_object()) break;
      const json& choice = (*choices)[0];
      std::string piece;
      if (api_ == ApiKind::kCompletions) {
        if (auto it = choice.find("text"); it != choice.end() && it->is_string()) piece = it->get<std::string>();
      } else if (auto delta = choice.find("delta"); delta != choice.end() && delta->is_object()) {
        for (const char* key : {"content", "reasoning_content"}) {
          if (auto it = delta->find(key); it != delta->end() && it->is_string()) piece += it->get<std::string>();
        }
      }
      if (!piece.empty()) {
        result_.generated_text += piece;
        mark_output(t_s, 1);
      }
      break;
    }
  }
}

RequestResult ResponseAccumulator::finish(const std::string& transport_error, double end_s) {
  result_.latency_s = end_s;
  if (!transport_error.empty()) {
    result_.error = transport_error;
    return result_;
  }
  if (http_status_ != 200) {
    result_.error = fmt::format("HTTP {}: {}", http_status_, error_message_of(body_));
    return result_;
  }
  if (stream_) {
    for (const std::string& event : sse_.finish()) on_event(event, end_s);
    if (!stream_error_.empty()) {
      result_.error = stream_error_;
      return result_;
    }
    if (!saw_event_) {
      result_.error = "the stream ended without an event";
      return result_;
    }
  } else {
    json body = json::parse(body_, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object() && !(api_ == ApiKind::kGenerate && body.is_array() && !body.empty())) {
      result_.error = "the response is not JSON: " + body_.substr(0, 200);
      return result_;
    }
    if (body.is_array()) body = body[0];
    if (api_ == ApiKind::kGenerate) {
      if (auto it = body.find("text"); it != body.end() && it->is_string()) result_.generated_text = it->get<std::string>();
      if (auto it = body.find("meta_info"); it != body.end()) take_counts(*it, "completion_tokens", "prompt_tokens");
    } else {
      if (auto it = body.find("usage"); it != body.end()) take_counts(*it, "completion_tokens", "prompt_tokens");
      auto choices = body.find("choices");
      if (choices != body.end() && choices->is_array() && !choices->empty() && (*choices)[0].is_object()) {
        const json& choice = (*choices)[0];
        if (api_ == ApiKind::kCompletions) {
          if (auto it = choice.find("text"); it != choice.end() && it->is_string()) {
            result_.generated_text = it->get<std::string>();
          }
        } else if (auto message = choice.find("message"); message != choice.end() && message->is_object()) {
          if (auto it = message->find("content"); it != message->end() && it->is_string()) {
            result_.generated_text = it->get<std::string>();
          }
        }
      }
    }
    result_.ttft_s = end_s;
  }
  if (reported_completion_tokens_) result_.output_len = *reported_completion_tokens_;
  result_.success = true;
  return result_;
}

}  // namespace radixlm::bench
