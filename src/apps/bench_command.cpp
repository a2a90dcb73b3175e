// `radixlm bench one-batch`: the latency of one static batch, as sglang.bench_one_batch measures it. For
// each --batch-size: a prefill of batch x input_len random tokens, then output_len - 1 greedy decode steps
// (argmax on the device; the one host read per step is the new tokens, which a real engine also needs).
// On CUDA, decode steps replay CUDA graphs as the engine's do (--disable-cuda-graph: eager launches).
// Prints prefill tok/s, the median decode step and decode tok/s, each against a roofline computed from
// figures measured on the same machine (--roofline-bandwidth-tbs, --roofline-tflops from gpu_ceilings.py):
//   decode floor  = (weight bytes + KV bytes read per step) / bandwidth
//   prefill floor = (2 * layer params * tokens + 2 * lm_head params * rows + causal attention FLOPs) / GEMM rate
// A warm-up pass of the same shapes runs first, so the measured pass allocates nothing and plans no GEMM.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "apps/bench_serving_command.h"
#include "apps/command_registry.h"
#include "backends/cpu/cpu_backend.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "models/model.h"
#if defined(RADIXLM_HAVE_CUDA)
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_decode_graphs.h"
#endif

namespace radixlm::apps {
namespace {

struct BenchArgs {
  std::string model_path;
  std::string load_format = "auto";
  std::vector<int32_t> batch_sizes{1};
  int32_t input_len = 128;
  int32_t output_len = 256;
  int32_t page_size = 16;
  std::string device = "auto";
  double roofline_bandwidth_tbs = 0.0;
  double roofline_tflops = 0.0;
  std::string output_file;
  uint64_t seed = 1;
  std::string gemm = "auto";
  bool disable_cuda_graph = false;
  int32_t cuda_graph_max_bs = 0;
  std::vector<int32_t> cuda_graph_bs;
  int cpu_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
};

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Parameters each matmul reads, from the config (the Llama family's shapes).
struct ModelCounts {
  double layer_params = 0;    // every layer's matmul weights
  double lm_head_params = 0;
  double kv_bytes_per_token = 0;  // K and V over all layers, bf16
  double attention_flops_per_pair = 0;  // QK^T and PV for one (query, key) pair over all layers and heads
};

ModelCounts count_model(const ModelConfig& c) {
  ModelCounts m;
  const double h = static_cast<double>(c.hidden_size), d = static_cast<double>(c.head_dim);
  const double hq = static_cast<double>(c.num_attention_heads), hk = static_cast<double>(c.num_key_value_heads);
  const double per_layer = h * hq * d + 2 * h * hk * d + hq * d * h + 3 * h * static_cast<double>(c.intermediate_size);
  m.layer_params = per_layer * static_cast<double>(c.num_hidden_layers);
  m.lm_head_params = h * static_cast<double>(c.vocab_size);
  m.kv_bytes_per_token = 2.0 * 2.0 * hk * d * static_cast<double>(c.num_hidden_layers);
  m.attention_flops_per_pair = 2.0 * 2.0 * hq * d * static_cast<double>(c.num_hidden_layers);
  return m;
}

// The engine's step for `batch` sequences of equal length, all pages laid out sequence by sequence.
ForwardBatch make_step(int32_t batch, int32_t new_tokens, int32_t cached, int32_t page_size, int32_t pages_per_seq,
                       const std::vector<int32_t>& tokens) {
  ForwardBatch b;
  b.page_size = page_size;
  b.query_start = {0};
  b.page_table_start = {0};
  for (int32_t s = 0; s < batch; ++s) {
    for (int32_t i = 0; i < new_tokens; ++i) {
      const int32_t pos = cached + i;
      b.token_ids.push_back(tokens[static_cast<size_t>(s * new_tokens + i)]);
      b.positions.push_back(pos);
      b.kv_slots.push_back((int64_t{s} * pages_per_seq + pos / page_size) * page_size + pos % page_size);
    }
    b.logit_rows.push_back(b.num_tokens() - 1);
    b.query_start.push_back(b.num_tokens());
    b.kv_length.push_back(cached + new_tokens);
    for (int32_t p = 0; p < pages_per_seq; ++p) b.page_table.push_back(s * pages_per_seq + p);
    b.page_table_start.push_back(static_cast<int32_t>(b.page_table.size()));
  }
  return b;
}

struct BatchResult {
  int32_t batch = 0;
  double prefill_ms = 0, prefill_tok_s = 0, prefill_floor_ms = 0;
  double decode_median_ms = 0, decode_tok_s = 0, decode_floor_ms = 0, decode_enqueue_ms = 0;
  int32_t decode_steps = 0;
};

class Runner {
 public:
  Runner(Model& model, Backend& backend, const BenchArgs& args)
      : model_(model), backend_(backend), args_(args) {
#if defined(RADIXLM_HAVE_CUDA)
    cuda_ = dynamic_cast<CudaBackend*>(&backend);
#endif
  }

  std::vector<int32_t> greedy(const Tensor& logits) {
#if defined(RADIXLM_HAVE_CUDA)
    if (cuda_) return cuda_->argmax_rows(logits);
#endif
    const int64_t rows = logits.shape()[0], vocab = logits.shape()[1];
    std::vector<float> host(static_cast<size_t>(rows * vocab));
    backend_.copy_to_host_f32(logits, host.data());
    std::vector<int32_t> out;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = host.data() + r * vocab;
      out.push_back(static_cast<int32_t>(std::max_element(row, row + vocab) - row));
    }
    return out;
  }

  // One prefill and the decode steps; returns per-step decode latencies and the prefill time.
  BatchResult run(int32_t batch, int32_t decode_steps) {
    const KvCacheShape shape = model_.kv_cache_shape();
    const int32_t page = args_.page_size;
    const int32_t total = args_.input_len + std::max(args_.output_len, 1);
    const int32_t pages_per_seq = (total + page - 1) / page;
    // One page more than the batch uses: CUDA graph padding rows write their K/V there.
    const int32_t padding_page = batch * pages_per_seq;
    const int64_t slots = (int64_t{padding_page} + 1) * page;
    const Shape kv{slots, shape.num_kv_heads, shape.head_dim};
    std::vector<LayerKvCache> cache;
    for (int64_t l = 0; l < shape.num_layers; ++l) {
      cache.push_back({backend_.alloc(backend_.activation_dtype(), kv), backend_.alloc(backend_.activation_dtype(), kv)});
    }
    std::mt19937 rng(static_cast<uint32_t>(args_.seed));
    std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(model_.config().vocab_size - 1));
    std::vector<int32_t> prompt(static_cast<size_t>(batch) * static_cast<size_t>(args_.input_len));
    for (int32_t& t : prompt) t = token(rng);

    BatchResult r;
    r.batch = batch;
    const ForwardBatch prefill = make_step(batch, args_.input_len, 0, page, pages_per_seq, prompt);
    greedy(model_.forward(prefill, cache));  // drains the queue before timing
    const auto start = Clock::now();
    std::vector<int32_t> next = greedy(model_.forward(prefill, cache));
    r.prefill_ms = ms_since(start);
    std::vector<double> steps, enqueue;
#if defined(RADIXLM_HAVE_CUDA)
    // Decode through CUDA graphs as the engine does (the first step of the batch's bucket captures it).
    std::unique_ptr<CudaDecodeGraphs> graphs;
    if (cuda_) {
      std::vector<int32_t> sizes = cuda_graph_batch_sizes(
          CudaGraphOptions{args_.disable_cuda_graph, args_.cuda_graph_max_bs, args_.cuda_graph_bs});
      if (!sizes.empty()) graphs = std::make_unique<CudaDecodeGraphs>(*cuda_, std::move(sizes), padding_page, slots);
    }
    const auto forward = [&](const ForwardBatch& b) { return model_.forward(b, cache); };
#endif
    for (int32_t k = 0; k < decode_steps; ++k) {
      const ForwardBatch step = make_step(batch, 1, args_.input_len + k, page, pages_per_seq, next);
      const auto t0 = Clock::now();
#if defined(RADIXLM_HAVE_CUDA)
      if (graphs && graphs->can_run(step)) {
        const CudaDecodeGraphs::Output out = graphs->run(step, forward);
        enqueue.push_back(ms_since(t0));
        next.resize(static_cast<size_t>(batch));
        cuda_->copy_to_host(out.tokens.slice_rows(0, batch), next.data());
        steps.push_back(ms_since(t0));
        continue;
      }
#endif
      Tensor logits = model_.forward(step, cache);
      enqueue.push_back(ms_since(t0));  // host time to queue the step: the floor a host-bound step sits on
      next = greedy(logits);
      steps.push_back(ms_since(t0));
    }
    r.decode_steps = decode_steps;
    if (!steps.empty()) {
      std::sort(steps.begin(), steps.end());
      r.decode_median_ms = steps[steps.size() / 2];
      r.decode_tok_s = 1000.0 * batch / r.decode_median_ms;
      std::sort(enqueue.begin(), enqueue.end());
      r.decode_enqueue_ms = enqueue[enqueue.size() / 2];
    }
    r.prefill_tok_s = 1000.0 * batch * args_.input_len / r.prefill_ms;
    return r;
  }

