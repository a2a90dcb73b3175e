#pragma once
// Decode attention (flash-decoding) on tensor cores, built to keep HBM busy: one warp per block, and the
// block owns up to 16 query rows (the few new tokens of one sequence times all the query heads of one KV
// head, so each K/V byte is read once per GQA group) and one split of that sequence's keys.
//
// Why this shape: decode attention reads every K/V byte once and does little math on it, so its speed is the
// bytes it keeps in flight. A warp streams its split through a ring of kStages 16-key K/V tiles in shared
// memory filled by cp.async (zero-filled past the split's end), so while it computes a step of one or two
// tiles the rest of the ring is on its way; a lane looks up one key's cache slot per 32 keys, one window
// ahead, so no page-table read sits between two tiles. One warp per block needs no block barrier and no cross-warp
// merge; the ring (32 KB at head_dim 128) lets six blocks share an SM. The split count is chosen from
// the batch so that about one warp per resident slot exists (num_splits); several splits write
// unnormalised partials (output, max, sum) that combine_kernel merges, launched as a programmatic dependent
// so its launch overlaps this kernel's tail.
//
// Knob for GPU tuning runs: RADIXLM_DECODE_SPLIT_WAVES=1..16 (warps per resident slot the split count aims
// at; default 1). On an H200 it moves 1.9-3.2 TB/s of K/V at batch 64-256 in a decode step, about twice the
// one-block-per-split kernel it replaced; in its kernel test (ReportsKvBandwidth) 2.9 TB/s at batch 64
// (contexts 128-256) and 3.8 at batch 256 (128-640) (docs/performance.md).
//
// Math per tile is the prefill kernel's (cuda_attention_mma.cuh): S = Q K^T with mma.sync m16n8k16 (bf16
// in, f32 accumulate), online softmax in base 2 on the accumulators, P repacked as the A operand of
// O += P V with V read through ldmatrix.trans. Q fragments come straight from global memory.

#include <algorithm>
#include <cstdlib>

#include "backends/cuda/cuda_attention_mma.cuh"
#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {
// What the decode kernel's fused RoPE form reads (launch_rope_store_attention's RopeStoreParams, cut to the
// fields it needs, so the plain kernel's parameters stay as they were).
struct AttentionRope {
  const uint16_t* k = nullptr;  // the new tokens' k and v rows, [T, kv_heads * head_dim] at these strides
  const uint16_t* v = nullptr;
  int64_t k_stride = 0, v_stride = 0;
  uint16_t* k_cache = nullptr;  // the cache AttentionParams reads, written at step.kv_slots
  uint16_t* v_cache = nullptr;
  const float* inv_freq = nullptr;  // [head_dim / 2], device
  float attention_scaling = 1.0f;
  bool interleaved = false;
};
}  // namespace radixlm::cuda

