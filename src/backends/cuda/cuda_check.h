#pragma once
// Every CUDA runtime and cuBLASLt call goes through these: a failure inside a step is a broken device or a
// bug, so it aborts with the call, the error's name and where it happened (no silent corruption).

#include <cstdio>
#include <cstdlib>

#include <cublasLt.h>
#include <cuda_runtime.h>

#define RADIXLM_CUDA_CHECK(call)                                                                          \
  do {                                                                                                     \
    const cudaError_t radixlm_cuda_error = (call);                                                         \
    if (radixlm_cuda_error != cudaSuccess) {                                                               \
      std::fprintf(stderr, "radixlm: CUDA error at %s:%d: %s: %s\n", __FILE__, __LINE__, #call,           \
                   cudaGetErrorString(radixlm_cuda_error));                                                \
      std::abort();                                                                                        \
    }                                                                                                      \
  } while (0)

#define RADIXLM_CUBLAS_CHECK(call)                                                                        \
  do {                                                                                                     \
    const cublasStatus_t radixlm_cublas_status = (call);                                                   \
    if (radixlm_cublas_status != CUBLAS_STATUS_SUCCESS) {                                                  \
      std::fprintf(stderr, "radixlm: cuBLASLt error at %s:%d: %s: status %d\n", __FILE__, __LINE__, #call, \
                   static_cast<int>(radixlm_cublas_status));                                               \
      std::abort();                                                                                        \
    }                                                                                                      \
  } while (0)
