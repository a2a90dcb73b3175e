// How fast can a decode matmul's weights stream in? A probe for issue 6's batch-64 gap. This kernel makes
// the decode GEMM's copies (TMA boxes of weight rows x 64 columns, 128-byte swizzled, into a ring of stages
// fed by one producer lane) over the Llama-3.1-8B decode shapes, with or without its math, varying one
// thing at a time:
//  - ldg:  every thread loads 16-byte words in address order (plain streaming, for comparison);
//  - rows: weight rows per box and blocks per SM (128 x 2 or 256 x 1: the same bytes per SM);
//  - x:    token rows copied beside each weight box (8 or 64: the activation tile every block re-reads);
//  - math: 0 none; 1 the 128 x 64 x 64 wgmma products of each stage, waited for before the stage goes
//          back to the producer (the decode GEMM's order); 2 a stage released once the next one's
//          products are issued;
//  - wg:   consumer warpgroups sharing a block's m64 tiles; box: 64-column steps per stage;
//  - swap: 64 tokens as wgmma's M and 32 weight rows per block as its N (no K split for narrow matrices,
//          x read twice per weight byte);
//  - part: each block writes an f32 tile of its rows x 64 tokens at its end (a K split's partial);
//  - pdl:  launched as a programmatic dependent: the first stages' weights are requested before the wait
//          for the launch ahead, so one launch's start overlaps the previous one's tail.
// Blocks own a row tile and walk its K range in order, split along K to fill the SMs as the decode GEMM
// splits narrow matrices. Prints one line per configuration: the weight bytes over the mean time of 20
// back-to-back launches that rotate over enough copies of the matrix to miss the 50 MB L2. What it found
// on an H200 (2026-11-25) is in docs/performance.md.
//
// Build and run (tests/gpu/run.sh, part "probe"):
//   nvcc -O3 -std=c++20 -I src -gencode=arch=compute_90a,code=sm_90a tests/gpu/stream_probe.cu -o probe

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "backends/cuda/cuda_hopper.cuh"

using namespace radixlm::cuda;

#define CHECK(call)                                                                             \
  do {                                                                                          \
    cudaError_t e = (call);                                                                     \
    if (e != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e)); \
      std::exit(1);                                                                             \
    }                                                                                           \
  } while (0)