 private:
  Model& model_;
  Backend& backend_;
  const BenchArgs& args_;
#if defined(RADIXLM_HAVE_CUDA)
  CudaBackend* cuda_ = nullptr;
#endif
};

Status run_one_batch(const BenchArgs& args) {
  if (args.input_len < 1 || args.output_len < 1 || args.page_size < 1) {
    return make_error(StatusCode::kInvalidArgument, "--input-len, --output-len and --page-size must be >= 1");
  }
  for (int32_t b : args.batch_sizes) {
    if (b < 1) return make_error(StatusCode::kInvalidArgument, "--batch-size {} must be >= 1", b);
  }
  RADIXLM_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(args.model_path));
  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<WeightSource> weights,
                           open_weights(args.load_format, args.model_path, config.dtype));

  std::unique_ptr<Backend> backend;
  std::string device_name = "cpu";
  if (args.device == "cuda" || args.device == "auto") {
#if defined(RADIXLM_HAVE_CUDA)
    auto made = CudaBackend::create();
    if (made.ok()) {
      device_name = (*made)->info().name;
      (*made)->set_force_cublaslt(args.gemm == "cublaslt");
      backend = std::move(*made);
    } else if (args.device == "cuda") {
      return made.status();
    } else {
      spdlog::warn("bench: {}; running on the CPU backend", made.status().to_string());
    }
#else
    if (args.device == "cuda") return make_error(StatusCode::kUnsupported, "this radixlm was built without CUDA");
#endif
  } else if (args.device != "cpu") {
    return make_error(StatusCode::kInvalidArgument, "--device '{}': want cuda, cpu or auto", args.device);
  }
  if (!backend) backend = std::make_unique<CpuBackend>(args.cpu_threads);

  const auto load_start = Clock::now();
  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_model(config, *weights, *backend));
  spdlog::info("bench: model loaded on {} in {:.1f} s", device_name, ms_since(load_start) / 1000.0);
  const ModelCounts counts = count_model(config);
  const double bandwidth = args.roofline_bandwidth_tbs * 1e12, gemm_rate = args.roofline_tflops * 1e12;

  Runner runner(*model, *backend, args);
  std::vector<BatchResult> results;
  nlohmann::json json_results = nlohmann::json::array();
  for (int32_t batch : args.batch_sizes) {
    BatchResult r = runner.run(batch, args.output_len - 1);
    const double tokens = static_cast<double>(batch) * args.input_len;
    const double pairs = static_cast<double>(batch) * args.input_len * (args.input_len + 1) / 2.0;
    const double prefill_flops =
        2.0 * counts.layer_params * tokens + 2.0 * counts.lm_head_params * batch + counts.attention_flops_per_pair * pairs;
    // KV read by the median decode step: every sequence's context at the middle of the decode.
    const double median_kv = args.input_len + (args.output_len - 1) / 2.0;
    const double weight_bytes = 2.0 * (counts.layer_params + counts.lm_head_params);
    const double decode_bytes = weight_bytes + counts.kv_bytes_per_token * batch * median_kv;
    r.prefill_floor_ms = gemm_rate > 0 ? 1000.0 * prefill_flops / gemm_rate : 0.0;
    r.decode_floor_ms = bandwidth > 0 ? 1000.0 * decode_bytes / bandwidth : 0.0;
    results.push_back(r);
    nlohmann::json j;
    j["batch_size"] = batch;
    j["input_len"] = args.input_len;
    j["output_len"] = args.output_len;
    j["prefill_ms"] = r.prefill_ms;
    j["prefill_tok_s"] = r.prefill_tok_s;
    j["prefill_tflops"] = prefill_flops / (r.prefill_ms / 1000.0) / 1e12;
    j["prefill_roofline_ms"] = r.prefill_floor_ms;
    j["prefill_roofline_fraction"] = r.prefill_floor_ms > 0 ? r.prefill_floor_ms / r.prefill_ms : 0.0;
    j["decode_steps"] = r.decode_steps;
    j["decode_median_step_ms"] = r.decode_median_ms;
    j["decode_tok_s"] = r.decode_tok_s;
    j["decode_median_enqueue_ms"] = r.decode_enqueue_ms;
    j["decode_bytes_per_step"] = decode_bytes;
    j["decode_roofline_ms"] = r.decode_floor_ms;
    j["decode_roofline_fraction"] =
        r.decode_floor_ms > 0 && r.decode_median_ms > 0 ? r.decode_floor_ms / r.decode_median_ms : 0.0;
    json_results.push_back(j);
  }

  std::printf("bench one-batch: %s on %s, input %d, output %d, page %d\n", config.architecture.c_str(),
              device_name.c_str(), args.input_len, args.output_len, args.page_size);
  std::printf("%6s %12s %14s %9s %14s %14s %9s %11s\n", "batch", "prefill ms", "prefill tok/s", "of roof",
              "decode step ms", "decode tok/s", "of roof", "enqueue ms");
  for (const auto& j : json_results) {
    std::printf("%6d %12.2f %14.0f %8.1f%% %14.3f %14.1f %8.1f%% %11.3f\n", j["batch_size"].get<int>(),
                j["prefill_ms"].get<double>(), j["prefill_tok_s"].get<double>(),
                100.0 * j["prefill_roofline_fraction"].get<double>(), j["decode_median_step_ms"].get<double>(),
                j["decode_tok_s"].get<double>(), 100.0 * j["decode_roofline_fraction"].get<double>(),
                j["decode_median_enqueue_ms"].get<double>());
  }
