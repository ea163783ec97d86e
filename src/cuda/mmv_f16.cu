// Products of 9-64 tokens (batched decode: the server's many streams) on the tensor cores, with
// each weight read once for all tokens. A thread block owns 16 rows (formats decoded straight into
// mma fragments, mmv_frag.cuh) or 32 (the rest); its 8 warps take every 8th chunk of those rows
// (a few blocks of the format, about 128 bytes per row), so even a matrix of few rows keeps many
// copies in flight. A warp copies its chunk of the rows into shared memory asynchronously (two
// stages), decodes it item by item (32 weights) to f16 and multiplies the rows by the tokens, 8
// per mma.m16n8k16. The warps' partial sums are added in shared memory at the end.
//
// The k order inside an item is permuted the same way for weights and activations: lane
// (g, t4) of an mma holds the item's weights 8 t4 .. 8 t4 + 7 of its rows and the same
// activations, so both come from single 16-byte loads (a dot product does not care about order).
#include <cuda_fp16.h>
#include <cuda_pipeline.h>

#include <algorithm>
#include <cstdlib>

#include "cuda/check.h"
#include "cuda/formats.cuh"
#include "cuda/kernels.h"
#include "cuda/mma.cuh"
#include "cuda/mmv_frag.cuh"
#include "cuda/pdl.cuh"

namespace jing::cuda::detail {
namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32, kStages = 2;
constexpr int kALd = 40;  // halves per row of a warp's f16 item tile (80 bytes: 16-byte stores hit distinct banks)

// 16-row mma tiles per block: formats decoded into fragments take one (twice the blocks: more
// warps resident per SM); the generic path decodes one row per lane, 32 rows.
template <class F>
__host__ __device__ constexpr int m_tiles() {
  return mmvfrag::Frag<F>::kFast ? 1 : 2;
}
template <class F>
__host__ __device__ constexpr int block_rows() {
  return 16 * m_tiles<F>();
}
template <class F>
constexpr size_t smem_bytes() {
  return static_cast<size_t>(kWarps) * (kStages * block_rows<F>() * mmvfrag::tile_stride<F>() + (mmvfrag::Frag<F>::kFast ? 0 : 32 * kALd * 2));
}

template <class F, int NT8>
__global__ void __launch_bounds__(kThreads, 2) mmv_f16_kernel(const MmaCall c) {
  constexpr int kCB = mmvfrag::chunk_blocks<F>(), kChunkBytes = kCB * F::kBytes, kStride = mmvfrag::tile_stride<F>();
  constexpr int kIpb = F::kWeights / 32;  // 32-weight items per block
  constexpr int MT = m_tiles<F>(), kRows = block_rows<F>();
  static_assert(kStages * kRows * kStride >= MT * NT8 * 4 * 32 * 4, "a warp's stages hold its partial sums at the end");
  extern __shared__ __align__(16) uint8_t smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  uint8_t* const stages = smem + static_cast<size_t>(warp) * kStages * kRows * kStride;
  __half* const at = reinterpret_cast<__half*>(smem + static_cast<size_t>(kWarps) * kStages * kRows * kStride) + warp * kRows * kALd;

  const uint8_t* w;
  int64_t first;
  int n;
  if (!mma::block_rows(c, 8 * NT8, w, first, n)) return;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int blocks = static_cast<int>(c.cols / F::kWeights);
  const int chunks = (blocks + kCB - 1) / kCB;
  const int tiles = warp < chunks ? (chunks - warp + kWarps - 1) / kWarps : 0;  // chunks warp, warp + 8, ...

  // Copies tile i (chunk warp + 8 i of the block's rows) into stage i % kStages; every call commits
  // one group of copies (maybe empty), so the waits count uniformly.
  auto fetch = [&](int i) {
    if (i < tiles) {
      const int ch = warp + kWarps * i;
      const int bytes = min(kCB, blocks - ch * kCB) * F::kBytes;
      uint8_t* dst = stages + (i % kStages) * (kRows * kStride);
      // 16-byte pieces of all the rows, from the 16-byte boundary at or below each row's start.
      constexpr int kPieces = (kChunkBytes + 30) / 16;
      for (int p = lane; p < kRows * kPieces; p += 32) {
        const int r = p / kPieces, q = p % kPieces;
        const uint8_t* src = w + min(row0 + r, c.rows - 1) * static_cast<int64_t>(c.row_bytes) + ch * kChunkBytes;
        const int off = static_cast<int>(reinterpret_cast<uintptr_t>(src) % 16);
        if (16 * q < off + bytes) __pipeline_memcpy_async(dst + r * kStride + 16 * q, src - off + 16 * q, 16);
      }
    }
    __pipeline_commit();
  };
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) fetch(s);
  if (!c.items) wait_for_previous_kernel();  // the activations come from the previous kernel

