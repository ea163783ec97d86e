// Activations for the matrix products: rounded to 8-bit blocks exactly as the CPU engine's
// quantize_row (Q8_0, Q8_1: a scale per 32; Q8_K: a scale per 256 from the signed maximum), so
// GPU and CPU layers compute the same function; and float to f16 / split bf16 conversions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/check.h"
#include "cuda/kernels.h"
#include "cuda/pdl.cuh"
#include "cuda/round_q8.cuh"

namespace jing::cuda::detail {
namespace {

constexpr int kThreads = 256;

int grid_for(int64_t work_items, int per_block) {
  return static_cast<int>(std::min<int64_t>((work_items + per_block - 1) / per_block, int64_t{1} << 20));
}

template <bool kQ8_1>
__global__ void quantize_q8_32(const float* x, int64_t n_blocks, int8_t* q, float4* rec) {
  let_next_kernel_start();  // the product's weight prefetch overlaps this kernel
  wait_for_previous_kernel();
  const int lane = threadIdx.x % 32;
  for (int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; b < n_blocks;
       b += static_cast<int64_t>(gridDim.x) * blockDim.x / 32)
    round_q8_32<kQ8_1>(x[b * 32 + lane], lane, q + b * 32, rec + b);
}

__global__ void quantize_q8_256(const float* x, int64_t n_blocks, int8_t* q, float4* rec) {
  let_next_kernel_start();
  wait_for_previous_kernel();
  const int lane = threadIdx.x % 32;
  for (int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; b < n_blocks;
       b += static_cast<int64_t>(gridDim.x) * blockDim.x / 32) {
    const float4* src = reinterpret_cast<const float4*>(x + b * 256 + 8 * lane);
    const float4 a = src[0], c = src[1];
    const float v[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};
    round_q8_256(v, lane, q + b * 256, rec + b * 8);
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