namespace {

constexpr int kMaxStages = 32;
constexpr int kMaxThreads = 288;  // one or two consumer warpgroups, then the producer warp

struct Probe {
  int tiles, splits, k_steps, box_rows, x_rows, stages, math;
  int consumers;    // warpgroups sharing the block's m64 tiles
  int boxes;        // 64-column steps per stage
  float* partials;  // null: none written
};

#if RADIXLM_WGMMA
// d += A B, m64 n64 k16, both operands K-major from 128-byte swizzled shared memory.
__device__ __forceinline__ void wgmma_m64n64(float (&d)[32], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, "
      "%13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, 1, 1, "
      "1, 0, 0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(desc_a), "l"(desc_b));
}
// The same with N = 32: the swapped form, 64 tokens as A and 32 weight rows as B.
__device__ __forceinline__ void wgmma_m64n32(float (&d)[16], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, "
      "%13, %14, %15}, %16, %17, 1, 1, 1, 0, 0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(desc_a), "l"(desc_b));
}
#endif

// kTiles: m64 tiles per consumer warpgroup (1 or 2), or 0 for the swapped form (the 64 tokens as wgmma's M,
// 32 weight rows per block as its N: no K split needed for narrow matrices, x re-read per 32 rows); kBoxes: 64-column
// steps per stage (compile-time, so that the wgmma chain has no branch for the compiler to fence around).
template <int kTiles, int kBoxes>
__global__ void __launch_bounds__(kMaxThreads)
    tma_stream(Probe p, const __grid_constant__ CUtensorMap w_map, const __grid_constant__ CUtensorMap x_map) {
#if RADIXLM_WGMMA
  extern __shared__ uint8_t smem_raw[];
  __shared__ uint64_t full[kMaxStages], empty[kMaxStages];
  uint8_t* base = smem_raw + ((1024 - smem_address(smem_raw) % 1024) % 1024);
  const uint32_t w_box = p.box_rows * 128, x_box = p.x_rows * 128;
  const uint32_t w_bytes = kBoxes * w_box, x_bytes = kBoxes * x_box;
  const uint32_t stage_bytes = (w_bytes + x_bytes + 1023) / 1024 * 1024;
  const int tile = blockIdx.x % p.tiles, split = blockIdx.x / p.tiles;
  const int stage_steps = p.k_steps / kBoxes;  // a stage holds `boxes` 64-column steps
  const int begin = split * stage_steps / p.splits, steps = (split + 1) * stage_steps / p.splits - begin;
  if (threadIdx.x == 0) {
    for (int i = 0; i < p.stages; ++i) {
      mbarrier_init(&full[i], 1);
      mbarrier_init(&empty[i], 4 * p.consumers);
    }
    fence_async_shared();
  }
  __syncthreads();
  if (threadIdx.x >= 128 * p.consumers) {
    if (threadIdx.x != 128 * p.consumers) return;
    const auto load_w = [&](int g, int stage) {
      for (int b = 0; b < kBoxes; ++b) {
        tma_load_2d(base + stage * stage_bytes + b * w_box, &w_map, ((begin + g) * kBoxes + b) * 64, tile * p.box_rows,
                    &full[stage]);
      }
    };
    const auto load_x = [&](int g, int stage) {
      for (int b = 0; b < kBoxes; ++b) {
        tma_load_2d(base + stage * stage_bytes + w_bytes + b * x_box, &x_map, ((begin + g) * kBoxes + b) * 64, 0,
                    &full[stage]);
      }
    };
    // As the decode GEMM: the first stages' weights go out before the wait for the kernel ahead, x after.
    const int first = min(steps, p.stages);
    for (int g = 0; g < first; ++g) {
      mbarrier_arrive_expect_tx(&full[g], w_bytes + x_bytes);
      load_w(g, g);
    }
    pdl_wait();
    for (int g = 0; g < first; ++g) load_x(g, g);
    for (int g = first; g < steps; ++g) {
      const int stage = g % p.stages;
      mbarrier_wait(&empty[stage], (g / p.stages - 1) & 1);
      mbarrier_arrive_expect_tx(&full[stage], w_bytes + x_bytes);
      load_w(g, stage);
      load_x(g, stage);
    }
    return;
  }
  pdl_wait();
  pdl_launch_dependents();
  const int lane = threadIdx.x % 32, group = threadIdx.x / 128;
  const auto release = [&](int stage) {
    __syncwarp();
    if (lane == 0) mbarrier_arrive(&empty[stage]);
  };
  // Warpgroup `group` owns the block's m64 tiles group and group + consumers.
  float acc[2][32] = {};
  float swapped[16] = {};
  for (int g = 0; g < steps; ++g) {
    const int stage = g % p.stages;
    mbarrier_wait(&full[stage], (g / p.stages) & 1);
    if (p.math == 0) {
      release(stage);
      continue;
    }
    const uint32_t w_rows = smem_address(base + stage * stage_bytes), x_rows = w_rows + w_bytes;
    wgmma_fence();
    if constexpr (kTiles == 0) {
#pragma unroll
      for (int kk = 0; kk < 4; ++kk)
        wgmma_m64n32(swapped, k_step_descriptor(x_rows, kk), k_step_descriptor(w_rows, kk));
    } else {
#pragma unroll
      for (int b = 0; b < kBoxes; ++b) {
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
          const uint64_t x_desc = k_step_descriptor(x_rows + b * x_box, kk);
          wgmma_m64n64(acc[0], k_step_descriptor(w_rows + b * w_box + group * 64 * 128, kk), x_desc);
          if (kTiles > 1) {
            wgmma_m64n64(acc[1], k_step_descriptor(w_rows + b * w_box + (group + p.consumers) * 64 * 128, kk), x_desc);
          }
        }
      }
    }
    wgmma_commit();
    if (p.math == 1) {
      wgmma_wait<0>();
      release(stage);
    } else {
      wgmma_wait<1>();
      if (g > 0) release((g - 1) % p.stages);
    }
  }
  wgmma_wait<0>();
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < 32; ++i) sum += acc[0][i] + acc[1][i];
#pragma unroll
  for (int i = 0; i < 16; ++i) sum += swapped[i];
  if (p.partials != nullptr) {
    float4* tile_out = reinterpret_cast<float4*>(p.partials) + static_cast<int64_t>(blockIdx.x) * p.box_rows * 16;
    for (int i = threadIdx.x; i < p.box_rows * 16; i += 128 * p.consumers) {
      tile_out[i] = make_float4(sum, 2.0f, 3.0f, 4.0f);
    }
  } else if (sum == 1234.5f) {
    *reinterpret_cast<float*>(smem_raw) = sum;  // keeps the math
  }