namespace radixlm::cuda::decode {

constexpr int kRows = 16;        // mma m16: query rows per block
constexpr int kKeys = 16;        // keys per staged tile (one k16 step of O += P V)
// Tiles in a warp's cp.async ring: 4 (3 in flight while one is read). Measured on an H200 (padded rows, one
// call): batch-64 steps 5.10-5.17 ms against 5.18-5.20 with 3 and 5.27-5.28 with 2, batch 256 within noise;
// with swizzled rows (later call) 4 against 3: batch 64 5.08-5.10 vs 5.19, batch 256 10.85-10.91 vs
// 10.77-10.84. Fewer resident warps (more shared memory each) also means fewer splits: at batch 64 the
// split-KV combine drops out.
constexpr int kRing = 4;
// The deeper ring of a launch whose blocks are all resident at once (a small batch: about one warp per SM
// scheduler), where each warp's own memory latency, not the SM's share of bandwidth, sets the pace: on an
// H200 at batch 64 the kernel alone took 19.5 against 20.3-20.4 us and the step 5.026-5.028 against
// 5.057-5.059 ms (two alternating rounds, one call); batch 1 within noise.
constexpr int kDeepRing = 6;
// The shallower ring of a launch of more than kShallowWaves waves of kRing blocks (batch 256 at 128-640 keys:
// 2.6 waves): the SM's share of DRAM bandwidth sets the pace there, and 3 tiles per warp let 9 warps share an
// SM instead of 6 (more requests in flight per SM, fewer waves). On an H200 (two alternating rounds, one
// call, 2026-11-25) batch-256 steps ran 10.482 / 10.472 ms with it against 10.572 / 10.647 with kRing; batch
// 64 (one wave, 512 blocks) lost with 3 tiles per warp in an earlier call (5.19 against 5.08-5.10), so it
// keeps kRing. RADIXLM_DECODE_SHALLOW_RING=0 keeps kRing everywhere (A/B runs).
constexpr int kShallowRing = 3;
constexpr int kShallowWaves = 2;
constexpr int kMaxSplits = 64;   // combine_kernel's weight table
constexpr float kLog2e = 1.4426950408889634f;

// A tile row's 16-byte chunks are XOR-swizzled with the row (mod 8) where head_dim is a multiple of 64, so
// ldmatrix's eight rows per matrix hit eight different bank groups without padding; other head dims pad
// each row by 16 bytes instead. At head_dim 128 the ring drops from 35 to 32 KB per warp, and the kernel
// ran 112 instead of ~117 us per layer at batch 256 (3.58 TB/s; batch-256 step 10.85-10.91 against
// 11.09-11.22 ms with padding, batch 64 5.08-5.10 against 5.11-5.25, same call).
constexpr int tile_row_elements(int dim) { return dim % 64 == 0 ? dim : dim + 8; }

template <int kDim, int kStages>
struct Smem {
  static constexpr bool kSwizzle = kDim % 64 == 0;
  static constexpr int kLd = tile_row_elements(kDim);
  alignas(16) __nv_bfloat16 k[kStages][kKeys * kLd];
  alignas(16) __nv_bfloat16 v[kStages][kKeys * kLd];
  // Element offset of 16-byte chunk `chunk` of row `row` in a tile.
  __device__ static __forceinline__ int at(int row, int chunk) {
    return row * kLd + (kSwizzle ? chunk ^ (row & 7) : chunk) * 8;
  }
};
// sizeof(Smem<dim, stages>), for a head_dim known only at run time.
constexpr int ring_bytes(int dim, int stages) { return 2 * stages * kKeys * tile_row_elements(dim) * 2; }
// Blocks (warps) an SM holds: shared-memory bound (228 KB, 1 KB reserved per block), at most 32 blocks (the
// limit of sm_80 and sm_90).
constexpr int warps_per_sm(int dim, int stages) {
  return std::min(32, 228 * 1024 / (ring_bytes(dim, stages) + 1024));
}

// Grid: x = kv head, y = query tile * num_splits + split, z = sequence; 32 threads. KV heads vary fastest so
// the blocks that run together read neighbouring 256-byte pieces of the same cache rows (a token's K for
// all heads is one 2 KB row at the 8B shape), not scattered ones.
// kSub: tiles computed per step of the loop (1 or 2; launch_ring says which ring gets which). kEarly: the
// first tiles of keys stored by earlier steps are requested before the wait for the kernel ahead. kRope:
// RoPE and the KV store fused in (AttentionRope above; one new token per sequence).
// (The kernels below pass their parameters by value: a reference changed the plain kernel's code.)
template <int kDim, int kStages, int kSub, bool kEarly, bool kRope>
__device__ __forceinline__ void decode_attention(AttentionParams p, StepArrays step, AttentionRope rope) {
  static_assert(kSub == 1 || (kSub == 2 && kStages >= 4), "the ring holds the step being read and the next");
  using S = Smem<kDim, kStages>;
  constexpr int kChunks = kDim / 8;                // 16-byte chunks per key row
  constexpr int kCopies = kKeys * kChunks / 32;    // cp.async per lane per tile, for K and for V each
  constexpr int kDimTiles = kDim / 8;
  static_assert(kDim % 16 == 0 && (kKeys * kChunks) % 32 == 0, "head_dim must be a multiple of 16");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  S& s = *reinterpret_cast<S*>(smem_raw);
  // Launched early (a programmatic dependent): until pdl_wait() returns, only what no kernel of the step
  // writes is read (the step's arrays and the page table, uploaded before it, and the keys and values of
  // earlier steps), so the first windows' cache slots are looked up, and the first tiles of earlier keys
  // requested, while the kernel ahead finishes. Then combine_kernel (or the matmul after) may be
  // scheduled once every block here has started; it still waits for this grid to finish before it reads a
  // partial.

  const int lane = static_cast<int>(threadIdx.x);
  const int group = p.q_heads / p.kv_heads;
  const int kv_head = static_cast<int>(blockIdx.x);
  const int q_tile = static_cast<int>(blockIdx.y) / p.num_splits;
  const int split = static_cast<int>(blockIdx.y) % p.num_splits;
  const int seq = static_cast<int>(blockIdx.z);
  const int tokens_per_tile = kRows / group;
  const int q_begin = step.query_start[seq] + q_tile * tokens_per_tile;
  const int q_end = min(q_begin + tokens_per_tile, step.query_start[seq + 1]);
  const int kv_len = step.kv_length[seq];
  const int32_t* pages = step.page_table + step.page_table_start[seq];
  if (q_begin >= q_end) return;  // this query tile is past the sequence's new tokens
  const int rows = (q_end - q_begin) * group;
  __shared__ float rope_cos[kRope ? kDim / 2 : 1], rope_sin[kRope ? kDim / 2 : 1];  // kRope: the token's table

  // Split boundaries in whole tiles, from the sequence's length, so every block of the sequence agrees. Keys
  // up to kv_len are loaded; the causal mask per row (last0/1) hides the ones a row may not see.
  const int chunk = ((kv_len + p.num_splits - 1) / p.num_splits + kKeys - 1) / kKeys * kKeys;
  const int key_begin = split * chunk;
  const int key_end = min(kv_len, key_begin + chunk);
  const int num_tiles = key_end > key_begin ? (key_end - key_begin + kKeys - 1) / kKeys : 0;

  const int64_t kv_row = static_cast<int64_t>(p.kv_heads) * kDim;
  const int64_t out_row = static_cast<int64_t>(p.q_heads) * kDim;
  const auto* k_base = reinterpret_cast<const __nv_bfloat16*>(p.k_cache) + static_cast<int64_t>(kv_head) * kDim;
  const auto* v_base = reinterpret_cast<const __nv_bfloat16*>(p.v_cache) + static_cast<int64_t>(kv_head) * kDim;
  const int page_size = step.page_size;
  const int quad_row = lane / 4, quad_col = lane % 4;
  const int row0 = quad_row, row1 = quad_row + 8;

  float o[kDimTiles][4];
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
  float max0 = -INFINITY, max1 = -INFINITY, sum0 = 0.0f, sum1 = 0.0f;

  if (num_tiles > 0) {
    // Lane l holds the cache slot of key key_begin + 32 * window + l (0 past the split: those copies are
    // zero-fills that read nothing). The next window's page is loaded a window ahead and only turned into a
    // slot when that window starts: using the load at once (page * page_size + offset) stalled the warp for
    // a whole memory round trip at every window (Nsight Compute: 11% of the kernel's stall samples at batch
    // 256). With the positions below, the kernel went from 108.8 to 106.7 us at batch 256 (H200).
    struct PendingSlot {
      int32_t page = 0, offset = 0;  // the page's load may still be in flight
    };
    auto lookup = [&](int w) -> PendingSlot {
      const int key = key_begin + w * 32 + lane;
      PendingSlot pending;
      if (key < key_end) {
        const int page_index = key / page_size;
        pending.offset = key - page_index * page_size;
        pending.page = pages[page_index];
      }
      return pending;
    };
    auto slot_of = [&](const PendingSlot& pending) { return pending.page * page_size + pending.offset; };
    int window = 0;
    const PendingSlot first_window = lookup(0);  // both windows' loads in flight before the first is used
    PendingSlot next_window = num_tiles > 2 ? lookup(1) : PendingSlot{};
    int32_t window_slot = slot_of(first_window);
    auto issue = [&](int tile) {  // warp-uniform: tiles are issued in order 0, 1, 2, ...
      if (tile / 2 != window) {
        ++window;
        window_slot = slot_of(next_window);
        next_window = (window + 1) * 2 < num_tiles ? lookup(window + 1) : PendingSlot{};
      }
      const int stage = tile % kStages;
      const int first_key = key_begin + tile * kKeys;
#pragma unroll
      for (int i = 0; i < kCopies; ++i) {
        const int e = lane + 32 * i, j = e / kChunks, c = e % kChunks;
        const int32_t slot = __shfl_sync(0xffffffffu, window_slot, (tile % 2) * kKeys + j);
        const int64_t offset = static_cast<int64_t>(slot) * kv_row + c * 8;
        const bool valid = first_key + j < key_end;
        cp_async_16(&s.k[stage][S::at(j, c)], k_base + offset, valid);
        cp_async_16(&s.v[stage][S::at(j, c)], v_base + offset, valid);
      }
    };
    // Tiles are issued up to a whole step (kSub tiles): a step's last tile past the split is a zero-filled
    // copy that reads nothing, so no stage is read uninitialised.
    const int issued_tiles = (num_tiles + kSub - 1) / kSub * kSub;
    // kEarly (launch_ring says when): the keys before the sequence's new tokens were stored by earlier
    // steps, so the first tiles that hold only those are requested before the wait; a tile with one of this
    // step's keys (stored by rope, the kernel ahead) only after it. On an H200 (one binary, a switch) the
    // batch-64 step went from 5.008-5.030 to 4.993-5.003 ms and batch 256 from 10.461 to 10.403.
    // Past the wait the kernel ahead has finished. Looking the slots up before the wait (together with
    // rope's cos/sin table before its own) took the batch-1 step from 3.892-3.899 to 3.845-3.868 ms.
    const int new_keys_begin = kv_len - (step.query_start[seq + 1] - step.query_start[seq]);
    const int early_tiles = kEarly ? min(kStages - kSub, max(0, (new_keys_begin - key_begin) / kKeys)) : 0;
#pragma unroll
    for (int t = 0; t < kStages - kSub; ++t) {
      if (t < early_tiles) {
        if (t < issued_tiles) issue(t);
        cp_async_commit();  // one group per tile, empty or not, so the wait count below stays exact
      }
    }
    pdl_wait();
    pdl_launch_dependents();
#pragma unroll
    for (int t = 0; t < kStages - kSub; ++t) {
      if (t >= early_tiles) {
        if (t < issued_tiles) issue(t);
        cp_async_commit();
      }
    }

    // kRope, in the block whose split holds the new key: lane l's piece of the token's k and v row. Neox:
    // lanes [0, kChunks / 2) hold k chunk l and its partner l + kChunks / 2 (dims i and i + kDim / 2);
    // interleaved: lanes [0, kChunks) k chunk l (four pairs). The next kChunks lanes hold v chunks.
    // Loaded here so the loads run beside the Q loads; rotated and stored to the cache after them.
    const int new_key = kv_len - 1;
    const bool holds_new_key = kRope && new_key >= key_begin && new_key < key_end;
    const int k_pieces = rope.interleaved ? kChunks : kChunks / 2;
    const int piece = lane < k_pieces ? lane : lane - k_pieces;  // k chunk, or v chunk
    const bool piece_is_k = lane < k_pieces, has_piece = lane < k_pieces + kChunks;
    uint4 new_first = make_uint4(0u, 0u, 0u, 0u), new_second = make_uint4(0u, 0u, 0u, 0u);
    if constexpr (kRope) {
      if (holds_new_key && has_piece) {
        const auto* row = reinterpret_cast<const uint4*>(piece_is_k ? rope.k + q_begin * rope.k_stride + kv_head * kDim
                                                                    : rope.v + q_begin * rope.v_stride + kv_head * kDim);
        new_first = row[piece];
        if (piece_is_k && !rope.interleaved) new_second = row[piece + kChunks / 2];
      }
    }

    // Q fragments (m16n8k16 A layout) straight from global memory while the first tiles are in flight;
    // rows past `rows` are zeros.
    const uint32_t* q0 = nullptr;
    const uint32_t* q1 = nullptr;
    // Keys [0, last + 1) are visible to the row (causal); -1 for a row past `rows`. The positions are used
    // as loaded, not + 1: an add here waited for the load at once, a memory round trip per block before its
    // first tile (Nsight Compute: 7% of the stall samples at batch 256, 15% at batch 64).
    int last0 = -1, last1 = -1;
    if (row0 < rows) {
      const int token = q_begin + row0 / group, head = kv_head * group + row0 % group;
      q0 = reinterpret_cast<const uint32_t*>(p.q + token * p.q_stride + head * kDim);
      last0 = step.positions[token];
    }
    if (row1 < rows) {
      const int token = q_begin + row1 / group, head = kv_head * group + row1 % group;
      q1 = reinterpret_cast<const uint32_t*>(p.q + token * p.q_stride + head * kDim);
      last1 = step.positions[token];
    }
    uint32_t q_frag[kDim / 16][4];
#pragma unroll
    for (int kk = 0; kk < kDim / 16; ++kk) {  // 32-bit words: dims kk*16 + 2*quad_col (+8)
      q_frag[kk][0] = q0 != nullptr ? __ldg(q0 + kk * 8 + quad_col) : 0u;
      q_frag[kk][1] = q1 != nullptr ? __ldg(q1 + kk * 8 + quad_col) : 0u;
      q_frag[kk][2] = q0 != nullptr ? __ldg(q0 + kk * 8 + 4 + quad_col) : 0u;
      q_frag[kk][3] = q1 != nullptr ? __ldg(q1 + kk * 8 + 4 + quad_col) : 0u;
    }
    if constexpr (kRope) {
      // The token's cos/sin table, as rope_and_store_kv's (the angle rounded to f32 as HF computes it,
      // sin/cos in full precision). Here, past the wait, it is computed while the first tiles and Q are in
      // flight: before the wait it sat in front of everything whenever the kernel ahead (cuBLASLt) lets no
      // dependent start early. Of a sequence's blocks (KV head, split), those whose split holds the new key
      // (kv_len - 1) rotate and store it.
      const float position = static_cast<float>(step.positions[q_begin]);
      for (int i = lane; i < kDim / 2; i += 32) {
        rope_cos_sin(position, rope.inv_freq[i], rope.attention_scaling, rope_cos[i], rope_sin[i]);
      }
      __syncwarp();
      // Q word (kk, w) holds dims 16 kk + 8 (w / 2) + 2 quad_col + {0, 1} of row0 (w even) or row1 (w odd).
      if (rope.interleaved) {
#pragma unroll
        for (int kk = 0; kk < kDim / 16; ++kk) {
#pragma unroll
          for (int w = 0; w < 4; ++w) {
            const int pair = (16 * kk + 8 * (w / 2) + 2 * quad_col) / 2;
            rope_rotate_word_interleaved(q_frag[kk][w], rope_cos[pair], rope_sin[pair]);
          }
        }
      } else {
        constexpr int kHalfWords = kDim / 16;  // 8-dim groups in the first half (kDim / 2 is a multiple of 8)
#pragma unroll
        for (int g = 0; g < kHalfWords; ++g) {
          const int partner = g + kHalfWords, dim = 8 * g + 2 * quad_col;
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            rope_rotate_words(q_frag[g / 2][2 * (g % 2) + r], q_frag[partner / 2][2 * (partner % 2) + r],
                              rope_cos + dim, rope_sin + dim);
          }
        }
      }
      if (holds_new_key && has_piece) {
        const int64_t cache_row = (step.kv_slots[q_begin] * p.kv_heads + kv_head) * kDim;
        if (piece_is_k) {
          auto* out = reinterpret_cast<uint4*>(rope.k_cache + cache_row);
          if (rope.interleaved) {
            rope_rotate_chunk_interleaved(new_first, rope_cos + 4 * piece, rope_sin + 4 * piece);
          } else {
            rope_rotate_chunks(new_first, new_second, rope_cos + 8 * piece, rope_sin + 8 * piece);
            out[piece + kChunks / 2] = new_second;
          }
          out[piece] = new_first;
        } else {
          reinterpret_cast<uint4*>(rope.v_cache + cache_row)[piece] = new_first;
        }
      }
    }
    const float scale_log2 = p.scale * kLog2e;
    const int j8 = lane / 8, r8 = lane % 8;  // ldmatrix: this lane addresses row r8 of matrix j8

    for (int tile = 0; tile < num_tiles; tile += kSub) {
#pragma unroll
      for (int j = 0; j < kSub; ++j) {
        if (tile + kStages - kSub + j < issued_tiles) issue(tile + kStages - kSub + j);
        cp_async_commit();
      }
      cp_async_wait<kStages - kSub>();  // this step's groups have landed (this lane's copies)
      __syncwarp();                     // ... and every other lane's
      const int k0 = key_begin + tile * kKeys;
      if constexpr (kRope) {
        // The tile holding the new key copied its cache row before (or while) this block stored it: the
        // rotated k and the v overwrite it here, after the copy landed.
        const int new_tile = (new_key - key_begin) / kKeys;
        if (holds_new_key && new_tile >= tile && new_tile < tile + kSub) {  // warp-uniform
          const int stage = new_tile % kStages, row = (new_key - key_begin) % kKeys;
          if (has_piece) {
            __nv_bfloat16* tile_rows = piece_is_k ? s.k[stage] : s.v[stage];
            *reinterpret_cast<uint4*>(&tile_rows[S::at(row, piece)]) = new_first;
            if (piece_is_k && !rope.interleaved) {
              *reinterpret_cast<uint4*>(&tile_rows[S::at(row, piece + kChunks / 2)]) = new_second;
            }
          }
          __syncwarp();
        }
      }

      // Scores: n-tile 2 * sub + h = keys 16 * sub + 8 * h .. + 7 of the step. With one tile per step the
      // even and odd k16 steps accumulate apart (sc and sc_odd), so each mma waits on the one two steps
      // back, not the one before (with the rescale skip below, the kernel went from 108.3 to 107.6 us at
      // batch 256 on an H200). With two tiles per step the two tiles' chains already interleave.
      constexpr int kChains = kSub == 1 ? 2 : 1;
      float sc[2 * kSub][4], sc_odd[2 * kSub][4];
#pragma unroll
      for (int t = 0; t < 2 * kSub; ++t) {
        sc[t][0] = sc[t][1] = sc[t][2] = sc[t][3] = 0.0f;
        sc_odd[t][0] = sc_odd[t][1] = sc_odd[t][2] = sc_odd[t][3] = 0.0f;
      }
#pragma unroll
      for (int sub = 0; sub < kSub; ++sub) {
        const __nv_bfloat16* sk = s.k[(tile + sub) % kStages];
#pragma unroll
        for (int kk = 0; kk < kDim / 16; ++kk) {
          uint32_t b[4];
          ldmatrix_x4(b, &sk[S::at((j8 / 2) * 8 + r8, kk * 2 + j8 % 2)]);
          float (&acc)[2 * kSub][4] = kChains == 2 && kk % 2 == 1 ? sc_odd : sc;
          mma_bf16(acc[2 * sub], q_frag[kk], b[0], b[1]);
          mma_bf16(acc[2 * sub + 1], q_frag[kk], b[2], b[3]);
        }
      }
      if constexpr (kChains == 2) {
#pragma unroll
        for (int t = 0; t < 2 * kSub; ++t) {
#pragma unroll
          for (int i = 0; i < 4; ++i) sc[t][i] += sc_odd[t][i];
        }
      }
      float tile_max0 = -INFINITY, tile_max1 = -INFINITY;
#pragma unroll
      for (int t = 0; t < 2 * kSub; ++t) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          const int key = k0 + t * 8 + quad_col * 2 + i;
          const bool in_range = key < key_end;
          sc[t][i] = in_range && key <= last0 ? sc[t][i] * scale_log2 : -INFINITY;
          sc[t][2 + i] = in_range && key <= last1 ? sc[t][2 + i] * scale_log2 : -INFINITY;
          tile_max0 = fmaxf(tile_max0, sc[t][i]);
          tile_max1 = fmaxf(tile_max1, sc[t][2 + i]);
        }
      }
      tile_max0 = quad_max(tile_max0);
      tile_max1 = quad_max(tile_max1);
      const float new_max0 = fmaxf(max0, tile_max0), new_max1 = fmaxf(max1, tile_max1);
      // A row that has seen no visible key yet keeps max -inf; exponents are then taken against 0, so every
      // term is exp2(-inf) = 0 and nothing becomes NaN.
      const float base0 = new_max0 == -INFINITY ? 0.0f : new_max0;
      const float base1 = new_max1 == -INFINITY ? 0.0f : new_max1;
      // O and the sums are rescaled only in a step where some row's running max grew. Otherwise every alpha
      // would be exp2(0) = 1 (or the row has seen no visible key, and O and its sum are still 0), so the
      // skip changes no bit; past the first few steps a new maximum is rare, and the warp saves the 64
      // multiplies of O on most steps (a warp-uniform branch: the vote is over the whole warp).
      if (__any_sync(0xffffffffu, new_max0 > max0 || new_max1 > max1)) {
        const float alpha0 = exp2f(max0 - base0), alpha1 = exp2f(max1 - base1);
        sum0 *= alpha0;
        sum1 *= alpha1;
        rescale_output(o, alpha0, alpha1);
      }
      max0 = new_max0;
      max1 = new_max1;
      float tile_sum0 = 0.0f, tile_sum1 = 0.0f;
      exponentiate_scores(sc, base0, base1, tile_sum0, tile_sum1);
      sum0 += tile_sum0;
      sum1 += tile_sum1;
#pragma unroll
      for (int sub = 0; sub < kSub; ++sub) {
        uint32_t a[4];
        probabilities_fragment(a, sc, sub);
        const __nv_bfloat16* sv = s.v[(tile + sub) % kStages];
#pragma unroll
        for (int t = 0; t < kDimTiles; t += 2) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, &sv[S::at((j8 % 2) * 8 + r8, t + j8 / 2)]);
          mma_bf16(o[t], a, b[0], b[1]);
          mma_bf16(o[t + 1], a, b[2], b[3]);
        }
      }
      __syncwarp();  // every lane is done with this step's stages before a later issue() refills them
    }
  }

  if (num_tiles == 0) {  // an empty split: nothing was looked up
    pdl_wait();
    pdl_launch_dependents();
  }
  // A row's sum is spread over its quad (each lane summed its own columns).
  sum0 = quad_sum(sum0);
  sum1 = quad_sum(sum1);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int row = half == 0 ? row0 : row1;
    if (row >= rows) continue;
    const float m = half == 0 ? max0 : max1;
    const float sum = half == 0 ? sum0 : sum1;
    const int token = q_begin + row / group, head = kv_head * group + row % group;
    if (p.num_splits == 1) {
      const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
      auto* out = reinterpret_cast<uint32_t*>(p.out + token * out_row + head * kDim);
#pragma unroll
      for (int t = 0; t < kDimTiles; ++t) {
        out[t * 4 + quad_col] = pack_bf16(o[t][2 * half] * inv, o[t][2 * half + 1] * inv);
      }
    } else {
      // An empty split (past the sequence's end) writes max -inf and sum 0; combine_kernel skips it.
      float* part =
          p.partial + ((static_cast<int64_t>(token) * p.q_heads + head) * p.num_splits + split) * (kDim + 2);
#pragma unroll
      for (int t = 0; t < kDimTiles; ++t) {
        *reinterpret_cast<float2*>(part + t * 8 + quad_col * 2) = make_float2(o[t][2 * half], o[t][2 * half + 1]);
      }
      if (quad_col == 0) {  // the combine kernel works in natural log
        *reinterpret_cast<float2*>(part + kDim) = make_float2(m == -INFINITY ? -INFINITY : m / kLog2e, sum);
      }
    }
  }
}

