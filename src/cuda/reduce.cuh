// Warp and block reductions shared by the kernels of src/cuda.
#pragma once
#include <cuda_runtime.h>

#include <cmath>

namespace jing::cuda {

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum (or max) over the block; every thread gets the result. `red` holds one value per warp.
template <bool Max>
__device__ __forceinline__ float block_reduce(float v, float* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  v = Max ? warp_max(v) : warp_sum(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float r = Max ? -INFINITY : 0.0f;
  for (int w = 0; w < warps; ++w) r = Max ? fmaxf(r, red[w]) : r + red[w];
  return r;
}

// A sum over the block in double (every thread gets it); `red` holds one value per warp.
__device__ __forceinline__ double block_sum_double(double v, double* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  double r = 0;
  for (int w = 0; w < warps; ++w) r += red[w];
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
