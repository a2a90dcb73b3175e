// `radixlm generate`: offline generation through the batch engine, one JSON object per request on stdout,
// one line each, in the order the requests were given.
//   --input-ids (repeatable):  {"output_ids": [...], "prompt_logits": [[...], ...]}
//                              (prompt_logits only with --return-prompt-logits). Other tools parse this
//                              shape: keep the flags and the shape stable.
//   --prompt TEXT, --messages-file F, --batch-file F (JSONL):
//                              {"input_ids": [...], "output_ids": [...], "text": "...", "finish_reason": {...},
//                               "prompt_tokens": n, "completion_tokens": n, "cached_tokens": n}
// --prompt is tokenized as HF's tokenizer(text) does (special tokens added); --messages-file renders a JSON
// list of chat messages with the model's chat template (add_generation_prompt) and tokenizes the result
// without adding special tokens again, as SGLang does. A --batch-file line is {"input_ids": [...]} or
// {"text": "..."} with an optional "sampling_params" object (SGLang's names) and logprob fields; the sampling
// flags apply to the other requests. Every request runs in one engine, as one continuous batch.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "apps/command_registry.h"
#include "backends/cpu/cpu_backend.h"
#if defined(RADIXLM_HAVE_CUDA)
#include "backends/cuda/cuda_backend.h"
#endif
#include "cache/sequence_pages.h"
#include "engine/engine.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "models/model.h"
#include "sampling/sampling_params_json.h"
#if RADIXLM_TEXT
#include "chat/chat_template.h"
#include "server/tokenizer_text_decoder.h"
#include "tokenizer/tokenizer.h"
#endif

namespace radixlm::apps {
namespace {

struct GenerateArgs {
  std::string model_path;
  std::vector<std::string> input_ids;
  std::vector<std::string> prompts;
  std::string messages_file;
  std::string batch_file;
  bool return_prompt_logits = false;
  bool json = false;
  std::string load_format = "auto";
  std::string model_override_json;
  int cpu_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string device = "auto";
  bool disable_cuda_graph = false;
  bool disable_overlap_schedule = false;
  int32_t cuda_graph_max_bs = 0;
  std::vector<int32_t> cuda_graph_bs;
  // Sampling flags (SGLang's names); only those given are passed on, so generation_config.json's defaults
  // fill the rest. --temperature defaults to 0 (greedy), as this command always has.
  int32_t max_new_tokens = 128;
  double temperature = 0.0;
  double top_p = 1.0;
  int32_t top_k = -1;
  double min_p = 0.0;
  double frequency_penalty = 0.0;
  double presence_penalty = 0.0;
  double repetition_penalty = 1.0;
  int32_t min_new_tokens = 0;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  uint64_t seed = 0;
  int32_t n = 1;
  bool skip_special_tokens = true;
  // Engine flags (SGLang's names).
  int32_t page_size = 1;
  int32_t max_running_requests = 256;
  int64_t max_total_tokens = 0;  // 0: enough for every request at once
  int64_t chunked_prefill_size = 8192;
  int64_t max_prefill_tokens = 16384;
  std::string schedule_policy = "fcfs";
  double schedule_conservativeness = 1.0;
  bool disable_radix_cache = false;
  bool enable_mixed_chunk = false;
  uint64_t random_seed = 0;
};

// One request as the command reads it, and how its line is printed.
struct CommandRequest {
  EngineRequest request;
  bool legacy_shape = false;  // --input-ids: the stable {"output_ids", "prompt_logits"} line
};

Expected<std::vector<int32_t>> parse_token_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || value < 0 || value > INT32_MAX) {
      return make_error(StatusCode::kInvalidArgument,
                        "--input-ids '{}': '{}' is not a token id (want comma-separated non-negative integers)", text,
                        item);
    }
    ids.push_back(static_cast<int32_t>(value));
    begin = end + 1;
  }
  return ids;
}