#if defined(RADIXLM_HAVE_CUDA)
  if (auto* cuda = dynamic_cast<CudaBackend*>(backend.get()); cuda && cuda->op_timing()) {
    std::printf("%s", cuda->op_time_report().c_str());
  }
#endif
  std::fflush(stdout);
  if (!args.output_file.empty()) {
    nlohmann::json out;
    out["model_path"] = args.model_path;
    out["architecture"] = config.architecture;
    out["device"] = device_name;
    out["load_format"] = args.load_format;
    out["page_size"] = args.page_size;
    out["roofline_bandwidth_tbs"] = args.roofline_bandwidth_tbs;
    out["roofline_tflops"] = args.roofline_tflops;
    out["results"] = json_results;
    std::ofstream file(args.output_file);
    if (!file) return make_error(StatusCode::kIoError, "cannot write --output-file {}", args.output_file);
    file << out.dump(2) << "\n";
  }
  return {};
}

// `bench linear`: the decode-shaped matmuls of the model alone, GEMV kernel against cuBLASLt, as bandwidth
// of weight bytes. Eight copies of each weight rotate so the L2 cannot hold them; launches queue up
// back to back, so the figure is the GPU's, not the launch overhead's.
Status run_linear(const BenchArgs& args) {
#if defined(RADIXLM_HAVE_CUDA)
  RADIXLM_ASSIGN_OR_RETURN(ModelConfig c, load_model_config(args.model_path));
  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> gpu, CudaBackend::create());
  const int64_t h = c.hidden_size, qw = c.num_attention_heads * c.head_dim, kw = c.num_key_value_heads * c.head_dim;
  struct MatShape {
    const char* name;
    int64_t n, k;
  };
  // The models run q, k and v as one fused matmul (qkv_proj); q_proj and k_proj alone stay listed to show
  // what the fusion gains over three launches.
  const std::vector<MatShape> shapes = {{"qkv_proj", qw + 2 * kw, h}, {"q_proj", qw, h}, {"k_proj", kw, h},
                                        {"o_proj", h, qw},
                                        {"gate_up", 2 * c.intermediate_size, h}, {"down", h, c.intermediate_size},
                                        {"lm_head", c.vocab_size, h}};
  std::printf("bench linear: %s on %s (weight TB/s; 8 copies rotated)\n", c.architecture.c_str(), gpu->info().name.c_str());
  // Columns: the default routing (GEMV kernel for 1 token, its warps per row picked by N), the GEMV kernel
  // with 1/2/4/8 warps per row forced, and cuBLASLt.
  struct Variant {
    const char* name;
    int32_t warps_per_row;
    bool cublaslt;
  };
  const std::vector<Variant> variants = {{"default", 0, false}, {"gemv_w1", 1, false}, {"gemv_w2", 2, false},
                                         {"gemv_w4", 4, false}, {"gemv_w8", 8, false}, {"cublaslt", 0, true}};
  std::printf("%-8s %7s %7s %4s", "matrix", "N", "K", "T");
  for (const Variant& v : variants) std::printf(" %9s", v.name);
  std::printf("\n");
  for (const MatShape& m : shapes) {
    std::vector<Tensor> weights;
    for (int i = 0; i < 8; ++i) weights.push_back(gpu->alloc(DType::kBF16, {m.n, m.k}));
    for (int64_t tokens : args.batch_sizes) {
      Tensor x = gpu->alloc(DType::kBF16, {tokens, m.k});
      Tensor out = gpu->alloc(DType::kBF16, {tokens, m.n});
      std::printf("%-8s %7lld %7lld %4lld", m.name, static_cast<long long>(m.n), static_cast<long long>(m.k),
                  static_cast<long long>(tokens));
      for (const Variant& v : variants) {
        gpu->set_force_cublaslt(v.cublaslt);
        gpu->set_gemv_warps_per_row(v.warps_per_row);
        for (const Tensor& w : weights) gpu->linear(x, w, TensorView(), out);
        gpu->synchronize();
        constexpr int kRounds = 25;
        const auto start = Clock::now();
        for (int r = 0; r < kRounds; ++r) {
          for (const Tensor& w : weights) gpu->linear(x, w, TensorView(), out);
        }
        gpu->synchronize();
        const double seconds = ms_since(start) / 1000.0;
        std::printf(" %9.2f", static_cast<double>(kRounds) * 8.0 * static_cast<double>(m.n * m.k * 2) / seconds / 1e12);
      }
      std::printf("\n");
      gpu->set_force_cublaslt(false);
      gpu->set_gemv_warps_per_row(0);
    }
  }
  std::fflush(stdout);
  return {};
