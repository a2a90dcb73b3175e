#pragma once
// The prefill/extend attention kernel for Hopper (sm_90a), on the warpgroup tensor-core instructions
// (wgmma), which the mma.sync kernels of cuda_attention_mma.cuh cannot reach: those top out near 240
// TFLOP/s on an H200 for a 4096-token prompt; this one runs at ~480 (~430 with its cp.async producer).
//
// Same plan as prefill::attention_prefill_kernel (FlashAttention-2 with the online softmax in registers),
// at head_dim 128 only, organised as FlashAttention-3 does on Hopper (warp specialisation):
//  - a block of three warpgroups owns 128 query rows (tokens x the query heads of one KV head, so GQA reads
//    each K/V tile once for the whole group): two consumer warpgroups of 64 rows each compute, the third
//    (the producer) only gathers 128-key K/V tiles from the paged cache into three stages of shared memory
//    laid out in the 128-byte swizzle wgmma reads (each 64-column half of a tile is a run of 128-byte rows
//    whose 16-byte chunks are XOR-ed with the row's index mod 8). Where the page size is a multiple of 16,
//    one producer warp copies them by TMA (a 16-slot x 64-column box per group of 16 keys, swizzled by the
//    copy engine); otherwise all four warps copy 16-byte chunks by cp.async, zero-filling keys past the
//    block's last visible key. TMA took the kernel from 427-432 to 482 TFLOP/s on the 4096-token prompt
//    and from 440-443 to 506 on 2048 cached + 2048 new (H200): the cp.async gather's instructions and
//    shared-memory writes, not the consumers, had been its larger limit;
//  - a stage's mbarrier "full" completes when the producer's copies into it land (cp.async: each producer
//    thread's arrive.noinc; TMA: the tile's byte count), "empty" when all eight consumer warps are done
//    reading it; with no block-wide barrier per tile the two consumer warpgroups drift apart, so one's
//    softmax overlaps the other's MMAs (339 -> 416 TFLOP/s against the previous kernel, whose warpgroups
//    ran in step between block barriers and issued the copies themselves);
//  - registers: the register file is split between the SM's four schedulers, so a block of three
//    warpgroups compiles to at most 168 per thread; the producer hands most of its own back (setmaxnreg)
//    so the consumers can hold their 64 + 64 accumulators and the P fragments;
//  - S = Q K^T is one chain of 8 wgmma m64n128k16 with Q and K read from shared memory through matrix
//    descriptors; the online softmax runs on the accumulators, which have the mma.m16n8 layout, so P is
//    repacked in registers as the A operand of O += P V (8 wgmma with A from registers and V read
//    MN-major, i.e. transposed by the instruction);
//  - causal mask only on tiles that cross a row's diagonal; a warpgroup skips tiles wholly in its future;
//  - persistent: one block per SM walks a fixed list of query tiles (longest first, in back-and-forth passes
//    so the blocks' totals even out), its K/V stages running on from one tile to the next.
// Descriptor and swizzle layouts are the PTX ISA's ("Matrix Descriptor Format", "Shared Memory Matrix
// Layout") for 128-byte swizzling.

#include <algorithm>

#include <cuda_bf16.h>

#include "backends/cuda/cuda_attention_mma.cuh"
#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_hopper.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda::wgmma_prefill {

constexpr int kDim = 128;
constexpr int kRows = 128;   // query rows per block, 64 per consumer warpgroup
constexpr int kKeys = 128;   // keys per K/V tile
constexpr int kConsumerThreads = 256;
constexpr int kThreads = kConsumerThreads + 128;  // two consumer warpgroups, then the producer warpgroup
constexpr int kProducerRegisters = 56, kConsumerRegisters = 224;  // 56 + 2 x 224 <= 512 (40 spills)
constexpr int kTileBytes = 128 * kDim * 2;  // a [128][128] bf16 tile: two 16 KB halves of 128-byte rows
constexpr int kHalfBytes = kTileBytes / 2;
// Three K/V stages (224 KB of shared memory with Q): the producer fills one while the consumers read the
// other two (a tile's V may still be read by its O += P V while the next tile's scores run).
constexpr int kStages = 3;

