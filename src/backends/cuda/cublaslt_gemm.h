#pragma once
// out [T, N] = x [T, K] @ w [N, K]^T (+ bias [N]) through cuBLASLt: bf16 inputs, f32 accumulation, bf16 or
// f32 output, the bias fused as an epilogue when the output is bf16. The heuristic's algorithm is looked up
// once per shape and cached; the workspace is allocated once.

#include <cstdint>
#include <map>
#include <tuple>

#include <cublasLt.h>
#include <cuda_runtime.h>

namespace radixlm::cuda {

class CublasLtGemm {
 public:
  explicit CublasLtGemm(size_t workspace_bytes = size_t{32} << 20);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // Returns false (doing nothing) when cuBLASLt has no algorithm for the shape; bias may be null.
  bool run(const uint16_t* x, const uint16_t* w, const uint16_t* bias, void* out, bool out_f32, int64_t tokens,
           int64_t n, int64_t k, cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool ok = false;
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool>;  // tokens, n, k, out_f32, bias
  Plan& plan_for(const Key& key);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_;
  std::map<Key, Plan> plans_;
};

}  // namespace radixlm::cuda
