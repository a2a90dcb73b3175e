// How fast can a decode matmul's weights stream in? A probe for issue 6's
// batch-64 gap: the decode GEMM (TMA boxes of 128 weight rows x 64 columns, 2
// blocks per SM) streams gate_up at 3.85 TB/s at 8 tokens, where the one-token
// GEMV (plain loads along each row) reaches 4.2-4.6. This kernel does the
// GEMM's copies without its math, over the Llama-3.1-8B decode shapes, varying
// one thing at a time:
//  - ldg:   every thread loads 16-byte words in address order (the plain
//  streaming ceiling);
//  - rows:  weight rows per TMA box (64 / 128 / 256) and blocks per SM (4 / 2 /
//  1: the same bytes per SM);
//  - x:     token rows copied beside each weight box (0 / 8 / 64: the
//  activation tile every block re-reads
//           from L2 in the GEMM);
//  - tiled: the weights stored box by box (each box's 128-byte rows contiguous:
//  a 16 KB run per 128-row
//           box) instead of row-major (128 rows 8-28 KB apart per box);
//  - cl:    blocks of consecutive row tiles as a thread-block cluster of 2 or 4
//  that share the x tile: each
//           copies 1/c of its rows and multicasts them to every block of the
//           cluster (x's L2 reads / c);
//  - part:  each block writes an f32 tile of box rows x 64 tokens at its end (a
//  K split's partial).
// Blocks own a row tile and walk its K range in order (split along K as the
// GEMM splits narrow matrices). Prints one line per configuration: the weight
// bytes over the mean time of 20 launches that rotate over enough copies of the
// matrix to miss the 50 MB L2.
//
// Build and run (tests/gpu/run.sh, part "probe"):
//   nvcc -O3 -std=c++20 -I src -gencode=arch=compute_90a,code=sm_90a
//   tests/gpu/stream_probe.cu -o probe

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "backends/cuda/cuda_hopper.cuh"

using namespace radixlm::cuda;

#define CHECK(call)                                                            \
  do {                                                                         \
    cudaError_t e = (call);                                                    \
    if (e != cudaSuccess) {                                                    \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call,        \
                   cudaGetErrorString(e));                                     \
      std::exit(1);                                                            \
    }                                                                          \
  } while (0)

namespace {

constexpr int kMaxStages = 32;
constexpr int kThreads = 160; // a consumer warpgroup that only releases stages,
                              // then the producer warp

struct Probe {
  int tiles, splits, k_steps, box_rows, x_rows, stages, cluster;
  bool tiled;
  float *partials; // null: none written
};

__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t rank;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  return rank;
}
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait."
               "acquire.aligned;" ::
                   : "memory");
}
// Arrives on the barrier at the same shared-memory offset in block `rank` of
// the cluster.
__device__ __forceinline__ void remote_arrive(uint64_t *barrier,
                                              uint32_t rank) {
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;"
               : "=r"(remote)
               : "r"(smem_address(barrier)), "r"(rank));
  asm volatile(
      "mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" ::"r"(
          remote)
      : "memory");
}
__device__ __forceinline__ void
tma_load_2d_multicast(void *dst, const CUtensorMap *map, int column, int row,
                      uint64_t *barrier, uint16_t mask) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::"
               "complete_tx::bytes.multicast::cluster"
               " [%0], [%1, {%2, %3}], [%4], %5;" ::"r"(smem_address(dst)),
               "l"(reinterpret_cast<uint64_t>(map)), "r"(column), "r"(row),
               "r"(smem_address(barrier)), "h"(mask)
               : "memory");
}