struct alignas(1024) Smem {  // every tile 1024-byte aligned (the swizzle pattern repeats every 8 rows)
  uint8_t q[kTileBytes];
  uint8_t k[kStages][kTileBytes];
  uint8_t v[kStages][kTileBytes];
  uint64_t full[kStages];   // cp.async: the producer's 128 threads, each when its copies land; TMA: one arrival
                            // with the tile's byte count, complete when that many bytes have landed
  uint64_t empty[kStages];  // arrivals: lane 0 of each of the 8 consumer warps
};
// Dynamic shared memory is only guaranteed 16-byte aligned; the kernel rounds its base up.
constexpr size_t kSmemBytes = sizeof(Smem) + 1024;

// Byte offset of 16-byte chunk c (columns 8c..8c+7) of row r in a swizzled [128][128] tile.
__device__ __forceinline__ int swizzled(int r, int c) {
  return (c / 8) * kHalfBytes + r * 128 + (((c % 8) ^ (r % 8)) * 16);
}

// K-major operand (Q as A, K as B): rows of 128 bytes, 8-row groups 1024 bytes apart (the leading offset
// is unused with swizzling). Step kk (columns 16kk..16kk+15) starts 32 bytes further into its half.
__device__ __forceinline__ uint64_t k_major(uint32_t tile, int first_row, int kk) {
  return descriptor(tile + (kk / 4) * kHalfBytes + first_row * 128 + (kk % 4) * 32, 16, 1024);
}
// MN-major operand (V as B of O += P V, N = head dim contiguous): the two 64-column halves are the
// leading offset apart, 8-key groups 1024 bytes; step kk (keys 16kk..16kk+15) starts 16 rows further.
__device__ __forceinline__ uint64_t mn_major(uint32_t tile, int kk) {
  return descriptor(tile + kk * 16 * 128, kHalfBytes, 1024);
}

#if RADIXLM_WGMMA
// Keeps the compiler from moving reads or writes of accumulators across the asynchronous wgmma.
__device__ __forceinline__ void pin(float (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// The same for the A fragments of an O += P V still in flight: wgmma reads them from the registers
// asynchronously, so they must stay live (not be reused for other values) until the wait after it.
template <int kN>
__device__ __forceinline__ void pin(uint32_t (&a)[kN][4]) {
#pragma unroll
  for (int j = 0; j < kN; ++j) {
#pragma unroll
    for (int i = 0; i < 4; ++i) asm volatile("" : "+r"(a[j][i])::"memory");
  }
}

// The 64 f32 accumulators of an m64n128 wgmma: their place in the instruction (operands %0-%63) and the
// matching read-write operand list.
#define RADIXLM_WGMMA_D64_REGS                                                                        \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"                              \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"                     \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"                     \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
#define RADIXLM_WGMMA_D64_OPERANDS(d)                                                                  \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),      \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),         \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),       \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),       \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),       \
      "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]),       \
      "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),       \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),       \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// d (+)= A B on the warpgroup: m64 n128 k16, bf16 in, f32 accumulators (64 per thread, in the layout of
// mma.m16n8 accumulators: warp w of the group holds rows 16w..16w+15, n8 tile t in d[4t..4t+3]). With
// accumulate == false d is overwritten. A and B (both K-major) from shared memory through descriptors.
__device__ __forceinline__ void wgmma_ss(float (&d)[64], uint64_t desc_a, uint64_t desc_b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      RADIXLM_WGMMA_D64_REGS
      "%64, %65, p, 1, 1, 0, 0;\n}\n"
      : RADIXLM_WGMMA_D64_OPERANDS(d)
      : "l"(desc_a), "l"(desc_b), "r"(static_cast<int>(accumulate)));
}

