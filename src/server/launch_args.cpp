#include "server/launch_args.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "loader/weight_source.h"

namespace radixlm::server {
namespace {

// The values given for one canonical flag: its last occurrence (argparse's store), with the spelling used.
struct GivenValue {
  std::string spelled;              // as written (an alias or an abbreviation resolves to the canonical)
  std::vector<std::string> values;  // empty for flags without a value
};

const std::unordered_map<std::string_view, const LaunchFlag*>& flag_index() {
  static const auto* index = [] {
    auto* map = new std::unordered_map<std::string_view, const LaunchFlag*>();
    for (const LaunchFlag& flag : launch_flag_table()) map->emplace(flag.name, &flag);
    return map;
  }();
  return *index;
}

std::string_view canonical_name(const LaunchFlag& flag) { return flag.alias_of.empty() ? flag.name : flag.alias_of; }

// argparse reads "-1" or "-.5" as a value, not an option, since no SGLang flag looks like a negative number.
bool looks_like_negative_number(std::string_view arg) {
  if (arg.size() < 2 || arg[0] != '-') return false;
  bool digit = false, dot = false;
  for (char c : arg.substr(1)) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      return false;
    }
  }
  return digit;
}

bool is_flag_like(std::string_view arg) { return arg.size() > 1 && arg[0] == '-' && !looks_like_negative_number(arg); }

// Exact name first, then argparse's unique-prefix abbreviation.
Expected<const LaunchFlag*> resolve_flag(std::string_view name) {
  if (auto it = flag_index().find(name); it != flag_index().end()) return it->second;
  std::vector<const LaunchFlag*> matches;
  if (name.size() > 2 && name.substr(0, 2) == "--") {
    for (const LaunchFlag& flag : launch_flag_table()) {
      if (flag.name.substr(0, name.size()) == name) matches.push_back(&flag);
    }
  }
  if (matches.size() == 1) return matches.front();
  if (matches.empty()) {
    return make_error(StatusCode::kInvalidArgument,
                      "unrecognized argument: {} (SGLang's launch_server has no such flag; see radixlm serve --help)",
                      name);
  }
  std::vector<std::string_view> names;
  for (const LaunchFlag* flag : matches) names.push_back(flag->name);
  return make_error(StatusCode::kInvalidArgument, "ambiguous option: {} could match {}", name, fmt::join(names, ", "));
}

std::vector<std::string_view> split_bars(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find('|', begin), text.size());
    parts.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return parts;
}

// Python's int() on a command-line value: optional sign, digits, surrounding blanks allowed.
template <typename Int>
Expected<Int> to_int(const std::string& flag, const std::string& text) {
  std::string_view s(text);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  Int value{};
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || error != std::errc() || end != s.data() + s.size()) {
    return make_error(StatusCode::kInvalidArgument, "argument {}: invalid int value: '{}'", flag, text);
  }
  return value;
}

Expected<double> to_float(const std::string& flag, const std::string& text) {
  size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || !std::isfinite(value)) {
    return make_error(StatusCode::kInvalidArgument, "argument {}: invalid float value: '{}'", flag, text);
  }
  return value;
}

Status check_choice(const std::string& flag, const std::string& value, std::initializer_list<std::string_view> choices) {
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return {};
  return make_error(StatusCode::kInvalidArgument, "argument {}: invalid choice: '{}' (choose from {})", flag, value,
                    fmt::join(choices, ", "));
}

// Turns the implemented flags' values into LaunchArgs fields, with argparse's type and choice errors.
class Converter {
 public:
  explicit Converter(const std::map<std::string, GivenValue, std::less<>>& given) : given_(given) {}

  const GivenValue* find(std::string_view flag) const {
    auto it = given_.find(flag);
    return it == given_.end() ? nullptr : &it->second;
  }
  bool has(std::string_view flag) const { return find(flag) != nullptr; }