Expected<std::string> read_file(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::kInvalidArgument, "{} '{}': cannot open the file", flag, path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The sampling flags given on the command line, as the JSON object parse_sampling_params reads.
nlohmann::json sampling_flags_json(const GenerateArgs& args, const CLI::App& sub) {
  nlohmann::json out = nlohmann::json::object();
  out["max_new_tokens"] = args.max_new_tokens;
  out["temperature"] = args.temperature;
  const auto given = [&](const char* flag) { return sub.count(flag) > 0; };
  if (given("--top-p")) out["top_p"] = args.top_p;
  if (given("--top-k")) out["top_k"] = args.top_k;
  if (given("--min-p")) out["min_p"] = args.min_p;
  if (given("--frequency-penalty")) out["frequency_penalty"] = args.frequency_penalty;
  if (given("--presence-penalty")) out["presence_penalty"] = args.presence_penalty;
  if (given("--repetition-penalty")) out["repetition_penalty"] = args.repetition_penalty;
  if (given("--min-new-tokens")) out["min_new_tokens"] = args.min_new_tokens;
  if (given("--stop")) out["stop"] = args.stop;
  if (given("--stop-token-ids")) out["stop_token_ids"] = args.stop_token_ids;
  if (given("--seed")) out["sampling_seed"] = args.seed;
  if (given("--n")) out["n"] = args.n;
  out["ignore_eos"] = args.ignore_eos;
  out["skip_special_tokens"] = args.skip_special_tokens;
  return out;
}

// Shortest text that reads back as the same float; JSON has no NaN or Inf, so those become null.
void append_float(std::string& out, float value) {
  if (std::isfinite(value)) {
    fmt::format_to(std::back_inserter(out), "{}", value);
  } else {
    out += "null";
  }
}

std::string legacy_json(const EngineOutput& output, bool with_logits) {
  std::string line = fmt::format("{{\"output_ids\": [{}]", fmt::join(output.output_ids, ", "));
  if (with_logits) {
    line += ", \"prompt_logits\": [";
    for (size_t r = 0; r < output.prompt_logits.size(); ++r) {
      line += r ? ", [" : "[";
      for (size_t v = 0; v < output.prompt_logits[r].size(); ++v) {
        if (v) line += ", ";
        append_float(line, output.prompt_logits[r][v]);
      }
      line += "]";
    }
    line += "]";
  }
  return line + "}";
}

std::string full_json(const EngineRequest& request, const EngineOutput& output) {
  nlohmann::json finish = {{"type", output.finish_reason}};
  if (output.matched_token) finish["matched"] = *output.matched_token;
  if (output.matched_string) finish["matched"] = *output.matched_string;
  if (output.finish_reason == "length") finish["length"] = output.completion_tokens;
  if (output.finish_reason == "abort") finish["message"] = output.abort_message;
  nlohmann::json line = {{"input_ids", request.input_ids},
                         {"output_ids", output.output_ids},
                         {"text", output.text},
                         {"finish_reason", finish},
                         {"prompt_tokens", output.prompt_tokens},
                         {"completion_tokens", output.completion_tokens},
                         {"cached_tokens", output.cached_tokens}};
  if (request.params.return_logprob) {
    nlohmann::json logprobs = nlohmann::json::array();
    for (size_t i = 0; i < output.output_logprobs.size(); ++i) {
      const SampledToken& s = output.output_logprobs[i];
      nlohmann::json top = nlohmann::json::array();
      for (const TokenLogprob& t : s.top_logprobs) top.push_back({t.logprob, t.token_id});
      logprobs.push_back({{"token_id", output.output_ids[i]}, {"logprob", s.logprob}, {"top_logprobs", top}});
    }
    line["output_token_logprobs"] = logprobs;
  }
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The requests of every kind, in order: --input-ids, --prompt, --messages-file, --batch-file lines.
struct RequestSources {
  std::vector<CommandRequest> requests;
  bool needs_tokenizer = false;
};

Status add_batch_file(const GenerateArgs& args, RequestSources& out, const std::function<Expected<std::vector<int32_t>>(const std::string&)>& encode) {
  RADIXLM_ASSIGN_OR_RETURN(std::string content, read_file(args.batch_file, "--batch-file"));
  std::istringstream lines(content);
  std::string line;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!object.is_object()) {
      return make_error(StatusCode::kInvalidArgument, "--batch-file line {}: not a JSON object", number);
    }
    CommandRequest command;
    auto params = parse_sampling_params(object.contains("sampling_params") ? object.at("sampling_params") : nlohmann::json());
    if (!params.ok()) return make_error(StatusCode::kInvalidArgument, "--batch-file line {}: {}", number, params.status().message());
    command.request.params = std::move(*params);
    const Status logprobs = parse_logprob_fields(object, command.request.params);
    if (!logprobs.ok()) return make_error(StatusCode::kInvalidArgument, "--batch-file line {}: {}", number, logprobs.message());
    // SGLang's cache_salt and extra_key: requests share cached prefixes only when both are equal.
    for (const char* field : {"cache_salt", "extra_key"}) {
      if (!object.contains(field) || object.at(field).is_null()) continue;
      if (!object.at(field).is_string()) {
        return make_error(StatusCode::kInvalidArgument, "--batch-file line {}: {} must be a string", number, field);
      }
      command.request.cache_namespace += fmt::format("{}={};", field, object.at(field).get<std::string>().size());
      command.request.cache_namespace += object.at(field).get<std::string>();
    }
    if (object.contains("input_ids")) {
      const nlohmann::json& ids = object.at("input_ids");
      if (!ids.is_array()) return make_error(StatusCode::kInvalidArgument, "--batch-file line {}: input_ids must be a list", number);
      for (const nlohmann::json& id : ids) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
          return make_error(StatusCode::kInvalidArgument, "--batch-file line {}: {} is not a token id", number, id.dump());
        }
        command.request.input_ids.push_back(id.get<int32_t>());
      }
    } else if (object.contains("text") && object.at("text").is_string()) {
      auto ids = encode(object.at("text").get<std::string>());
      if (!ids.ok()) return make_error(ids.status().code(), "--batch-file line {}: {}", number, ids.status().message());
      command.request.input_ids = std::move(*ids);
    } else {
      return make_error(StatusCode::kInvalidArgument, "--batch-file line {}: wants \"input_ids\" or \"text\"", number);
    }
    out.requests.push_back(std::move(command));
  }
  return {};
}