// d += A B: A from registers (the m16n8k16 A-fragment layout per warp), B from shared memory stored
// MN-major (N contiguous: the transpose flag).
__device__ __forceinline__ void wgmma_rs_mn_major_b(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      RADIXLM_WGMMA_D64_REGS
      "{%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : RADIXLM_WGMMA_D64_OPERANDS(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

#endif  // RADIXLM_WGMMA

#if RADIXLM_WGMMA
// The online softmax of one consumer thread's two rows (accumulator rows lane / 4 and lane / 4 + 8 of its
// warp), over one tile of scores: the thread holds keys k0 + 8t + 2 * (lane % 4) + {0, 1} (t < 16) of row
// 0 in sc[4t], sc[4t + 1] and of row 1 in sc[4t + 2], sc[4t + 3].
struct RowSoftmax {
  // In base-2 units of the scaled scores; sums over this thread's columns only.
  float max0 = -INFINITY, max1 = -INFINITY, sum0 = 0.0f, sum1 = 0.0f;
  float alpha0 = 1.0f, alpha1 = 1.0f;  // how much O shrinks for the latest tile's new maxima

  // Masks (when some row's diagonal is in the tile) and exponentiates the scores in place (sc becomes P),
  // updating the maxima and sums; O waits for rescale().
  __device__ __forceinline__ void exponentiate(float (&sc)[64], int k0, bool masked, int visible0, int visible1,
                                               float scale_log2, int quad_col) {
    // Maxima of the raw scores; the scale is folded into the exponent's multiply-add (scale > 0).
    if (masked) {
#pragma unroll
      for (int t = 0; t < kKeys / 8; ++t) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          const int key = k0 + t * 8 + quad_col * 2 + i;
          if (key >= visible0) sc[4 * t + i] = -INFINITY;
          if (key >= visible1) sc[4 * t + 2 + i] = -INFINITY;
        }
      }
    }
    float tile_max0 = -INFINITY, tile_max1 = -INFINITY;
#pragma unroll
    for (int t = 0; t < kKeys / 8; ++t) {
      tile_max0 = fmaxf(tile_max0, fmaxf(sc[4 * t], sc[4 * t + 1]));
      tile_max1 = fmaxf(tile_max1, fmaxf(sc[4 * t + 2], sc[4 * t + 3]));
    }
    tile_max0 = quad_max(tile_max0);
    tile_max1 = quad_max(tile_max1);
    const float new_max0 = fmaxf(max0, tile_max0 * scale_log2), new_max1 = fmaxf(max1, tile_max1 * scale_log2);
    // A row with nothing visible yet keeps max -inf: its p are 0 and its (zero) state needs no rescale.
    const float base0 = new_max0 == -INFINITY ? 0.0f : new_max0;
    const float base1 = new_max1 == -INFINITY ? 0.0f : new_max1;
    alpha0 = fast_exp2(max0 - base0);
    alpha1 = fast_exp2(max1 - base1);
    max0 = new_max0;
    max1 = new_max1;
    float tile_sum0 = 0.0f, tile_sum1 = 0.0f;
#pragma unroll
    for (int t = 0; t < kKeys / 8; ++t) {  // exp2(-inf * scale - base) == 0 for the masked keys
      sc[4 * t] = fast_exp2(fmaf(sc[4 * t], scale_log2, -base0));
      sc[4 * t + 1] = fast_exp2(fmaf(sc[4 * t + 1], scale_log2, -base0));
      sc[4 * t + 2] = fast_exp2(fmaf(sc[4 * t + 2], scale_log2, -base1));
      sc[4 * t + 3] = fast_exp2(fmaf(sc[4 * t + 3], scale_log2, -base1));
      tile_sum0 += sc[4 * t] + sc[4 * t + 1];
      tile_sum1 += sc[4 * t + 2] + sc[4 * t + 3];
    }
    sum0 = sum0 * alpha0 + tile_sum0;
    sum1 = sum1 * alpha1 + tile_sum1;
  }
  // O (accumulated against the previous maxima) onto the latest ones.
  __device__ __forceinline__ void rescale(float (&o)[64]) const {
#pragma unroll
    for (int t = 0; t < kDim / 8; ++t) {
      o[4 * t] *= alpha0;
      o[4 * t + 1] *= alpha0;
      o[4 * t + 2] *= alpha1;
      o[4 * t + 3] *= alpha1;
    }
  }
};

// P as the A operand of O += P V (k16 step j = the accumulators of n8 tiles 2j and 2j + 1).
__device__ __forceinline__ void pack_p(const float (&sc)[64], uint32_t (&a)[kKeys / 16][4]) {
#pragma unroll
  for (int j = 0; j < kKeys / 16; ++j) {
    a[j][0] = pack_bf16(sc[8 * j], sc[8 * j + 1]);
    a[j][1] = pack_bf16(sc[8 * j + 2], sc[8 * j + 3]);
    a[j][2] = pack_bf16(sc[8 * j + 4], sc[8 * j + 5]);
    a[j][3] = pack_bf16(sc[8 * j + 6], sc[8 * j + 7]);
  }
}

