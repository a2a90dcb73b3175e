// Reading OpenAI chat and completions requests from untrusted JSON. Every field is type- and range-checked
// here, so a client mistake is a 400 that names the field, never an exception further in.

#include <limits>
#include <string>
#include <string_view>

#include "core/json_type_name.h"
#include "sampling/sampling_params_json.h"
#include "server/openai_protocol.h"

namespace radixlm::server::openai {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// The field's value, or nullptr when absent or null (OpenAI's clients send null for "not given").
const Json* field(const Json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

Status bad(std::string message) { return Status(StatusCode::kInvalidArgument, std::move(message)); }

Status read_bool(const Json& object, std::string_view key, bool& out) {
  const Json* value = field(object, key);
  if (!value) return Status::ok_status();
  if (!value->is_boolean()) return make_error(StatusCode::kInvalidArgument, "{} must be a boolean, got {}", key, json_type_name(*value));
  out = value->get<bool>();
  return Status::ok_status();
}

// An integer in [lo, hi]; an integral float (5.0) counts, since JavaScript clients cannot tell them apart.
Expected<int64_t> to_int(const Json& value, std::string_view key, int64_t lo, int64_t hi) {
  int64_t result = 0;
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) return make_error(StatusCode::kInvalidArgument, "{} must be in [{}, {}], got {}", key, lo, hi, u);
    result = static_cast<int64_t>(u);
  } else if (value.is_number_integer()) {
    result = value.get<int64_t>();
  } else if (value.is_number_float()) {
    const double d = value.get<double>();
    // The range check comes first: casting a double outside int64's range is undefined behaviour.
    if (!(d >= -9.2e18 && d <= 9.2e18) || d != static_cast<double>(static_cast<int64_t>(d))) {
      return make_error(StatusCode::kInvalidArgument, "{} must be an integer, got {}", key, d);
    }
    result = static_cast<int64_t>(d);
  } else {
    return make_error(StatusCode::kInvalidArgument, "{} must be an integer, got {}", key, json_type_name(value));
  }
  if (result < lo || result > hi) return make_error(StatusCode::kInvalidArgument, "{} must be in [{}, {}], got {}", key, lo, hi, result);
  return result;
}

Status read_int(const Json& object, std::string_view key, int64_t lo, int64_t hi, std::optional<int64_t>& out) {
  const Json* value = field(object, key);
  if (!value) return Status::ok_status();
  RADIXLM_ASSIGN_OR_RETURN(out, to_int(*value, key, lo, hi));
  return Status::ok_status();
}

Status read_string(const Json& object, std::string_view key, std::optional<std::string>& out) {
  const Json* value = field(object, key);
  if (!value) return Status::ok_status();
  if (!value->is_string()) return make_error(StatusCode::kInvalidArgument, "{} must be a string, got {}", key, json_type_name(*value));
  out = value->get<std::string>();
  return Status::ok_status();
}

Expected<Json> parse_body(std::string_view body) {
  Json request = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return bad("the request body is not valid JSON");
  if (!request.is_object()) return make_error(StatusCode::kInvalidArgument, "the request body must be a JSON object, got {}", json_type_name(request));
  return request;
}

// Fields this server recognises but cannot honour yet: a clear 400 rather than silently ignoring them.
Status refuse_unsupported(const Json& request) {
  for (const char* key : {"regex", "json_schema", "ebnf", "structural_tag"}) {
    if (field(request, key)) return make_error(StatusCode::kUnsupported, "{} (constrained decoding) is not supported yet", key);
  }
  if (field(request, "lora_path")) return bad("lora_path: LoRA adapters are not supported yet");
  if (const Json* format = field(request, "response_format")) {
    if (!format->is_object()) return make_error(StatusCode::kInvalidArgument, "response_format must be an object, got {}", json_type_name(*format));
    const Json* type = field(*format, "type");
    if (!type || !type->is_string()) return bad("response_format.type must be a string");
    if (type->get<std::string>() != "text") {
      return make_error(StatusCode::kUnsupported, "response_format type '{}' (constrained decoding) is not supported yet",
                        type->get<std::string>());
    }
  }
  return Status::ok_status();
}