  void str(std::string_view flag, std::string& field) const {
    if (const GivenValue* g = find(flag)) field = g->values.at(0);
  }
  void boolean(std::string_view flag, bool& field) const {
    if (has(flag)) field = true;
  }
  template <typename Int>
  Status integer(std::string_view flag, Int& field) const {
    if (const GivenValue* g = find(flag)) {
      RADIXLM_ASSIGN_OR_RETURN(field, to_int<Int>(g->spelled, g->values.at(0)));
    }
    return {};
  }
  template <typename Int>
  Status integer(std::string_view flag, std::optional<Int>& field) const {
    if (const GivenValue* g = find(flag)) {
      RADIXLM_ASSIGN_OR_RETURN(Int value, to_int<Int>(g->spelled, g->values.at(0)));
      field = value;
    }
    return {};
  }
  Status real(std::string_view flag, double& field) const {
    if (const GivenValue* g = find(flag)) {
      RADIXLM_ASSIGN_OR_RETURN(field, to_float(g->spelled, g->values.at(0)));
    }
    return {};
  }
  Status real(std::string_view flag, std::optional<double>& field) const {
    if (const GivenValue* g = find(flag)) {
      RADIXLM_ASSIGN_OR_RETURN(double value, to_float(g->spelled, g->values.at(0)));
      field = value;
    }
    return {};
  }
  Status integers(std::string_view flag, std::vector<int32_t>& field) const {
    if (const GivenValue* g = find(flag)) {
      field.clear();
      for (const std::string& v : g->values) {
        RADIXLM_ASSIGN_OR_RETURN(int32_t value, to_int<int32_t>(g->spelled, v));
        field.push_back(value);
      }
    }
    return {};
  }

 private:
  const std::map<std::string, GivenValue, std::less<>>& given_;
};

