// Products of 9-64 tokens for the formats decoded straight into mma fragments (mmv_frag.cuh),
// with the activations shared: a thread block owns 128 rows (16 per warp) and a range of k, and
// all its warps step through that range together, so each chunk of the tokens' activations is
// copied into shared memory once for 128 rows (read from L2 once per 128 rows, not per 16). Both
// the weights and the activations of a chunk arrive by asynchronous copies, two stages deep.
// It takes matrices of few rows (o_proj, ffn_down), splitting k over several blocks, whose sums
// meet in y by atomic adds (y cleared first); many rows go to mmv_f16.cu's 16-row blocks.
#include <cuda_fp16.h>
#include <cuda_pipeline.h>

#include <algorithm>

#include "cuda/check.h"
#include "cuda/formats.cuh"
#include "cuda/kernels.h"
#include "cuda/mma.cuh"
#include "cuda/mmv_frag.cuh"
#include "cuda/pdl.cuh"

namespace jing::cuda::detail {
namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32, kRows = 16 * kWarps, kStages = 2;

// Chunks of 256 weights (the activation tile of 64 tokens stays at 32 KB), whatever the bytes.
template <class F>
__host__ __device__ constexpr int chunk_blocks() {
  return F::kWeights >= 256 ? 1 : 256 / F::kWeights;
}
// A token's row of the activation tile: 4 x 16 bytes past a multiple of 128, so the 16-byte loads
// of two tokens' 4 lanes fall on distinct banks.
template <class F>
__host__ __device__ constexpr int x_stride() {
  int s = chunk_blocks<F>() * F::kWeights * 2;
  while ((s / 16) % 8 != 4) s += 16;
  return s;
}
template <class F, int NT8>
__host__ __device__ constexpr int stage_bytes() {
  return kRows * mmvfrag::tile_stride<F, chunk_blocks<F>()>() + 8 * NT8 * x_stride<F>();
}

template <class F, int NT8>
__global__ void __launch_bounds__(kThreads) mmv_frag_kernel(const MmaCall c, int chunks_per_split) {
  using Fr = mmvfrag::Frag<F>;
  constexpr int kCB = chunk_blocks<F>(), kChunkBytes = kCB * F::kBytes, kWS = mmvfrag::tile_stride<F, chunk_blocks<F>()>(), kXS = x_stride<F>();
  constexpr int kStage = stage_bytes<F, NT8>();
  extern __shared__ __align__(16) uint8_t smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  const uint8_t* const w = static_cast<const uint8_t*>(c.w);
  const __half* const x = static_cast<const __half*>(c.x);
  const int64_t first = static_cast<int64_t>(blockIdx.y) * (8 * NT8);
  const int n = static_cast<int>(min(static_cast<int64_t>(8 * NT8), c.n_tokens - first));
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int blocks = static_cast<int>(c.cols / F::kWeights), chunks = (blocks + kCB - 1) / kCB;
  const int c_begin = static_cast<int>(blockIdx.z) * chunks_per_split, tiles = min(chunks, c_begin + chunks_per_split) - c_begin;
  if (tiles <= 0) return;

  auto src_of = [&](int64_t r, int ch) { return w + min(row0 + r, c.rows - 1) * static_cast<int64_t>(c.row_bytes) + ch * kChunkBytes; };
  // Stage i % kStages receives chunk c_begin + i: the 128 rows' bytes and the tokens' activations.
  auto fetch = [&](int i) {
    if (i < tiles) {
      const int ch = c_begin + i;
      uint8_t* dst = smem + (i % kStages) * kStage;
      const int nb = min(kCB, blocks - ch * kCB), bytes = nb * F::kBytes;
      constexpr int kPieces = (kChunkBytes + 30) / 16;
      for (int p = threadIdx.x; p < kRows * kPieces; p += kThreads) {
        const int r = p / kPieces, q = p % kPieces;
        const uint8_t* src = src_of(r, ch);
        const int off = static_cast<int>(reinterpret_cast<uintptr_t>(src) % 16);
        if (16 * q < off + bytes) __pipeline_memcpy_async(dst + r * kWS + 16 * q, src - off + 16 * q, 16);
      }
      uint8_t* xd = dst + kRows * kWS;
      const int x_pieces = nb * F::kWeights / 8;  // 8 halves per piece
      const __half* xs = x + first * c.cols + static_cast<int64_t>(ch) * kCB * F::kWeights;
      for (int p = threadIdx.x; p < n * x_pieces; p += kThreads) {
        const int t = p / x_pieces, q = p % x_pieces;
        __pipeline_memcpy_async(xd + t * kXS + 16 * q, xs + t * c.cols + 8 * q, 16);
      }
    }
    __pipeline_commit();
  };
  wait_for_previous_kernel();  // the activations come from the previous kernel
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) fetch(s);

