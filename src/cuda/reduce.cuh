// Warp and block reductions shared by the kernels of src/cuda.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <type_traits>

namespace jing::cuda {

template <class T>  // float, or double where a sum must match the CPU's double one
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum (or max, of floats) over the block; every thread gets the result. `red` holds one value per warp.
template <bool Max, class T = float>
__device__ __forceinline__ T block_reduce(T v, T* red) {
  static_assert(!Max || std::is_same_v<T, float>, "the block maximum is of floats");
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  if constexpr (Max) v = warp_max(v);
  else v = warp_sum(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  T r = Max ? T(-INFINITY) : T(0);
  for (int w = 0; w < warps; ++w) {
    if constexpr (Max) r = fmaxf(r, red[w]);
    else r += red[w];
  }
  return r;
}

// RMS norm's scale as the CPU engine works it out (model/ops.cpp rms_norm): the squares summed
// in double (exact products; the order moves only bits that the float below drops), then
// 1 / sqrt in float with IEEE rounding. rsqrtf's ulps would reach the 8-bit rounding of the
// normed row, which a quantized model carries into its logits.
__device__ __forceinline__ float rms_scale_as_cpu(double sum_squares, int64_t dim, float eps) {
  return __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(static_cast<float>(sum_squares / static_cast<double>(dim)), eps)));
}

}  // namespace jing::cuda