Status run_generate(const GenerateArgs& args, const CLI::App& sub) {
  RADIXLM_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(args.model_path, args.model_override_json));
  RADIXLM_ASSIGN_OR_RETURN(GenerationConfig generation, load_generation_config(args.model_path));
  RADIXLM_ASSIGN_OR_RETURN(SchedulePolicy policy, parse_schedule_policy(args.schedule_policy));
  if (args.page_size < 1) return make_error(StatusCode::kInvalidArgument, "--page-size must be >= 1");
  if (args.input_ids.empty() && args.prompts.empty() && args.messages_file.empty() && args.batch_file.empty()) {
    return make_error(StatusCode::kInvalidArgument, "give --input-ids, --prompt, --messages-file or --batch-file");
  }
  RADIXLM_ASSIGN_OR_RETURN(SamplingParams flag_params, parse_sampling_params(sampling_flags_json(args, sub)));

  // The tokenizer, when the model folder has one: text prompts need it, and it gives outputs their text.
  std::function<Expected<std::vector<int32_t>>(const std::string&)> encode = [](const std::string&) -> Expected<std::vector<int32_t>> {
    return make_error(StatusCode::kUnsupported, "this radixlm was built without tokenizer/ (RADIXLM_TEXT=OFF)");
  };
  TextDecoderFactory decoders;
#if RADIXLM_TEXT
  auto loaded = tokenizer::Tokenizer::load(args.model_path);
  std::shared_ptr<tokenizer::Tokenizer> tok;
  if (loaded.ok()) {
    tok = std::make_shared<tokenizer::Tokenizer>(std::move(*loaded));
    encode = [tok](const std::string& text) -> Expected<std::vector<int32_t>> { return tok->encode(text, true); };
    decoders = [tok](const SamplingParams& params) { return std::make_unique<server::TokenizerTextDecoder>(*tok, params); };
  } else {
    const Status why = loaded.status();
    encode = [why](const std::string&) -> Expected<std::vector<int32_t>> {
      return make_error(StatusCode::kInvalidArgument, "text prompts need the model's tokenizer: {}", why.to_string());
    };
  }
