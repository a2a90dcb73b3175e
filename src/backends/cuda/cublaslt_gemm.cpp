#include "backends/cuda/cublaslt_gemm.h"

#include <algorithm>
#include <vector>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/env_switch.h"
#include "backends/cuda/tuning_rounds.h"

namespace radixlm::cuda {

CublasLtGemm::CublasLtGemm(size_t workspace_bytes) : workspace_bytes_(workspace_bytes) {
  RADIXLM_CUBLAS_CHECK(cublasLtCreate(&handle_));
  RADIXLM_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

CublasLtGemm::~CublasLtGemm() {
  for (auto& [key, plan] : plans_) {
    if (plan.d) cublasLtMatrixLayoutDestroy(plan.d);
    if (plan.b) cublasLtMatrixLayoutDestroy(plan.b);
    if (plan.a) cublasLtMatrixLayoutDestroy(plan.a);
    if (plan.desc) cublasLtMatmulDescDestroy(plan.desc);
  }
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

// Row-major out[T, N] = x[T, K] w[N, K]^T is, read column-major, out^T[N, T] = w^T... i.e. D (N x T) =
// op(A) B with A = w stored as a column-major K x N matrix (transposed) and B = x as column-major K x T.
CublasLtGemm::Plan& CublasLtGemm::plan_for(const Key& key) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  const auto [tokens, n, k, out_f32, bias, slices] = key;
  Plan plan;
  RADIXLM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  RADIXLM_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)));
  RADIXLM_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b)));
  if (bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    RADIXLM_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    const cudaDataType_t bias_type = CUDA_R_16BF;
    RADIXLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                        &bias_type, sizeof(bias_type)));
  }
  // With K in slices, batch s reads columns [s * K / slices, (s + 1) * K / slices) of w and x (same leading
  // dimension K, offset by the slice) and writes its own [T, N] block of the output.
  const int64_t slice = k / slices;
  RADIXLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_16BF, static_cast<uint64_t>(slice),
                                                  static_cast<uint64_t>(n), k));
  RADIXLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_16BF, static_cast<uint64_t>(slice),
                                                  static_cast<uint64_t>(tokens), k));
  RADIXLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.d, out_f32 ? CUDA_R_32F : CUDA_R_16BF,
                                                  static_cast<uint64_t>(n), static_cast<uint64_t>(tokens), n));
  if (slices > 1) {
    const int32_t count = slices;
    const int64_t d_offset = n * tokens;
    for (auto [layout, offset] : {std::pair{plan.a, &slice}, std::pair{plan.b, &slice}, std::pair{plan.d, &d_offset}}) {
      RADIXLM_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                            sizeof(count)));
      RADIXLM_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                            offset, sizeof(*offset)));
    }
  }
  cublasLtMatmulPreference_t preference = nullptr;
  RADIXLM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  RADIXLM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                            &workspace_bytes_, sizeof(workspace_bytes_)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle_, plan.desc, plan.a, plan.b, plan.d, plan.d,
                                                               preference, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  if (status == CUBLAS_STATUS_SUCCESS && found > 0) {
    plan.algo = result.algo;
    plan.ok = true;
  }
  return plans_.emplace(key, plan).first->second;
}

bool CublasLtGemm::tuning_enabled() {
  static const bool enabled = env_switch_on("RADIXLM_CUBLASLT_TUNE");
  return enabled;
}

int CublasLtGemm::tuning_rounds() {
  static const int rounds = env_int("RADIXLM_CUBLASLT_TUNE_ROUNDS", 1, 8, 3);
  return rounds;
}

cublasStatus_t CublasLtGemm::launch(const Plan& plan, const cublasLtMatmulAlgo_t& algo, const uint16_t* x,
                                    const uint16_t* w, void* out, float beta, cudaStream_t stream) {
  const float alpha = 1.0f;
  return cublasLtMatmul(handle_, plan.desc, &alpha, w, plan.a, x, plan.b, &beta, out, plan.d, out, plan.d, &algo,
                        workspace_, workspace_bytes_, stream);
}

