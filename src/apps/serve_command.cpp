// `radixlm serve`: the HTTP server (DESIGN §1), launched with SGLang's launch_server flags
// (server/launch_args.h). It loads the model (the bundled demo model when no --model-path is given), its
// tokenizer and chat template, picks the backend, plans the KV cache as SGLang does and logs the plan, starts
// the engine and the HTTP server, and says "The server is fired up and ready to roll!" once /health answers.
//
// SIGTERM or SIGINT: stop accepting connections, mark the server draining (new generation requests get 503),
// let in-flight requests finish for up to --graceful-shutdown-timeout seconds, abort the rest, exit 0. The
// signals are blocked in every thread and taken by one watcher thread with sigtimedwait, so no work runs in
// a signal handler.

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apps/command_registry.h"
#include "backends/cpu/cpu_backend.h"
#include "core/dtype.h"
#include "core/logging.h"
#include "engine/engine.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "models/model.h"
#include "server/http_server.h"
#include "server/launch_args.h"
#include "server/metrics.h"
#include "server/request_registry.h"
#include "server/router.h"
#include "server/serving_context.h"
#if defined(RADIXLM_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include "backends/cuda/cuda_backend.h"
#endif
#if RADIXLM_TEXT
#include "chat/chat_template.h"
#include "server/tokenizer_text_decoder.h"
#include "tokenizer/tokenizer.h"
#endif