#endif

  RequestSources sources;
  for (const std::string& text : args.input_ids) {
    CommandRequest command{EngineRequest{}, true};
    RADIXLM_ASSIGN_OR_RETURN(command.request.input_ids, parse_token_ids(text));
    command.request.params = flag_params;
    command.request.return_prompt_logits = args.return_prompt_logits;
    sources.requests.push_back(std::move(command));
  }
  for (const std::string& text : args.prompts) {
    CommandRequest command;
    RADIXLM_ASSIGN_OR_RETURN(command.request.input_ids, encode(text));
    command.request.params = flag_params;
    sources.requests.push_back(std::move(command));
  }
  if (!args.messages_file.empty()) {
#if RADIXLM_TEXT
    RADIXLM_ASSIGN_OR_RETURN(std::string content, read_file(args.messages_file, "--messages-file"));
    const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(content, nullptr, false);
    if (!messages.is_array()) {
      return make_error(StatusCode::kInvalidArgument, "--messages-file '{}': want a JSON list of messages",
                        args.messages_file);
    }
    if (!tok) return make_error(StatusCode::kInvalidArgument, "--messages-file needs the model's tokenizer");
    RADIXLM_ASSIGN_OR_RETURN(chat::ChatTemplate chat_template, chat::ChatTemplate::load(args.model_path));
    RADIXLM_ASSIGN_OR_RETURN(std::string rendered,
                             chat_template.render(messages, nlohmann::ordered_json(), true, nlohmann::ordered_json()));
    CommandRequest command;
    command.request.input_ids = tok->encode(rendered, /*add_special_tokens=*/false);
    command.request.params = flag_params;
    sources.requests.push_back(std::move(command));
#else
    return make_error(StatusCode::kUnsupported, "--messages-file needs radixlm built with RADIXLM_TEXT=ON");
#endif
  }
  if (!args.batch_file.empty()) RADIXLM_RETURN_IF_ERROR(add_batch_file(args, sources, encode));

  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<WeightSource> weights,
                           open_weights(args.load_format, args.model_path, config.dtype));
  // --device: cuda, cpu, or auto (cuda when this build has it and a GPU is found).
  std::unique_ptr<Backend> backend_owner;
  std::string device_name = fmt::format("{} CPU threads", args.cpu_threads);
  if (args.device == "cuda" || args.device == "auto") {
#if defined(RADIXLM_HAVE_CUDA)
    auto made = CudaBackend::create();
    if (made.ok()) {
      device_name = (*made)->info().name;
      backend_owner = std::move(*made);
    } else if (args.device == "cuda") {
      return made.status();
    }
#else
    if (args.device == "cuda") return make_error(StatusCode::kUnsupported, "this radixlm was built without CUDA");
#endif
  } else if (args.device != "cpu") {
    return make_error(StatusCode::kInvalidArgument, "--device '{}': want cuda, cpu or auto", args.device);
  }
  if (!backend_owner) backend_owner = std::make_unique<CpuBackend>(args.cpu_threads);
  Backend& backend = *backend_owner;
  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_model(config, *weights, backend));

  EngineOptions options;
  SchedulerOptions& s = options.scheduler;
  s.page_size = args.page_size;
  s.max_running_requests = args.max_running_requests;
  s.chunked_prefill_size = args.chunked_prefill_size;
  s.max_prefill_tokens = args.max_prefill_tokens;
  s.policy = policy;
  s.schedule_conservativeness = args.schedule_conservativeness;
  s.disable_radix_cache = args.disable_radix_cache;
  s.enable_mixed_chunk = args.enable_mixed_chunk;
  s.random_seed = args.random_seed;
  s.max_total_tokens = args.max_total_tokens;
  if (s.max_total_tokens <= 0) {
    // Room for every request at once: its prompt and output (up to the context), in whole pages.
    int64_t pages = 0;
    for (const CommandRequest& c : sources.requests) {
      const int64_t max_new = c.request.params.max_new_tokens ? std::max(*c.request.params.max_new_tokens, 0)
                                                              : config.max_position_embeddings;
      const int64_t tokens = std::min<int64_t>(static_cast<int64_t>(c.request.input_ids.size()) + max_new,
                                               std::max<int64_t>(config.max_position_embeddings, 1));
      const int64_t samples = std::max(c.request.params.n, 1);  // n > 1: one row per sample
      pages += (pages_for_tokens(std::max<int64_t>(tokens, static_cast<int64_t>(c.request.input_ids.size())), args.page_size) + 1) * samples;
    }
    s.max_total_tokens = std::max<int64_t>(pages, 1) * args.page_size;
  }
  const auto& eos = generation.eos_token_ids.empty() ? config.eos_token_ids : generation.eos_token_ids;
  for (int64_t id : eos) {
    if (id >= 0 && id <= INT32_MAX) options.eos_token_ids.push_back(static_cast<int32_t>(id));
  }
  options.disable_overlap_schedule = args.disable_overlap_schedule;
  options.runner.disable_cuda_graph = args.disable_cuda_graph;
  options.runner.cuda_graph_max_bs = args.cuda_graph_max_bs;
  options.runner.cuda_graph_bs = args.cuda_graph_bs;
  options.sampling_defaults = SamplingDefaults{generation.temperature, generation.top_p, generation.top_k,
                                               generation.min_p, generation.repetition_penalty};

  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::create(*model, backend, options, decoders));
  std::vector<EngineRequest> requests;
  for (const CommandRequest& c : sources.requests) requests.push_back(c.request);
  const auto start = std::chrono::steady_clock::now();
  RADIXLM_ASSIGN_OR_RETURN(std::vector<EngineOutput> outputs, engine->generate(requests));
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // generate() returns a request's n samples consecutively: n lines per request.
  size_t next_output = 0;
  for (size_t i = 0; i < sources.requests.size(); ++i) {
    const CommandRequest& c = sources.requests[i];
    for (int32_t k = 0; k < c.request.params.n; ++k) {
      const EngineOutput& output = outputs.at(next_output++);
      if (args.json) {
        const std::string line = c.legacy_shape ? legacy_json(output, args.return_prompt_logits)
                                                : full_json(c.request, output);
        std::puts(line.c_str());
      } else {
        std::printf("request %zu (%s): %s\n", i, output.finish_reason.c_str(),
                    c.legacy_shape ? fmt::format("{}", fmt::join(output.output_ids, " ")).c_str()
                                   : output.text.c_str());
      }
    }
  }
  std::fflush(stdout);
  const EngineStats& stats = engine->stats();
  const CacheCounters& cache = engine->scheduler().cache().counters();
  spdlog::info("generate: {} requests on {} in {} steps, {:.1f} ms; prefill {} tokens, decode {} tokens "
               "({:.1f} tok/s); cache hit {} of {} prompt tokens; {} retractions",
               outputs.size(), device_name, stats.steps, total_s * 1000.0, stats.prefill_tokens,
               stats.decode_tokens, total_s > 0 ? static_cast<double>(stats.decode_tokens) / total_s : 0.0,
               cache.hit_tokens, cache.queried_tokens, engine->scheduler().counters().retractions);
  return {};
}