// The fields both endpoints share, mapped onto SGLang's sampling names and read by parse_sampling_params.
Status parse_common(const Json& request, CommonRequest& out, int64_t default_max_tokens) {
  RADIXLM_RETURN_IF_ERROR(refuse_unsupported(request));
  RADIXLM_RETURN_IF_ERROR(read_string(request, "model", out.model));
  RADIXLM_RETURN_IF_ERROR(read_bool(request, "stream", out.stream));
  if (const Json* options = field(request, "stream_options")) {
    if (!options->is_object()) return make_error(StatusCode::kInvalidArgument, "stream_options must be an object, got {}", json_type_name(*options));
    if (!out.stream) return bad("stream_options can only be given when stream is true");
    RADIXLM_RETURN_IF_ERROR(read_bool(*options, "include_usage", out.include_usage));
  }
  std::optional<std::string> rid;
  RADIXLM_RETURN_IF_ERROR(read_string(request, "rid", rid));
  if (rid) {
    if (rid->empty() || rid->size() > 256) return bad("rid must be a non-empty string of at most 256 bytes");
    out.rid = *rid;
  }

  Json sampling = Json::object();
  for (const char* key : {"temperature", "top_p", "top_k", "min_p", "frequency_penalty", "presence_penalty",
                          "repetition_penalty", "stop", "stop_token_ids", "ignore_eos", "skip_special_tokens",
                          "spaces_between_special_tokens", "no_stop_trim", "seed", "logit_bias"}) {
    if (const Json* value = field(request, key)) sampling[key] = *value;
  }
  std::optional<int64_t> n, max_tokens, max_completion_tokens, min_tokens;
  RADIXLM_RETURN_IF_ERROR(read_int(request, "n", 1, kMaxSamplesPerRequest, n));
  RADIXLM_RETURN_IF_ERROR(read_int(request, "max_tokens", 1, std::numeric_limits<int32_t>::max(), max_tokens));
  RADIXLM_RETURN_IF_ERROR(read_int(request, "max_completion_tokens", 1, std::numeric_limits<int32_t>::max(), max_completion_tokens));
  RADIXLM_RETURN_IF_ERROR(read_int(request, "min_tokens", 0, std::numeric_limits<int32_t>::max(), min_tokens));
  if (n) sampling["n"] = *n;
  // max_completion_tokens is OpenAI's newer name and wins, as in SGLang; none given: the endpoint's default.
  const std::optional<int64_t> limit = max_completion_tokens ? max_completion_tokens : max_tokens;
  if (limit) {
    sampling["max_new_tokens"] = *limit;
  } else if (default_max_tokens > 0) {
    sampling["max_new_tokens"] = default_max_tokens;
  } else {
    sampling["max_new_tokens"] = nullptr;
  }
  if (min_tokens) sampling["min_new_tokens"] = *min_tokens;
  if (const Json* temperature = field(request, "temperature")) {
    if (temperature->is_number() && temperature->get<double>() < 0) {
      return make_error(StatusCode::kInvalidArgument, "temperature must be at least 0, got {}", temperature->get<double>());
    }
  }
  RADIXLM_ASSIGN_OR_RETURN(out.params, parse_sampling_params(sampling));
  if (out.params.min_new_tokens > 0 && out.params.max_new_tokens && out.params.min_new_tokens > *out.params.max_new_tokens) {
    return make_error(StatusCode::kInvalidArgument, "min_tokens ({}) must not exceed max_tokens ({})",
                      out.params.min_new_tokens, *out.params.max_new_tokens);
  }
  return Status::ok_status();
}

// A message's content as the template sees it: a string, null, or text parts joined with newlines.
Expected<OrderedJson> normalise_content(const OrderedJson& content, size_t index) {
  if (content.is_null() || content.is_string()) return content;
  if (!content.is_array()) {
    return make_error(StatusCode::kInvalidArgument, "messages[{}].content must be a string or a list of parts, got {}",
                      index, json_type_name(content));
  }
  std::string joined;
  bool first = true;
  for (const OrderedJson& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      return make_error(StatusCode::kInvalidArgument, "messages[{}].content parts must be objects with a string type", index);
    }
    const std::string type = part["type"].get<std::string>();
    if (type != "text") {
      return make_error(StatusCode::kUnsupported, "messages[{}]: content of type '{}' is not supported (text models only)",
                        index, type);
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      return make_error(StatusCode::kInvalidArgument, "messages[{}].content: a text part needs a string text", index);
    }
    if (!first) joined += '\n';
    joined += part["text"].get<std::string>();
    first = false;
  }
  return OrderedJson(joined);
}