template <int kDim, int kStages, int kSub, bool kEarly>
__global__ void __launch_bounds__(32) attention_decode_kernel(AttentionParams p, StepArrays step) {
  decode_attention<kDim, kStages, kSub, kEarly, false>(p, step, AttentionRope{});
}
template <int kDim, int kStages, int kSub, bool kEarly>
__global__ void __launch_bounds__(32)
    attention_decode_rope_kernel(AttentionParams p, StepArrays step, AttentionRope rope) {
  decode_attention<kDim, kStages, kSub, kEarly, true>(p, step, rope);
}

// One block per (token, query head): merge the splits' partial outputs ([token, head, split, head_dim + 2],
// the max in natural log and the sum after the values). Every load goes out before the first is used, one
// memory round trip in all: each thread's value of every split, and warp 0's max and sum of two splits per
// lane. (Loading a split's value only once its weight was known cost a round trip per split: at batch 1 the
// kernel cost 4.7 us of each layer's step; this form took the step from 3.989-3.995 to 3.944-3.956 ms, and
// 4.182 to 4.123 ms at a 4k context, on an H200.)
__global__ void __launch_bounds__(128) combine_kernel(AttentionParams p) {
  __shared__ float weight[kMaxSplits];
  __shared__ float inv_total;
  // Launched as a programmatic dependent of the decode kernel: wait until that grid has completed and its
  // partials are visible (a no-op when launched normally).
  pdl_wait();
  pdl_launch_dependents();  // past the wait: the matmul after the attention may start streaming its weights
  const int64_t item = blockIdx.x;  // token * q_heads + head
  const int dim = p.head_dim, splits = p.num_splits;
  const int stride = dim + 2;
  const float* parts = p.partial + item * splits * stride;
  const int thread = static_cast<int>(threadIdx.x);
  float values[kMaxSplits];  // split s's value of this thread's output element
  const auto load_values = [&](int d) {
#pragma unroll
    for (int s = 0; s < kMaxSplits; ++s) values[s] = s < splits ? parts[s * stride + d] : 0.0f;
  };
  if (thread < dim) load_values(thread);
  if (thread < 32) {
    const int s0 = thread, s1 = thread + 32;  // kMaxSplits == 64: two splits per lane
    const float2 empty = make_float2(-INFINITY, 0.0f);
    const float2 ms0 = s0 < splits ? *reinterpret_cast<const float2*>(parts + s0 * stride + dim) : empty;
    const float2 ms1 = s1 < splits ? *reinterpret_cast<const float2*>(parts + s1 * stride + dim) : empty;
    const float global_max = warp_max(fmaxf(ms0.x, ms1.x));
    // An empty split (max -inf) gets weight 0, and its values are not used (they may be stale).
    const float w0 = ms0.x == -INFINITY ? 0.0f : __expf(ms0.x - global_max);
    const float w1 = ms1.x == -INFINITY ? 0.0f : __expf(ms1.x - global_max);
    const float total = warp_sum((w0 > 0.0f ? w0 * ms0.y : 0.0f) + (w1 > 0.0f ? w1 * ms1.y : 0.0f));
    weight[s0] = w0;
    weight[s1] = w1;
    if (thread == 0) inv_total = total > 0.0f ? 1.0f / total : 0.0f;
  }
  __syncthreads();
  for (int d = thread; d < dim; d += static_cast<int>(blockDim.x)) {
    if (d != thread) load_values(d);  // head_dim > 128
    float value = 0.0f;
#pragma unroll
    for (int s = 0; s < kMaxSplits; ++s) {
      const float w = s < splits ? weight[s] : 0.0f;
      value += w > 0.0f ? values[s] * w : 0.0f;  // a select: a stale NaN of an empty split stays out
    }
    p.out[item * dim + d] = f32_to_bf16_bits(value * inv_total);
  }
}