Status convert_implemented(const std::map<std::string, GivenValue, std::less<>>& given, LaunchArgs& a) {
  const Converter c(given);
  c.str("--model-path", a.model_path);
  c.str("--tokenizer-path", a.tokenizer_path);
  c.boolean("--skip-tokenizer-init", a.skip_tokenizer_init);
  c.str("--load-format", a.load_format);
  c.boolean("--trust-remote-code", a.trust_remote_code);
  RADIXLM_RETURN_IF_ERROR(c.integer("--context-length", a.context_length));
  c.str("--json-model-override-args", a.json_model_override_args);
  RADIXLM_RETURN_IF_ERROR(c.real("--mem-fraction-static", a.mem_fraction_static));
  RADIXLM_RETURN_IF_ERROR(c.integer("--max-running-requests", a.max_running_requests));
  RADIXLM_RETURN_IF_ERROR(c.integer("--max-queued-requests", a.max_queued_requests));
  RADIXLM_RETURN_IF_ERROR(c.integer("--max-total-tokens", a.max_total_tokens));
  RADIXLM_RETURN_IF_ERROR(c.integer("--chunked-prefill-size", a.chunked_prefill_size));
  RADIXLM_RETURN_IF_ERROR(c.integer("--max-prefill-tokens", a.max_prefill_tokens));
  c.str("--schedule-policy", a.schedule_policy);
  RADIXLM_RETURN_IF_ERROR(c.real("--schedule-conservativeness", a.schedule_conservativeness));
  RADIXLM_RETURN_IF_ERROR(c.integer("--page-size", a.page_size));
  c.boolean("--disable-radix-cache", a.disable_radix_cache);
  c.boolean("--disable-overlap-schedule", a.disable_overlap_schedule);
  c.boolean("--enable-mixed-chunk", a.enable_mixed_chunk);
  RADIXLM_RETURN_IF_ERROR(c.integer("--tp-size", a.tp_size));
  RADIXLM_RETURN_IF_ERROR(c.integer("--dp-size", a.dp_size));
  c.str("--device", a.device);
  RADIXLM_RETURN_IF_ERROR(c.integer("--base-gpu-id", a.base_gpu_id));
  RADIXLM_RETURN_IF_ERROR(c.integer("--random-seed", a.random_seed));
  RADIXLM_RETURN_IF_ERROR(c.integer("--cuda-graph-max-bs-decode", a.cuda_graph_max_bs));
  RADIXLM_RETURN_IF_ERROR(c.integers("--cuda-graph-bs-decode", a.cuda_graph_bs));
  // radixlm captures decode graphs only, so disabling them all and disabling the decode ones agree.
  c.boolean("--disable-cuda-graph", a.disable_cuda_graph);
  c.boolean("--disable-decode-cuda-graph", a.disable_cuda_graph);
  c.str("--host", a.host);
  RADIXLM_RETURN_IF_ERROR(c.integer("--port", a.port));
  c.str("--api-key", a.api_key);
  c.str("--admin-api-key", a.admin_api_key);
  c.str("--served-model-name", a.served_model_name);
  c.str("--chat-template", a.chat_template);
  c.str("--hf-chat-template-name", a.hf_chat_template_name);
  c.str("--weight-version", a.weight_version);
  c.boolean("--skip-server-warmup", a.skip_server_warmup);
  c.str("--log-level", a.log_level);
  c.boolean("--log-requests", a.log_requests);
  c.boolean("--enable-metrics", a.enable_metrics);
  RADIXLM_RETURN_IF_ERROR(c.integer("--decode-log-interval", a.decode_log_interval));
  RADIXLM_RETURN_IF_ERROR(c.integer("--cpu-threads", a.cpu_threads));
  RADIXLM_RETURN_IF_ERROR(c.real("--graceful-shutdown-timeout", a.graceful_shutdown_timeout));

  // SGLang's choices, then radixlm's own limits on values SGLang accepts.
  if (c.has("--load-format")) {
    RADIXLM_RETURN_IF_ERROR(check_choice(
        "--load-format", a.load_format,
        {"auto", "pt", "safetensors", "npcache", "dummy", "sharded_state", "presharded", "gguf", "expert_pack",
         "bitsandbytes", "mistral", "layered", "flash_rl", "remote", "remote_instance", "fastsafetensors", "private",
         "runai_streamer"}));
    if (!supported_load_format(a.load_format)) {
      return make_error(StatusCode::kUnsupported,
                        "--load-format {}: radixlm loads safetensors checkpoints (auto, safetensors) or dummy weights",
                        a.load_format);
    }
  }
  if (c.has("--schedule-policy")) {
    RADIXLM_RETURN_IF_ERROR(check_choice("--schedule-policy", a.schedule_policy,
                                         {"lpm", "random", "fcfs", "dfs-weight", "lof", "priority", "routing-key"}));
    if (a.schedule_policy == "lof" || a.schedule_policy == "routing-key") {
      return make_error(StatusCode::kUnsupported,
                        "--schedule-policy {}: radixlm implements fcfs, lpm, dfs-weight, random and priority",
                        a.schedule_policy);
    }
  }
  if (c.has("--log-level")) {
    RADIXLM_RETURN_IF_ERROR(
        check_choice("--log-level", a.log_level, {"debug", "info", "warning", "error", "critical"}));
  }
  if (c.has("--device")) {
    RADIXLM_RETURN_IF_ERROR(check_choice("--device", a.device.substr(0, a.device.find(':')),
                                         {"cuda", "xpu", "hpu", "npu", "cpu", "musa", "mps", "auto"}));
    // "cuda:1" names the GPU, as SGLang strips the index after reading it.
    const std::string kind = a.device.substr(0, a.device.find(':'));
    if (kind != "cuda" && kind != "cpu" && kind != "auto") {
      return make_error(StatusCode::kUnsupported, "--device {}: radixlm runs on cuda or cpu", a.device);
    }
  }
  if (a.tp_size < 1 || a.dp_size < 1) {
    return make_error(StatusCode::kInvalidArgument, "--tp-size and --dp-size must be >= 1");
  }
  if (a.tp_size > 1) {
    return make_error(StatusCode::kUnsupported, "--tp-size {}: tensor parallelism is not supported yet (use 1)",
                      a.tp_size);
  }
  if (a.dp_size > 1) {
    return make_error(StatusCode::kUnsupported, "--dp-size {}: data parallelism is not supported yet (use 1)",
                      a.dp_size);
  }
  if (a.port < 0 || a.port > 65535) {
    return make_error(StatusCode::kInvalidArgument, "argument --port: {} is not a TCP port", a.port);
  }
  if (a.mem_fraction_static && (*a.mem_fraction_static <= 0.0 || *a.mem_fraction_static > 1.0)) {
    return make_error(StatusCode::kInvalidArgument, "argument --mem-fraction-static: {} is not in (0, 1]",
                      *a.mem_fraction_static);
  }
  if (a.page_size && *a.page_size < 1) {
    return make_error(StatusCode::kInvalidArgument, "argument --page-size: must be >= 1");
  }
  if (a.max_running_requests && *a.max_running_requests < 1) {
    return make_error(StatusCode::kInvalidArgument, "argument --max-running-requests: must be >= 1");
  }
  if (a.max_total_tokens && *a.max_total_tokens < 1) {
    return make_error(StatusCode::kInvalidArgument, "argument --max-total-tokens: must be >= 1");
  }
  if (a.context_length && *a.context_length < 1) {
    return make_error(StatusCode::kInvalidArgument, "argument --context-length: must be >= 1");
  }
  if (a.max_prefill_tokens < 1) {
    return make_error(StatusCode::kInvalidArgument, "argument --max-prefill-tokens: must be >= 1");
  }
  if (a.schedule_conservativeness < 0) {
    return make_error(StatusCode::kInvalidArgument, "argument --schedule-conservativeness: must be non-negative");
  }
  if (a.decode_log_interval < 1) {
    return make_error(StatusCode::kInvalidArgument, "argument --decode-log-interval: must be >= 1");
  }
  if (a.cpu_threads < 0) return make_error(StatusCode::kInvalidArgument, "argument --cpu-threads: must be >= 0");
  if (a.graceful_shutdown_timeout < 0) {
    return make_error(StatusCode::kInvalidArgument, "argument --graceful-shutdown-timeout: must be >= 0");
  }
  if (a.cuda_graph_max_bs && *a.cuda_graph_max_bs < 1) {
    return make_error(StatusCode::kInvalidArgument, "argument --cuda-graph-max-bs-decode: must be >= 1");
  }
  for (int32_t bs : a.cuda_graph_bs) {
    if (bs < 1) return make_error(StatusCode::kInvalidArgument, "argument --cuda-graph-bs-decode: {} is not a batch size", bs);
  }
  // SGLang refuses a served model name with a colon (it is LoRA's "model:adapter" syntax).
  if (a.served_model_name.find(':') != std::string::npos) {
    return make_error(StatusCode::kInvalidArgument,
                      "argument --served-model-name: '{}' may not contain ':' (reserved for 'model:adapter')",
                      a.served_model_name);
  }
  return {};
}

}  // namespace

