// Activations for the matrix products: rounded to 8-bit blocks exactly as the CPU engine's
// quantize_row (Q8_0, Q8_1: a scale per 32; Q8_K: a scale per 256 from the signed maximum), so
// GPU and CPU layers compute the same function; and float to f16 / split bf16 conversions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/check.h"
#include "cuda/kernels.h"
#include "cuda/pdl.cuh"

namespace jing::cuda::detail {
namespace {

constexpr int kThreads = 256;

int grid_for(int64_t work_items, int per_block) {
  return static_cast<int>(std::min<int64_t>((work_items + per_block - 1) / per_block, int64_t{1} << 20));
}

__device__ __forceinline__ float half_round(float v) { return __half2float(__float2half_rn(v)); }

// One warp per 32 values (lane j holds value j).
template <bool kQ8_1>
__global__ void quantize_q8_32(const float* x, int64_t n_blocks, int8_t* q, float4* rec) {
  let_next_kernel_start();  // the product's weight prefetch overlaps this kernel
  wait_for_previous_kernel();
  const int lane = threadIdx.x % 32;
  for (int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; b < n_blocks;
       b += static_cast<int64_t>(gridDim.x) * blockDim.x / 32) {
    const float v = x[b * 32 + lane];
    float amax = fabsf(v);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
    const float d = amax / 127.f, id = d != 0.f ? 1.0f / d : 0.f;
    const int qi = static_cast<int>(roundf(__fmul_rn(v, id)));
    q[b * 32 + lane] = static_cast<int8_t>(qi);
    int half_sum = qi;
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) half_sum += __shfl_xor_sync(0xFFFFFFFFu, half_sum, o);
    const int sum1 = __shfl_sync(0xFFFFFFFFu, half_sum, 16);
    if (lane == 0) {
      const float s = kQ8_1 ? half_round(__fmul_rn(static_cast<float>(half_sum + sum1), d)) : 0.f;
      rec[b] = make_float4(half_round(d), s, __int_as_float(half_sum), __int_as_float(sum1));
    }
  }
}

// One warp per 256 values (lane l holds values 8l..8l+7); the scale maps the value of largest
// magnitude (the first of equals) to -127.
__global__ void quantize_q8_256(const float* x, int64_t n_blocks, int8_t* q, float4* rec) {
  let_next_kernel_start();
  wait_for_previous_kernel();
  const int lane = threadIdx.x % 32;
  for (int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; b < n_blocks;
       b += static_cast<int64_t>(gridDim.x) * blockDim.x / 32) {
    const float4* src = reinterpret_cast<const float4*>(x + b * 256 + 8 * lane);
    const float4 a = src[0], c = src[1];
    const float v[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};
    float mag = 0.f, val = 0.f;
    int idx = 1 << 30;
#pragma unroll
    for (int j = 0; j < 8; ++j)
      if (fabsf(v[j]) > mag) mag = fabsf(v[j]), val = v[j], idx = 8 * lane + j;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float m2 = __shfl_xor_sync(0xFFFFFFFFu, mag, o), v2 = __shfl_xor_sync(0xFFFFFFFFu, val, o);
      const int i2 = __shfl_xor_sync(0xFFFFFFFFu, idx, o);
      if (m2 > mag || (m2 == mag && i2 < idx)) mag = m2, val = v2, idx = i2;
    }
    float d = 0.f;
    uint32_t packed[2] = {0, 0};
    int sum = 0;
    if (mag != 0.f) {
      const float iscale = -127.f / val;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int qi = min(127, __float2int_rn(__fmul_rn(iscale, v[j])));
        packed[j / 4] |= static_cast<uint32_t>(qi & 0xFF) << (8 * (j % 4));
        sum += qi;
      }
      d = 1.f / iscale;
    }
    reinterpret_cast<uint2*>(q + b * 256)[lane] = make_uint2(packed[0], packed[1]);
    const int sum16 = sum + __shfl_xor_sync(0xFFFFFFFFu, sum, 1);     // lanes 2m, 2m+1: values 16m..16m+15
    const int next16 = __shfl_down_sync(0xFFFFFFFFu, sum16, 2);       // at lane 4g: the group's second half
    if (lane % 4 == 0) rec[b * 8 + lane / 4] = make_float4(d, 0.f, __int_as_float(sum16), __int_as_float(next16));
  }
}

__global__ void q8_to_half_kernel(const int8_t* q, const float4* rec, __half* out, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __float2half_rn(static_cast<float>(q[i]) * rec[i / 32].x);
}

__global__ void float_to_half_kernel(const float* x, __half* out, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __float2half_rn(x[i]);
}

__global__ void float_to_bf16_split_kernel(const float* x, __nv_bfloat16* hi, __nv_bfloat16* lo, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const __nv_bfloat16 h = __float2bfloat16_rn(x[i]);
    hi[i] = h;
    lo[i] = __float2bfloat16_rn(x[i] - __bfloat162float(h));
  }
}

}  // namespace

fmt::Act activation_kind(GgmlType w) {
  switch (w) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: return fmt::Act::F32;
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: case GgmlType::IQ4_NL: case GgmlType::MXFP4: return fmt::Act::Q8_0;
    case GgmlType::Q4_1: case GgmlType::Q5_1: return fmt::Act::Q8_1;
    default: return fmt::Act::Q8_K;
  }
}

void quantize_activations(fmt::Act kind, const float* x, int64_t n, int8_t* q, void* rec, cudaStream_t s) {
  auto* r = static_cast<float4*>(rec);
  if (kind == fmt::Act::Q8_K)
    launch_pdl(quantize_q8_256, dim3(grid_for(n / 256, kThreads / 32)), dim3(kThreads), s, "quantize_activations", x, n / 256, q, r);
  else if (kind == fmt::Act::Q8_1)
    launch_pdl(quantize_q8_32<true>, dim3(grid_for(n / 32, kThreads / 32)), dim3(kThreads), s, "quantize_activations", x, n / 32, q, r);
  else
    launch_pdl(quantize_q8_32<false>, dim3(grid_for(n / 32, kThreads / 32)), dim3(kThreads), s, "quantize_activations", x, n / 32, q, r);
}

void q8_to_half(const int8_t* q, const void* rec, void* out, int64_t n, cudaStream_t s) {
  q8_to_half_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(q, static_cast<const float4*>(rec), static_cast<__half*>(out), n);
  check_launch("q8_to_half");
}

void float_to_half(const float* x, void* out, int64_t n, cudaStream_t s) {
  float_to_half_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, static_cast<__half*>(out), n);
  check_launch("float_to_half");
}

void float_to_bf16_split(const float* x, void* hi, void* lo, int64_t n, cudaStream_t s) {
  float_to_bf16_split_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, static_cast<__nv_bfloat16*>(hi),
                                                                        static_cast<__nv_bfloat16*>(lo), n);
  check_launch("float_to_bf16_split");
}

}  // namespace jing::cuda::detail