namespace radixlm::apps {
namespace {

using server::LaunchArgs;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// SGLang sizes --mem-fraction-static from the GPU's memory; radixlm leaves this much of a GPU for activations
// and CUDA graphs when the flag is not given.
[[maybe_unused]] constexpr double kDefaultMemFractionStatic = 0.88;
// The CPU's KV pool when --max-total-tokens is not given: enough for several full-context requests of a small
// model, bounded in bytes so a large model on the CPU does not take the machine's memory.
constexpr int64_t kCpuDefaultPoolTokens = 65536;
constexpr double kCpuKvBudgetBytes = 4.0 * kGiB;

// The bundled demo model: assets/demo-model in the source tree, found from the executable's folder upwards
// (build trees live inside the checkout), then from the working directory.
Expected<std::string> find_demo_model() {
  std::vector<std::filesystem::path> starts;
  std::error_code error;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) starts.push_back(exe.parent_path());
  starts.push_back(std::filesystem::current_path(error));
  for (std::filesystem::path dir : starts) {
    for (int depth = 0; depth < 8 && !dir.empty(); ++depth) {
      for (const char* relative : {"assets/demo-model", "share/radixlm/demo-model"}) {
        const std::filesystem::path candidate = dir / relative;
        if (std::filesystem::exists(candidate / "config.json", error)) return candidate.string();
      }
      if (dir == dir.parent_path()) break;
      dir = dir.parent_path();
    }
  }
  return make_error(StatusCode::kNotFound,
                    "no --model-path given and the bundled demo model (assets/demo-model) was not found beside the "
                    "executable; pass --model-path /path/to/hf-checkpoint");
}

// Parameters as the model files hold them (for the startup log; the CUDA backend keeps them in bf16).
int64_t count_parameters(const ModelConfig& c) {
  const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  int64_t layer = c.hidden_size * (q + 2 * kv) + q * c.hidden_size + 3 * c.hidden_size * c.intermediate_size +
                  2 * c.hidden_size;
  if (c.attention_bias) layer += q + 2 * kv;
  int64_t total = c.num_hidden_layers * layer + c.vocab_size * c.hidden_size + c.hidden_size;
  if (!c.tie_word_embeddings) total += c.vocab_size * c.hidden_size;
  return total;
}

struct LoadedBackend {
  std::unique_ptr<Backend> backend;
  std::string device;       // "cuda" or "cpu"
  std::string device_name;  // the GPU's name, or "cpu (N threads)"
  double total_memory_bytes = 0.0;
};

Expected<LoadedBackend> make_backend(const LaunchArgs& args) {
  const std::string kind = args.device.substr(0, args.device.find(':'));
  int gpu = args.base_gpu_id;
  if (const size_t colon = args.device.find(':'); colon != std::string::npos) {
    try {
      gpu = std::stoi(args.device.substr(colon + 1));
    } catch (const std::exception&) {
      return make_error(StatusCode::kInvalidArgument, "--device {}: want cuda:N", args.device);
    }
  }
  LoadedBackend out;
  if (kind.empty() || kind == "auto" || kind == "cuda") {
#if defined(RADIXLM_HAVE_CUDA)
    auto made = CudaBackend::create(gpu);
    if (made.ok()) {
      out.device = "cuda";
      out.device_name = fmt::format("{} (GPU {})", (*made)->info().name, gpu);
      out.total_memory_bytes = static_cast<double>((*made)->info().total_memory);
      out.backend = std::move(*made);
      return out;
    }
    if (kind == "cuda") return made.status();
    spdlog::info("No usable GPU ({}); serving on the CPU backend", made.status().message());
#else
    (void)gpu;
    if (kind == "cuda") return make_error(StatusCode::kUnsupported, "--device cuda: this radixlm was built without CUDA");
#endif
  }
  const int threads = args.cpu_threads > 0 ? args.cpu_threads
                                           : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto cpu = std::make_unique<CpuBackend>(threads);
  out.device = "cpu";
  out.device_name = fmt::format("cpu ({} threads)", cpu->num_threads());
  out.backend = std::move(cpu);
  return out;
}

// The KV pool, in tokens, as SGLang plans it: on a GPU, what --mem-fraction-static of the device leaves after
// the weights; on the CPU, --max-total-tokens or a default bounded in bytes. --max-total-tokens caps both.
struct MemoryPlan {
  double weight_bytes = 0.0;
  int64_t kv_bytes_per_token = 0;
  int64_t max_total_num_tokens = 0;
  int64_t num_pages = 0;
  double mem_fraction_static = 0.0;  // CUDA only
  double available_bytes = 0.0;      // CUDA: free device memory after the weights
};

Expected<MemoryPlan> plan_memory(const LaunchArgs& args, const LoadedBackend& loaded, const Model& model,
                                 int32_t page_size, int64_t context_length) {
  MemoryPlan plan;
  const ModelConfig& config = model.config();
  const KvCacheShape kv = model.kv_cache_shape();
  const size_t element = dtype_size(loaded.backend->activation_dtype());
  plan.kv_bytes_per_token = 2 * kv.num_layers * kv.num_kv_heads * kv.head_dim * static_cast<int64_t>(element);
  plan.weight_bytes = static_cast<double>(count_parameters(config)) *
                      static_cast<double>(loaded.device == "cuda" ? 2 : dtype_size(config.dtype));
  int64_t tokens = 0;
  if (loaded.device == "cuda") {
#if defined(RADIXLM_HAVE_CUDA)
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
      return make_error(StatusCode::kInternal, "cudaMemGetInfo failed after loading the weights");
    }
    plan.mem_fraction_static = args.mem_fraction_static.value_or(kDefaultMemFractionStatic);
    plan.available_bytes = static_cast<double>(free_bytes);
    const double rest = static_cast<double>(free_bytes) - static_cast<double>(total_bytes) * (1.0 - plan.mem_fraction_static);
    if (rest <= 0.0) {
      return make_error(StatusCode::kResourceExhausted,
                        "--mem-fraction-static {:.3f} leaves no room for the KV cache after the weights ({:.2f} GiB "
                        "free of {:.2f} GiB): raise it",
                        plan.mem_fraction_static, static_cast<double>(free_bytes) / kGiB,
                        static_cast<double>(total_bytes) / kGiB);
    }
    tokens = static_cast<int64_t>(rest / static_cast<double>(plan.kv_bytes_per_token));
#endif
  } else {
    tokens = std::min<int64_t>(std::max<int64_t>(kCpuDefaultPoolTokens, 2 * context_length),
                               static_cast<int64_t>(kCpuKvBudgetBytes / static_cast<double>(plan.kv_bytes_per_token)));
  }
  if (args.max_total_tokens) tokens = loaded.device == "cuda" ? std::min(tokens, *args.max_total_tokens) : *args.max_total_tokens;
  plan.num_pages = tokens / page_size;
  if (plan.num_pages < 1) {
    return make_error(StatusCode::kResourceExhausted, "the KV cache would hold no page of {} tokens", page_size);
  }
  plan.max_total_num_tokens = plan.num_pages * page_size;
  return plan;
}

