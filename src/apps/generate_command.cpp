// `radixlm generate`: offline generation from token ids, one JSON object per prompt on stdout, one line each:
//   {"output_ids": [...], "prompt_logits": [[...], ...]}      (prompt_logits only with --return-prompt-logits)
// Several --input-ids run together as one batch. Other tools parse this output: keep the flags and the
// shape stable.

#include <cmath>
#include <cstdio>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apps/command_registry.h"
#include "backends/cpu/cpu_backend.h"
#include "engine/batch_generator.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "models/model.h"

namespace radixlm::apps {
namespace {

struct GenerateArgs {
  std::string model_path;
  std::vector<std::string> input_ids;
  int32_t max_new_tokens = 128;
  double temperature = 0.0;
  bool return_prompt_logits = false;
  bool json = false;
  bool ignore_eos = false;
  int32_t page_size = 1;
  std::string load_format = "auto";
  std::string model_override_json;
  int cpu_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
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

// Shortest text that reads back as the same float; JSON has no NaN or Inf, so those become null.
void append_float(std::string& out, float value) {
  if (std::isfinite(value)) {
    fmt::format_to(std::back_inserter(out), "{}", value);
  } else {
    out += "null";
  }
}

std::string output_json(const GenerateOutput& output, bool with_logits) {
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

Status run_generate(const GenerateArgs& args) {
  RADIXLM_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(args.model_path, args.model_override_json));
  RADIXLM_ASSIGN_OR_RETURN(GenerationConfig generation, load_generation_config(args.model_path));

  std::vector<std::vector<int32_t>> prompts;
  for (const std::string& text : args.input_ids) {
    RADIXLM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parse_token_ids(text));
    prompts.push_back(std::move(ids));
  }
  if (args.page_size < 1) return make_error(StatusCode::kInvalidArgument, "--page-size must be >= 1");

  std::unique_ptr<WeightSource> weights;
  if (args.load_format == "auto") {
    RADIXLM_ASSIGN_OR_RETURN(weights, open_checkpoint(args.model_path));
  } else if (args.load_format == "dummy") {
    weights = make_dummy_weights(config.dtype);
  } else {
    return make_error(StatusCode::kInvalidArgument, "--load-format '{}': want auto or dummy", args.load_format);
  }
  CpuBackend backend(args.cpu_threads);
  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_model(config, *weights, backend));

  GenerateOptions options;
  options.max_new_tokens = args.max_new_tokens;
  options.temperature = args.temperature;
  options.ignore_eos = args.ignore_eos;
  options.return_prompt_logits = args.return_prompt_logits;
  options.eos_token_ids = generation.eos_token_ids.empty() ? config.eos_token_ids : generation.eos_token_ids;

  const int64_t pages = BatchGenerator::pages_needed(prompts, std::max(args.max_new_tokens, 0), args.page_size,
                                                     config.max_position_embeddings);
  if (pages > INT32_MAX) return make_error(StatusCode::kInvalidArgument, "the request needs too many KV pages");
  BatchGenerator generator(*model, backend, args.page_size, static_cast<int32_t>(pages));
  RADIXLM_ASSIGN_OR_RETURN(std::vector<GenerateOutput> outputs, generator.generate(prompts, options));

  for (size_t i = 0; i < outputs.size(); ++i) {
    if (args.json) {
      std::puts(output_json(outputs[i], args.return_prompt_logits).c_str());
    } else {
      std::printf("prompt %zu (%s): %s\n", i, outputs[i].finish_reason.c_str(),
                  fmt::format("{}", fmt::join(outputs[i].output_ids, " ")).c_str());
    }
  }
  std::fflush(stdout);
  const GenerateTiming& t = generator.last_timing();
  spdlog::info("generate: {} prompts on {} CPU threads; prefill {} tokens in {:.1f} ms; decode {} tokens in {} steps, "
               "{:.1f} ms ({:.1f} tok/s)",
               prompts.size(), backend.num_threads(), t.prefill_tokens, t.prefill_ms, t.decode_tokens, t.decode_steps,
               t.decode_ms, t.decode_ms > 0 ? 1000.0 * static_cast<double>(t.decode_tokens) / t.decode_ms : 0.0);
  return {};
}

std::function<int()> setup_generate(CLI::App& sub) {
  auto args = std::make_shared<GenerateArgs>();
  sub.add_option("--model-path", args->model_path, "HF model folder (config.json, *.safetensors)")->required();
  sub.add_option("--input-ids", args->input_ids, "comma-separated prompt token ids; repeat for a batch")->required();
  sub.add_option("--max-new-tokens", args->max_new_tokens, "tokens to generate per prompt")->capture_default_str();
  sub.add_option("--temperature", args->temperature, "0 is greedy (the only mode before the batch engine)")
      ->capture_default_str();
  sub.add_flag("--return-prompt-logits", args->return_prompt_logits, "also print the logits after each prompt token");
  sub.add_flag("--json", args->json, "one JSON object per prompt on stdout");
  sub.add_flag("--ignore-eos", args->ignore_eos, "do not stop at the model's eos ids");
  sub.add_option("--page-size", args->page_size, "tokens per KV cache page")->capture_default_str();
  sub.add_option("--load-format", args->load_format, "auto (safetensors) or dummy (random weights)")
      ->capture_default_str();
  sub.add_option("--json-model-override-args", args->model_override_json, "JSON object overriding config.json keys");
  sub.add_option("--cpu-threads", args->cpu_threads, "threads of the CPU backend")->capture_default_str();
  return [args] {
    const Status status = run_generate(*args);
    if (!status.ok()) {
      std::fprintf(stderr, "radixlm generate: error: %s\n", status.to_string().c_str());
      return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
    }
    return 0;
  };
}

const CommandRegistrar kGenerate({"generate", setup_generate,
                                  "offline generation from token ids (greedy), JSON out"});

}  // namespace
}  // namespace radixlm::apps
