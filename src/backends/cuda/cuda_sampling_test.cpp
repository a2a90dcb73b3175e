// The device sampler (CudaRowSampler) against the CPU sampler (CpuRowSampler, which is the engine's
// sample_next_token) on random logits: vocab 128256 and small vocabularies, batches of 1 to 256, each
// sampling parameter alone and all combined, per-row seeds and steps.
//
// What must be equal, and the one tolerance:
// - the processed logits (penalties, suppression, logit_bias): bit for bit;
// - greedy tokens and top-logprob ids: exactly (they depend on the processed logits only);
// - sampled tokens: exactly, except a row where the CPU's own pieces (softmax, filter cut, draw) give the
//   device's token once the draw or the top-p/min-p threshold moves by 1e-6, or where the device's token
//   ties the CPU's cut probability to 2 ulp. Those are the rows where a one-ulp exp difference (glibc expf
//   vs the device's exp in double rounded to float) or a differently ordered double sum can move the
//   boundary (cuda_sampling.cu explains both); they must stay under 1% of the sampled rows;
// - logprobs: within 1e-5 of the CPU's, and within 1e-4 of an independent double log-softmax here.

#include "backends/cuda/cuda_sampling.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "backends/cuda/cuda_test_util.h"
#include "engine/model_runner.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "models/model.h"
#include "sampling/cpu_row_sampler.h"
#include "sampling/philox.h"
#include "sampling/sampler.h"