// Blocks SIGTERM and SIGINT in this thread and every thread it starts later, so only the watcher takes them.
sigset_t block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

Status run_serve(LaunchArgs args) {
  // Before any thread exists (the CPU backend's pool, the engine, the I/O threads), so they inherit the mask.
  const sigset_t shutdown_signals = block_shutdown_signals();
  RADIXLM_RETURN_IF_ERROR(init_logging(args.log_level));
  for (const std::string& warning : args.warnings) spdlog::warn("{}", warning);

  const bool demo = args.model_path.empty();
  if (demo) {
    RADIXLM_ASSIGN_OR_RETURN(args.model_path, find_demo_model());
    spdlog::warn("No --model-path: serving the bundled demo model at {} (random weights: its text is nonsense). "
                 "Serve a real checkpoint with --model-path /path/to/hf-checkpoint.",
                 args.model_path);
  }
  if (args.tokenizer_path.empty()) args.tokenizer_path = args.model_path;
  if (args.served_model_name.empty()) args.served_model_name = args.model_path;
  if (!args.random_seed) args.random_seed = std::random_device{}() % (1u << 30);  // SGLang: randint(0, 2**30)

  const std::string overrides = args.json_model_override_args == "{}" ? std::string() : args.json_model_override_args;
  RADIXLM_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(args.model_path, overrides));
  RADIXLM_ASSIGN_OR_RETURN(GenerationConfig generation, load_generation_config(args.model_path));
  RADIXLM_ASSIGN_OR_RETURN(SchedulePolicy policy, parse_schedule_policy(args.schedule_policy));
  int64_t context_length = config.max_position_embeddings;
  if (args.context_length) {
    if (*args.context_length > config.max_position_embeddings) {
      return make_error(StatusCode::kInvalidArgument,
                        "--context-length {} is longer than the model's max_position_embeddings ({})",
                        *args.context_length, config.max_position_embeddings);
    }
    context_length = *args.context_length;
  }

  // The text front end.
  TextDecoderFactory decoders;
#if RADIXLM_TEXT
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<chat::ChatTemplate> chat_template;
  if (!args.skip_tokenizer_init) {
    auto loaded = tokenizer::Tokenizer::load(args.tokenizer_path);
    if (!loaded.ok()) {
      return make_error(loaded.status().code(), "tokenizer at {}: {} (pass --skip-tokenizer-init to serve token ids only)",
                        args.tokenizer_path, loaded.status().message());
    }
    tok = std::make_unique<tokenizer::Tokenizer>(std::move(*loaded));
    const tokenizer::Tokenizer* raw = tok.get();
    decoders = [raw](const SamplingParams& params) { return std::make_unique<server::TokenizerTextDecoder>(*raw, params); };
    const std::string choice = !args.chat_template.empty() ? args.chat_template : args.hf_chat_template_name;
    auto templ = chat::ChatTemplate::load(args.tokenizer_path, choice);
    if (templ.ok()) {
      chat_template = std::make_unique<chat::ChatTemplate>(std::move(*templ));
    } else if (!choice.empty()) {
      return make_error(templ.status().code(), "--chat-template {}: {}", choice, templ.status().message());
    } else {
      spdlog::warn("No chat template ({}); /v1/chat/completions will refuse requests", templ.status().message());
    }
  }
#else
  if (!args.skip_tokenizer_init) {
    spdlog::warn("This radixlm was built without tokenizer/ (RADIXLM_TEXT=OFF): serving token ids only");
  }
  if (!args.chat_template.empty()) {
    return make_error(StatusCode::kUnsupported, "--chat-template needs radixlm built with RADIXLM_TEXT=ON");
  }