__global__ void __launch_bounds__(kThreads)
    tma_stream(Probe p, const __grid_constant__ CUtensorMap w_map,
               const __grid_constant__ CUtensorMap x_map) {
#if RADIXLM_WGMMA
  extern __shared__ uint8_t smem_raw[];
  __shared__ uint64_t full[kMaxStages], empty[kMaxStages];
  uint8_t *base = smem_raw + ((1024 - smem_address(smem_raw) % 1024) % 1024);
  const uint32_t w_bytes = p.box_rows * 128, x_bytes = p.x_rows * 128;
  const uint32_t stage_bytes = (w_bytes + x_bytes + 1023) / 1024 * 1024;
  const int tile = blockIdx.x % p.tiles, split = blockIdx.x / p.tiles;
  const int begin = split * p.k_steps / p.splits,
            steps = (split + 1) * p.k_steps / p.splits - begin;
  if (threadIdx.x == 0) {
    for (int i = 0; i < p.stages; ++i) {
      mbarrier_init(&full[i], 1);
      mbarrier_init(&empty[i], 4 * p.cluster); // every consumer warp of the
                                               // cluster frees a shared x slot
    }
    fence_async_shared();
  }
  __syncthreads();
  const uint32_t rank = p.cluster > 1 ? cluster_rank() : 0;
  if (p.cluster > 1)
    cluster_sync(); // the barriers exist before any block copies or arrives
                    // remotely
  if (threadIdx.x >= 128) {
    if (threadIdx.x == 128) {
      for (int g = 0; g < steps; ++g) {
        const int stage = g % p.stages;
        if (g >= p.stages)
          mbarrier_wait(&empty[stage], (g / p.stages - 1) & 1);
        mbarrier_arrive_expect_tx(&full[stage], w_bytes + x_bytes);
        uint8_t *dst = base + stage * stage_bytes;
        const int step = begin + g;
        if (p.tiled) {
          tma_load_2d(dst, &w_map, 0, (tile * p.k_steps + step) * p.box_rows,
                      &full[stage]);
        } else {
          tma_load_2d(dst, &w_map, step * 64, tile * p.box_rows, &full[stage]);
        }
        if (p.x_rows > 0 && p.cluster == 1)
          tma_load_2d(dst + w_bytes, &x_map, step * 64, 0, &full[stage]);
        if (p.x_rows > 0 && p.cluster > 1) {
          const int slice = p.x_rows / p.cluster;
          tma_load_2d_multicast(dst + w_bytes + rank * slice * 128, &x_map,
                                step * 64, rank * slice, &full[stage],
                                static_cast<uint16_t>((1u << p.cluster) - 1));
        }
      }
    }
  } else {
    const int lane = threadIdx.x % 32;
    for (int g = 0; g < steps; ++g) {
      const int stage = g % p.stages;
      mbarrier_wait(&full[stage], (g / p.stages) & 1);
      __syncwarp();
      if (lane == 0) {
        if (p.cluster == 1)
          mbarrier_arrive(&empty[stage]);
        for (int r = 0; r < p.cluster && p.cluster > 1; ++r)
          remote_arrive(&empty[stage], r);
      }
    }
    if (p.partials != nullptr) {
      float4 *tile_out = reinterpret_cast<float4 *>(p.partials) +
                         static_cast<int64_t>(blockIdx.x) * p.box_rows * 16;
      for (int i = threadIdx.x; i < p.box_rows * 16; i += 128)
        tile_out[i] = make_float4(1.0f, 2.0f, 3.0f, 4.0f);
    }
  }
  __syncwarp();
  if (p.cluster > 1)
    cluster_sync(); // no block leaves while another may still copy into it or
                    // arrive on it
#endif
}

__global__ void ldg_stream(const uint4 *data, size_t words, int *sink) {
  const size_t stride = size_t{gridDim.x} * blockDim.x;
  uint32_t acc = 0;
  for (size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < words;
       i += 4 * stride) {
    uint4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u)
      v[u] = i + u * stride < words ? __ldg(data + i + u * stride)
                                    : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < 4; ++u)
      acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x12345678u)
    *sink = 1; // keeps the loads
}