namespace radixlm {
namespace {

struct Row {
  SamplingParams params;
  SamplingState state;
};

// A named way to fill a row's params; `r` varies values across the batch.
struct ParamCase {
  std::string name;
  void (*fill)(SamplingParams& p, int r, int vocab);
};

const std::vector<ParamCase>& param_cases() {
  static const std::vector<ParamCase> cases = {
      {"greedy", [](SamplingParams& p, int, int) { p.temperature = 0.0; }},
      {"temperature", [](SamplingParams& p, int r, int) { p.temperature = 0.4 + 0.3 * (r % 5); }},
      {"top_k", [](SamplingParams& p, int r, int) { p.top_k = 2 + r % 40; }},
      {"top_p", [](SamplingParams& p, int r, int) { p.top_p = 0.3 + 0.1 * (r % 7); }},
      {"min_p", [](SamplingParams& p, int r, int) { p.min_p = 0.01 + 0.05 * (r % 4); }},
      {"frequency", [](SamplingParams& p, int r, int) { p.frequency_penalty = 0.5 + 0.25 * (r % 3); }},
      {"presence", [](SamplingParams& p, int r, int) { p.presence_penalty = r % 2 ? 1.5 : -0.7; }},
      {"repetition", [](SamplingParams& p, int r, int) { p.repetition_penalty = r % 2 ? 1.3 : 0.8; }},
      {"logit_bias",
       [](SamplingParams& p, int r, int vocab) {
         p.logit_bias[(r * 7919) % vocab] = 8.0;
         p.logit_bias[(r * 104729 + 1) % vocab] = -100.0;
       }},
      {"min_new_tokens",
       [](SamplingParams& p, int r, int vocab) {
         p.min_new_tokens = 1000;
         p.stop_token_ids = {(r * 31) % vocab};
       }},
      {"logprobs_greedy",
       [](SamplingParams& p, int r, int) {
         p.temperature = 0.0;
         p.return_logprob = true;
         p.top_logprobs_num = r % 21;
       }},
      {"logprobs_sampled",
       [](SamplingParams& p, int r, int) {
         p.temperature = 0.9;
         p.return_logprob = true;
         p.top_logprobs_num = 20 - r % 21;
       }},
      {"combined",
       [](SamplingParams& p, int r, int vocab) {
         p.temperature = 0.6 + 0.1 * (r % 6);
         p.top_k = r % 3 == 0 ? -1 : 5 + r % 100;
         p.top_p = r % 4 == 0 ? 1.0 : 0.8 + 0.03 * (r % 5);
         p.min_p = r % 5 == 0 ? 0.0 : 0.02;
         p.frequency_penalty = 0.2;
         p.presence_penalty = 0.3;
         p.repetition_penalty = 1.1;
         p.logit_bias[(r * 13) % vocab] = 2.0;
         p.min_new_tokens = r % 2 ? 1000 : 0;
         p.stop_token_ids = {(r * 17) % vocab};
         p.return_logprob = r % 3 == 1;
         p.top_logprobs_num = 5;
       }},
  };
  return cases;
}

// Logits of several kinds: wide normals, rows with many exact ties, and rows with -inf, NaN or +inf.
std::vector<float> random_logits(int rows, int vocab, std::mt19937& rng) {
  std::vector<float> logits(static_cast<size_t>(rows) * vocab);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_int_distribution<int> pick(0, vocab - 1);
  for (int r = 0; r < rows; ++r) {
    float* row = logits.data() + static_cast<size_t>(r) * vocab;
    const int kind = r % 8;
    for (int j = 0; j < vocab; ++j) {
      const float x = normal(rng);
      row[j] = kind == 3 ? std::round(x) * 0.5f : x;  // kind 3: a few distinct values, many ties
    }
    if (kind == 5) {
      for (int j = 0; j < vocab; j += 3) row[j] = -std::numeric_limits<float>::infinity();
      row[pick(rng)] = std::numeric_limits<float>::quiet_NaN();
    }
    if (kind == 6 && r % 16 == 6) row[pick(rng)] = std::numeric_limits<float>::infinity();
    if (kind == 7 && r % 32 == 7) {
      for (int j = 0; j < vocab; ++j) row[j] = std::numeric_limits<float>::quiet_NaN();
    }
  }
  return logits;
}

std::vector<Row> make_rows(const ParamCase& c, int rows, int vocab, uint64_t seed_base, std::mt19937& rng) {
  std::vector<Row> out(static_cast<size_t>(rows));
  std::uniform_int_distribution<int> token(0, vocab - 1);
  for (int r = 0; r < rows; ++r) {
    c.fill(out[r].params, r, vocab);
    out[r].state.seed = seed_base * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(r);
    const int outputs = r % 13;
    for (int t = 0; t < outputs; ++t) record_output_token(out[r].state, token(rng) % std::min(vocab, 50));
  }
  return out;
}

bool ulp_distance_ok(float a, float b, int ulps) {
  return std::abs(a - b) <= ulps * std::numeric_limits<float>::epsilon() * std::max(std::abs(a), std::abs(b));
}

// Whether the CPU's own pieces reach the device's token once the draw or the thresholds move slightly.
bool near_tie(const std::vector<float>& processed, const SamplingParams& params, const SamplingState& state,
              int32_t device_token) {
  const double temperature = effective_temperature(params);
  std::vector<float> probs(processed.size());
  softmax_with_temperature(processed, temperature, probs);
  SamplerScratch scratch;
  const FilterCut cut = compute_filter_cut(probs, params.top_k, params.top_p, params.min_p, scratch);
  if (device_token >= 0 && device_token < static_cast<int32_t>(probs.size()) &&
      ulp_distance_ok(probs[static_cast<size_t>(device_token)], cut.prob, 2)) {
    return true;
  }
  const double u = uniform_for_step(state.seed, static_cast<uint64_t>(state.num_generated));
  for (double du : {-1e-6, 0.0, 1e-6}) {
    for (double dp : {-1e-6, 0.0, 1e-6}) {
      const double top_p = params.top_p < 1.0 ? std::min(1.0, params.top_p + dp) : params.top_p;
      const double min_p = params.min_p * (1.0 + dp);
      const FilterCut moved = compute_filter_cut(probs, params.top_k, top_p, min_p, scratch);
      if (sample_kept(probs, moved, std::clamp(u + du, 0.0, std::nextafter(1.0, 0.0))) == device_token) return true;
    }
  }
  return false;
}

// log_softmax(row / T)[id] in double, written here independently of the sampler.
double reference_logprob(const std::vector<float>& row, double temperature, int32_t id) {
  double max = -std::numeric_limits<double>::infinity();
  for (float x : row) {
    if (x == x) max = std::max(max, static_cast<double>(x));
  }
  double sum = 0.0;
  for (float x : row) {
    if (x == x) sum += std::exp((x - max) / temperature);
  }
  return (row[static_cast<size_t>(id)] - max) / temperature - std::log(sum);
}

Tensor device_logits(CudaBackend& backend, const std::vector<float>& values, int rows, int vocab) {
  Tensor t = backend.alloc(DType::kF32, {rows, vocab});
  // On the backend's stream and waited for: a plain cudaMemcpy from pageable memory may return before its
  // last chunk reaches the device, and the backend's stream does not wait for the legacy stream, so the
  // sampler could see (and then be overwritten by) the tail of the raw row.
  EXPECT_EQ(cudaMemcpyAsync(t.view.data, values.data(), values.size() * sizeof(float), cudaMemcpyHostToDevice,
                            static_cast<cudaStream_t>(backend.stream_handle())),
            cudaSuccess);
  backend.synchronize();
  return t;
}

struct SweepCounts {
  int sampled = 0;
  int near_ties = 0;
  int logprob_rows = 0;
};

void compare_batch(CudaBackend& backend, CudaRowSampler& device, const ParamCase& c, int rows, int vocab,
                   uint64_t seed_base, SweepCounts& counts) {
  SCOPED_TRACE(c.name + " rows " + std::to_string(rows) + " vocab " + std::to_string(vocab));
  std::mt19937 rng(static_cast<uint32_t>(seed_base * 1000003u + static_cast<uint64_t>(rows) * 31u + vocab));
  const std::vector<float> logits = random_logits(rows, vocab, rng);
  const std::vector<Row> batch = make_rows(c, rows, vocab, seed_base, rng);
  const std::vector<int32_t> eos = {vocab - 1};
  SampleRowsRequest request;
  for (const Row& row : batch) add_sample_row(request, row.params, row.state, eos, vocab);

  std::vector<float> cpu_logits = logits;
  CpuRowSampler cpu;
  const std::vector<SampledRow> want =
      cpu.sample_rows(TensorView(cpu_logits.data(), DType::kF32, Shape{rows, vocab}), request);

  Tensor on_device = device_logits(backend, logits, rows, vocab);
  const std::vector<SampledRow> got = device.sample_rows(on_device.view, request);
  std::vector<float> device_processed(logits.size());
  backend.copy_to_host(on_device.view, device_processed.data());

  ASSERT_EQ(got.size(), want.size());
  for (int r = 0; r < rows; ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    const size_t begin = static_cast<size_t>(r) * vocab;
    // Processed logits: bit for bit (NaN where the CPU has NaN).
    int differing = 0;
    std::string first_difference;
    for (int j = 0; j < vocab; ++j) {
      const float a = device_processed[begin + j], b = cpu_logits[begin + j];
      if (!(a == b || (a != a && b != b)) && differing++ == 0) {
        first_difference = "id " + std::to_string(j) + ": device " + std::to_string(a) + ", cpu " + std::to_string(b) +
                           ", raw " + std::to_string(logits[begin + j]);
      }
    }
    EXPECT_EQ(differing, 0) << "first at " << first_difference;

    const SamplingParams& params = batch[r].params;
    const std::vector<float> processed(cpu_logits.begin() + static_cast<int64_t>(begin),
                                       cpu_logits.begin() + static_cast<int64_t>(begin) + vocab);
    if (is_greedy(params)) {
      EXPECT_EQ(got[r].token_id, want[r].token_id);
    } else {
      ++counts.sampled;
      if (got[r].token_id != want[r].token_id) {
        EXPECT_TRUE(near_tie(processed, params, batch[r].state, got[r].token_id))
            << "device " << got[r].token_id << " cpu " << want[r].token_id;
        ++counts.near_ties;
      }
    }
    if (!params.return_logprob) continue;
    ++counts.logprob_rows;
    const double temperature = effective_temperature(params);
    // The CPU's logprob is of its own token; compare at the device's token when the tokens differ.
    const float cpu_logprob = got[r].token_id == want[r].token_id
                                  ? want[r].logprob
                                  : token_logprob(processed, got[r].token_id, temperature);
    EXPECT_NEAR(got[r].logprob, cpu_logprob, 1e-5);
    const double reference = reference_logprob(processed, temperature, got[r].token_id);
    if (std::isfinite(reference) && reference > -1e30) {
      EXPECT_NEAR(got[r].logprob, reference, 1e-4);
    }
    ASSERT_EQ(got[r].top_ids.size(), want[r].top_ids.size());
    for (size_t i = 0; i < want[r].top_ids.size(); ++i) {
      EXPECT_EQ(got[r].top_ids[i], want[r].top_ids[i]) << "top " << i;
      EXPECT_NEAR(got[r].top_logprobs[i], want[r].top_logprobs[i], 1e-5) << "top " << i;
    }
  }
}

TEST(CudaSampling, MatchesTheCpuSamplerOverASweep) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  CudaRowSampler device(backend);
  SweepCounts counts;
  const std::vector<std::pair<int, std::vector<int>>> shapes = {
      {128256, {1, 7, 64, 256}},
      {32000, {1, 33}},
      {1000, {1, 2, 100, 256}},
      {7, {1, 5, 64}},
      {1, {3}},
  };
  uint64_t seed_base = 1;
  for (const ParamCase& c : param_cases()) {
    for (const auto& [vocab, batches] : shapes) {
      for (int rows : batches) compare_batch(backend, device, c, rows, vocab, seed_base++, counts);
    }
  }
  std::printf("sampled rows %d, near ties %d, logprob rows %d\n", counts.sampled, counts.near_ties,
              counts.logprob_rows);
  EXPECT_GT(counts.sampled, 3000);
  EXPECT_GT(counts.logprob_rows, 500);
  EXPECT_LE(counts.near_ties, counts.sampled / 100 + 1);
}

TEST(CudaSampling, SeedsAndStepsDecideTheDraw) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  CudaRowSampler device(backend);
  constexpr int kRows = 256, kVocab = 1000;
  std::vector<float> logits(static_cast<size_t>(kRows) * kVocab, 0.0f);  // uniform rows: the draw decides
  auto draw = [&](uint64_t seed_offset, int64_t step) {
    SampleRowsRequest request;
    for (int r = 0; r < kRows; ++r) {
      SamplingParams p;
      SamplingState s;
      s.seed = 12345 + seed_offset * kRows + static_cast<uint64_t>(r);
      s.num_generated = step;
      add_sample_row(request, p, s, {}, kVocab);
    }
    Tensor t = device_logits(backend, logits, kRows, kVocab);
    std::vector<int32_t> ids;
    for (const SampledRow& row : device.sample_rows(t.view, request)) ids.push_back(row.token_id);
    return ids;
  };
  const std::vector<int32_t> a = draw(0, 4), again = draw(0, 4), other_step = draw(0, 5), other_seed = draw(1, 4);
  EXPECT_EQ(a, again);
  EXPECT_NE(a, other_step);
  EXPECT_NE(a, other_seed);
  // On a uniform row the token is floor(uniform * vocab): the Philox draw itself, checked on the host.
  for (int r = 0; r < kRows; ++r) {
    const double u = uniform_for_step(12345 + static_cast<uint64_t>(r), 4);
    const auto expected = static_cast<int32_t>(u * kVocab);
    EXPECT_NEAR(a[static_cast<size_t>(r)], expected, 1) << r;
  }
  std::vector<int32_t> distinct = a;
  std::sort(distinct.begin(), distinct.end());
  EXPECT_GT(std::unique(distinct.begin(), distinct.end()) - distinct.begin(), 150);
}