std::function<int()> setup_generate(CLI::App& sub) {
  auto args = std::make_shared<GenerateArgs>();
  GenerateArgs& a = *args;
  sub.add_option("--model-path", a.model_path, "HF model folder (config.json, *.safetensors)")->required();
  sub.add_option("--input-ids", a.input_ids, "comma-separated prompt token ids; repeat for a batch");
  sub.add_option("--prompt", a.prompts, "prompt text, tokenized with the model's tokenizer; repeatable");
  sub.add_option("--messages-file", a.messages_file, "JSON list of chat messages, rendered with the chat template");
  sub.add_option("--batch-file", a.batch_file, "JSONL: one request per line, input_ids or text, sampling_params");
  sub.add_flag("--return-prompt-logits", a.return_prompt_logits, "also print the logits after each prompt token");
  sub.add_flag("--json", a.json, "one JSON object per request on stdout");
  sub.add_option("--load-format", a.load_format, "auto or safetensors (the checkpoint), or dummy (random weights)")->capture_default_str();
  sub.add_option("--json-model-override-args", a.model_override_json, "JSON object overriding config.json keys");
  sub.add_option("--cpu-threads", a.cpu_threads, "threads of the CPU backend")->capture_default_str();
  sub.add_option("--device", a.device, "cuda, cpu or auto (cuda when a GPU is found)")->capture_default_str();
  sub.add_flag("--disable-cuda-graph", a.disable_cuda_graph, "run every decode step eagerly (CUDA)");
  sub.add_flag("--disable-overlap-schedule", a.disable_overlap_schedule,
               "complete each step before planning the next (no overlap scheduling)");
  sub.add_option("--cuda-graph-max-bs", a.cuda_graph_max_bs, "largest decode batch replayed from a CUDA graph (0: 256)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--cuda-graph-bs", a.cuda_graph_bs, "the CUDA graph batch sizes (default: SGLang's up to the max)")
      ->check(CLI::PositiveNumber);
  // Sampling.
  sub.add_option("--max-new-tokens", a.max_new_tokens, "tokens to generate per request")->capture_default_str();
  sub.add_option("--temperature", a.temperature, "0 is greedy")->capture_default_str();
  sub.add_option("--top-p", a.top_p, "nucleus sampling mass");
  sub.add_option("--top-k", a.top_k, "-1: the whole vocabulary");
  sub.add_option("--min-p", a.min_p, "minimum probability relative to the most likely token");
  sub.add_option("--frequency-penalty", a.frequency_penalty, "in [-2, 2]");
  sub.add_option("--presence-penalty", a.presence_penalty, "in [-2, 2]");
  sub.add_option("--repetition-penalty", a.repetition_penalty, "in (0, 2]");
  sub.add_option("--min-new-tokens", a.min_new_tokens, "eos and stop tokens are suppressed until this many");
  sub.add_option("--stop", a.stop, "stop string; repeatable");
  sub.add_option("--stop-token-ids", a.stop_token_ids, "stop token ids")->delimiter(',');
  sub.add_flag("--ignore-eos", a.ignore_eos, "do not stop at the model's eos ids");
  sub.add_option("--seed", a.seed, "sampling seed of each request");
  sub.add_option("--n", a.n, "samples per request (parallel sampling): n output lines per request");
  // Engine.
  sub.add_option("--page-size", a.page_size, "tokens per KV cache page")->capture_default_str();
  sub.add_option("--max-running-requests", a.max_running_requests, "requests decoding at once")->capture_default_str();
  sub.add_option("--max-total-tokens", a.max_total_tokens, "KV pool size in tokens (default: every request at once)");
  sub.add_option("--chunked-prefill-size", a.chunked_prefill_size, "prefill chunk in tokens; -1 disables")
      ->capture_default_str();
  sub.add_option("--max-prefill-tokens", a.max_prefill_tokens, "prefill tokens per step")->capture_default_str();
  sub.add_option("--schedule-policy", a.schedule_policy, "fcfs, lpm, dfs-weight, random or priority")
      ->capture_default_str();
  sub.add_option("--schedule-conservativeness", a.schedule_conservativeness, "scales the decode-token estimate")
      ->capture_default_str();
  sub.add_flag("--disable-radix-cache", a.disable_radix_cache, "no prefix sharing");
  sub.add_flag("--enable-mixed-chunk", a.enable_mixed_chunk, "run prefill chunks and decode in the same step");
  sub.add_option("--random-seed", a.random_seed, "seeds of requests that bring none")->capture_default_str();
  const CLI::App* app = &sub;
  return [args, app] {
    const Status status = run_generate(*args, *app);
    if (!status.ok()) {
      std::fprintf(stderr, "radixlm generate: error: %s\n", status.to_string().c_str());
      return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
    }
    return 0;
  };
}

const CommandRegistrar kGenerate({"generate", setup_generate,
                                  "offline generation through the batch engine (token ids, text or chat), JSON out"});

}  // namespace
}  // namespace radixlm::apps