// Warps per resident slot the split count aims at: 1 by default. Measured on an H200 at the 8B shape
// (graph split counts): 1 wave 2.05 / 3.41 TB/s of K/V at batch 64 / 256, 2 waves 1.88 / 3.23, 4 waves
// 1.69 / 3.24 (more splits cost partial traffic and combine work). RADIXLM_DECODE_SPLIT_WAVES=1..16
// overrides it, for tuning runs on the GPU.
inline int split_waves_from_env() {
  static const int waves = env_int("RADIXLM_DECODE_SPLIT_WAVES", 1, 16, 1);
  return waves;
}

// Splits for a decode step (max_query_len * group <= kRows): as many one-warp blocks as fit in
// split_waves_from_env() waves of resident slots on every SM (rounded down: rounding up left a second,
// half-empty wave at batch 64, 512 (sequence, KV head) items on 1056 slots), at least one split, and every
// split at least one tile long. Under static steps (CUDA graphs) max_kv_len is huge, so the count depends
// on the batch size alone; splits past a short sequence's end find no keys and only write an empty partial.
inline int32_t num_splits(const StepArrays& step, int32_t q_heads, int32_t kv_heads, int32_t head_dim,
                          int32_t num_sms) {
  const int group = q_heads / kv_heads;
  const int64_t q_tiles = (step.max_query_len + kRows / group - 1) / (kRows / group);
  const int64_t items = static_cast<int64_t>(step.num_seqs) * kv_heads * q_tiles;
  const int64_t slots = static_cast<int64_t>(split_waves_from_env()) * warps_per_sm(head_dim, kRing) * num_sms;
  const int64_t want = slots / items;
  const int64_t most = std::max<int64_t>(1, (static_cast<int64_t>(step.max_kv_len) + kKeys - 1) / kKeys);
  return static_cast<int32_t>(std::clamp<int64_t>(std::min(want, most), 1, kMaxSplits));
}