const LaunchFlag* find_launch_flag(std::string_view name) {
  auto it = flag_index().find(name);
  return it == flag_index().end() ? nullptr : it->second;
}

bool LaunchArgs::was_given(std::string_view canonical_flag) const {
  return std::find(given.begin(), given.end(), canonical_flag) != given.end();
}

Expected<LaunchArgs> parse_launch_args(const std::vector<std::string>& args) {
  std::map<std::string, GivenValue, std::less<>> given;  // by canonical flag
  LaunchArgs out;
  std::vector<std::pair<const LaunchFlag*, std::string>> uses;  // each flag use, as spelled

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!is_flag_like(arg)) {
      return make_error(StatusCode::kInvalidArgument, "unrecognized argument: '{}' (every argument is a --flag)", arg);
    }
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (const size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    RADIXLM_ASSIGN_OR_RETURN(const LaunchFlag* flag, resolve_flag(name));
    GivenValue value{name, {}};

    const auto take_following = [&](size_t max_count) {
      while (value.values.size() < max_count && i + 1 < args.size() && !is_flag_like(args[i + 1])) {
        value.values.push_back(args[++i]);
      }
    };
    switch (flag->arity) {
      case FlagArity::kNone:
        if (inline_value) {
          return make_error(StatusCode::kInvalidArgument, "argument {}: ignored explicit argument '{}'", flag->name,
                            *inline_value);
        }
        break;
      case FlagArity::kOne:
        if (inline_value) {
          value.values.push_back(*inline_value);
        } else {
          take_following(1);
        }
        if (value.values.empty()) {
          return make_error(StatusCode::kInvalidArgument, "argument {}: expected one argument", flag->name);
        }
        break;
      case FlagArity::kOptional:
        if (inline_value) {
          value.values.push_back(*inline_value);
        } else {
          take_following(1);
        }
        break;
      case FlagArity::kOneOrMore:
      case FlagArity::kZeroOrMore:
        if (inline_value) {
          value.values.push_back(*inline_value);
        } else {
          take_following(SIZE_MAX);
        }
        if (flag->arity == FlagArity::kOneOrMore && value.values.empty()) {
          return make_error(StatusCode::kInvalidArgument, "argument {}: expected at least one argument", flag->name);
        }
        break;
    }
    const std::string canonical(canonical_name(*flag));
    if (std::find(out.given.begin(), out.given.end(), canonical) == out.given.end()) out.given.push_back(canonical);
    uses.emplace_back(flag, value.values.empty() ? std::string() : value.values.front());
    given[canonical] = std::move(value);
  }

  // Classes, in the order given: the first flag that cannot run is the error; tuning knobs warn once each.
  std::set<std::string_view> warned;
  for (const auto& [flag, first_value] : uses) {
    switch (flag->cls) {
      case FlagClass::kImplemented:
        break;
      case FlagClass::kRemoved:
        return make_error(StatusCode::kInvalidArgument, "argument {}: {}", flag->name, flag->note);
      case FlagClass::kChangesResults: {
        if (!flag->accepted_values.empty() && flag->arity != FlagArity::kNone) {
          const std::vector<std::string_view> ok = split_bars(flag->accepted_values);
          if (std::find(ok.begin(), ok.end(), first_value) != ok.end()) break;
          return make_error(StatusCode::kUnsupported, "{} {}: {} (radixlm accepts only {})", flag->name, first_value,
                            flag->note, fmt::join(ok, ", "));
        }
        return make_error(StatusCode::kUnsupported, "{} is not supported by radixlm: {}", flag->name,
                          flag->note.empty() ? "the feature is not implemented and would change results" : flag->note);
      }
      case FlagClass::kTuning:
        if (warned.insert(flag->name).second) {
          out.warnings.push_back(fmt::format("{} is a tuning knob radixlm does not have; ignored{}{}", flag->name,
                                             flag->note.empty() ? "" : " (", flag->note.empty() ? "" : fmt::format("{})", flag->note)));
        }
        break;
    }
  }
  RADIXLM_RETURN_IF_ERROR(convert_implemented(given, out));
  return out;
}