// Split-K versions of a candidate (2, 4 and 8 splits, reduced in f32 by a separate pass, so deterministic):
// at decode shapes M is small, and a 4096-wide matrix makes only 32-64 output tiles for 132 SMs, so the
// heuristic's unsplit picks leave most of the GPU idle. Only versions cuBLASLt accepts for this shape and
// workspace are returned.
std::vector<cublasLtMatmulAlgo_t> CublasLtGemm::split_k_versions(const Plan& plan, const cublasLtMatmulAlgo_t& algo) {
  std::vector<cublasLtMatmulAlgo_t> versions;
  int32_t split_support = 0, splits_now = 1;
  uint32_t schemes = 0;
  size_t written = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &split_support,
                                        sizeof(split_support), &written) != CUBLAS_STATUS_SUCCESS ||
      split_support == 0 ||
      cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &schemes, sizeof(schemes),
                                        &written) != CUBLAS_STATUS_SUCCESS ||
      cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits_now, sizeof(splits_now),
                                           &written) != CUBLAS_STATUS_SUCCESS ||
      splits_now > 1) {
    return versions;
  }
  uint32_t scheme = 0;
  if ((schemes & CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE) != 0) {
    scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
  } else if ((schemes & CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE) != 0) {
    scheme = CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
  } else {
    return versions;
  }
  for (int32_t splits : {2, 4, 8}) {
    cublasLtMatmulAlgo_t version = algo;
    cublasLtMatmulHeuristicResult_t check{};
    if (cublasLtMatmulAlgoConfigSetAttribute(&version, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits, sizeof(splits)) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulAlgoConfigSetAttribute(&version, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme,
                                             sizeof(scheme)) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulAlgoCheck(handle_, plan.desc, plan.a, plan.b, plan.d, plan.d, &version, &check) ==
            CUBLAS_STATUS_SUCCESS &&
        check.workspaceSize <= workspace_bytes_) {
      versions.push_back(version);
    }
  }
  return versions;
}

float CublasLtGemm::time_launch(const Plan& plan, const cublasLtMatmulAlgo_t& algo, const uint16_t* x,
                                const uint16_t* w, void* out, cudaStream_t stream) {
  constexpr int kTimingReps = 5;
  // An algorithm that will not launch on these operands is skipped, not fatal.
  if (launch(plan, algo, x, w, out, 0.0f, stream) != CUBLAS_STATUS_SUCCESS) return -1.0f;
  cudaEvent_t start = nullptr, stop = nullptr;
  RADIXLM_CUDA_CHECK(cudaEventCreate(&start));
  RADIXLM_CUDA_CHECK(cudaEventCreate(&stop));
  RADIXLM_CUDA_CHECK(cudaEventRecord(start, stream));
  for (int r = 0; r < kTimingReps; ++r) RADIXLM_CUBLAS_CHECK(launch(plan, algo, x, w, out, 0.0f, stream));
  RADIXLM_CUDA_CHECK(cudaEventRecord(stop, stream));
  RADIXLM_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  RADIXLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / kTimingReps;
}

void CublasLtGemm::tune_once(Plan& plan, const uint16_t* x, const uint16_t* w, size_t out_bytes,
                             cudaStream_t stream) {
  if (tuning_enabled() && !plan.tuned) tune(plan, x, w, out_bytes, stream);
}

// Times (time_launch, over fastest_over_rounds' rounds) the heuristic's first kCandidates picks and split-K
// versions of its first kSplitBases and keeps the fastest. Only deterministic reductions are considered (no
// in-place split-K accumulation into the output), so a tuned shape gives the same bits on every call, graphs
// or eager. The candidates write a scratch output (beta 0; the epilogue's read of out under accumulate is the
// same for every candidate), so out, which may be a residual added into, is untouched.
void CublasLtGemm::tune(Plan& plan, const uint16_t* x, const uint16_t* w, size_t out_bytes, cudaStream_t stream) {
  constexpr int kCandidates = 16;  // 48 were no better (2026-11-25 18:53 call, docs/performance.md)
  constexpr int kSplitBases = 4;
  plan.tuned = true;
  cublasLtMatmulPreference_t preference = nullptr;
  RADIXLM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  RADIXLM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                            &workspace_bytes_, sizeof(workspace_bytes_)));
  const uint32_t reductions = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE |
                              CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
  RADIXLM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                            &reductions, sizeof(reductions)));
  std::vector<cublasLtMatmulHeuristicResult_t> results(kCandidates);
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle_, plan.desc, plan.a, plan.b, plan.d, plan.d,
                                                               preference, kCandidates, results.data(), &found);
  cublasLtMatmulPreferenceDestroy(preference);
  if (status != CUBLAS_STATUS_SUCCESS) return;  // keep the first pick
  std::vector<cublasLtMatmulAlgo_t> candidates;
  for (int i = 0; i < found; ++i) {
    if (results[i].state == CUBLAS_STATUS_SUCCESS) candidates.push_back(results[i].algo);
  }
  const size_t bases = std::min<size_t>(candidates.size(), kSplitBases);
  for (size_t i = 0; i < bases; ++i) {
    for (const cublasLtMatmulAlgo_t& version : split_k_versions(plan, candidates[i])) candidates.push_back(version);
  }
  if (candidates.size() <= 1) return;  // nothing to choose between

  void* out = nullptr;  // once per decode shape, outside any graph: not on the per-step path
  RADIXLM_CUDA_CHECK(cudaMallocAsync(&out, out_bytes, stream));
  const std::vector<double> fastest = fastest_over_rounds(candidates.size(), tuning_rounds(), [&](size_t i) {
    return static_cast<double>(time_launch(plan, candidates[i], x, w, out, stream));
  });
  RADIXLM_CUDA_CHECK(cudaFreeAsync(out, stream));
  const int best = index_of_fastest(fastest);
  if (best >= 0) {
    plan.algo = candidates[static_cast<size_t>(best)];
    plan.ok = true;
  }
}

