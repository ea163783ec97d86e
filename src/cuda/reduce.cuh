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

}  // namespace jing::cuda