#endif

  // Weights and backend.
  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<WeightSource> weights,
                           open_weights(args.load_format, args.model_path, config.dtype));
  RADIXLM_ASSIGN_OR_RETURN(LoadedBackend loaded, make_backend(args));
  if (loaded.device == "cpu") {
    for (const char* flag : {"--cuda-graph-max-bs-decode", "--cuda-graph-bs-decode", "--disable-cuda-graph",
                             "--disable-decode-cuda-graph", "--mem-fraction-static", "--base-gpu-id"}) {
      if (args.was_given(flag)) spdlog::warn("{} is a GPU tuning knob; ignored on the CPU backend", flag);
    }
  }
  const auto load_start = std::chrono::steady_clock::now();
  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_model(config, *weights, *loaded.backend));
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

  const int32_t page_size = args.page_size.value_or(1);
  RADIXLM_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(args, loaded, *model, page_size, context_length));
  const int64_t chunked_prefill_size = args.chunked_prefill_size.value_or(8192);
  const int32_t max_running_requests = args.max_running_requests.value_or(
      static_cast<int32_t>(std::clamp<int64_t>(plan.max_total_num_tokens / 2, 1, 4096)));

  spdlog::info("Load weight end. type={}, dtype={}, device={}, weights={:.3f} GiB, {:.1f} s", config.architecture,
               dtype_name(config.dtype), loaded.device_name, plan.weight_bytes / kGiB, load_s);
  const double kv_bytes = static_cast<double>(plan.kv_bytes_per_token) * static_cast<double>(plan.max_total_num_tokens);
  spdlog::info("KV Cache is allocated. #tokens: {}, #pages: {} (page_size={}), K size: {:.3f} GiB, V size: {:.3f} GiB",
               plan.max_total_num_tokens, plan.num_pages, page_size, kv_bytes / 2 / kGiB, kv_bytes / 2 / kGiB);
  spdlog::info("Memory plan: weights={:.3f} GiB, kv_cache={:.3f} GiB, #pages={}, max_total_num_tokens={}, "
               "chunked_prefill_size={}, max_prefill_tokens={}, max_running_requests={}, context_length={}{}",
               plan.weight_bytes / kGiB, kv_bytes / kGiB, plan.num_pages, plan.max_total_num_tokens,
               chunked_prefill_size, args.max_prefill_tokens, max_running_requests, context_length,
               loaded.device == "cuda"
                   ? fmt::format(", mem_fraction_static={:.3f}, available_gpu_mem={:.2f} GiB", plan.mem_fraction_static,
                                 plan.available_bytes / kGiB)
                   : std::string());

  EngineOptions options;
  SchedulerOptions& s = options.scheduler;
  s.page_size = page_size;
  s.max_total_tokens = plan.max_total_num_tokens;
  s.max_running_requests = max_running_requests;
  s.max_prefill_tokens = args.max_prefill_tokens;
  s.chunked_prefill_size = chunked_prefill_size;
  s.policy = policy;
  s.schedule_conservativeness = args.schedule_conservativeness;
  s.disable_radix_cache = args.disable_radix_cache;
  s.enable_mixed_chunk = args.enable_mixed_chunk;
  s.max_queued_requests = args.max_queued_requests.value_or(-1);
  s.random_seed = *args.random_seed;
  s.context_length = context_length;
  const auto& eos = generation.eos_token_ids.empty() ? config.eos_token_ids : generation.eos_token_ids;
  for (int64_t id : eos) {
    if (id >= 0 && id <= INT32_MAX) options.eos_token_ids.push_back(static_cast<int32_t>(id));
  }
  options.sampling_defaults = SamplingDefaults{generation.temperature, generation.top_p, generation.top_k,
                                               generation.min_p, generation.repetition_penalty};
  options.decode_log_interval = args.decode_log_interval;
  options.disable_overlap_schedule = args.disable_overlap_schedule;
  options.runner.disable_cuda_graph = args.disable_cuda_graph;
  options.runner.cuda_graph_max_bs = args.cuda_graph_max_bs.value_or(0);
  options.runner.cuda_graph_bs = args.cuda_graph_bs;
  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                           Engine::create(*model, *loaded.backend, options, decoders));

  // What the routes share.
  server::ServingContext context;
  context.engine = engine.get();
  context.model_config = &model->config();
#if RADIXLM_TEXT
  context.tokenizer = tok.get();
  context.chat_template = chat_template.get();
