#pragma once
// out [T, N] = x [T, K] @ w [N, K]^T (+ bias [N]) through cuBLASLt: bf16 inputs, f32 accumulation, bf16 or
// f32 output, the bias fused as an epilogue when the output is bf16. The algorithm is chosen once per shape
// and cached; the workspace is allocated once. Decode shapes (few, fixed by the CUDA graph buckets, and run
// every step) are tuned: the heuristic's top candidates and split-K versions of its first few are timed (in
// rounds) on the first call and the fastest kept, since at small M its first pick often leaves SMs idle (no
// split-K) and streams the weights well below the bandwidth roofline. Other shapes take the heuristic's first
// pick (timing them too measured no gain on the 4096-token prefill's GEMMs).

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include <cublasLt.h>
#include <cuda_runtime.h>

namespace radixlm::cuda {

class CublasLtGemm {
 public:
  explicit CublasLtGemm(size_t workspace_bytes = size_t{32} << 20);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // Returns false (doing nothing) when cuBLASLt has no algorithm for the shape; bias may be null. With
  // accumulate, out += the product (beta = 1, out read in the epilogue). With tune, a shape met for the first
  // time outside stream capture has its candidates timed on these operands, writing a scratch output.
  bool run(const uint16_t* x, const uint16_t* w, const uint16_t* bias, void* out, bool out_f32, bool accumulate,
           int64_t tokens, int64_t n, int64_t k, bool tune, cudaStream_t stream);

  // partials [splits][tokens][n] (f32) = x[:, slice s] @ w[:, slice s]^T over `splits` equal slices of K: one
  // strided-batched matmul whose sum is left to the caller (who can fuse it with what comes next). The count
  // (a power of two up to max_splits, each slice a multiple of 8 columns) is chosen on the shape's first call
  // outside stream capture, by timing each count's tuned matmul plus the partials' reading against the
  // plain bf16 matmul (run(), its split-K sum included; unless !against_plain), and returned. 0, running
  // nothing: the plain matmul was faster, or the shape was first met inside a capture. partials must hold
  // max_splits * tokens * n floats.
  int run_split_partials(const uint16_t* x, const uint16_t* w, float* partials, int64_t tokens, int64_t n, int64_t k,
                         int max_splits, bool against_plain, cudaStream_t stream);

  // RADIXLM_CUBLASLT_TUNE=0 turns tuning off (for comparison).
  static bool tuning_enabled();
  // Rounds of timing per tuned shape (RADIXLM_CUBLASLT_TUNE_ROUNDS=1..8, default 3).
  static int tuning_rounds();

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool ok = false;
    bool tuned = false;
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, int>;  // tokens, n, k, out_f32, bias, K slices
  Plan& plan_for(const Key& key);
  cublasStatus_t launch(const Plan& plan, const cublasLtMatmulAlgo_t& algo, const uint16_t* x, const uint16_t* w,
                        void* out, float beta, cudaStream_t stream);
  // Milliseconds per launch (kTimingReps after a warm-up), or a negative value when the algorithm will not run.
  float time_launch(const Plan& plan, const cublasLtMatmulAlgo_t& algo, const uint16_t* x, const uint16_t* w,
                    void* out, cudaStream_t stream);
  int choose_splits(const uint16_t* x, const uint16_t* w, float* partials, int64_t tokens, int64_t n, int64_t k,
                    int max_splits, bool against_plain, cudaStream_t stream);
  void tune(Plan& plan, const uint16_t* x, const uint16_t* w, size_t out_bytes, cudaStream_t stream);
  // tune() where tuning is on and the plan is not tuned yet (callers are outside stream capture).
  void tune_once(Plan& plan, const uint16_t* x, const uint16_t* w, size_t out_bytes, cudaStream_t stream);
  std::vector<cublasLtMatmulAlgo_t> split_k_versions(const Plan& plan, const cublasLtMatmulAlgo_t& algo);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_;
  std::map<Key, Plan> plans_;
  // run_split_partials' choice per (tokens, n, k, max_splits, against_plain)
  std::map<std::tuple<int64_t, int64_t, int64_t, int, bool>, int> split_counts_;
};

}  // namespace radixlm::cuda