TEST(CudaSampling, EmptyBatchAndBadLogitsAreRefused) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  CudaRowSampler device(backend);
  Tensor t = backend.alloc(DType::kF32, {2, 10});
  EXPECT_TRUE(device.sample_rows(t.view, SampleRowsRequest{}).empty());
  SampleRowsRequest three;
  for (int r = 0; r < 3; ++r) add_sample_row(three, SamplingParams{}, SamplingState{}, {}, 10);
  EXPECT_DEATH(device.sample_rows(t.view, three), "logits rows");
  Tensor bf16 = backend.alloc(DType::kBF16, {3, 10});
  EXPECT_DEATH(device.sample_rows(bf16.view, three), "f32");
}

// The model runner's device path: run_sampled (graph replay for decode, eager for the prefill) against the
// same step's logits from run() sampled by the CPU, on a real model (qwen3 fixture, bf16 logits with ties).
TEST(CudaSamplingRunner, RunSampledMatchesHostSamplingOfTheSameStep) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  const std::filesystem::path dir = cuda_test::fixtures_dir() / "models" / "qwen3";
  auto config = load_model_config(dir);
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto weights = open_checkpoint(dir);
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  auto model = load_model(*config, **weights, backend);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  ModelRunner runner(**model, backend, 64, 16);
  const int64_t vocab = (*model)->config().vocab_size;

  std::vector<SamplingParams> params(4);
  params[0].temperature = 0.0;
  params[0].return_logprob = true;
  params[0].top_logprobs_num = 5;
  params[1].temperature = 0.8;
  params[1].top_p = 0.9;
  params[2].top_k = 20;
  params[2].repetition_penalty = 1.2;
  params[2].logit_bias[5] = 4.0;
  params[2].return_logprob = true;
  params[2].top_logprobs_num = 3;
  params[3].temperature = 1.3;
  params[3].min_p = 0.05;
  params[3].frequency_penalty = 0.5;
  params[3].min_new_tokens = 4;
  params[3].stop_token_ids = {7};
  std::vector<SamplingState> states(params.size());
  for (size_t s = 0; s < states.size(); ++s) states[s].seed = 77 + s;

  std::mt19937 rng(11);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));
  BatchPlan plan;
  const std::vector<int32_t> lengths{5, 20, 33, 9};
  for (size_t s = 0; s < lengths.size(); ++s) {
    PlannedSequence seq;
    seq.request_id = s + 1;
    for (int32_t i = 0; i < lengths[s]; ++i) seq.tokens.push_back(token(rng));
    for (int32_t p = 0; p < 4; ++p) seq.pages.push_back(static_cast<int32_t>(s * 4 + p));
    seq.samples = true;
    seq.is_prefill = true;
    plan.seqs.push_back(seq);
  }
  const std::vector<int32_t> eos = {0};
  CpuRowSampler cpu;
  int compared = 0, near_ties = 0;
  for (int step = 0; step < 8; ++step) {
    SampleRowsRequest request;
    for (size_t s = 0; s < params.size(); ++s) add_sample_row(request, params[s], states[s], eos, vocab);
    StepLogits logits = runner.run(plan);  // the same step twice: same K/V writes, same logits
    const std::vector<SampledRow> got = runner.run_sampled(plan, request);
    const std::vector<SampledRow> want =
        cpu.sample_rows(TensorView(logits.values.data(), DType::kF32, Shape{static_cast<int64_t>(params.size()), vocab}),
                        request);
    for (size_t s = 0; s < params.size(); ++s) {
      SCOPED_TRACE("step " + std::to_string(step) + " seq " + std::to_string(s));
      ++compared;
      if (got[s].token_id != want[s].token_id) {
        ASSERT_FALSE(is_greedy(params[s]));
        const std::vector<float> processed(logits.row(static_cast<int64_t>(s)), logits.row(static_cast<int64_t>(s)) + vocab);
        EXPECT_TRUE(near_tie(processed, params[s], states[s], got[s].token_id));
        ++near_ties;
      }
      if (params[s].return_logprob) {
        EXPECT_NEAR(got[s].logprob, want[s].logprob, 1e-5);
        EXPECT_EQ(got[s].top_ids, want[s].top_ids);
      }
      record_output_token(states[s], got[s].token_id);
      plan.seqs[s].start += static_cast<int64_t>(plan.seqs[s].tokens.size());
      plan.seqs[s].tokens = {got[s].token_id};
      plan.seqs[s].is_prefill = false;
    }
  }
  EXPECT_LE(near_ties, 1);
  EXPECT_EQ(compared, 32);
  EXPECT_GE(runner.graph_replays(), 14);  // 7 decode steps, run and run_sampled each
}

}  // namespace
}  // namespace radixlm
