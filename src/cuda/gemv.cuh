// Matrix-vector products for 1-8 tokens, weights in any block format (the decode path).
// One warp owns R rows at a time. It copies a chunk of each row (a whole number of blocks) into
// shared memory with 16-byte asynchronous copies, coalesced and independent of the format's
// block size, several chunks ahead of the one it decodes; then each lane decodes items (32 or
// 64 weights) from shared memory and takes their integer dot products with the activations,
// rounded to 8 bits as the CPU engine does. An item is decoded once for all tokens, and each
// token's activations are loaded once for all R rows.
#pragma once
#include <cuda_pipeline.h>

#include <type_traits>

#include "cuda/formats.cuh"
#include "cuda/gemv_batch.h"
#include "cuda/pdl.cuh"
#include "cuda/reduce.cuh"

namespace jing::cuda {

struct GemvArgs {
  const uint8_t* w = nullptr;
  size_t row_bytes = 0;
  int64_t rows = 0;
  int blocks = 0;          // blocks per row
  const int8_t* xq = nullptr;     // [n_tokens][cols] 8-bit activations
  const float4* xrec = nullptr;   // [n_tokens][cols / 32] {d, s, sum0, sum1}
  int64_t cols = 0;
  int n_tokens = 0;
  float* y = nullptr;      // [n_tokens][rows]
  fmt::Tables tab;
  GemvBatch batch;         // batched: n_tokens == 1, blockIdx.y picks the product
  GemvParts parts;         // or several weights: blockIdx.y picks the weight
  int k_split = 1;         // kGemvWarps: a block's warps share one row group, each taking every
                           // kGemvWarps-th chunk of it (long rows, few of them; one call's own weight)
};

// Where this block's product reads and writes: the call's own weight, one of its parts, or a
// batched product (blockIdx.y). With device-chosen matrices (ids) it waits for the kernel that
// wrote them first. (The arguments stay read-only: writing to them would copy them to local memory.)
struct GemvTarget {
  const uint8_t* w;
  int64_t rows;
  float* y;
  int64_t x_row;  // the first activation row
  int n_tokens;
};
template <class Args>
__device__ __forceinline__ GemvTarget gemv_target(const Args& a) {
  GemvTarget t{a.w, a.rows, a.y, 0, a.n_tokens};
  const GemvBatch& b = a.batch;
  if (b.items) {
    wait_for_previous_kernel();
    const int32_t* it = b.items + 3 * static_cast<int64_t>(blockIdx.y);
    const int e = __ldg(it), first = __ldg(it + 1);
    t.n_tokens = __ldg(it + 2);
    if (t.n_tokens <= 0) t.rows = 0;  // an unused item: no work
    t.w += static_cast<int64_t>(e) * b.mat_bytes;
    t.x_row = first;
    t.y += static_cast<int64_t>(first) * b.y_stride;
  } else if (b.count) {
    const int p = static_cast<int>(blockIdx.y);
    int e;
    if (b.ids) {
      wait_for_previous_kernel();
      e = __ldg(b.ids + p) - b.id_first;
      if (e < 0 || e >= b.id_count) e = 0, t.rows = 0;  // another GPU's expert
    } else {
      e = p % b.n_mats;
    }
    t.w += static_cast<int64_t>(e) * b.mat_bytes;
    t.x_row = p / b.x_div;
    t.y += static_cast<int64_t>(p) * b.y_stride;
  }
  return t;
}

constexpr int kGemvWarps = 4;  // warps per thread block: small blocks spread evenly over the SMs

// Rows per warp: formats of at most 5 bits per weight decode many weights per byte, so four
// rows share each activation load; wider formats take two (less shared memory per warp).
template <class F>
__host__ __device__ constexpr int gemv_rows() {
  return F::kBytes * 8 <= 5 * F::kWeights ? 4 : 2;
}

// Blocks per chunk of a row: a whole number of items per lane, a multiple of 16 bytes, and at
// least 2 KB per tile of R rows, so the copy loop's overhead is spread over enough bytes.
template <class F, int R>
__host__ __device__ constexpr int chunk_blocks() {
  int b = 32 / (F::kWeights / (32 * fmt::item_groups<F>::value));
  while ((b * F::kBytes) % 16 || b * F::kBytes * R < 2048) b *= 2;
  return b;
}

// Tiles in shared memory per warp: about 4 KB per warp in flight while it decodes (DRAM latency
// x bandwidth over the resident warps), whatever the format's tile size.
template <class F, int R>
__host__ __device__ constexpr int gemv_stages() {
  const int tile = R * chunk_blocks<F, R>() * F::kBytes;
  const int ahead = (4096 + tile - 1) / tile;
  return ahead + 1 > 4 ? 4 : ahead + 1;
}

// A warp copies `bytes` from global to shared memory with 16-byte asynchronous copies, coalesced:
// from the 16-byte boundary at or below src, so the bytes land `src % 16` past dst (rows of
// formats whose blocks are not a multiple of 16 bytes start anywhere; the caller commits and
// waits). dst needs room for bytes + 15. Without `shifted` (a base not aligned even to the
// format's own blocks) byte by byte, landing at dst.
template <int kMaxBytes>
__device__ __forceinline__ void copy_chunk(uint8_t* dst, const uint8_t* src, int bytes, int lane, bool shifted) {
  if (shifted) {
    const int off = static_cast<int>(reinterpret_cast<uintptr_t>(src) % 16);
    const uint8_t* from = src - off;
    const int pieces = (off + bytes + 15) / 16;
#pragma unroll
    for (int i = 0; i < (kMaxBytes + 15) / 16 / 32 + 1; ++i) {
      const int p = lane + 32 * i;
      if (p < pieces) __pipeline_memcpy_async(dst + 16 * p, from + 16 * p, 16);
    }
  } else {
    for (int p = lane; p < bytes; p += 32) dst[p] = src[p];
  }
}

__device__ __forceinline__ fmt::Q8Item load_activations(const int8_t* q, const float4* rec) {
  fmt::Q8Item x;
  const int4 q0 = __ldg(reinterpret_cast<const int4*>(q)), q1 = __ldg(reinterpret_cast<const int4*>(q) + 1);
  x.q[0] = q0.x, x.q[1] = q0.y, x.q[2] = q0.z, x.q[3] = q0.w;
  x.q[4] = q1.x, x.q[5] = q1.y, x.q[6] = q1.z, x.q[7] = q1.w;
  const float4 r = __ldg(rec);
  x.d = r.x, x.s = r.y, x.sum0 = __float_as_int(r.z), x.sum1 = __float_as_int(r.w);
  return x;
}

// A warp's position in its work: row group g, chunk c of the row (its chunks are c_first,
// c_first + c_step, ...), shared-memory stage.
struct TileCursor {
  int64_t g;
  int c, stage, c_first, c_step;
  template <int kStages>
  __device__ __forceinline__ void next(int chunks, int64_t stride) {
    if ((c += c_step) >= chunks) c = c_first, g += stride;
    if (++stage == kStages) stage = 0;
  }
};

// The warp's sum of each (row, token) accumulator, handed to put(r, k, sum) on every lane.
template <int R, int NT, class Put>
__device__ __forceinline__ void each_lane_sum(const float (&acc)[R][NT], Put&& put) {
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int k = 0; k < NT; ++k) put(r, k, warp_sum(acc[r][k]));
}