#endif
  context.served_model_name = args.served_model_name;
  context.model_path = args.model_path;
  context.context_length = context_length;
  context.api_key = args.api_key;
  context.admin_api_key = args.admin_api_key;
  context.log_requests = args.log_requests;
  std::unique_ptr<server::ServerMetrics> metrics;
  if (args.enable_metrics) metrics = std::make_unique<server::ServerMetrics>(args.served_model_name);
  context.metrics = metrics.get();
  server::RequestRegistry registry;
  context.registry = &registry;
  nlohmann::json info = args.to_json();
  info["context_length"] = context_length;
  info["page_size"] = page_size;
  info["chunked_prefill_size"] = chunked_prefill_size;
  info["max_running_requests"] = max_running_requests;
  info["max_total_num_tokens"] = plan.max_total_num_tokens;
  info["random_seed"] = *args.random_seed;
  info["device"] = loaded.device;
  info["device_name"] = loaded.device_name;
  if (loaded.device == "cuda") info["mem_fraction_static"] = plan.mem_fraction_static;
  context.server_info = std::move(info);

  const int io_threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency() / 2, 2u, 8u));
  server::HttpServer http(server::make_router(context), server::HttpLimits{}, io_threads);
  RADIXLM_RETURN_IF_ERROR(http.listen(args.host, static_cast<uint16_t>(args.port)));
  engine->start();

  std::atomic<bool> finished{false};
  std::thread watcher([&] {
    int signals_seen = 0;
    const timespec poll{0, 200 * 1000 * 1000};
    while (!finished.load()) {
      siginfo_t info_out;
      const int sig = sigtimedwait(&shutdown_signals, &info_out, &poll);
      if (sig < 0) continue;  // timeout or EINTR: look at `finished` again
      if (++signals_seen == 1) {
        spdlog::info("Received {}: draining (new generation requests get 503); in-flight requests have {:.0f} s",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", args.graceful_shutdown_timeout);
        context.draining.store(true);
        http.shutdown(args.graceful_shutdown_timeout);
      } else {
        // The impatient second Ctrl-C: end the grace period by aborting every request now; their streams
        // end with an abort and the connections close.
        const std::vector<uint64_t> ids = registry.all_engine_ids();
        spdlog::warn("Second signal: aborting {} request(s) now", ids.size());
        for (uint64_t id : ids) engine->abort(id);
      }
    }
  });

  spdlog::info("radixlm serving {} on http://{}:{} ({})", args.served_model_name, args.host, http.port(),
               loaded.device_name);
  // Logged first, so whoever sees /health answer 200 finds the line in the log.
  spdlog::info("The server is fired up and ready to roll!");
  context.ready.store(true);
  http.run();

  // The HTTP side is done: whatever the grace period left running is aborted, then the engine stops.
  finished.store(true);
  watcher.join();
  const std::vector<uint64_t> left = registry.all_engine_ids();
  for (uint64_t id : left) engine->abort(id);
  engine->stop();
  spdlog::info("Shutdown complete{}", left.empty() ? "" : fmt::format(" ({} requests aborted)", left.size()));
  return {};
}

std::function<int()> setup_serve(CLI::App& sub) {
  // SGLang's flags are parsed by launch_args (argparse's rules, every SGLang flag known), so CLI11 hands the
  // whole argument list over untouched.
  sub.prefix_command();
  sub.set_help_flag();
  sub.allow_extras();
  const CLI::App* app = &sub;
  return [app] {
    const std::vector<std::string> raw = app->remaining();
    for (const std::string& arg : raw) {
      if (arg == "--help" || arg == "-h") {
        std::fputs(server::launch_args_help().c_str(), stdout);
        return 0;
      }
    }
    auto args = server::parse_launch_args(raw);
    if (!args.ok()) {
      std::fprintf(stderr, "radixlm serve: error: %s\n", args.status().message().c_str());
      return args.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
    }
    const Status status = run_serve(std::move(*args));
    if (!status.ok()) {
      spdlog::error("radixlm serve: {}", status.to_string());
      std::fprintf(stderr, "radixlm serve: error: %s\n", status.to_string().c_str());
      return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
    }
    return 0;
  };
}

const CommandRegistrar kServe({"serve", setup_serve,
                               "the HTTP server (OpenAI and SGLang APIs), with SGLang's launch_server flags"});

}  // namespace
}  // namespace radixlm::apps