// The deep ring computes two tiles per step: its warps (one per scheduler) are latency-bound, so the two
// tiles' Q K^T mma chains interleave and the softmax's shuffles, the rescale vote and the loop overhead are
// paid once per 32 keys; on an H200 its kernel went from 19.0-19.4 to 17.8-18.2 us at batch 64 (batch-64
// steps unchanged within noise). The shallow ring keeps one tile per step, so 3 of its 4 tiles stay in
// flight: two per step made its kernel test faster (batch 256, contexts 128-640: 104.9 against 108.0 us)
// but batch-256 steps (equal contexts) 0.3-1.6% slower over three calls, so it was not kept.
// The early tiles (kEarly: attention_decode_kernel) only for batches of more than one sequence. On an H200
// (two instantiations in one binary, three alternating rounds) the batch-1 step ran 3.868-3.869 ms with
// them against 3.848-3.852 without (and 3.847-3.852 for the build before them). Why is not measured: at
// batch 1 every split but the one holding the new key is a single early tile, off the critical path, and
// those requests may only slow rope, the short kernel ahead that is on it. With RoPE fused in (no rope kernel
// ahead) the early tiles still lost at batch 1: 3.860-3.879 ms against 3.837-3.855 (2026-11-25 08:46 call).
template <int kDim, int kStages>
void launch_ring(const AttentionParams& p, const StepArrays& step, dim3 grid, cudaStream_t stream,
                 const AttentionRope* rope) {
  constexpr int kSub = kStages == kDeepRing ? 2 : 1;
  const auto early = attention_decode_kernel<kDim, kStages, kSub, true>;
  const auto late = attention_decode_kernel<kDim, kStages, kSub, false>;
  const auto rope_early = attention_decode_rope_kernel<kDim, kStages, kSub, true>;
  const auto rope_late = attention_decode_rope_kernel<kDim, kStages, kSub, false>;
  const size_t smem = sizeof(Smem<kDim, kStages>);
  static_assert(sizeof(Smem<kDim, kStages>) == ring_bytes(kDim, kStages), "warps_per_sm counts this ring");
  static bool configured = false;
  if (!configured) {  // the whole carveout as shared memory, so the ring's warps per SM fit
    const void* kernels[] = {reinterpret_cast<const void*>(early), reinterpret_cast<const void*>(late),
                             reinterpret_cast<const void*>(rope_early), reinterpret_cast<const void*>(rope_late)};
    for (const void* kernel : kernels) {
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
      cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
    }
    configured = true;
  }
  if (rope != nullptr) {
    launch_programmatic(step.num_seqs > 1 ? rope_early : rope_late, grid, dim3(32), smem, stream, p, step, *rope);
  } else {
    launch_programmatic(step.num_seqs > 1 ? early : late, grid, dim3(32), smem, stream, p, step);
  }
}