#else
  (void)args;
  return make_error(StatusCode::kUnsupported, "this radixlm was built without CUDA");
#endif
}

std::function<int()> setup_bench(CLI::App& sub) {
  auto args = std::make_shared<BenchArgs>();
  sub.require_subcommand(1);
  CLI::App* one = sub.add_subcommand("one-batch", "latency of one static batch: prefill, then greedy decode steps");
  one->add_option("--model-path", args->model_path, "HF model folder (config.json, *.safetensors)")->required();
  one->add_option("--load-format", args->load_format, "auto or safetensors (the checkpoint), or dummy (random weights)")
      ->capture_default_str();
  one->add_option("--batch-size", args->batch_sizes, "one or more batch sizes")->capture_default_str();
  one->add_option("--input-len", args->input_len, "prompt tokens per sequence")->capture_default_str();
  one->add_option("--output-len", args->output_len, "tokens per sequence (1 from prefill, the rest decode steps)")
      ->capture_default_str();
  one->add_option("--page-size", args->page_size, "tokens per KV cache page")->capture_default_str();
  one->add_option("--device", args->device, "cuda, cpu or auto (cuda when a GPU is found)")->capture_default_str();
  one->add_flag("--disable-cuda-graph", args->disable_cuda_graph, "run every decode step eagerly (CUDA)");
  one->add_option("--cuda-graph-max-bs", args->cuda_graph_max_bs, "largest decode batch replayed from a CUDA graph (0: 256)")
      ->check(CLI::NonNegativeNumber);
  one->add_option("--cuda-graph-bs", args->cuda_graph_bs, "the CUDA graph batch sizes (default: SGLang's up to the max)")
      ->check(CLI::PositiveNumber);
  one->add_option("--roofline-bandwidth-tbs", args->roofline_bandwidth_tbs,
                  "measured memory bandwidth, TB/s (gpu_ceilings.py), for the decode roofline");
  one->add_option("--roofline-tflops", args->roofline_tflops,
                  "measured bf16 GEMM rate, TFLOP/s (gpu_ceilings.py), for the prefill roofline");
  one->add_option("--output-file", args->output_file, "also write the results as JSON here");
  one->add_option("--gemm", args->gemm,
                  "CUDA linear path: auto (the GEMV and, on Hopper, the decode GEMM for <= 16 tokens) or cublaslt")
      ->capture_default_str();
  one->add_option("--seed", args->seed, "seed of the random prompts")->capture_default_str();
  one->add_option("--cpu-threads", args->cpu_threads, "threads of the CPU backend")->capture_default_str();
  CLI::App* linear = sub.add_subcommand("linear", "decode-shaped matmuls of a model: GEMV kernel vs cuBLASLt");
  linear->add_option("--model-path", args->model_path, "HF model folder (config.json)")->required();
  linear->add_option("--batch-size", args->batch_sizes, "token counts")->capture_default_str();
  const BenchSubcommand serving = add_bench_serving(sub);
  return [args, linear, serving] {
    if (serving.app->parsed()) return serving.run();
    const Status status = linear->parsed() ? run_linear(*args) : run_one_batch(*args);
    if (!status.ok()) {
      std::fprintf(stderr, "radixlm bench: error: %s\n", status.to_string().c_str());
      return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
    }
    return 0;
  };
}

const CommandRegistrar kBench({"bench", setup_bench, "benchmarks: one-batch (prefill and decode latency)"});

}  // namespace
}  // namespace radixlm::apps