// A TMA box {64 columns, 1 head, 16 slots} of a [slots][kv_heads][128] cache into shared memory, 128-byte
// swizzled as the descriptor says, completing `bytes` on the barrier.
__device__ __forceinline__ void tma_load_box(void* dst, const CUtensorMap* map, int column, int head, int slot,
                                             uint64_t* barrier) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];"
      ::"r"(smem_address(dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(column), "r"(head), "r"(slot),
        "r"(smem_address(barrier))
      : "memory");
}

// The producer warpgroup: gathers every K/V tile of the block into its stage once the consumers released
// it. Warp w copies keys 32w..32w+31 of a tile: lane l reads the page id of key 32w + l and hands it out by
// shuffle; lanes 16h..16h+15 copy the 16 chunks of keys 32w + 2i + h.
// `tile_base` counts the block's tiles of earlier work items: stages and barrier phases run on across items.
__device__ __forceinline__ void produce_kv(Smem& s, const AttentionParams& p, const int32_t* pages, int page_size,
                                           int page_shift, int key_end, int num_key_tiles, int64_t kv_row,
                                           int64_t head_offset, int tile_base) {
  const int lane = static_cast<int>(threadIdx.x) % 32, h = lane / 16, c = lane % 16;
  const int first_key = (static_cast<int>(threadIdx.x) / 32 % 4) * 32;
  const uint16_t* k_base = p.k_cache + head_offset + c * 8;
  const uint16_t* v_base = p.v_cache + head_offset + c * 8;
  for (int kt = 0; kt < num_key_tiles; ++kt) {
    const int g = tile_base + kt;
    const int k0 = kt * kKeys, stage = g % kStages;
    const int lane_key = k0 + first_key + lane;
    const int32_t page = lane_key < key_end ? pages[page_shift >= 0 ? lane_key >> page_shift : lane_key / page_size] : 0;
    if (g >= kStages) mbarrier_wait(&s.empty[stage], (g / kStages - 1) & 1);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int j = first_key + 2 * i + h, key = k0 + j;
      const int32_t key_page = __shfl_sync(0xffffffffu, page, 2 * i + h);
      const bool valid = key < key_end;
      const int in_page = page_shift >= 0 ? key & (page_size - 1) : key % page_size;
      const int64_t offset = valid ? (static_cast<int64_t>(key_page) * page_size + in_page) * kv_row : 0;
      cp_async_16(s.k[stage] + swizzled(j, c), k_base + offset, valid);
      cp_async_16(s.v[stage] + swizzled(j, c), v_base + offset, valid);
    }
    cp_async_arrive(&s.full[stage]);
  }
}