  float acc[NT8][4] = {};
  for (int i = 0; i < tiles; ++i) {
    __syncthreads();  // every warp is done with the stage the next fetch refills
    fetch(i + kStages - 1);
    __pipeline_wait_prior(kStages - 1);
    __syncthreads();
    const int ch = c_begin + i;
    const uint8_t* st = smem + (i % kStages) * kStage;
    const uint8_t* rowp[2];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int r = 16 * warp + g + 8 * j;
      rowp[j] = st + r * kWS + reinterpret_cast<uintptr_t>(src_of(r, ch)) % 16;
    }
    const __half* xt = reinterpret_cast<const __half*>(st + kRows * kWS) + 8 * t4;
    const int nb = min(kCB, blocks - ch * kCB);
    for (int bi = 0; bi < nb; ++bi) {
#pragma unroll
      for (int call = 0; call < Fr::kCalls; ++call)
        mmvfrag::mma_call<F, NT8>(acc, rowp[0] + bi * F::kBytes, rowp[1] + bi * F::kBytes, call, t4, c.tab, [&](int item, int nt) {
          return *reinterpret_cast<const uint4*>(xt + (8 * nt + g) * (kXS / 2) + bi * F::kWeights + 32 * item);
        });
    }
  }
  __pipeline_wait_prior(0);
  let_next_kernel_start();

  const bool split = gridDim.z > 1;
#pragma unroll
  for (int nt = 0; nt < NT8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t r = row0 + 16 * warp + g + (e >= 2 ? 8 : 0);
      const int t = 8 * nt + 2 * t4 + (e & 1);
      if (r < c.rows && t < n) {
        float* out = c.y + (first + t) * c.y_stride + r;
        if (split) atomicAdd(out, acc[nt][e]);
        else *out = acc[nt][e];
      }
    }
}

template <class F, int NT8>
bool launch(const MmaCall& c, cudaStream_t s) {
  constexpr size_t bytes = static_cast<size_t>(kStages) * stage_bytes<F, NT8>();
  allow_dynamic_smem<mmv_frag_kernel<F, NT8>>(bytes, "mmv_frag shared memory");
  static const int slots = [] {  // blocks resident on the GPU at once
    int per_sm = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, mmv_frag_kernel<F, NT8>, kThreads, bytes), "mmv_frag occupancy");
    return std::max(1, per_sm) * sm_count();
  }();
  const int64_t row_blocks = (c.rows + kRows - 1) / kRows;
  // Matrices of many rows fill the GPU with mmv_f16's 16-row blocks (measured faster there: more
  // warps resident); this kernel is for the few-row ones, k split over blocks.
  if (2 * row_blocks > slots) return false;
  const int chunks = static_cast<int>((c.cols / F::kWeights + chunk_blocks<F>() - 1) / chunk_blocks<F>());
  // k split over blocks when the rows alone leave the GPU half empty, up to one wave (a second,
  // partial wave would take as long as the first).
  const int want = static_cast<int>(std::min<int64_t>(chunks, std::max<int64_t>(1, slots / row_blocks)));
  const int per_split = (chunks + want - 1) / want, splits = (chunks + per_split - 1) / per_split;
  const int64_t token_tiles = (c.n_tokens + 63) / 64;
  if (splits > 1)
    check(cudaMemsetAsync(c.y, 0, static_cast<size_t>(c.n_tokens) * static_cast<size_t>(c.y_stride) * sizeof(float), s), "mmv_frag: clear");
  const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>(token_tiles), static_cast<unsigned>(splits));
  mmv_frag_kernel<F, NT8><<<grid, kThreads, bytes, s>>>(c, per_split);
  check(cudaGetLastError(), "mmv_frag");
  return true;
}

}  // namespace

bool mmv_frag(const MmaCall& c, int max_tokens, cudaStream_t s) {
  if (c.items || max_tokens < 1 || max_tokens > 64 || c.rows == 0) return false;
  bool done = false;
  fmt::with_format(c.type, [&](auto f) {
    using F = decltype(f);
    if constexpr (mmvfrag::Frag<F>::kFast) {
      if (c.cols % F::kWeights || (reinterpret_cast<uintptr_t>(c.w) | c.row_bytes) % F::kAlign) return;
      done = max_tokens <= 16 ? launch<F, 2>(c, s) : max_tokens <= 32 ? launch<F, 4>(c, s) : launch<F, 8>(c, s);
    }
  });
  return done;
}

}  // namespace jing::cuda::detail
