// The engine on the CUDA backend, against HF transformers' greedy continuations (fixtures/models/*/
// golden.json) and against itself: each golden prompt alone, all of them in one continuous batch with
// chunked prefill (chunks of 8 tokens or a page, mixed prefill/decode steps) at page sizes 1 and 16, with CUDA graphs
// and without. Greedy tokens must equal the golden ones up to the first step whose golden top-2 margin is
// under 0.05 (bf16 may rightly take the other side of a near-tie; see cuda_golden_test.cpp).
//
// And CUDA graph replay against eager execution of the same decode steps: random batches (sizes that hit
// and miss the buckets, random context lengths, shuffled pages) give the same logits within bf16 noise and
// the same argmax, replays call no cudaMalloc, and a batch larger than the largest bucket runs eagerly.

#include <algorithm>
#include <fstream>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backends/cuda/cuda_decode_graphs.h"
#include "backends/cuda/cuda_test_util.h"
#include "engine/engine.h"
#include "engine/model_runner.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "models/model.h"

namespace radixlm {
namespace {

constexpr int kNewTokens = 12;
constexpr double kMarginFloor = 5e-2;

struct Golden {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> greedy;
  std::vector<double> margin;
};

std::vector<Golden> load_golden(const std::filesystem::path& path) {
  std::ifstream in(path);
  const nlohmann::json json = nlohmann::json::parse(in);
  std::vector<Golden> out;
  for (const auto& p : json.at("prompts")) {
    out.push_back({p.at("input_ids").get<std::vector<int32_t>>(), p.at("greedy").get<std::vector<int32_t>>(),
                   p.at("greedy_margin").get<std::vector<double>>()});
  }
  return out;
}

struct Loaded {
  std::unique_ptr<WeightSource> weights;
  std::unique_ptr<Model> model;
};

Loaded load(const std::string& fixture, CudaBackend& backend) {
  const std::filesystem::path dir = cuda_test::fixtures_dir() / "models" / fixture;
  auto config = load_model_config(dir);
  RADIXLM_CHECK(config.ok(), "{}", config.status().to_string());
  auto weights = open_checkpoint(dir);
  RADIXLM_CHECK(weights.ok(), "{}", weights.status().to_string());
  ModelOptions options;
  options.rope_inv_freq_in_checkpoint_dtype = true;  // as the goldens were made
  auto model = load_model(*config, **weights, backend, options);
  RADIXLM_CHECK(model.ok(), "{}", model.status().to_string());
  return {std::move(*weights), std::move(*model)};
}

std::vector<std::vector<int32_t>> generate(Model& model, CudaBackend& backend, int32_t page_size, bool graphs,
                                           const std::vector<std::vector<int32_t>>& prompts,
                                           int64_t* replays = nullptr) {
  EngineOptions options;
  options.scheduler.page_size = page_size;
  // Every golden prompt is prefilled in several chunks (a chunk is at least a page).
  options.scheduler.chunked_prefill_size = std::max(8, page_size);
  options.scheduler.max_prefill_tokens = std::max(8, page_size);
  options.scheduler.enable_mixed_chunk = true;
  options.scheduler.max_total_tokens = 64 * 16 * 4;
  options.runner.disable_cuda_graph = !graphs;
  auto engine = Engine::create(model, backend, options);
  RADIXLM_CHECK(engine.ok(), "{}", engine.status().to_string());
  std::vector<EngineRequest> requests;
  for (const auto& prompt : prompts) {
    EngineRequest r;
    r.input_ids = prompt;
    r.params.temperature = 0.0;
    r.params.max_new_tokens = kNewTokens;
    r.params.ignore_eos = true;
    requests.push_back(r);
  }
  auto outputs = (*engine)->generate(requests);
  RADIXLM_CHECK(outputs.ok(), "{}", outputs.status().to_string());
  std::vector<std::vector<int32_t>> tokens;
  for (const EngineOutput& o : *outputs) tokens.push_back(o.output_ids);
  if (replays) *replays = 0;
  return tokens;
}

// Returns how many steps were compared (0 when the golden's first step is already a near-tie).
size_t expect_golden_prefix(const std::vector<int32_t>& got, const Golden& want, const std::string& what) {
  EXPECT_EQ(got.size(), static_cast<size_t>(kNewTokens)) << what;
  size_t checked = 0;
  for (size_t k = 0; k < want.greedy.size() && k < got.size() && want.margin[k] >= kMarginFloor; ++k, ++checked) {
    EXPECT_EQ(got[k], want.greedy[k]) << what << ": greedy step " << k;
  }
  return checked;
}

struct EngineCase {
  std::string fixture;
  int32_t page_size;
};
// Readable test parameters in gtest and ctest output (the default prints the struct's bytes).
void PrintTo(const EngineCase& c, std::ostream* os) { *os << c.fixture << ", page size " << c.page_size; }

class CudaEngineTest : public testing::TestWithParam<EngineCase> {};

TEST_P(CudaEngineTest, ContinuousBatchWithChunkedPrefillMatchesAloneAndGolden) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  const auto& [fixture, page_size] = GetParam();
  Loaded loaded = load(fixture, backend);
  const std::vector<Golden> golden = load_golden(cuda_test::fixtures_dir() / "models" / fixture / "golden.json");
  std::vector<std::vector<int32_t>> prompts;
  for (const Golden& g : golden) prompts.push_back(g.input_ids);
  size_t checked = 0;
  for (bool graphs : {false, true}) {
    const std::string mode = fixture + (graphs ? " with graphs" : " eager") + " page " + std::to_string(page_size);
    const auto batched = generate(*loaded.model, backend, page_size, graphs, prompts);
    ASSERT_EQ(batched.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto alone = generate(*loaded.model, backend, page_size, graphs, {prompts[i]});
      checked += expect_golden_prefix(alone.at(0), golden[i], mode + " prompt " + std::to_string(i) + " alone");
      checked += expect_golden_prefix(batched[i], golden[i], mode + " prompt " + std::to_string(i) + " batched");
      // Past the golden's near-ties the batch and the lone run still agree unless bf16 lands on another side.
      size_t same = 0;
      while (same < alone[0].size() && alone[0][same] == batched[i][same]) ++same;
      std::printf("%s prompt %zu: batched == alone for %zu of %d tokens\n", mode.c_str(), i, same, kNewTokens);
      std::fflush(stdout);
    }
  }
  EXPECT_GT(checked, 0u) << fixture << ": no golden step was clear enough to compare";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaEngineTest,
                         testing::Values(EngineCase{"llama", 1}, EngineCase{"llama", 16}, EngineCase{"qwen3", 1},
                                         EngineCase{"qwen3", 16}, EngineCase{"llama3.2-tiny-chat", 16}),
                         [](const testing::TestParamInfo<EngineCase>& info) {
                           std::string name = info.param.fixture + "_page" + std::to_string(info.param.page_size);
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// Overlap scheduling on the device: with every request ending at its max_new_tokens and no prefix sharing,
// the overlapped loop runs the very batches the plain loop runs (a request is not planned past its last
// token), so greedy and seeded tokens and logprobs must be identical, while each decode step's tokens come
// from the previous step's device output (future tokens resolved on the device, through graphs and eager
// steps alike). With the radix cache on, the two loops rightly differ in bf16: a prefill chunk's prefix
// enters the cache at its completion, which the overlapped loop reaches one plan later, so a request
// admitted in between may compute a prefix the plain loop would have shared (the CPU test, exact in f32,
// covers that case).
TEST(CudaOverlapScheduleTest, SameTokensAndLogprobsAsThePlainLoop) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  Loaded loaded = load("llama", backend);
  const std::vector<Golden> golden = load_golden(cuda_test::fixtures_dir() / "models" / "llama" / "golden.json");
  std::vector<EngineRequest> requests;
  for (int32_t k = 0; k < 24; ++k) {
    EngineRequest r;
    r.input_ids = golden[static_cast<size_t>(k) % golden.size()].input_ids;
    r.input_ids.push_back(k + 1);
    r.params.temperature = k % 2 == 0 ? 0.0 : 0.8;
    r.params.top_p = 0.9;
    r.params.seed = static_cast<uint64_t>(7 * k);
    r.params.max_new_tokens = 5 + k % 7;
    r.params.ignore_eos = true;
    if (k % 5 == 0) r.params.min_new_tokens = 4;
    if (k % 3 == 0) {
      r.params.return_logprob = true;
      r.params.top_logprobs_num = 3;
    }
    if (k == 9) r.params.frequency_penalty = 0.5;  // waits for the step in flight
    requests.push_back(r);
  }
  for (bool graphs : {true, false}) {
    std::vector<EngineOutput> results[2];
    for (bool overlap : {false, true}) {
      EngineOptions options;
      options.scheduler.page_size = 16;
      options.scheduler.chunked_prefill_size = 32;
      options.scheduler.max_total_tokens = 64 * 16 * 4;
      options.scheduler.disable_radix_cache = true;
      options.runner.disable_cuda_graph = !graphs;
      options.disable_overlap_schedule = !overlap;
      auto engine = Engine::create(*loaded.model, backend, options);
      ASSERT_TRUE(engine.ok()) << engine.status().to_string();
      auto outputs = (*engine)->generate(requests);
      ASSERT_TRUE(outputs.ok()) << outputs.status().to_string();
      EXPECT_EQ((*engine)->stats().overlapped_steps > 0, overlap);
      results[overlap] = std::move(*outputs);
    }
    for (size_t i = 0; i < requests.size(); ++i) {
      const EngineOutput& plain = results[0][i];
      const EngineOutput& overlapped = results[1][i];
      EXPECT_EQ(overlapped.output_ids, plain.output_ids) << "request " << i << (graphs ? " graphs" : " eager");
      ASSERT_EQ(overlapped.output_logprobs.size(), plain.output_logprobs.size());
      for (size_t t = 0; t < plain.output_logprobs.size(); ++t) {
        EXPECT_EQ(overlapped.output_logprobs[t].logprob, plain.output_logprobs[t].logprob) << "request " << i;
      }
    }
  }
}

TEST(CudaGraphBatchSizes, SGLangDefaultsAndFlags) {
  const std::vector<int32_t> defaults = cuda_graph_batch_sizes({});
  ASSERT_EQ(defaults.size(), 5u + 31u);  // 1 2 4 8 12, 16..256 by 8
  EXPECT_EQ(defaults[4], 12);
  EXPECT_EQ(defaults[5], 16);
  EXPECT_EQ(defaults.back(), 256);
  const std::vector<int32_t> big = cuda_graph_batch_sizes({false, 600, {}});
  EXPECT_TRUE(std::binary_search(big.begin(), big.end(), 496));
  EXPECT_TRUE(std::binary_search(big.begin(), big.end(), 576));
  EXPECT_FALSE(std::binary_search(big.begin(), big.end(), 504));
  EXPECT_EQ(big.back(), 600);  // max_bs itself is a bucket
  EXPECT_EQ(cuda_graph_batch_sizes({false, 20, {}}), (std::vector<int32_t>{1, 2, 4, 8, 12, 16, 20}));
  EXPECT_EQ(cuda_graph_batch_sizes({false, 0, {8, 3, 8}}), (std::vector<int32_t>{3, 8}));
  EXPECT_TRUE(cuda_graph_batch_sizes({true, 0, {}}).empty());
}

// The model runner on CUDA: decode plans replay graphs (run and run_greedy alike), run_greedy's ids are the
// argmax of run's logits rows, and a plan with several tokens in a sequence runs eagerly.
TEST(CudaModelRunnerTest, DecodePlansReplayGraphsAndGreedyIdsMatchLogits) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  Loaded loaded = load("qwen3", backend);
  const int32_t page_size = 16;
  ModelRunner runner(*loaded.model, backend, 64, page_size);
  const int64_t vocab = loaded.model->config().vocab_size;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));
  BatchPlan prefill;
  const std::vector<int32_t> lengths{5, 20, 33};
  for (size_t s = 0; s < lengths.size(); ++s) {
    PlannedSequence seq;
    seq.request_id = s + 1;
    for (int32_t i = 0; i < lengths[s]; ++i) seq.tokens.push_back(token(rng));
    for (int32_t p = 0; p < 4; ++p) seq.pages.push_back(static_cast<int32_t>(s * 4 + p));
    seq.samples = true;
    seq.is_prefill = true;
    prefill.seqs.push_back(seq);
  }
  const std::vector<int32_t> first = runner.run_greedy(prefill);
  EXPECT_EQ(runner.graph_replays(), 0);
  BatchPlan decode = prefill;
  for (size_t s = 0; s < decode.seqs.size(); ++s) {
    decode.seqs[s].start = lengths[s];
    decode.seqs[s].tokens = {first[s]};
    decode.seqs[s].is_prefill = false;
  }
  for (int step = 0; step < 6; ++step) {
    const std::vector<int32_t> ids = runner.run_greedy(decode);
    StepLogits logits = runner.run(decode);  // the same step again: same K/V writes, same logits
    ASSERT_EQ(ids.size(), decode.seqs.size());
    for (size_t s = 0; s < ids.size(); ++s) {
      const float* row = logits.row(logits.first_row[s]);
      const auto best = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
      EXPECT_EQ(ids[s], best) << "step " << step << " seq " << s;
      decode.seqs[s].start += 1;
      decode.seqs[s].tokens = {ids[s]};
    }
  }
  EXPECT_EQ(runner.graph_replays(), 12);
  EXPECT_EQ(runner.graph_captures(), 1);  // 3 sequences: the bucket of 4
  decode.seqs[0].tokens.push_back(1);  // an extend of two tokens: not a decode step
  (void)runner.run(decode);
  EXPECT_EQ(runner.graph_replays(), 12);
}