// NT: token columns (a.n_tokens <= NT; the columns past n_tokens are skipped).
template <class F, int NT, int R>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_q8_kernel(GemvArgs a) {
  constexpr int kGroups = fmt::item_groups<F>::value;  // 32-weight groups per item
  constexpr int kItems = F::kWeights / (32 * kGroups), kChunkBlocks = chunk_blocks<F, R>(), kChunkBytes = kChunkBlocks * F::kBytes;
  constexpr int kStages = gemv_stages<F, R>(), kPerLane = kChunkBlocks * kItems / 32;
  constexpr int kRowStride = kChunkBytes + 16;  // room for a row's start up to 15 bytes past the tile's
  constexpr int kAlign = (F::kBytes & -F::kBytes) < 16 ? (F::kBytes & -F::kBytes) : 16;  // blocks' own alignment
  __shared__ __align__(16) uint8_t smem[kGemvWarps][kStages][R][kRowStride];
  GemvTarget tg = gemv_target(a);
  if (a.parts.count) {
    static_assert(kMaxGemvParts == 3, "constant indices keep the parts in parameter space");
    const GemvPart& pt = blockIdx.y == 0 ? a.parts.part[0] : blockIdx.y == 1 ? a.parts.part[1] : a.parts.part[2];
    tg.w = static_cast<const uint8_t*>(pt.w), tg.rows = pt.rows, tg.y = pt.y;
  }
  const uint8_t* const wbase = tg.w;
  const int64_t rows = tg.rows;
  const int n_tokens = tg.n_tokens;
  float* const y = tg.y;
  const int8_t* const xq_base = a.xq + tg.x_row * a.cols;
  const float4* const xrec_base = a.xrec + tg.x_row * (a.cols / 32);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  uint8_t* const tiles_smem = &smem[warp][0][0][0];
  const int64_t groups = (rows + R - 1) / R;
  const int chunks = (a.blocks + kChunkBlocks - 1) / kChunkBlocks;
  // A warp owns row groups first, first + stride, ... and of each the chunks c_first, c_first + c_step, ...
  const bool split = a.k_split > 1;
  const int64_t first = split ? blockIdx.x : static_cast<int64_t>(blockIdx.x) * kGemvWarps + warp;
  const int64_t stride = split ? gridDim.x : static_cast<int64_t>(gridDim.x) * kGemvWarps;
  const int c_first = split ? warp : 0, c_step = split ? kGemvWarps : 1;
  const int my_chunks = c_first < chunks ? (chunks - c_first + c_step - 1) / c_step : 0;
  const int tiles = first < groups ? static_cast<int>((groups - first + stride - 1) / stride) * my_chunks : 0;
  const bool shifted = (reinterpret_cast<uintptr_t>(wbase) | a.row_bytes) % kAlign == 0;
  // Where row r of the tile starts in shared memory (chunks are multiples of 16 bytes, so this
  // depends on the row alone).
  auto row_offset = [&](int64_t row) { return shifted ? static_cast<int>(reinterpret_cast<uintptr_t>(wbase + row * a.row_bytes) % 16) : 0; };

  // Copies one tile (a chunk of R rows) into its stage; every call commits one group of copies
  // (maybe empty), so the waits count uniformly.
  TileCursor fc{first, c_first, 0, c_first, c_step};
  int fetched = 0;
  auto fetch = [&]() {
    if (fetched < tiles) {
      const int bytes = min(kChunkBlocks, a.blocks - fc.c * kChunkBlocks) * F::kBytes;
      const uint8_t* src = wbase + static_cast<int64_t>(fc.c) * kChunkBytes;
      uint8_t* dst = tiles_smem + fc.stage * (R * kRowStride);
#pragma unroll
      for (int r = 0; r < R; ++r)
        copy_chunk<kChunkBytes>(dst + r * kRowStride, src + min(fc.g * R + r, rows - 1) * a.row_bytes, bytes, lane, shifted);
      fc.next<kStages>(chunks, stride);
      ++fetched;
    }
    __pipeline_commit();
  };

  // The weights do not depend on the previous kernel: start fetching them before waiting for it.
  // A codebook the format looks up goes into shared memory with the first tiles (one group of
  // asynchronous copies), so its latency hides behind theirs.
  fmt::Tables tab = a.tab;
  __shared__ __align__(16) uint32_t grid[fmt::reads_iq1s_grid<F> ? fmt::kIq1sGridEntries : 4];
  if constexpr (fmt::reads_iq1s_grid<F>)
    for (int i = threadIdx.x; i < fmt::kIq1sGridEntries / 4; i += blockDim.x) __pipeline_memcpy_async(grid + 4 * i, a.tab.iq1s_nib + 4 * i, 16);
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) fetch();
  if constexpr (fmt::reads_iq1s_grid<F>) {
    static_assert(kStages >= 2, "the codebook arrives with the first group of copies");
    __pipeline_wait_prior(kStages - 2);
    __syncthreads();
    tab.iq1s_nib = grid;
  }
  wait_for_previous_kernel();
  let_next_kernel_start();  // the next call's activation rounding may launch (it waits for us)

  float acc[R][NT] = {};
  TileCursor cc{first, c_first, 0, c_first, c_step};
  for (int t = 0; t < tiles; ++t) {
    fetch();  // into the stage consumed in the previous iteration
    const int n_items = min(kChunkBlocks, a.blocks - cc.c * kChunkBlocks) * kItems;
    const int64_t group0 = static_cast<int64_t>(cc.c) * kChunkBlocks * (F::kWeights / 32);  // first 32-weight group of the chunk
    const int8_t* xq = xq_base + group0 * 32;
    const float4* xrec = xrec_base + group0;
    // The 32-weight group of the chunk that group g of item `it` covers.
    auto group = [](int it, int g) { return it / kItems * (F::kWeights / 32) + fmt::item_group<F>(it % kItems, g); };
    // One token: this tile's activations are requested before waiting for its weights.
    fmt::Q8Item x1[NT == 1 ? kPerLane : 1][kGroups];
    if constexpr (NT == 1) {
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) {
        const int it = min(lane + 32 * i, n_items - 1);
#pragma unroll
        for (int g = 0; g < kGroups; ++g) x1[i][g] = load_activations(xq + group(it, g) * 32, xrec + group(it, g));
      }
    }
    __pipeline_wait_prior(kStages - 1);
    __syncwarp();
    if (cc.c == c_first) {
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int k = 0; k < NT; ++k) acc[r][k] = 0.f;
    }
    const uint8_t* tile = tiles_smem + cc.stage * (R * kRowStride);
    int off[R];