// rope: RoPE and the KV store fused in (AttentionRope, above), or null.
template <int kDim>
void launch(const AttentionParams& p, const StepArrays& step, cudaStream_t stream,
            const AttentionRope* rope = nullptr) {
  const int group = p.q_heads / p.kv_heads;
  const unsigned int q_tiles = ceil_div_u(step.max_query_len, kRows / group);
  const dim3 grid(static_cast<unsigned int>(p.kv_heads), q_tiles * static_cast<unsigned int>(p.num_splits),
                  static_cast<unsigned int>(step.num_seqs));
  const int64_t blocks = static_cast<int64_t>(grid.x) * grid.y * grid.z;
  static const bool shallow_enabled = env_switch_on("RADIXLM_DECODE_SHALLOW_RING");
  if (blocks <= static_cast<int64_t>(p.num_sms) * warps_per_sm(kDim, kDeepRing)) {
    launch_ring<kDim, kDeepRing>(p, step, grid, stream, rope);
  } else if (shallow_enabled && blocks > int64_t{kShallowWaves} * p.num_sms * warps_per_sm(kDim, kRing)) {
    launch_ring<kDim, kShallowRing>(p, step, grid, stream, rope);
  } else {
    launch_ring<kDim, kRing>(p, step, grid, stream, rope);
  }
  if (p.num_splits > 1) {
    // Programmatic dependent launch hides the combine's launch latency behind the decode kernel's tail
    // (batch 1 is latency-bound).
    launch_programmatic(combine_kernel, dim3(static_cast<unsigned int>(step.num_tokens * p.q_heads)), dim3(128), 0,
                        stream, p);
  }
}

}  // namespace radixlm::cuda::decode