bool encode(CUtensorMap &map, const void *data, uint64_t rows, uint64_t cols,
            uint32_t box_rows) {
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {cols * 2};
  const cuuint32_t box[2] = {64, box_rows};
  const cuuint32_t element_strides[2] = {1, 1};
  return tensor_map_encoder()(
             &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2,
             const_cast<void *>(data), dims, strides, box, element_strides,
             CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
             CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

struct Shape {
  const char *name;
  int64_t n, k;
};

} // namespace

int main() {
  int sms = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  CHECK(cudaFuncSetAttribute(
      tma_stream, cudaFuncAttributeMaxDynamicSharedMemorySize, 226 * 1024));
  CHECK(cudaFuncSetAttribute(
      tma_stream, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  constexpr size_t kPool = size_t{640}
                           << 20; // bytes: rotating copies of each matrix
  uint8_t *pool = nullptr;
  CHECK(cudaMalloc(&pool, kPool));
  CHECK(cudaMemset(pool, 0x3c, kPool));
  uint16_t *x = nullptr;
  CHECK(cudaMalloc(&x, 64 * 14336 * 2));
  CHECK(cudaMemset(x, 0x3c, 64 * 14336 * 2));
  float *partials = nullptr;
  CHECK(cudaMalloc(&partials, size_t{64} << 20));
  int *sink = nullptr;
  CHECK(cudaMalloc(&sink, 4));
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));

  const Shape shapes[] = {{"gate_up", 28672, 4096},
                          {"down", 4096, 14336},
                          {"qkv", 6144, 4096},
                          {"o_proj", 4096, 4096}};
  for (const Shape &s : shapes) {
    const size_t bytes = static_cast<size_t>(s.n * s.k * 2);
    const int copies = static_cast<int>(
        std::min<size_t>(kPool / bytes, std::max<size_t>(2, 400e6 / bytes)));
    const auto timed = [&](auto launch) { // mean microseconds per launch
      for (int i = 0; i < 3; ++i)
        launch(i % copies);
      CHECK(cudaEventRecord(start));
      constexpr int kIters = 20;
      for (int i = 0; i < kIters; ++i)
        launch(i % copies);
      CHECK(cudaEventRecord(stop));
      CHECK(cudaEventSynchronize(stop));
      CHECK(cudaGetLastError());
      float ms = 0;
      CHECK(cudaEventElapsedTime(&ms, start, stop));
      return 1000.0 * ms / kIters;
    };
    const double ldg_us = timed([&](int c) {
      ldg_stream<<<sms * 4, 512>>>(
          reinterpret_cast<const uint4 *>(pool + c * bytes), bytes / 16, sink);
    });
    std::printf("probe %-7s ldg                                          : "
                "%7.1f us %5.2f TB/s\n",
                s.name, ldg_us, bytes / ldg_us / 1e6);
    struct Config {
      int box_rows, x_rows, blocks_per_sm;
      bool tiled = false;
      int cluster = 1;
      bool partials = false;
    };
    const Config configs[] = {{128, 0, 2},
                              {128, 8, 2},
                              {128, 64, 2},
                              {128, 0, 2, true},
                              {64, 0, 4},
                              {64, 64, 4},
                              {256, 0, 1},
                              {256, 64, 1},
                              {128, 0, 1},
                              {128, 64, 2, false, 2},
                              {128, 64, 2, false, 4},
                              {128, 64, 2, false, 1, true},
                              {128, 64, 2, false, 4, true},
                              {64, 64, 4, false, 4},
                              {64, 64, 4, false, 1, true},
                              {256, 64, 1, false, 2}};
    for (const Config &c : configs) {
      Probe p{};
      p.box_rows = c.box_rows;
      p.x_rows = c.x_rows;
      p.tiled = c.tiled;
      p.cluster = c.cluster;
      p.tiles = static_cast<int>(s.n / c.box_rows);
      p.k_steps = static_cast<int>(s.k / 64);
      const int stage_bytes =
          (c.box_rows * 128 + c.x_rows * 128 + 1023) / 1024 * 1024;
      const int smem_budget = 227 * 1024 / c.blocks_per_sm - 2048;
      p.stages = std::min(kMaxStages, smem_budget / stage_bytes);
      const int smem = p.stages * stage_bytes + 1024;
      p.splits =
          std::max(1, std::min(c.blocks_per_sm * sms / p.tiles, p.k_steps / 8));
      p.partials = c.partials && p.splits > 1 ? partials : nullptr;
      if (int64_t{p.tiles} * p.splits * c.box_rows * 64 * 4 >
          (int64_t{64} << 20))
        p.partials = nullptr;
      std::vector<CUtensorMap> w_maps(copies);
      CUtensorMap x_map{};
      for (int i = 0; i < copies; ++i) {
        const bool ok =
            c.tiled ? encode(w_maps[i], pool + i * bytes, s.n * s.k / 64, 64,
                             c.box_rows)
                    : encode(w_maps[i], pool + i * bytes, s.n, s.k, c.box_rows);
        if (!ok)
          std::exit(2);
      }
      if (!encode(x_map, x, 64, s.k, std::max(c.x_rows / c.cluster, 8)))
        std::exit(3);
      int resident = 0;
      CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, tma_stream,
                                                          kThreads, smem));
      cudaLaunchConfig_t config = {};
      config.gridDim = dim3(p.tiles * p.splits);
      config.blockDim = dim3(kThreads);
      config.dynamicSmemBytes = smem;
      cudaLaunchAttribute attribute = {};
      attribute.id = cudaLaunchAttributeClusterDimension;
      attribute.val.clusterDim.x = c.cluster;
      attribute.val.clusterDim.y = attribute.val.clusterDim.z = 1;
      config.attrs = &attribute;
      config.numAttrs = 1;
      const double us = timed([&](int i) {
        CHECK(cudaLaunchKernelEx(&config, tma_stream, p, w_maps[i], x_map));
      });
      std::printf("probe %-7s tma rows=%3d x=%2d %-5s cl=%d part=%d bps=%d(%d) "
                  "st=%2d grid=%4d: %7.1f us %5.2f TB/s\n",
                  s.name, c.box_rows, c.x_rows, c.tiled ? "tiled" : "rowm",
                  c.cluster, p.partials != nullptr, c.blocks_per_sm, resident,
                  p.stages, p.tiles * p.splits, us, bytes / us / 1e6);
    }
  }
  return 0;
}