// The TMA producer (page sizes that are multiples of 16): one warp, each tile as up to eight 16-key groups,
// a group being 16 consecutive slots of one page. Lane g < 8 looks up group g's slot; lanes 2g and 2g + 1
// copy its two 64-column halves of K and of V, each one TMA box straight into the swizzled tile (a group
// lands as 16 rows of 128 bytes, the same layout the cp.async producer writes). Groups wholly past key_end
// are not copied: their keys are masked, and the stage keeps finite V from earlier tiles (zeroed at the
// start), so P = 0 times V stays 0. A group's slots past key_end are read: finite cache contents (the pool
// starts zeroed), masked the same way.
__device__ __forceinline__ void produce_kv_tma(Smem& s, const CUtensorMap* k_map, const CUtensorMap* v_map,
                                               const int32_t* pages, int page_size, int page_shift, int key_end,
                                               int num_key_tiles, int kv_head, int tile_base) {
  constexpr int kGroupKeys = 16, kGroups = kKeys / kGroupKeys;
  constexpr uint32_t kGroupBytes = kGroupKeys * kDim * 2 * 2;  // K and V
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int group = lane / 2, half = lane % 2;
  for (int kt = 0; kt < num_key_tiles; ++kt) {
    const int g = tile_base + kt;
    const int k0 = kt * kKeys, stage = g % kStages;
    const int lane_key = k0 + lane * kGroupKeys;
    const int32_t slot = lane < kGroups && lane_key < key_end
                             ? pages[page_shift >= 0 ? lane_key >> page_shift : lane_key / page_size] * page_size +
                                   (page_shift >= 0 ? lane_key & (page_size - 1) : lane_key % page_size)
                             : 0;
    const int groups = min(kGroups, (key_end - k0 + kGroupKeys - 1) / kGroupKeys);
    const int32_t group_slot = __shfl_sync(0xffffffffu, slot, group % kGroups);
    if (g >= kStages) mbarrier_wait(&s.empty[stage], (g / kStages - 1) & 1);
    if (lane == 0) mbarrier_arrive_expect_tx(&s.full[stage], groups * kGroupBytes);
    __syncwarp();
    if (group < groups) {
      const int offset = half * kHalfBytes + group * kGroupKeys * 128;
      tma_load_box(s.k[stage] + offset, k_map, half * 64, kv_head, group_slot, &s.full[stage]);
      tma_load_box(s.v[stage] + offset, v_map, half * 64, kv_head, group_slot, &s.full[stage]);
    }
  }
}

// S = Q K^T for one tile: 8 k16 steps over the head dim, issued and committed as one wgmma group.
__device__ __forceinline__ void issue_scores(float (&sc)[64], uint32_t q_address, int first_row, uint32_t k_address) {
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < kDim / 16; ++kk) {
    wgmma_ss(sc, k_major(q_address, first_row, kk), k_major(k_address, 0, kk), kk > 0);
  }
  wgmma_commit();
}
// O += P V for one tile, one wgmma group.
__device__ __forceinline__ void issue_pv(float (&o)[64], const uint32_t (&a)[kKeys / 16][4], uint32_t v_address) {
  wgmma_fence();
#pragma unroll
  for (int j = 0; j < kKeys / 16; ++j) wgmma_rs_mn_major_b(o, a[j], mn_major(v_address, j));
  wgmma_commit();
}
#endif  // RADIXLM_WGMMA

#if RADIXLM_WGMMA
// One work item: 128 query rows (a tile of one sequence's new tokens times the query heads of one KV head)
// against that sequence's keys up to the tile's last token.
struct WorkItem {
  int kv_head = 0, q_begin = 0, q_end = 0, seq = 0, key_end = 0, num_key_tiles = 0;
};

// The persistent grid's schedule: item n of block b is index n * G + b on even passes and n * G + (G - 1 -
// b) on odd ones (G blocks), over items numbered KV head fastest, then query tile longest first, then
// sequence (the order the hardware gave the blocks of the non-persistent grid). With the work of the items
// falling along that order (a causal prompt), the back-and-forth passes give every block about the same
// total. Returns false past the last item; `item` is left empty (q_begin == q_end) for a tile past its
// sequence's new tokens.
__device__ __forceinline__ bool work_item(const AttentionParams& p, const StepArrays& step, int n, WorkItem& item) {
  const int group = p.q_heads / p.kv_heads;
  const int tokens_per_tile = kRows / group;
  const int q_tiles = (step.max_query_len + tokens_per_tile - 1) / tokens_per_tile;
  const int blocks = static_cast<int>(gridDim.x), block = static_cast<int>(blockIdx.x);
  const int index = n * blocks + (n % 2 == 0 ? block : blocks - 1 - block);
  if (index >= p.kv_heads * q_tiles * step.num_seqs) return false;
  item.kv_head = index % p.kv_heads;
  const int tile = q_tiles - 1 - index / p.kv_heads % q_tiles;
  item.seq = index / (p.kv_heads * q_tiles);
  item.q_begin = step.query_start[item.seq] + tile * tokens_per_tile;
  item.q_end = min(item.q_begin + tokens_per_tile, step.query_start[item.seq + 1]);
  if (item.q_begin >= item.q_end) {
    item.q_end = item.q_begin;
    item.num_key_tiles = 0;
    return true;
  }
  item.key_end = step.positions[item.q_end - 1] + 1;
  item.num_key_tiles = (item.key_end + kKeys - 1) / kKeys;
  return true;
}