// Each count's plan is tuned, then timed on the caller's workspace; a count's cost adds the time to read its
// partials back (kPartialReadBytesPerMs, about what the summing kernel sustains from L2), since more slices
// mean more blocks for the matmul but more f32 to sum. The plain matmul (tuned as run() tunes it) is the
// count 0 to beat; it pays no reading, as the norm the caller would run after it reads as much as the
// summing kernel does besides the partials. Both are timed without a bias: of the supported checkpoints only
// Llama's attention_bias / mlp_bias put one on o_proj / down_proj, where it adds one vector per row.
int CublasLtGemm::choose_splits(const uint16_t* x, const uint16_t* w, float* partials, int64_t tokens, int64_t n,
                                int64_t k, int max_splits, bool against_plain, cudaStream_t stream) {
  constexpr double kPartialReadBytesPerMs = 3e9;
  struct Choice {
    int splits;  // 0: the plain matmul
    const Plan* plan;
    double read_ms;  // reading the partials back
  };
  std::vector<Choice> choices;
  if (against_plain) {
    Plan& plain = plan_for({tokens, n, k, false, false, 1});
    tune_once(plain, x, w, static_cast<size_t>(tokens * n) * 2, stream);
    if (plain.ok) choices.push_back({0, &plain, 0.0});
  }
  for (int splits = 1; splits <= max_splits; splits *= 2) {
    if (k % (8 * splits) != 0) continue;
    Plan& plan = plan_for({tokens, n, k, true, false, splits});
    const size_t out_bytes = static_cast<size_t>(splits * tokens * n) * 4;
    tune_once(plan, x, w, out_bytes, stream);
    if (plan.ok) choices.push_back({splits, &plan, static_cast<double>(out_bytes) / kPartialReadBytesPerMs});
  }
  const std::vector<double> cost = fastest_over_rounds(choices.size(), tuning_rounds(), [&](size_t i) {
    const float ms = time_launch(*choices[i].plan, choices[i].plan->algo, x, w, partials, stream);
    return ms >= 0.0f ? ms + choices[i].read_ms : -1.0;
  });
  const int best = index_of_fastest(cost);
  return best >= 0 ? choices[static_cast<size_t>(best)].splits : 0;
}

int CublasLtGemm::run_split_partials(const uint16_t* x, const uint16_t* w, float* partials, int64_t tokens, int64_t n,
                                     int64_t k, int max_splits, bool against_plain, cudaStream_t stream) {
  const std::tuple shape{tokens, n, k, max_splits, against_plain};
  auto it = split_counts_.find(shape);
  if (it == split_counts_.end()) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    RADIXLM_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
    if (capture != cudaStreamCaptureStatusNone) return 0;  // no timing inside a capture: the plain matmul
    const int chosen = choose_splits(x, w, partials, tokens, n, k, max_splits, against_plain, stream);
    it = split_counts_.emplace(shape, chosen).first;
  }
  const int splits = it->second;
  if (splits == 0) return 0;
  const Plan& plan = plan_for({tokens, n, k, true, false, splits});
  RADIXLM_CUBLAS_CHECK(launch(plan, plan.algo, x, w, partials, 0.0f, stream));
  return splits;
}

bool CublasLtGemm::run(const uint16_t* x, const uint16_t* w, const uint16_t* bias, void* out, bool out_f32,
                       bool accumulate, int64_t tokens, int64_t n, int64_t k, bool tune_shape, cudaStream_t stream) {
  Plan& plan = plan_for({tokens, n, k, out_f32, bias != nullptr, 1});
  if (bias) {
    RADIXLM_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
  if (tune_shape && !plan.tuned && tuning_enabled()) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    RADIXLM_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
    if (capture == cudaStreamCaptureStatusNone) {
      tune(plan, x, w, static_cast<size_t>(tokens * n) * (out_f32 ? 4 : 2), stream);
    }
  }
  if (!plan.ok) return false;
  RADIXLM_CUBLAS_CHECK(launch(plan, plan.algo, x, w, out, accumulate ? 1.0f : 0.0f, stream));
  return true;
}

}  // namespace radixlm::cuda