// The roles of OpenAI's message types (SGLang rejects others the same way).
bool known_role(std::string_view role) {
  for (std::string_view known : {"system", "developer", "user", "assistant", "tool", "function"}) {
    if (role == known) return true;
  }
  return false;
}

// A tool as OpenAI defines it: {"type": "function", "function": {"name": ..., "parameters": {...}}}.
Status check_tool(const OrderedJson& tool, size_t index) {
  if (!tool.is_object()) return make_error(StatusCode::kInvalidArgument, "tools[{}] must be an object", index);
  auto type = tool.find("type");
  if (type != tool.end() && !(type->is_string() && type->get<std::string>() == "function")) {
    return make_error(StatusCode::kInvalidArgument, "tools[{}].type must be 'function'", index);
  }
  auto function = tool.find("function");
  if (function == tool.end() || !function->is_object()) {
    return make_error(StatusCode::kInvalidArgument, "tools[{}].function must be an object", index);
  }
  auto name = function->find("name");
  if (name == function->end() || !name->is_string() || name->get<std::string>().empty()) {
    return make_error(StatusCode::kInvalidArgument, "tools[{}].function.name must be a non-empty string", index);
  }
  auto parameters = function->find("parameters");
  if (parameters != function->end() && !parameters->is_null() && !parameters->is_object()) {
    return make_error(StatusCode::kInvalidArgument, "tools[{}].function.parameters must be an object", index);
  }
  return Status::ok_status();
}

Status parse_messages(std::string_view body, ChatRequest& out) {
  // Parsed again with member order kept: a template's tojson shows it.
  const OrderedJson request = OrderedJson::parse(body, nullptr, false);
  auto it = request.find("messages");
  if (it == request.end() || it->is_null()) return bad("messages is required");
  if (!it->is_array()) return make_error(StatusCode::kInvalidArgument, "messages must be a list, got {}", json_type_name(*it));
  if (it->empty()) return bad("messages must not be empty");
  for (size_t i = 0; i < it->size(); ++i) {
    OrderedJson message = (*it)[i];
    if (!message.is_object()) return make_error(StatusCode::kInvalidArgument, "messages[{}] must be an object, got {}", i, json_type_name(message));
    if (!message.contains("role") || !message["role"].is_string()) {
      return make_error(StatusCode::kInvalidArgument, "messages[{}].role must be a string", i);
    }
    if (!known_role(message["role"].get<std::string>())) {
      return make_error(StatusCode::kInvalidArgument,
                        "messages[{}].role must be one of system, developer, user, assistant, tool, function; got '{}'",
                        i, message["role"].get<std::string>());
    }
    if (message.contains("content")) {
      RADIXLM_ASSIGN_OR_RETURN(message["content"], normalise_content(message["content"], i));
    }
    out.messages.push_back(std::move(message));
  }
  if (auto tools = request.find("tools"); tools != request.end() && !tools->is_null()) {
    if (!tools->is_array()) return make_error(StatusCode::kInvalidArgument, "tools must be a list, got {}", json_type_name(*tools));
    for (size_t i = 0; i < tools->size(); ++i) RADIXLM_RETURN_IF_ERROR(check_tool((*tools)[i], i));
    out.tools = *tools;
  }
  if (auto kwargs = request.find("chat_template_kwargs"); kwargs != request.end() && !kwargs->is_null()) {
    if (!kwargs->is_object()) {
      return make_error(StatusCode::kInvalidArgument, "chat_template_kwargs must be an object, got {}", json_type_name(*kwargs));
    }
    out.chat_template_kwargs = *kwargs;
  }
  return Status::ok_status();
}