// A consumer warpgroup's 64 Q rows of an item into shared memory by cp.async (rows past the item's last token
// zero-filled); committed, not waited for.
__device__ __forceinline__ void load_q(Smem& s, const AttentionParams& p, const WorkItem& item, int first_row) {
  const int group = p.q_heads / p.kv_heads;
  const int rows = (item.q_end - item.q_begin) * group;
  const int t = static_cast<int>(threadIdx.x) % 128, c = t % 16;
#pragma unroll
  for (int i = 0; i < 64 * 16 / 128; ++i) {
    const int r = first_row + i * 8 + t / 16;
    const bool valid = r < rows;
    const int64_t token = valid ? item.q_begin + r / group : 0;
    const int head = valid ? item.kv_head * group + r % group : 0;
    cp_async_16(s.q + swizzled(r, c), p.q + token * p.q_stride + head * kDim + c * 8, valid);
  }
  cp_async_commit();
}
#endif  // RADIXLM_WGMMA

// Persistent grid (one 384-thread block per SM; warpgroups 0 and 1 compute, 2 copies), each block walking its
// work items (work_item). The K/V stages and their barrier phases run on across items, so the producer
// fills the next item's first tiles while the consumers finish the current one, and a consumer warpgroup
// loads its next Q rows before it writes the current output: a block's start-up (page table, first tiles,
// Q) is paid once per SM instead of once per item (4096-token prompt on an H200: 427-429 TFLOP/s against
// 415-418 with one block per item). Per tile a consumer warpgroup issues the scores, waits
// for them together with the previous tile's O += P V, exponentiates, and issues this tile's O += P V
// without waiting for it.
// Measured on an H200 (4096-token prompt) and removed: FlashAttention-3's intra-warpgroup order (a tile's
// O += P V issued after the next tile's scores, to run during their softmax) 366 TFLOP/s against 415;
// FA3's ping-pong turns between the two consumer warpgroups (named barriers) 414 against 415; a shorter
// softmax: O's rescale skipped when no row max moved (a warp vote) 407, half of the exponentials on the FMA
// pipe (a cubic, FlashAttention-4's trick against the multi-function unit's rate) 367.
template <bool kTma>
__global__ void __launch_bounds__(kThreads, 1)
    attention_prefill_wgmma_kernel(AttentionParams p, StepArrays step, const __grid_constant__ CUtensorMap k_map,
                                   const __grid_constant__ CUtensorMap v_map) {
#if RADIXLM_WGMMA
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw_address = smem_address(smem_raw);
  Smem& s = *reinterpret_cast<Smem*>(smem_raw + ((1024 - raw_address % 1024) % 1024));
  const int group = p.q_heads / p.kv_heads;

  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 0; i < kStages; ++i) {
      mbarrier_init(&s.full[i], kTma ? 1 : 128);
      mbarrier_init(&s.empty[i], kConsumerThreads / 32);
    }
  }
  if constexpr (kTma) {
    // TMA skips the groups past a block's last key, so V's stages start as zeros, not whatever shared
    // memory held (0 * NaN would poison O); made visible to the TMA (async proxy) writes that follow.
    auto* v_words = reinterpret_cast<uint4*>(s.v);
    for (int i = static_cast<int>(threadIdx.x); i < kStages * kTileBytes / 16; i += kThreads) {
      v_words[i] = make_uint4(0, 0, 0, 0);
    }
    fence_async_shared();
  }
  __syncthreads();  // the last block-wide barrier: from here on the roles only meet at the mbarriers

  if (threadIdx.x >= kConsumerThreads) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegisters));
    if (kTma && threadIdx.x >= kConsumerThreads + 32) return;  // one warp issues the TMA copies
    const int page_shift = (step.page_size & (step.page_size - 1)) == 0 ? __ffs(step.page_size) - 1 : -1;
    int tile_base = 0;
    WorkItem item;
    for (int n = 0; work_item(p, step, n, item); ++n) {
      const int32_t* pages = step.page_table + step.page_table_start[item.seq];
      if constexpr (kTma) {
        produce_kv_tma(s, &k_map, &v_map, pages, step.page_size, page_shift, item.key_end, item.num_key_tiles,
                       item.kv_head, tile_base);
      } else {
        produce_kv(s, p, pages, step.page_size, page_shift, item.key_end, item.num_key_tiles,
                   static_cast<int64_t>(p.kv_heads) * kDim, static_cast<int64_t>(item.kv_head) * kDim, tile_base);
      }
      tile_base += item.num_key_tiles;
    }
    if constexpr (!kTma) cp_async_wait<0>();  // nothing in flight when the warpgroup exits
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kConsumerRegisters));
  const int warpgroup = static_cast<int>(threadIdx.x) / 128;
  const int warp = (static_cast<int>(threadIdx.x) / 32) % 4, lane = static_cast<int>(threadIdx.x) % 32;
  const int quad_col = lane % 4;
  const int first_row = warpgroup * 64;
  const float scale_log2 = p.scale * 1.4426950408889634f;  // exp(x * scale) == exp2(x * scale * log2 e)
  const uint32_t q_address = smem_address(s.q);
  const int64_t out_row = static_cast<int64_t>(p.q_heads) * kDim;
  // Lane 0 of each warp releases a stage once the warp's MMAs that read it are complete.
  const auto release = [&](int stage) {
    __syncwarp();
    if (lane == 0) mbarrier_arrive(&s.empty[stage]);
  };

  int tile_base = 0;  // the block's tiles of earlier items, as the producer counts them
  int n = 0;
  WorkItem item;
  bool more = work_item(p, step, n, item);
  if (more) load_q(s, p, item, first_row);
  while (more) {
    // This item's Q rows (issued before the previous item's output was written) have landed; made visible to
    // wgmma, then the warpgroup's four warps meet (named barrier 1 + warpgroup).
    cp_async_wait<0>();
    fence_async_shared();
    asm volatile("bar.sync %0, 128;" ::"r"(1 + warpgroup) : "memory");

    // This thread's two rows and the keys each may see; rows are token-major, so the warpgroup's first row
    // sees the fewest keys and its last the most.
    const int rows = (item.q_end - item.q_begin) * group;
    const int row0 = first_row + warp * 16 + lane / 4, row1 = row0 + 8;
    const int visible0 = row0 < rows ? step.positions[item.q_begin + row0 / group] + 1 : 0;
    const int visible1 = row1 < rows ? step.positions[item.q_begin + row1 / group] + 1 : 0;
    const bool has_rows = first_row < rows;
    const int group_key_end = has_rows ? step.positions[item.q_begin + min(first_row + 63, rows - 1) / group] + 1 : 0;
    const int group_key_unmasked = has_rows ? step.positions[item.q_begin + first_row / group] + 1 : 0;

    float o[64], sc[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] = sc[i] = 0.0f;
    RowSoftmax softmax;
    uint32_t a[kKeys / 16][4];
    // The stage of the last tile whose O += P V is still to be waited for, or -1.
    int pending = -1;

    for (int kt = 0; kt < item.num_key_tiles; ++kt) {
      const int g = tile_base + kt;
      const int k0 = kt * kKeys, stage = g % kStages;
      // Also for tiles this warpgroup skips: a warp may not run ahead and arrive twice in one phase of "empty".
      mbarrier_wait(&s.full[stage], (g / kStages) & 1);
      if (k0 >= group_key_end) {  // the whole tile is in this warpgroup's causal future
        if (pending >= 0) {
          wgmma_wait_all();
          pin(o);
          pin(a);
          release(pending);
          pending = -1;
        }
        release(stage);
        continue;
      }
      fence_async_shared();  // the producer's cp.async writes, acquired through the barrier, made visible to wgmma
      issue_scores(sc, q_address, first_row, smem_address(s.k[stage]));
      wgmma_wait_all();  // and the previous tile's O += P V, so O and the A fragments are free again
      pin(sc);
      pin(o);
      pin(a);
      if (pending >= 0) release(pending);
      softmax.exponentiate(sc, k0, k0 + kKeys > group_key_unmasked, visible0, visible1, scale_log2, quad_col);
      softmax.rescale(o);
      pack_p(sc, a);
      issue_pv(o, a, smem_address(s.v[stage]));
      pending = stage;
    }
    wgmma_wait_all();
    pin(o);
    pin(a);
    if (pending >= 0) release(pending);
    tile_base += item.num_key_tiles;

    // The next item's Q rows start loading now (every wgmma that read this item's Q is complete), under the
    // output writes below.
    const WorkItem done = item;
    more = work_item(p, step, ++n, item);
    if (more) load_q(s, p, item, first_row);

    const float sum0 = quad_sum(softmax.sum0), sum1 = quad_sum(softmax.sum1);
    const float inverse0 = sum0 > 0.0f ? 1.0f / sum0 : 0.0f, inverse1 = sum1 > 0.0f ? 1.0f / sum1 : 0.0f;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = half == 0 ? row0 : row1;
      if (r >= rows) continue;
      const float inverse = half == 0 ? inverse0 : inverse1;
      const int64_t token = done.q_begin + r / group;
      const int head = done.kv_head * group + r % group;
      uint16_t* out = p.out + token * out_row + head * kDim;
#pragma unroll
      for (int t = 0; t < kDim / 8; ++t) {
        *reinterpret_cast<uint32_t*>(out + t * 8 + quad_col * 2) =
            pack_bf16(o[4 * t + 2 * half] * inverse, o[4 * t + 2 * half + 1] * inverse);
      }
    }
  }
