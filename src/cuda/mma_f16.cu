// Matrix products of many tokens on the tensor cores, weights expanded to f16 in shared memory
// (never a full f16 copy in device memory): a block takes 64 weight rows and 64 activation rows,
// and steps along k 128 weights at a time; each warp multiplies a 32 x 32 piece with
// mma.m16n8k16 (f16 in, f32 accumulation). Grouped, a block's activation rows are one work
// item of a prompt's tokens sorted by expert (moe_group), its weights that expert's matrix.
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/check.h"
#include "cuda/formats.cuh"
#include "cuda/kernels.h"
#include "cuda/mma.cuh"
#include "cuda/pdl.cuh"

namespace jing::cuda::detail {
namespace {

constexpr int kRows = 64, kToks = 64, kStepK = 128;
constexpr int kLd = kStepK + 8;  // halves per shared row: the padding keeps ldmatrix free of bank conflicts
constexpr int kThreads = 128;

template <class F>
__global__ void __launch_bounds__(kThreads) mma_f16_kernel(const MmaCall c) {
  __shared__ __align__(16) __half ws[kRows][kLd];
  __shared__ __align__(16) __half xs[kToks][kLd];
  wait_for_previous_kernel();  // the activations (and work items) come from earlier kernels
  const uint8_t* w;
  int64_t first;
  int n;
  if (!mma::block_rows(c, kToks, w, first, n)) return;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wm = warp / 2, wn = warp % 2;  // this warp's 32 rows and 32 tokens of the tile
  constexpr int kItemsPerBlock = F::kWeights / 32, kStepItems = kStepK / 32;
  const int64_t row_items = c.cols / 32;
  float acc[2][4][4] = {};

  for (int64_t k0 = 0; k0 < c.cols; k0 += kStepK) {
    __syncthreads();  // the previous step's tiles are read
    for (int i = tid; i < kRows * kStepItems; i += kThreads) {
      const int r = i / kStepItems, j = i % kStepItems;
      const int64_t item = k0 / 32 + j;
      uint4* dst = reinterpret_cast<uint4*>(&ws[r][32 * j]);
      if (row0 + r < c.rows && item < row_items) {
        float o[32];
        F::dequant(w + (row0 + r) * static_cast<int64_t>(c.row_bytes) + item / kItemsPerBlock * F::kBytes, static_cast<int>(item % kItemsPerBlock),
                   c.tab, o);
#pragma unroll
        for (int v = 0; v < 4; ++v) {
          dst[v] = make_uint4(mma::pack_half2(o[8 * v], o[8 * v + 1]), mma::pack_half2(o[8 * v + 2], o[8 * v + 3]),
                              mma::pack_half2(o[8 * v + 4], o[8 * v + 5]), mma::pack_half2(o[8 * v + 6], o[8 * v + 7]));
        }
      } else {
#pragma unroll
        for (int v = 0; v < 4; ++v) dst[v] = make_uint4(0, 0, 0, 0);
      }
    }
    for (int i = tid; i < kToks * (kStepK / 8); i += kThreads) {
      const int r = i / (kStepK / 8), j = i % (kStepK / 8);
      uint4 v = make_uint4(0, 0, 0, 0);
      if (r < n && k0 + 8 * j < c.cols) v = *reinterpret_cast<const uint4*>(static_cast<const __half*>(c.x) + (first + r) * c.cols + k0 + 8 * j);
      *reinterpret_cast<uint4*>(&xs[r][8 * j]) = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kStepK; kk += 16) {
      uint32_t a[2][4], b[4][2];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) mma::ldmatrix_x4(a[mi], &ws[32 * wm + 16 * mi + lane % 16][kk + 8 * (lane / 16)]);
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) mma::ldmatrix_x2(b[ni], &xs[32 * wn + 8 * ni + lane % 8][kk + 8 * ((lane / 8) % 2)]);
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma::mma_m16n8k16(acc[mi][ni], a[mi], b[ni]);
    }
  }
  let_next_kernel_start();
  const int g = lane / 4, t4 = lane % 4;
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t r = row0 + 32 * wm + 16 * mi + g + (e >= 2 ? 8 : 0);
        const int t = 32 * wn + 8 * ni + 2 * t4 + (e & 1);
        if (r < c.rows && t < n) c.y[(first + t) * c.y_stride + r] = acc[mi][ni][e];
      }
}

}  // namespace

bool mma_f16_supported(GgmlType type) {
  if (activation_kind(type) == fmt::Act::F32) return false;  // float weights: cuBLAS
  return fmt::with_format(type, [](auto) {});
}

void mma_f16(const MmaCall& c, int n_blocks_y, cudaStream_t s) {
  if (c.cols % 32) throw Error("CUDA matmul: the tensor-core path needs rows of whole 32-weight items");
  const bool ok = fmt::with_format(c.type, [&](auto f) {
    using F = decltype(f);
    if ((reinterpret_cast<uintptr_t>(c.w) | c.row_bytes | static_cast<size_t>(c.mat_bytes)) % F::kAlign)
      throw Error("CUDA matmul: rows are not aligned to their block size");
    const dim3 grid(static_cast<unsigned>((c.rows + kRows - 1) / kRows), static_cast<unsigned>(n_blocks_y));
    if (grid.x && grid.y) launch_pdl(mma_f16_kernel<F>, grid, dim3(kThreads), s, "mma_f16", c);
  });
  if (!ok) throw Error("CUDA matmul: no tensor-core kernel for tensor type " + std::string(traits(c.type).name));
}

int mma_f16_token_tile() { return kToks; }

}  // namespace jing::cuda::detail