Status parse_tool_choice(const Json& request, ChatRequest& out) {
  const Json* choice = field(request, "tool_choice");
  if (!choice) return Status::ok_status();
  if (choice->is_string()) {
    const std::string value = choice->get<std::string>();
    if (value == "none") {
      out.tools = nullptr;  // SGLang does not show the template tools the model may not call
      return Status::ok_status();
    }
    if (value == "auto") return Status::ok_status();
    if (value == "required") return Status(StatusCode::kUnsupported, "tool_choice 'required' is not supported yet");
    return make_error(StatusCode::kInvalidArgument, "tool_choice must be 'none', 'auto', 'required' or an object, got '{}'", value);
  }
  if (choice->is_object()) return Status(StatusCode::kUnsupported, "tool_choice naming a function is not supported yet");
  return make_error(StatusCode::kInvalidArgument, "tool_choice must be a string or an object, got {}", json_type_name(*choice));
}

Expected<std::vector<int32_t>> token_list(const Json& list, std::string_view what) {
  if (list.empty()) return make_error(StatusCode::kInvalidArgument, "{} must not be an empty list", what);
  std::vector<int32_t> ids;
  ids.reserve(list.size());
  for (const Json& id : list) {
    if (!id.is_number_integer() && !id.is_number_unsigned()) {
      return make_error(StatusCode::kInvalidArgument, "{} must hold token ids (integers), got {}", what, json_type_name(id));
    }
    RADIXLM_ASSIGN_OR_RETURN(int64_t value, to_int(id, what, 0, std::numeric_limits<int32_t>::max()));
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

Status parse_prompt(const Json& request, CompletionRequest& out) {
  const Json* prompt = field(request, "prompt");
  if (!prompt) return bad("prompt is required");
  if (prompt->is_string()) {
    out.prompts.push_back(CompletionPrompt{prompt->get<std::string>(), {}});
    return Status::ok_status();
  }
  if (!prompt->is_array()) {
    return make_error(StatusCode::kInvalidArgument,
                      "prompt must be a string, a list of strings, a list of token ids or a list of lists of token ids, got {}",
                      json_type_name(*prompt));
  }
  if (prompt->empty()) return bad("prompt must not be an empty list");
  const Json& first = prompt->front();
  if (first.is_number()) {
    RADIXLM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, token_list(*prompt, "prompt"));
    out.prompts.push_back(CompletionPrompt{std::nullopt, std::move(ids)});
    return Status::ok_status();
  }
  for (size_t i = 0; i < prompt->size(); ++i) {
    const Json& item = (*prompt)[i];
    if (first.is_string() && item.is_string()) {
      out.prompts.push_back(CompletionPrompt{item.get<std::string>(), {}});
    } else if (first.is_array() && item.is_array()) {
      RADIXLM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, token_list(item, fmt::format("prompt[{}]", i)));
      out.prompts.push_back(CompletionPrompt{std::nullopt, std::move(ids)});
    } else {
      return make_error(StatusCode::kInvalidArgument,
                        "prompt[{}]: a prompt list holds only strings or only lists of token ids, got {} after {}", i,
                        json_type_name(item), json_type_name(first));
    }
  }
  return Status::ok_status();
}

}  // namespace

Expected<ChatRequest> parse_chat_request(std::string_view body) {
  RADIXLM_ASSIGN_OR_RETURN(Json request, parse_body(body));
  ChatRequest out;
  // No max_tokens: up to the context length, as OpenAI and SGLang do for chat.
  RADIXLM_RETURN_IF_ERROR(parse_common(request, out, 0));
  RADIXLM_RETURN_IF_ERROR(parse_messages(body, out));
  RADIXLM_RETURN_IF_ERROR(parse_tool_choice(request, out));
  RADIXLM_RETURN_IF_ERROR(read_bool(request, "logprobs", out.logprobs));
  std::optional<int64_t> top;
  RADIXLM_RETURN_IF_ERROR(read_int(request, "top_logprobs", 0, kMaxTopLogprobs, top));
  if (top && *top > 0 && !out.logprobs) return bad("top_logprobs needs logprobs set to true");
  out.top_logprobs = static_cast<int32_t>(top.value_or(0));
  out.params.return_logprob = out.logprobs;
  out.params.top_logprobs_num = out.logprobs ? out.top_logprobs : 0;

  RADIXLM_RETURN_IF_ERROR(read_bool(request, "add_generation_prompt", out.add_generation_prompt));
  RADIXLM_RETURN_IF_ERROR(read_bool(request, "continue_final_message", out.continue_final_message));
  if (out.continue_final_message) {
    if (field(request, "add_generation_prompt") && out.add_generation_prompt) {
      return bad("continue_final_message and add_generation_prompt cannot both be true");
    }
    out.add_generation_prompt = false;
    const OrderedJson& last = out.messages.back();
    if (last["role"].get<std::string>() != "assistant" || !last.contains("content") || !last["content"].is_string()) {
      return bad("continue_final_message needs the last message to be an assistant message with text content");
    }
  }
  return out;
}