#endif  // RADIXLM_WGMMA
}

// Whether this process's GPU runs the kernel: the sm_90a code runs on compute capability 9.0 only, and the
// block needs 226 KB of shared memory.
inline bool supported() {
  static const bool ok = [] {
    if (!hopper_device() ||
        cudaFuncSetAttribute(attention_prefill_wgmma_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(kSmemBytes)) != cudaSuccess ||
        cudaFuncSetAttribute(attention_prefill_wgmma_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(kSmemBytes)) != cudaSuccess) {
      (void)cudaGetLastError();  // a refused attribute is not an error of the step
      return false;
    }
    return true;
  }();
  return ok;
}


// A cache [slots][kv_heads][128] bf16 as a 3-D tensor for TMA: boxes of {64 columns, 1 head, 16 slots},
// 128-byte swizzled (the layout the wgmma descriptors read). False if the driver refuses it.
inline bool encode_cache_map(CUtensorMap& map, const uint16_t* cache, int32_t kv_heads, int64_t num_slots) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (encode == nullptr) return false;
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(kDim), static_cast<cuuint64_t>(kv_heads),
                              static_cast<cuuint64_t>(num_slots)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(kDim) * 2, static_cast<cuuint64_t>(kv_heads) * kDim * 2};
  const cuuint32_t box[3] = {64, 1, 16};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  return encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<uint16_t*>(cache), dims, strides, box,
                element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// Needs head_dim == kDim and supported(). One block per SM (the shared memory allows no more), or one per