TEST(CudaModelRunnerTest, DisabledGraphsRunEagerly) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  Loaded loaded = load("llama", backend);
  ModelRunnerOptions options;
  options.disable_cuda_graph = true;
  ModelRunner runner(*loaded.model, backend, 8, 1, options);
  BatchPlan plan;
  PlannedSequence seq;
  seq.request_id = 1;
  seq.tokens = {7};
  seq.pages = {3};
  seq.samples = true;
  plan.seqs.push_back(seq);
  (void)runner.run_greedy(plan);
  EXPECT_EQ(runner.graph_replays(), 0);
  EXPECT_EQ(runner.graph_captures(), 0);
}

// Decode steps over random sequences, each run eagerly and through the graphs on the same cache state.
TEST(CudaDecodeGraphsTest, ReplayMatchesEagerOnRandomBatches) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  Loaded loaded = load("llama", backend);
  Model& model = *loaded.model;
  const KvCacheShape shape = model.kv_cache_shape();
  const int64_t vocab = model.config().vocab_size;
  const int32_t page_size = 16, num_pages = 512;
  const int64_t slots = int64_t{num_pages + 1} * page_size;
  std::vector<LayerKvCache> cache;
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    const Shape kv{slots, shape.num_kv_heads, shape.head_dim};
    cache.push_back({backend.alloc(DType::kBF16, kv), backend.alloc(DType::kBF16, kv)});
  }
  // Up to 16 sequences the matmuls run our decode kernels; the bucket of 24 runs cuBLASLt's.
  CudaDecodeGraphs graphs(backend, {1, 2, 4, 8, 12, 16, 24}, num_pages, slots);
  const auto forward = [&](const ForwardBatch& b) { return model.forward(b, cache); };
  std::mt19937 rng(11);
  std::vector<int32_t> free_pages(num_pages);
  std::iota(free_pages.begin(), free_pages.end(), 0);
  std::shuffle(free_pages.begin(), free_pages.end(), rng);
  size_t next_page = 0;
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));

  // 25 sequences, each with a random prompt prefilled eagerly (lengths 1..150).
  struct Seq {
    std::vector<int32_t> pages;
    int32_t length = 0;
  };
  std::vector<Seq> seqs(25);
  for (Seq& s : seqs) {
    s.length = std::uniform_int_distribution<int32_t>(1, 150)(rng);
    for (int32_t p = 0; p < (s.length + 40 + page_size - 1) / page_size; ++p) s.pages.push_back(free_pages[next_page++]);
    ForwardBatch b;
    b.page_size = page_size;
    b.query_start = {0};
    b.page_table_start = {0};
    for (int32_t pos = 0; pos < s.length; ++pos) {
      b.token_ids.push_back(token(rng));
      b.positions.push_back(pos);
      b.kv_slots.push_back(int64_t{s.pages[pos / page_size]} * page_size + pos % page_size);
    }
    b.logit_rows = {s.length - 1};
    b.query_start.push_back(s.length);
    b.kv_length = {s.length};
    b.page_table = s.pages;
    b.page_table_start.push_back(static_cast<int32_t>(s.pages.size()));
    (void)model.forward(b, cache);
  }
  auto decode_batch = [&](const std::vector<size_t>& members) {
    ForwardBatch b;
    b.page_size = page_size;
    b.query_start = {0};
    b.page_table_start = {0};
    for (size_t m : members) {
      const Seq& s = seqs[m];
      const int32_t pos = s.length;  // the new token's position
      b.logit_rows.push_back(b.num_tokens());
      b.token_ids.push_back(token(rng));
      b.positions.push_back(pos);
      b.kv_slots.push_back(int64_t{s.pages[pos / page_size]} * page_size + pos % page_size);
      b.query_start.push_back(b.num_tokens());
      b.kv_length.push_back(pos + 1);
      const int32_t pages = (pos + 1 + page_size - 1) / page_size;
      b.page_table.insert(b.page_table.end(), s.pages.begin(), s.pages.begin() + pages);
      b.page_table_start.push_back(static_cast<int32_t>(b.page_table.size()));
    }
    return b;
  };
  size_t mallocs_at_replay = 0;
  for (int step = 0; step < 30; ++step) {
    const int32_t size = step < 12 ? std::vector<int32_t>{1, 3, 4, 7, 12, 13, 16, 5, 2, 9, 21, 24}[step]
                                   : std::uniform_int_distribution<int32_t>(1, 24)(rng);
    std::vector<size_t> members(seqs.size());
    std::iota(members.begin(), members.end(), 0);
    std::shuffle(members.begin(), members.end(), rng);
    members.resize(static_cast<size_t>(size));
    const ForwardBatch b = decode_batch(members);
    ASSERT_TRUE(graphs.can_run(b));
    const std::vector<float> eager = cuda_test::to_host(backend, forward(b));
    const std::vector<int32_t> eager_tokens = backend.argmax_rows(forward(b));
    if (step == 20) mallocs_at_replay = backend.device_malloc_calls();
    const CudaDecodeGraphs::Output out = graphs.run(b, forward);
    const std::vector<float> replayed = cuda_test::to_host(backend, out.logits.slice_rows(0, size));
    std::vector<int32_t> tokens(static_cast<size_t>(size));
    backend.copy_to_host(out.tokens.slice_rows(0, size), tokens.data());
    cuda_test::expect_close(replayed, eager, 2e-2, 2e-2, "replay of a batch of " + std::to_string(size));
    for (int32_t r = 0; r < size; ++r) {
      // The argmax may differ only where the eager top two are within bf16 noise of each other.
      if (tokens[r] != eager_tokens[r]) {
        const float* row = eager.data() + int64_t{r} * vocab;
        EXPECT_NEAR(row[tokens[r]], row[eager_tokens[r]], 2e-2 * std::abs(row[eager_tokens[r]]) + 1e-2)
            << "step " << step << " row " << r;
      }
    }
    for (size_t m : members) ++seqs[m].length;
  }
  EXPECT_EQ(backend.device_malloc_calls(), mallocs_at_replay) << "replays must not call cudaMalloc";
  EXPECT_LE(graphs.captures(), 7);
  EXPECT_EQ(graphs.replays(), 30);
  // Larger than the largest bucket: not for a graph.
  std::vector<size_t> all(25);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_FALSE(graphs.can_run(decode_batch(all)));
}

}  // namespace
}  // namespace radixlm