#pragma unroll
    for (int r = 0; r < R; ++r) off[r] = r * kRowStride + row_offset(min(cc.g * R + r, rows - 1));
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int it = lane + 32 * i;
      if (it < n_items) {
        F f[R];
#pragma unroll
        for (int r = 0; r < R; ++r) f[r].load(tile + off[r] + it / kItems * F::kBytes, it % kItems, tab);
#pragma unroll
        for (int k = 0; k < NT; ++k) {
          // An item's tokens (grouped experts: mostly one or two of NT) or a call's: the columns
          // past them are neither computed nor written.
          if (NT > 1 && k >= n_tokens) break;
          fmt::Q8Item x[kGroups];
          if constexpr (NT == 1) {
#pragma unroll
            for (int g = 0; g < kGroups; ++g) x[g] = x1[i][g];
          } else {
            const int64_t tok = k;
#pragma unroll
            for (int g = 0; g < kGroups; ++g)
              x[g] = load_activations(xq + tok * a.cols + group(it, g) * 32, xrec + tok * (a.cols / 32) + group(it, g));
          }
#pragma unroll
          for (int r = 0; r < R; ++r) {
            if constexpr (kGroups == 2) acc[r][k] += f[r].dot2(x[0], x[1]);
            else acc[r][k] += f[r].dot(x[0]);
          }
        }
      }
    }
    __syncwarp();
    if (!split && cc.c == chunks - 1)
      each_lane_sum(acc, [&](int r, int k, float v) {
        const int64_t row = cc.g * R + r;
        if (lane == 0 && row < rows && k < n_tokens) y[k * rows + row] = v;
      });
    cc.next<kStages>(chunks, stride);
  }
  if (split) {  // one row group per block: the warps' sums meet in shared memory, in warp order
    __shared__ float part[kGemvWarps][R * NT];
    each_lane_sum(acc, [&](int r, int k, float v) {
      if (lane == 0) part[warp][r * NT + k] = v;
    });
    __syncthreads();
    if (warp == 0 && lane < R * NT) {
      const int r = lane / NT, k = lane % NT;
      float v = part[0][lane];
#pragma unroll
      for (int w = 1; w < kGemvWarps; ++w) v += part[w][lane];
      const int64_t row = first * R + r;
      if (first < groups && row < rows && k < n_tokens) y[k * rows + row] = v;
    }
  }
}

