// Decode kernels for shapes the chunked kernels of gemv.cuh serve badly.
// - Short rows (MLA's per-head matrices: 128 or 512 columns, a few items a row), batched over
//   many products of one token: a lane takes one item, a row is `ipr` neighbouring lanes (whose
//   sums a shuffle adds), so a warp covers 32 / ipr rows at once, straight from device memory.
// - Float rows with few rows and one token (the MoE router: 256 rows of 7168): a block per row,
//   its threads across the columns, so the whole GPU reads.
#pragma once
#include "cuda/gemv.cuh"
#include "cuda/reduce.cuh"

namespace jing::cuda {

template <class F>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_short_kernel(GemvArgs a, int ipr) {
  constexpr int kGroups = fmt::item_groups<F>::value, kItems = F::kWeights / (32 * kGroups);
  const GemvTarget tg = gemv_target(a);
  wait_for_previous_kernel();
  let_next_kernel_start();
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, per_warp = 32 / ipr, it = lane % ipr;
  const int8_t* xq = a.xq + tg.x_row * a.cols;
  const float4* xrec = a.xrec + tg.x_row * (a.cols / 32);
  fmt::Q8Item x[kGroups];
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
    const int group = it / kItems * (F::kWeights / 32) + fmt::item_group<F>(it % kItems, g);
    x[g] = load_activations(xq + group * 32, xrec + group);
  }
  const int64_t step = static_cast<int64_t>(gridDim.x) * kGemvWarps * per_warp;
  for (int64_t r0 = (static_cast<int64_t>(blockIdx.x) * kGemvWarps + warp) * per_warp; r0 < tg.rows; r0 += step) {
    const int64_t row = r0 + lane / ipr;
    float v = 0.f;
    if (row < tg.rows) {
      F f;
      f.load(tg.w + row * static_cast<int64_t>(a.row_bytes) + it / kItems * F::kBytes, it % kItems, a.tab);
      if constexpr (kGroups == 2) v = f.dot2(x[0], x[1]);
      else v = f.dot(x[0]);
    }
    for (int o = ipr / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (it == 0 && row < tg.rows) tg.y[row] = v;
  }
}

// Items per row when the short-row kernel takes this call (0: it does not).
template <class F>
int short_row_items(const GemvArgs& a) {
  constexpr int kItems = F::kWeights / (32 * fmt::item_groups<F>::value);
  const int64_t ipr = static_cast<int64_t>(a.blocks) * kItems;
  const bool aligned = (reinterpret_cast<uintptr_t>(a.w) | a.row_bytes | static_cast<size_t>(a.batch.mat_bytes)) % F::kAlign == 0;
  if (!a.batch.count || a.batch.items || a.parts.count || !aligned || ipr > 8 || (ipr & (ipr - 1))) return 0;
  return static_cast<int>(ipr);
}

template <class F>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_float_row_kernel(GemvFloatArgs a) {
  __shared__ float red[32];
  wait_for_previous_kernel();
  let_next_kernel_start();
  const int64_t row = blockIdx.x;
  const uint8_t* w = a.w + row * static_cast<int64_t>(a.row_bytes);
  float s = 0.f;
  for (int64_t c = 8 * static_cast<int64_t>(threadIdx.x); c < a.cols; c += 8 * static_cast<int64_t>(blockDim.x)) {
    float wv[8];
    load8<F>(w + c * (F::kBytes / 32), wv);
    const float4 x0 = __ldg(reinterpret_cast<const float4*>(a.x + c)), x1 = __ldg(reinterpret_cast<const float4*>(a.x + c) + 1);
    s += wv[0] * x0.x + wv[1] * x0.y + wv[2] * x0.z + wv[3] * x0.w + wv[4] * x1.x + wv[5] * x1.y + wv[6] * x1.z + wv[7] * x1.w;
  }
  s = block_reduce<false>(s, red);
  if (threadIdx.x == 0) a.y[row] = s;
}

}  // namespace jing::cuda