nlohmann::json LaunchArgs::to_json() const {
  const auto opt = [](const auto& value) -> nlohmann::json {
    if (value) return *value;
    return nullptr;
  };
  const auto str_or_null = [](const std::string& s) -> nlohmann::json {
    if (s.empty()) return nullptr;
    return s;
  };
  nlohmann::json j = {
      {"model_path", model_path},
      {"tokenizer_path", tokenizer_path.empty() ? model_path : tokenizer_path},
      {"skip_tokenizer_init", skip_tokenizer_init},
      {"load_format", load_format},
      {"trust_remote_code", trust_remote_code},
      {"context_length", opt(context_length)},
      {"json_model_override_args", json_model_override_args},
      {"mem_fraction_static", opt(mem_fraction_static)},
      {"max_running_requests", opt(max_running_requests)},
      {"max_queued_requests", opt(max_queued_requests)},
      {"max_total_tokens", opt(max_total_tokens)},
      {"chunked_prefill_size", opt(chunked_prefill_size)},
      {"max_prefill_tokens", max_prefill_tokens},
      {"schedule_policy", schedule_policy},
      {"schedule_conservativeness", schedule_conservativeness},
      {"page_size", opt(page_size)},
      {"disable_radix_cache", disable_radix_cache},
      {"disable_overlap_schedule", disable_overlap_schedule},
      {"enable_mixed_chunk", enable_mixed_chunk},
      {"tp_size", tp_size},
      {"dp_size", dp_size},
      {"device", str_or_null(device)},
      {"base_gpu_id", base_gpu_id},
      {"random_seed", opt(random_seed)},
      {"cuda_graph_max_bs", opt(cuda_graph_max_bs)},
      {"cuda_graph_bs", cuda_graph_bs.empty() ? nlohmann::json(nullptr) : nlohmann::json(cuda_graph_bs)},
      {"disable_cuda_graph", disable_cuda_graph},
      {"host", host},
      {"port", port},
      {"served_model_name", served_model_name.empty() ? model_path : served_model_name},
      {"chat_template", str_or_null(chat_template)},
      {"hf_chat_template_name", str_or_null(hf_chat_template_name)},
      {"weight_version", weight_version},
      {"skip_server_warmup", skip_server_warmup},
      {"log_level", log_level},
      {"log_requests", log_requests},
      {"enable_metrics", enable_metrics},
      {"decode_log_interval", decode_log_interval},
      {"cpu_threads", cpu_threads},
      {"graceful_shutdown_timeout", graceful_shutdown_timeout},
  };
  // Which flags were given but ignored, so /server_info shows the whole launch line's effect.
  nlohmann::json ignored = nlohmann::json::array();
  for (const std::string& name : given) {
    const LaunchFlag* flag = find_launch_flag(name);
    if (flag && flag->cls == FlagClass::kTuning) ignored.push_back(name);
  }
  j["ignored_flags"] = ignored;
  return j;
}