// Float weights (F32/F16/BF16) with float activations: each lane reads 8 consecutive weights
// per step with 16- or 32-byte loads; needs cols % 8 == 0 and 16-byte aligned rows and x.
struct GemvFloatArgs {
  const uint8_t* w = nullptr;
  size_t row_bytes = 0;
  int64_t rows = 0, cols = 0;
  const float* x = nullptr;  // [n_tokens][cols]
  int n_tokens = 0;
  float* y = nullptr;
  GemvBatch batch;  // as GemvArgs::batch
};

template <class F>
__device__ __forceinline__ void load8(const uint8_t* p, float w[8]) {
  if constexpr (std::is_same_v<F, fmt::F32>) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p)), b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w, w[4] = b.x, w[5] = b.y, w[6] = b.z, w[7] = b.w;
  } else {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (std::is_same_v<F, fmt::F16>) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&u[i]));
        w[2 * i] = f.x, w[2 * i + 1] = f.y;
      } else {  // BF16
        w[2 * i] = __uint_as_float(u[i] << 16), w[2 * i + 1] = __uint_as_float(u[i] & 0xFFFF0000u);
      }
    }
  }
}

template <class F, int NT, int R>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_float_kernel(GemvFloatArgs a) {
  constexpr int kElem = F::kBytes / 32;  // bytes per weight
  const int lane = threadIdx.x % 32;
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kGemvWarps + threadIdx.x / 32;
  if (g * R >= a.rows) return;
  const GemvTarget tg = gemv_target(a);
  const float* const xb = a.x + tg.x_row * a.cols;
  wait_for_previous_kernel();
  float acc[R][NT] = {};
#pragma unroll 2
  for (int64_t k0 = 8 * lane; k0 < a.cols; k0 += 256) {
    float w[R][8];
#pragma unroll
    for (int r = 0; r < R; ++r) load8<F>(tg.w + min(g * R + r, a.rows - 1) * a.row_bytes + k0 * kElem, w[r]);
#pragma unroll
    for (int k = 0; k < NT; ++k) {
      const float4* xp = reinterpret_cast<const float4*>(xb + min(k, a.n_tokens - 1) * a.cols + k0);
      const float4 x0 = __ldg(xp), x1 = __ldg(xp + 1);
      const float x[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[r][k] += w[r][j] * x[j];
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int k = 0; k < NT; ++k) {
      float v = acc[r][k];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
      const int64_t row = g * R + r;
      if (lane == 0 && row < a.rows && k < a.n_tokens) tg.y[k * a.rows + row] = v;
    }
}

// Any float row (odd lengths, unaligned rows): one warp per row, one element per lane and step.
template <class F>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_float_scalar_kernel(GemvFloatArgs a) {
  const int lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kGemvWarps + threadIdx.x / 32;
  if (row >= a.rows) return;
  const GemvTarget tg = gemv_target(a);
  const float* const xb = a.x + tg.x_row * a.cols;
  wait_for_previous_kernel();
  const uint8_t* w = tg.w + row * a.row_bytes;
  for (int k = 0; k < a.n_tokens; ++k) {
    float v = 0.f;
    for (int64_t j = lane; j < a.cols; j += 32) v += F::value(w, static_cast<int>(j)) * xb[k * a.cols + j];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    if (lane == 0) tg.y[k * a.rows + row] = v;
  }
}

}  // namespace jing::cuda