  float acc[MT][NT8][4] = {};
  // Each lane's token rows of the activations (tokens past n repeat the last; not written).
  const __half* xrow[NT8];
#pragma unroll
  for (int nt = 0; nt < NT8; ++nt) xrow[nt] = static_cast<const __half*>(c.x) + (first + min(8 * nt + g, n - 1)) * c.cols + 8 * t4;

  if constexpr (mmvfrag::Frag<F>::kFast) {
    // Each lane decodes its share of rows g and g + 8 straight into fragments (MT is 1 here).
    float (&acc0)[NT8][4] = acc[0];
    for (int i = 0; i < tiles; ++i) {
      fetch(i + kStages - 1);
      __pipeline_wait_prior(kStages - 1);
      __syncwarp();
      const int ch = warp + kWarps * i;
      const int n_blocks = min(kCB, blocks - ch * kCB);
      const uint8_t* rowp[2];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int r = g + 8 * j;
        rowp[j] = stages + (i % kStages) * (kRows * kStride) + r * kStride +
                  reinterpret_cast<uintptr_t>(w + min(row0 + r, c.rows - 1) * static_cast<int64_t>(c.row_bytes) + ch * kChunkBytes) % 16;
      }
      for (int bi = 0; bi < n_blocks; ++bi) {
        const int64_t k_block = (static_cast<int64_t>(ch) * kCB + bi) * F::kWeights;
#pragma unroll
        for (int call = 0; call < mmvfrag::Frag<F>::kCalls; ++call)
          mmvfrag::mma_call<F, NT8>(acc0, rowp[0] + bi * F::kBytes, rowp[1] + bi * F::kBytes, call, t4, c.tab, [&](int item, int nt) {
            return __ldg(reinterpret_cast<const uint4*>(xrow[nt] + k_block + 32 * item));
          });
      }
      __syncwarp();
    }
  } else {
    // The activations of the next item are requested before this one is decoded, so their
    // latency (L2: all warps of all blocks read them) hides behind the decoding.
    auto item_k = [&](int i, int it) { return static_cast<int64_t>(warp + kWarps * i) * kCB * F::kWeights + 32 * it; };
    uint4 xb[NT8];
    if (tiles > 0)
  #pragma unroll
      for (int nt = 0; nt < NT8; ++nt) xb[nt] = __ldg(reinterpret_cast<const uint4*>(xrow[nt] + item_k(0, 0)));
    for (int i = 0; i < tiles; ++i) {
      fetch(i + kStages - 1);
      __pipeline_wait_prior(kStages - 1);
      __syncwarp();
      const int ch = warp + kWarps * i;
      const int n_items = min(kCB, blocks - ch * kCB) * kIpb;
      // This lane's row of the tile, where its copy landed (rows start anywhere within 16 bytes).
      const uint8_t* my_row = stages + (i % kStages) * (kRows * kStride) + lane * kStride +
                              reinterpret_cast<uintptr_t>(w + min(row0 + lane, c.rows - 1) * static_cast<int64_t>(c.row_bytes) + ch * kChunkBytes) % 16;
      for (int it = 0; it < n_items; ++it) {
        uint4 xn[NT8];
        const bool more = it + 1 < n_items || i + 1 < tiles;
        const int64_t kn = it + 1 < n_items ? item_k(i, it + 1) : item_k(i + 1, 0);
  #pragma unroll
        for (int nt = 0; nt < NT8; ++nt) xn[nt] = more ? __ldg(reinterpret_cast<const uint4*>(xrow[nt] + kn)) : xb[nt];
        float o[32];
        F::dequant(my_row + (it / kIpb) * F::kBytes, it % kIpb, c.tab, o);
        uint4* dst = reinterpret_cast<uint4*>(at + lane * kALd);
  #pragma unroll
        for (int v = 0; v < 4; ++v)
          dst[v] = make_uint4(mma::pack_half2(o[8 * v], o[8 * v + 1]), mma::pack_half2(o[8 * v + 2], o[8 * v + 3]),
                              mma::pack_half2(o[8 * v + 4], o[8 * v + 5]), mma::pack_half2(o[8 * v + 6], o[8 * v + 7]));
        __syncwarp();
        uint4 lo[2], hi[2];
  #pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
          lo[mt] = *reinterpret_cast<const uint4*>(at + (16 * mt + g) * kALd + 8 * t4);
          hi[mt] = *reinterpret_cast<const uint4*>(at + (16 * mt + g + 8) * kALd + 8 * t4);
        }
  #pragma unroll
        for (int nt = 0; nt < NT8; ++nt) {
          const uint32_t b0[2] = {xb[nt].x, xb[nt].y}, b1[2] = {xb[nt].z, xb[nt].w};
  #pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            const uint32_t a0[4] = {lo[mt].x, hi[mt].x, lo[mt].y, hi[mt].y}, a1[4] = {lo[mt].z, hi[mt].z, lo[mt].w, hi[mt].w};
            mma::mma_m16n8k16(acc[mt][nt], a0, b0);
            mma::mma_m16n8k16(acc[mt][nt], a1, b1);
          }
          xb[nt] = xn[nt];
        }
        __syncwarp();
      }
    }
  }
  __pipeline_wait_prior(0);
  let_next_kernel_start();

  // The warps' partial sums, added in shared memory (the stages are free now).
  __syncthreads();
  float* red = reinterpret_cast<float*>(smem);
  constexpr int kPerWarp = MT * NT8 * 4 * 32;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) red[warp * kPerWarp + ((mt * NT8 + nt) * 4 + e) * 32 + lane] = acc[mt][nt][e];
  __syncthreads();
  for (int f = threadIdx.x; f < kPerWarp; f += kThreads) {
    float v = 0.f;
#pragma unroll
    for (int wi = 0; wi < kWarps; ++wi) v += red[wi * kPerWarp + f];
    const int l = f % 32, e = (f / 32) % 4, nt = (f / 128) % NT8, mt = f / (128 * NT8);
    const int64_t r = row0 + 16 * mt + l / 4 + (e >= 2 ? 8 : 0);
    const int t = 8 * nt + 2 * (l % 4) + (e & 1);
    if (r < c.rows && t < n) c.y[(first + t) * c.y_stride + r] = v;
  }
}