Expected<CompletionRequest> parse_completion_request(std::string_view body) {
  RADIXLM_ASSIGN_OR_RETURN(Json request, parse_body(body));
  CompletionRequest out;
  RADIXLM_RETURN_IF_ERROR(parse_common(request, out, /*default_max_tokens=*/16));
  RADIXLM_RETURN_IF_ERROR(parse_prompt(request, out));
  RADIXLM_RETURN_IF_ERROR(read_bool(request, "echo", out.echo));
  std::optional<int64_t> logprobs;
  RADIXLM_RETURN_IF_ERROR(read_int(request, "logprobs", 0, kMaxTopLogprobs, logprobs));
  if (logprobs) {
    out.logprobs = static_cast<int32_t>(*logprobs);
    out.params.return_logprob = true;
    out.params.top_logprobs_num = out.logprobs.value();
  }
  // echo with logprobs shows the prompt's tokens too: ask the engine for them from the first position.
  if (out.echo && out.logprobs) out.params.logprob_start_len = 0;
  std::optional<std::string> suffix;
  RADIXLM_RETURN_IF_ERROR(read_string(request, "suffix", suffix));
  if (suffix && !suffix->empty()) return Status(StatusCode::kUnsupported, "suffix is not supported yet");
  std::optional<int64_t> best_of;
  RADIXLM_RETURN_IF_ERROR(read_int(request, "best_of", 1, kMaxSamplesPerRequest, best_of));
  if (best_of && *best_of != out.params.n) return Status(StatusCode::kUnsupported, "best_of other than n is not supported yet");
  const size_t choices = out.prompts.size() * static_cast<size_t>(out.params.n);
  if (choices > static_cast<size_t>(kMaxSamplesPerRequest) * 8) {
    return make_error(StatusCode::kInvalidArgument, "{} prompts with n = {} make {} choices; at most {} per request",
                      out.prompts.size(), out.params.n, choices, kMaxSamplesPerRequest * 8);
  }
  return out;
}

Expected<std::string> cut_after_final_message(const std::string& rendered, const std::string& final_content) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t first = final_content.find_first_not_of(kSpace);
  if (first == std::string::npos) return bad("continue_final_message needs the final message to have non-blank content");
  const size_t last = final_content.find_last_not_of(kSpace);
  const std::string stripped = final_content.substr(first, last - first + 1);
  const std::string left_stripped = final_content.substr(first);
  const size_t at = rendered.rfind(stripped);
  if (at == std::string::npos) return bad("continue_final_message: the chat template dropped the final message's content");
  // Keep the message's trailing whitespace when the template kept it too.
  if (rendered.compare(at, left_stripped.size(), left_stripped) == 0) return rendered.substr(0, at + left_stripped.size());
  return rendered.substr(0, at + stripped.size());
}

Status check_context_length(int64_t prompt_tokens, std::optional<int32_t> max_new_tokens, int64_t context_length) {
  if (context_length <= 0) return Status::ok_status();
  if (prompt_tokens >= context_length) {
    return make_error(StatusCode::kInvalidArgument,
                      "This model's maximum context length is {} tokens. However, your messages resulted in {} tokens. "
                      "Please reduce the length of the messages.",
                      context_length, prompt_tokens);
  }
  if (max_new_tokens && prompt_tokens + *max_new_tokens > context_length) {
    return make_error(StatusCode::kInvalidArgument,
                      "This model's maximum context length is {} tokens. However, you requested {} tokens ({} in the "
                      "messages, {} in the completion). Please reduce the length of the messages or completion.",
                      context_length, prompt_tokens + *max_new_tokens, prompt_tokens, *max_new_tokens);
  }
  return Status::ok_status();
}

}  // namespace radixlm::server::openai