#endif
}

__global__ void ldg_stream(const uint4* data, size_t words, int* sink) {
  const size_t stride = size_t{gridDim.x} * blockDim.x;
  uint32_t acc = 0;
  for (size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < words; i += 4 * stride) {
    uint4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) v[u] = i + u * stride < words ? __ldg(data + i + u * stride) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < 4; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x12345678u) *sink = 1;  // keeps the loads
}

bool encode(CUtensorMap& map, const void* data, uint64_t rows, uint64_t cols, uint32_t box_rows) {
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {cols * 2};
  const cuuint32_t box[2] = {64, box_rows};
  const cuuint32_t element_strides[2] = {1, 1};
  return tensor_map_encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(data), dims, strides, box,
                              element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                              CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

struct Shape {
  const char* name;
  int64_t n, k;
};

struct Config {
  int box_rows, x_rows, blocks_per_sm;
  int math = 0;
  bool partials = false, pdl = false;
  int consumers = 1, boxes = 1;
  bool swapped = false;  // the m64n32 form with x as A (box_rows 32)
  int max_splits = 16;
};

}  // namespace

int main() {
  int sms = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  using Kernel = void (*)(Probe, CUtensorMap, CUtensorMap);
  const Kernel kernels[2][2] = {{tma_stream<1, 1>, tma_stream<1, 2>}, {tma_stream<2, 1>, tma_stream<2, 2>}};
  for (const auto& row : kernels) {
    for (Kernel kernel : row) {
      CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 226 * 1024));
    }
  }
  const Kernel swapped_kernel = tma_stream<0, 1>;
  CHECK(cudaFuncSetAttribute(swapped_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 226 * 1024));
  constexpr size_t kPool = size_t{640} << 20;  // bytes: rotating copies of each matrix
  uint8_t* pool = nullptr;
  CHECK(cudaMalloc(&pool, kPool));
  CHECK(cudaMemset(pool, 0x3c, kPool));
  uint16_t* x = nullptr;
  CHECK(cudaMalloc(&x, 64 * 14336 * 2));
  CHECK(cudaMemset(x, 0x3c, 64 * 14336 * 2));
  constexpr size_t kPartialsBytes = size_t{64} << 20;
  float* partials = nullptr;
  CHECK(cudaMalloc(&partials, kPartialsBytes));
  int* sink = nullptr;
  CHECK(cudaMalloc(&sink, 4));
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));

  const Shape shapes[] = {{"gate_up", 28672, 4096}, {"down", 4096, 14336}, {"qkv", 6144, 4096}, {"o_proj", 4096, 4096}};
  const Config configs[] = {
      {.box_rows = 128, .x_rows = 8, .blocks_per_sm = 2},
      {.box_rows = 128, .x_rows = 64, .blocks_per_sm = 2},
      {.box_rows = 256, .x_rows = 64, .blocks_per_sm = 1},
      {.box_rows = 128, .x_rows = 64, .blocks_per_sm = 2, .math = 1},
      {.box_rows = 128, .x_rows = 64, .blocks_per_sm = 2, .math = 1, .pdl = true},
      {.box_rows = 128, .x_rows = 64, .blocks_per_sm = 2, .math = 1, .partials = true, .pdl = true},
      {.box_rows = 128, .x_rows = 64, .blocks_per_sm = 2, .math = 1, .pdl = true, .consumers = 2},
      {.box_rows = 32, .x_rows = 64, .blocks_per_sm = 2, .pdl = true, .swapped = true, .max_splits = 1},
      {.box_rows = 32, .x_rows = 64, .blocks_per_sm = 2, .math = 1, .pdl = true, .swapped = true, .max_splits = 1},
  };
  for (const Shape& s : shapes) {
    const size_t bytes = static_cast<size_t>(s.n * s.k * 2);
    const int copies = static_cast<int>(std::min<size_t>(kPool / bytes, std::max<size_t>(2, 400e6 / bytes)));
    const auto timed = [&](auto launch) {  // mean microseconds per launch
      for (int i = 0; i < 3; ++i) launch(i % copies);
      CHECK(cudaEventRecord(start));
      constexpr int kIters = 20;
      for (int i = 0; i < kIters; ++i) launch(i % copies);
      CHECK(cudaEventRecord(stop));
      CHECK(cudaEventSynchronize(stop));
      CHECK(cudaGetLastError());
      float ms = 0;
      CHECK(cudaEventElapsedTime(&ms, start, stop));
      return 1000.0 * ms / kIters;
    };
    const double ldg_us = timed([&](int c) {
      ldg_stream<<<sms * 4, 512>>>(reinterpret_cast<const uint4*>(pool + c * bytes), bytes / 16, sink);
    });
    std::printf("probe %-7s ldg %66s: %7.1f us %5.2f TB/s\n", s.name, "", ldg_us, bytes / ldg_us / 1e6);
    for (const Config& c : configs) {
      Probe p{};
      p.box_rows = c.box_rows;
      p.x_rows = c.x_rows;
      p.consumers = c.consumers;
      p.boxes = c.boxes;
      // The products are written for 64 tokens and at most two m64 tiles per warpgroup.
      p.math = c.x_rows == 64 && (c.swapped ? c.box_rows == 32 && c.consumers == 1 && c.boxes == 1
                                            : c.box_rows / 64 <= 2 * c.consumers)
                   ? c.math
                   : 0;
      const int threads = 128 * c.consumers + 32;
      const Kernel kernel = c.swapped ? swapped_kernel : kernels[c.box_rows / 64 / c.consumers >= 2][c.boxes == 2];
      p.tiles = static_cast<int>(s.n / c.box_rows);
      p.k_steps = static_cast<int>(s.k / 64);
      const int stage_bytes = (c.boxes * (c.box_rows + c.x_rows) * 128 + 1023) / 1024 * 1024;
      p.stages = std::min(kMaxStages, (227 * 1024 / c.blocks_per_sm - 2048) / stage_bytes);
      const int smem = p.stages * stage_bytes + 1024;
      p.splits = std::max(1, std::min({c.blocks_per_sm * sms / p.tiles, p.k_steps / 8, c.max_splits}));
      const bool fits = int64_t{p.tiles} * p.splits * c.box_rows * 64 * 4 <= static_cast<int64_t>(kPartialsBytes);
      p.partials = c.partials && p.splits > 1 && fits ? partials : nullptr;
      std::vector<CUtensorMap> w_maps(copies);
      CUtensorMap x_map{};
      for (int i = 0; i < copies; ++i) {
        if (!encode(w_maps[i], pool + i * bytes, s.n, s.k, c.box_rows)) std::exit(2);
      }
      if (!encode(x_map, x, 64, s.k, c.x_rows)) std::exit(3);
      int resident = 0;
      CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, threads, smem));
      cudaLaunchConfig_t config = {};
      config.gridDim = dim3(p.tiles * p.splits);
      config.blockDim = dim3(threads);
      config.dynamicSmemBytes = smem;
      cudaLaunchAttribute attribute = {};
      attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attribute.val.programmaticStreamSerializationAllowed = 1;
      config.attrs = &attribute;
      config.numAttrs = c.pdl ? 1 : 0;
      const double us = timed([&](int i) { CHECK(cudaLaunchKernelEx(&config, kernel, p, w_maps[i], x_map)); });
      std::printf(
          "probe %-7s tma rows=%3d x=%2d %s math=%d wg=%d box=%d part=%d pdl=%d bps=%d(%d) st=%2d grid=%4d: %7.1f us "
          "%5.2f TB/s\n",
          s.name, c.box_rows, c.x_rows, c.swapped ? "swap" : "    ", p.math, c.consumers, c.boxes,
          p.partials != nullptr, c.pdl, c.blocks_per_sm, resident, p.stages, p.tiles * p.splits, us, bytes / us / 1e6);
    }
  }
  return 0;
}