// item when there are fewer. K/V come by TMA when allowed and possible (page size a multiple of 16, the
// cache's slot count known, descriptors accepted), by the cp.async producer otherwise.
inline void launch(const AttentionParams& p, const StepArrays& step, cudaStream_t stream, bool allow_tma) {
  const int tokens_per_tile = kRows / (p.q_heads / p.kv_heads);
  const int64_t items = static_cast<int64_t>(p.kv_heads) * ceil_div_u(step.max_query_len, tokens_per_tile) * step.num_seqs;
  const auto blocks = static_cast<unsigned int>(p.num_sms > 0 ? std::min<int64_t>(items, p.num_sms) : items);
  if (blocks == 0) return;
  CUtensorMap k_map{}, v_map{};
  const bool tma = allow_tma && step.page_size % 16 == 0 && p.num_slots > 0 &&
                   encode_cache_map(k_map, p.k_cache, p.kv_heads, p.num_slots) &&
                   encode_cache_map(v_map, p.v_cache, p.kv_heads, p.num_slots);
  if (tma) {
    attention_prefill_wgmma_kernel<true><<<blocks, kThreads, kSmemBytes, stream>>>(p, step, k_map, v_map);
  } else {
    attention_prefill_wgmma_kernel<false><<<blocks, kThreads, kSmemBytes, stream>>>(p, step, k_map, v_map);
  }
}

}  // namespace radixlm::cuda::wgmma_prefill
