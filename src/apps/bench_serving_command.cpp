// `radixlm bench serving`: online serving benchmark against a running server, with sglang.bench_serving's
// flags, workload, measurements and result table (src/bench/ holds the logic; this file wires the flags,
// the server discovery and the tokenizer).
//
//   radixlm bench serving --backend sglang --port 30000 --dataset-name random --num-prompts 200
//       --random-input-len 512 --random-output-len 128 --request-rate 8 --max-concurrency 32 --output-file r.jsonl

#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/bench_serving_command.h"
#include "bench/arrivals.h"
#include "bench/dataset.h"
#include "bench/http_client.h"
#include "bench/metrics.h"
#include "bench/protocol.h"
#include "bench/random.h"
#include "bench/runner.h"
#include "bench/url.h"
#include "core/status.h"
#if RADIXLM_TEXT
#include "tokenizer/tokenizer.h"
#endif

namespace radixlm::apps {
namespace {

using nlohmann::json;

struct ServingArgs {
  std::string backend = "sglang";
  std::string base_url;
  std::string host = "127.0.0.1";
  int port = 30000;
  std::string model;
  std::string tokenizer;
  std::string dataset_name = "random";
  std::string dataset_path;
  int64_t num_prompts = 1000;
  std::optional<int64_t> sharegpt_output_len;
  std::optional<int64_t> sharegpt_context_len;
  int64_t random_input_len = 1024;
  int64_t random_output_len = 1024;
  double random_range_ratio = 0.0;
  int64_t vocab_size = 0;
  std::string request_rate = "inf";
  int64_t max_concurrency = 0;
  uint64_t seed = 1;
  bool disable_stream = false;
  bool disable_ignore_eos = false;
  bool tokenize_prompt = false;
  std::string extra_request_body;
  std::string output_file;
  std::string api_key;
  int64_t warmup_requests = 1;
  bool disable_tqdm = false;
  bool flush_cache = false;
  double request_timeout_s = 0;
};

Expected<std::string> read_text_file(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::kInvalidArgument, "{} '{}': cannot open the file", flag, path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// bench_serving raises the open-file limit too: every request in flight holds a socket.
void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

Expected<double> parse_rate(const std::string& text) {
  char* end = nullptr;
  const double rate = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || std::isnan(rate) || rate <= 0) {
    return make_error(StatusCode::kInvalidArgument, "--request-rate '{}': want a positive number or inf", text);
  }
  return rate;
}

// GET a JSON object from the server; nothing when the route is missing or answers otherwise.
std::optional<json> fetch_json(const bench::ServerAddress& address, std::string_view route,
                               const bench::HttpHeaders& headers) {
  auto response = bench::http_fetch(address, "GET", route, "", headers, 30);
  if (!response.ok() || response->status != 200) return std::nullopt;
  json parsed = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return std::nullopt;
  return parsed;
}

std::string string_field(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The model's vocabulary size from its config.json (the text config of a multimodal one), or 0.
int64_t config_vocab_size(const std::string& directory) {
  auto text = read_text_file((std::filesystem::path(directory) / "config.json").string(), "config.json");
  if (!text.ok()) return 0;
  json config = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return 0;
  for (const json* holder : {&config, config.contains("text_config") ? &config["text_config"] : nullptr}) {
    if (!holder || !holder->is_object()) continue;
    auto it = holder->find("vocab_size");
    if (it != holder->end() && it->is_number_integer()) return it->get<int64_t>();
  }
  return 0;
}

#if RADIXLM_TEXT
bench::TextCodec codec_of(std::shared_ptr<const tokenizer::Tokenizer> tok) {
  bench::TextCodec codec;
  codec.vocab_size = static_cast<int64_t>(tok->vocab_size());
  codec.encode = [tok](std::string_view text) { return tok->encode(text, /*add_special_tokens=*/false); };
  codec.decode = [tok](std::span<const int32_t> ids) { return tok->decode(ids, /*skip_special_tokens=*/false); };
  codec.is_special = [tok](int32_t id) { return tok->is_special(id) || !tok->id_to_token(id).has_value(); };
  return codec;
}
#endif

Status run_serving(const ServingArgs& args) {
  RADIXLM_ASSIGN_OR_RETURN(const bench::ApiKind api, bench::backend_api(args.backend));
  RADIXLM_ASSIGN_OR_RETURN(const double rate, parse_rate(args.request_rate));
  if (args.num_prompts < 1) return make_error(StatusCode::kInvalidArgument, "--num-prompts must be >= 1");
  if (args.max_concurrency < 0) return make_error(StatusCode::kInvalidArgument, "--max-concurrency must be >= 1");
  if (args.warmup_requests < 0) return make_error(StatusCode::kInvalidArgument, "--warmup-requests must be >= 0");
  if (args.dataset_name != "random" && args.dataset_name != "random-ids" && args.dataset_name != "sharegpt") {
    return make_error(StatusCode::kInvalidArgument, "--dataset-name '{}': want random, random-ids or sharegpt",
                      args.dataset_name);
  }
  bench::ServerAddress address;
  if (!args.base_url.empty()) {
    RADIXLM_ASSIGN_OR_RETURN(address, bench::parse_base_url(args.base_url));
  } else {
    if (args.port < 1 || args.port > 65535) return make_error(StatusCode::kInvalidArgument, "--port out of range");
    address.host = args.host;
    address.port = static_cast<uint16_t>(args.port);
  }
  json extra = json::object();
  if (!args.extra_request_body.empty()) {
    extra = json::parse(args.extra_request_body, nullptr, /*allow_exceptions=*/false);
    if (!extra.is_object()) {
      return make_error(StatusCode::kInvalidArgument, "--extra-request-body must be a JSON object");
    }
  }
  bench::HttpHeaders headers;
  std::string api_key = args.api_key;
  if (api_key.empty()) {
    if (const char* env = std::getenv("OPENAI_API_KEY")) api_key = env;
  }
  if (!api_key.empty()) headers.emplace_back("Authorization", "Bearer " + api_key);
  raise_open_file_limit();

  // The model's name for the OpenAI routes, and its folder (for the tokenizer) as the server reports it.
  std::string model = args.model;
  if (model.empty()) {
    if (auto models = fetch_json(address, "/v1/models", headers)) {
      auto data = models->find("data");
      if (data != models->end() && data->is_array() && !data->empty() && (*data)[0].is_object()) {
        model = string_field((*data)[0], "id");
      }
    }
  }
  if (model.empty() && api != bench::ApiKind::kGenerate) {
    return make_error(StatusCode::kInvalidArgument,
                      "no --model given and {} has no model in /v1/models (is the server up?)", address.to_string());
  }
  std::string model_dir = args.tokenizer;
  if (model_dir.empty()) {
    if (auto info = fetch_json(address, "/get_model_info", headers)) {
      for (const char* key : {"tokenizer_path", "model_path"}) {
        const std::string path = string_field(*info, key);
        if (!path.empty() && std::filesystem::is_directory(path)) {
          model_dir = path;
          break;
        }
      }
    }
  }

  std::optional<bench::TextCodec> codec;
#if RADIXLM_TEXT
  if (!model_dir.empty() && args.dataset_name != "random-ids") {
    auto loaded = tokenizer::Tokenizer::load(model_dir);
    if (loaded.ok()) {
      codec = codec_of(std::make_shared<const tokenizer::Tokenizer>(std::move(loaded).value()));
    } else if (!args.tokenizer.empty()) {
      return loaded.status().with_context("--tokenizer");
    }
  }
#else
  if (args.dataset_name == "sharegpt") {
    return make_error(StatusCode::kUnsupported, "the sharegpt dataset needs a tokenizer: this radixlm was built "
                                                "without text support (RADIXLM_TEXT=OFF)");
  }
#endif

  bench::BenchRng rng(args.seed);
  std::vector<bench::BenchPrompt> prompts;
  if (args.dataset_name == "sharegpt") {
    if (!codec) {
      return make_error(StatusCode::kInvalidArgument,
                        "the sharegpt dataset needs a tokenizer: give --tokenizer DIR (the model folder)");
    }
    if (args.dataset_path.empty()) {
      return make_error(StatusCode::kInvalidArgument, "the sharegpt dataset needs --dataset-path FILE.json");
    }
    RADIXLM_ASSIGN_OR_RETURN(auto contents, read_text_file(args.dataset_path, "--dataset-path"));
    bench::ShareGptOptions options;
    options.num_prompts = args.num_prompts;
    options.fixed_output_len = args.sharegpt_output_len;
    options.context_len = args.sharegpt_context_len;
    RADIXLM_ASSIGN_OR_RETURN(prompts, bench::sharegpt_dataset(contents, options, *codec, rng));
    if (static_cast<int64_t>(prompts.size()) < args.num_prompts) {
      std::fprintf(stderr, "radixlm bench: the ShareGPT file gave %zu usable prompts of the %lld asked for\n",
                   prompts.size(), static_cast<long long>(args.num_prompts));
    }
  } else {
    bench::RandomDatasetOptions options;
    options.num_prompts = args.num_prompts;
    options.input_len = args.random_input_len;
    options.output_len = args.random_output_len;
    options.range_ratio = args.random_range_ratio;
    options.vocab_size = args.vocab_size;
    if (options.vocab_size == 0 && codec) options.vocab_size = codec->vocab_size;
    if (options.vocab_size == 0 && !model_dir.empty()) options.vocab_size = config_vocab_size(model_dir);
    const bool as_text = codec && !args.tokenize_prompt;
    if (!as_text && options.vocab_size == 0) {
      return make_error(StatusCode::kInvalidArgument,
                        "random token ids need the vocabulary size: give --vocab-size, or --tokenizer DIR (a "
                        "folder with config.json or a tokenizer), or a server whose /get_model_info names a "
                        "local model folder");
    }
    RADIXLM_ASSIGN_OR_RETURN(prompts, bench::random_dataset(options, as_text ? &*codec : nullptr, rng));
  }
  int64_t total_in = 0, total_out = 0;
  for (const auto& p : prompts) {
    total_in += p.prompt_len;
    total_out += p.output_len;
  }
  std::printf("#Input tokens: %lld\n#Output tokens: %lld\n", static_cast<long long>(total_in),
              static_cast<long long>(total_out));

  bench::RunOptions run;
  run.address = address;
  run.api = api;
  run.payload.model = model;
  run.payload.stream = !args.disable_stream;
  run.payload.ignore_eos = !args.disable_ignore_eos;
  run.payload.extra_body = extra;
  run.headers = headers;
  run.request_timeout_s = args.request_timeout_s;

  if (args.warmup_requests > 0) {
    std::printf("Starting warmup with %lld sequences...\n", static_cast<long long>(args.warmup_requests));
    std::fflush(stdout);
    bench::BenchPrompt warm = prompts.front();
    warm.output_len = std::min<int64_t>(warm.output_len, 32);
    bench::RunOptions warm_run = run;
    warm_run.show_progress = false;
    RADIXLM_ASSIGN_OR_RETURN(
        auto warm_outcome,
        bench::run_requests(std::vector<bench::BenchPrompt>(static_cast<size_t>(args.warmup_requests), warm),
                            std::vector<double>(static_cast<size_t>(args.warmup_requests), 0.0), warm_run));
    bool any_ok = false;
    for (const auto& r : warm_outcome.results) any_ok = any_ok || r.success;
    if (!any_ok) {
      return make_error(StatusCode::kIoError, "warmup failed against {}: {}", address.to_string(),
                        warm_outcome.results.front().error);
    }
    std::printf("Warmup completed. Starting main benchmark run...\n");
  }
  if (args.flush_cache) {
    auto flushed = bench::http_fetch(address, "POST", "/flush_cache", "", headers, 30);
    if (!flushed.ok() || flushed->status != 200) std::fprintf(stderr, "radixlm bench: /flush_cache failed\n");
  }
  std::fflush(stdout);

  run.max_concurrency = args.max_concurrency;
  run.show_progress = !args.disable_tqdm;
  const std::vector<double> arrivals = bench::arrival_times_s(static_cast<int64_t>(prompts.size()), rate, rng);
  RADIXLM_ASSIGN_OR_RETURN(auto outcome, bench::run_requests(prompts, arrivals, run));

  std::function<int64_t(std::string_view)> retokenize;
  if (codec) retokenize = [&codec](std::string_view text) { return static_cast<int64_t>(codec->encode(text).size()); };
  const bench::BenchmarkMetrics metrics = bench::compute_metrics(outcome.results, outcome.duration_s, retokenize);
  bench::RunDescription description;
  description.backend = args.backend;
  description.dataset_name = args.dataset_name;
  description.request_rate = rate;
  description.max_concurrency = args.max_concurrency;
  description.num_prompts = static_cast<int64_t>(prompts.size());
  description.sharegpt_output_len = args.sharegpt_output_len;
  description.random_input_len = args.random_input_len;
  description.random_output_len = args.random_output_len;
  description.random_range_ratio = args.random_range_ratio;
  description.seed = args.seed;
  description.base_url = address.to_string();
  description.model = model;
  std::fputs(bench::format_result_table(description, metrics).c_str(), stdout);
  std::fflush(stdout);
  if (metrics.failed > 0) {
    for (const auto& r : outcome.results) {
      if (!r.success) {
        std::fprintf(stderr, "radixlm bench: %lld requests failed; the first: %s\n",
                     static_cast<long long>(metrics.failed), r.error.c_str());
        break;
      }
    }
  }
  if (!args.output_file.empty()) {
    // One JSON line appended per run, as bench_serving does, so a sweep collects into one file.
    std::ofstream out(args.output_file, std::ios::app);
    if (!out) return make_error(StatusCode::kIoError, "--output-file '{}': cannot open for writing", args.output_file);
    out << bench::result_json(description, metrics, outcome.results)
               .dump(-1, ' ', false, json::error_handler_t::replace)
        << "\n";
    if (!out) return make_error(StatusCode::kIoError, "--output-file '{}': write failed", args.output_file);
  }
  if (metrics.completed == 0) return make_error(StatusCode::kIoError, "every request failed");
  return {};
}

}  // namespace

BenchSubcommand add_bench_serving(CLI::App& bench) {
  auto args = std::make_shared<ServingArgs>();
  CLI::App* sub = bench.add_subcommand("serving", "online serving benchmark against a running server "
                                                  "(sglang.bench_serving)");
  sub->add_option("--backend", args->backend,
                  "sglang/sglang-native (/generate), sglang-oai/vllm/lmdeploy (/v1/completions), "
                  "chat/sglang-oai-chat/vllm-chat (/v1/chat/completions)")
      ->capture_default_str();
  sub->add_option("--base-url", args->base_url, "server URL, e.g. http://127.0.0.1:30000 (else --host/--port)");
  sub->add_option("--host", args->host, "server host")->capture_default_str();
  sub->add_option("--port", args->port, "server port")->capture_default_str();
  sub->add_option("--model", args->model, "model name for the OpenAI routes (default: the first of /v1/models)");
  sub->add_option("--tokenizer", args->tokenizer,
                  "model folder whose tokenizer makes text prompts and counts tokens (default: the folder the "
                  "server's /get_model_info names, when it is on this machine)");
  sub->add_option("--dataset-name", args->dataset_name, "random, random-ids (token ids even with a tokenizer) or sharegpt")
      ->capture_default_str();
  sub->add_option("--dataset-path", args->dataset_path, "ShareGPT-format JSON file");
  sub->add_option("--num-prompts", args->num_prompts, "number of requests")->capture_default_str();
  sub->add_option("--sharegpt-output-len", args->sharegpt_output_len, "output length of every ShareGPT request");
  sub->add_option("--sharegpt-context-len", args->sharegpt_context_len,
                  "skip ShareGPT requests whose prompt + output exceed this");
  sub->add_option("--random-input-len,--random-input", args->random_input_len, "input tokens per random request")
      ->capture_default_str();
  sub->add_option("--random-output-len,--random-output", args->random_output_len, "output tokens per random request")
      ->capture_default_str();
  sub->add_option("--random-range-ratio", args->random_range_ratio,
                  "lengths are drawn uniformly from [len * ratio, len]")
      ->capture_default_str();
  sub->add_option("--vocab-size", args->vocab_size, "vocabulary random token ids are drawn from (default: the model's)");
  sub->add_option("--request-rate", args->request_rate,
                  "requests per second (Poisson arrivals), or inf to send all at once")
      ->capture_default_str();
  sub->add_option("--max-concurrency", args->max_concurrency, "most requests in flight at once (default: no limit)");
  sub->add_option("--seed", args->seed, "seed of the dataset and the arrival times")->capture_default_str();
  sub->add_flag("--disable-stream", args->disable_stream, "non-streaming requests (TTFT = latency)");
  sub->add_flag("--disable-ignore-eos", args->disable_ignore_eos, "let requests stop at EOS");
  sub->add_flag("--tokenize-prompt", args->tokenize_prompt, "send random prompts as token ids even with a tokenizer");
  sub->add_option("--extra-request-body", args->extra_request_body, "JSON object merged into every request");
  sub->add_option("--output-file", args->output_file,
                  "append the results (every metric and per-request details) as one JSON line");
  sub->add_option("--api-key", args->api_key, "bearer token (default: $OPENAI_API_KEY)");
  sub->add_option("--warmup-requests", args->warmup_requests, "requests sent before the measured run")
      ->capture_default_str();
  sub->add_flag("--disable-tqdm", args->disable_tqdm, "no progress bar");
  sub->add_flag("--flush-cache", args->flush_cache, "POST /flush_cache before the measured run");
  sub->add_option("--request-timeout", args->request_timeout_s, "seconds before a request counts as failed (0: none)")
      ->capture_default_str();
  return {sub, [args] {
            const Status status = run_serving(*args);
            if (!status.ok()) {
              std::fprintf(stderr, "radixlm bench serving: error: %s\n", status.to_string().c_str());
              return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
            }
            return 0;
          }};
}

}  // namespace radixlm::apps