std::string launch_args_help() {
  std::string out =
      "usage: radixlm serve [--model-path DIR] [SGLang launch_server flags]\n\n"
      "Serves an OpenAI- and SGLang-compatible HTTP API. Without --model-path, the bundled demo model (random\n"
      "weights) is served. Flags have SGLang's names and defaults; `--flag value` and `--flag=value` both work,\n"
      "and unique prefixes are accepted as in SGLang (--tp 1 is --tp-size 1).\n\nImplemented flags:\n";
  for (const LaunchFlag& flag : launch_flag_table()) {
    if (flag.cls != FlagClass::kImplemented) continue;
    const char* arity = flag.arity == FlagArity::kNone ? "" : flag.arity == FlagArity::kOne ? " VALUE" : " VALUE...";
    out += fmt::format("  {}{}{}{}\n", flag.name, arity, flag.alias_of.empty() ? "" : fmt::format("  (= {})", flag.alias_of),
                       flag.note.empty() ? "" : fmt::format("  [{}]", flag.note));
  }
  out +=
      "\nEvery other SGLang launch_server flag is recognised: performance and kernel knobs radixlm does not have\n"
      "print one warning and are ignored; features radixlm lacks that would change results (quantization,\n"
      "speculative decoding, LoRA, tensor parallelism > 1, PD disaggregation, grammars, TLS, ...) stop startup\n"
      "with an error naming the flag. A flag SGLang does not have is a usage error (exit code 2).\n";
  return out;
}

}  // namespace radixlm::server