template <class F, int NT8>
void launch(const MmaCall& c, int n_blocks_y, cudaStream_t s) {
  allow_dynamic_smem<mmv_f16_kernel<F, NT8>>(smem_bytes<F>(), "mmv_f16 shared memory");
  const dim3 grid(static_cast<unsigned>((c.rows + block_rows<F>() - 1) / block_rows<F>()), static_cast<unsigned>(n_blocks_y));
  if (grid.x && grid.y) launch_pdl_smem(mmv_f16_kernel<F, NT8>, grid, dim3(kThreads), smem_bytes<F>(), s, "mmv_f16", c);
}

}  // namespace

void mmv_f16(const MmaCall& c, int max_tokens, int n_blocks_y, cudaStream_t s) {
  if (max_tokens < 1 || max_tokens > 64) throw Error("CUDA matmul: mmv_f16 takes 1 to 64 tokens per block");
  if (!std::getenv("JING_MMV_WARP_K") && mmv_frag(c, max_tokens, s)) return;  // (measurement switch: the per-warp path)
  const bool ok = fmt::with_format(c.type, [&](auto f) {
    using F = decltype(f);
    if constexpr (F::kAct != fmt::Act::F32) {
      if (c.cols % F::kWeights) throw Error("CUDA matmul: rows of whole blocks only");
      if ((reinterpret_cast<uintptr_t>(c.w) | c.row_bytes | static_cast<size_t>(c.mat_bytes)) % F::kAlign)
        throw Error("CUDA matmul: rows are not aligned to their block size");
      if (max_tokens <= 16) launch<F, 2>(c, n_blocks_y, s);
      else if (max_tokens <= 32) launch<F, 4>(c, n_blocks_y, s);
      else launch<F, 8>(c, n_blocks_y, s);
    } else {
      throw Error("CUDA matmul: float weights take cuBLAS");
    }
  });
  if (!ok) throw Error("CUDA matmul: no tensor-core kernel for tensor type " + std::string(traits(c.type).name));
}

}  // namespace jing::cuda::detail
