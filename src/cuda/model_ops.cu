// Kernels of the model op set (see model_ops.h); the math of src/model/ops.cpp.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "cuda/check.h"
#include "cuda/host_math.cuh"
#include "cuda/model_ops.h"
#include "cuda/pdl.cuh"
#include "cuda/reduce.cuh"
#include "cuda/round_q8.cuh"

namespace jing::cuda::ops {
namespace {

cudaStream_t st(void* s) { return static_cast<cudaStream_t>(s); }

// The element-wise kernels launch early too (programmatic dependent launch; measured +1.3% on a
// 1.5B decode step): each waits for its inputs before reading them.
template <class... Params, class... Args>
void launch_op(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t s, const char* name, Args&&... args) {
  launch_pdl(kernel, grid, block, s, name, std::forward<Args>(args)...);
}
unsigned blocks_for(int64_t count, int threads) { return static_cast<unsigned>((count + threads - 1) / threads); }

__global__ void rms_norm_kernel(const float* x, const float* w, float* y, int64_t dim, float eps, int64_t stride) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  __shared__ double red[32];
  const float* xr = x + blockIdx.x * stride;
  float* yr = y + blockIdx.x * stride;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += static_cast<double>(xr[i]) * xr[i];
  const float scale = rms_scale_as_cpu(block_reduce<false>(ss, red), dim, eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
}

__global__ void gather_rows_kernel(float* dst, const float* src, const int32_t* rows, int64_t m, int64_t width) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx < m * width) dst[idx] = src[static_cast<int64_t>(rows[idx / width]) * width + idx % width];
}

__global__ void scatter_add_rows_kernel(float* out, const float* src, const int32_t* rows, const float* weights, int64_t width) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  const int64_t r = blockIdx.x;
  float* o = out + static_cast<int64_t>(rows[r]) * width;
  const float wt = weights[r];
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) o[i] = __fadd_rn(o[i], __fmul_rn(wt, src[r * width + i]));  // unfused, as the CPU
}

__global__ void add_bias_kernel(float* y, const float* b, int64_t total, int64_t width) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < total) y[i] += b[i % width];
}

__global__ void add_kernel(float* y, const float* x, int64_t count) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < count) y[i] += x[i];
}

__global__ void silu_mul_kernel(float* g, const float* u, int64_t count) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < count) {
    const float a = g[i];
    g[i] = a / (1.0f + exp_as_host(-a)) * u[i];
  }
}

// cos and sin (scaled) of rotated pair i at position `position`: the angle of ops.cpp's Rope::apply
// to the bit (a quantized model carries an ulp of an angle into its logits). The same chain of
// multiplications, no contraction into FMAs (the CPU's code has none), and cos/sin through double,
// rounded once, as the CPU does (CUDA's sincosf differs from that in about 20% of angles).
__device__ void rope_cos_sin(const RopeParams& p, int position, int i, float& c, float& s) {
  float theta_extrap = static_cast<float>(position);
  for (int k = 0; k < i; ++k) theta_extrap = __fmul_rn(theta_extrap, p.theta_scale);
  const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
  const float te = __fdiv_rn(theta_extrap, ff), ti = __fmul_rn(p.freq_scale, te);
  float theta = ti;
  if (p.ext_factor != 0.0f) {
    const float y = __fdiv_rn(__fsub_rn(static_cast<float>(i), p.corr_low), fmaxf(0.001f, __fsub_rn(p.corr_high, p.corr_low)));
    const float mix = __fmul_rn(__fsub_rn(1.0f, fminf(1.0f, fmaxf(0.0f, y))), p.ext_factor);
    theta = __fadd_rn(__fmul_rn(ti, __fsub_rn(1.0f, mix)), __fmul_rn(te, mix));
  }
  double sd, cd;
  sincos(static_cast<double>(theta), &sd, &cd);
  c = __fmul_rn(static_cast<float>(cd), p.mscale), s = __fmul_rn(static_cast<float>(sd), p.mscale);
}

// A pair rotated by (c, s) as the CPU rotates it: products rounded, then the sum (no FMA).
__device__ __forceinline__ void rotate(float x0, float x1, float c, float s, float& y0, float& y1) {
  y0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
  y1 = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
}

// The two elements of slot i of a head: a rotated pair for i < n_rot / 2, else two dims past n_rot.
__device__ void slot_dims(const RopeParams& p, int i, int& a, int& b, bool& rotated) {
  const int pairs = p.n_rot / 2;
  rotated = i < pairs;
  if (rotated) a = p.neox ? i : 2 * i, b = p.neox ? i + pairs : 2 * i + 1;
  else a = p.n_rot + 2 * (i - pairs), b = a + 1;
}

// One thread per (token, head, rotated pair).
__global__ void rope_kernel(RopeParams p, float* x, int64_t n, int n_head, int head_stride, const int32_t* pos) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  const int pairs = p.n_rot / 2;
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= n * n_head * pairs) return;
  const int i = static_cast<int>(idx % pairs);
  const int64_t th = idx / pairs;
  const int64_t t = th / n_head;
  float c, s;
  rope_cos_sin(p, pos[t], i, c, s);
  float* v = x + th * head_stride;
  int a, b;
  bool rotated;
  slot_dims(p, i, a, b, rotated);
  rotate(v[a], v[b], c, s, v[a], v[b]);
}

// Slot i of a head row (dims a, b): the values with the head's bias added, rotated when the slot
// is a rotated pair.
__device__ void biased_rotated_slot(const RopeParams& r, const float* row, const float* bias, int i, int position, int& a, int& b,
                                    float& x0, float& x1) {
  bool rotated;
  slot_dims(r, i, a, b, rotated);
  x0 = row[a], x1 = row[b];
  if (bias) x0 += bias[a], x1 += bias[b];
  if (rotated) {
    float c, s;
    rope_cos_sin(r, position, i, c, s);
    float y0, y1;
    rotate(x0, x1, c, s, y0, y1);
    x0 = y0, x1 = y1;
  }
}

// q: one thread per (token, head, slot): bias, then rotation, in place.
__device__ __forceinline__ void q_bias_rope(const RopeParams& r, const QkvParams& p, float* q, int64_t idx, const int32_t* pos) {
  const int slots = p.head_dim / 2;
  const int i = static_cast<int>(idx % slots);
  const int64_t th = idx / slots;
  const int h = static_cast<int>(th % p.n_head);
  const int64_t t = th / p.n_head;
  int a, b;
  float x0, x1;
  biased_rotated_slot(r, q + th * p.head_dim, p.bq ? p.bq + h * p.head_dim : nullptr, i, pos[t], a, b, x0, x1);
  float* row = q + th * p.head_dim;
  row[a] = x0, row[b] = x1;
}

// k and v into the cache: threads [0, n * n_head_kv * head_dim / 2) take k's slots (bias, rotation),
// the rest v's values (bias).
// Blocks [0, n): token t's latent normed (as rms_norm_kernel: 256 threads, the same sums) and
// its cache row written; the rest: one thread per (token, head, rotated pair) of q_pe into qa.
__global__ void mla_inputs_kernel(RopeParams r, MlaParams m, const float* q, const float* kv, float* qa, const float* w, int64_t n,
                                  const int32_t* seq, const int32_t* pos, __half* cache) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  const int kw = m.kv_lora + m.n_rot, pairs = m.n_rot / 2;
  if (blockIdx.x < n) {
    __shared__ double red[32];
    const int64_t t = blockIdx.x;
    const float* row = kv + t * kw;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < m.kv_lora; i += blockDim.x) ss += static_cast<double>(row[i]) * row[i];
    const float scale = rms_scale_as_cpu(block_reduce<false>(ss, red), m.kv_lora, m.eps);
    __half* dst = cache + (static_cast<int64_t>(seq[t]) * m.n_ctx + pos[t]) * kw;
    for (int64_t i = threadIdx.x; i < m.kv_lora; i += blockDim.x) dst[i] = __float2half(row[i] * scale * w[i]);
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
      float c, s;
      rope_cos_sin(r, pos[t], i, c, s);
      int a, b;
      bool rotated;
      slot_dims(r, i, a, b, rotated);
      float y0, y1;
      rotate(row[m.kv_lora + a], row[m.kv_lora + b], c, s, y0, y1);
      dst[m.kv_lora + a] = __float2half(y0);
      dst[m.kv_lora + b] = __float2half(y1);
    }
    return;
  }
  const int64_t idx = (blockIdx.x - n) * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= n * m.n_head * pairs) return;
  const int i = static_cast<int>(idx % pairs);
  const int64_t th = idx / pairs, t = th / m.n_head;
  float c, s;
  rope_cos_sin(r, pos[t], i, c, s);
  int a, b;
  bool rotated;
  slot_dims(r, i, a, b, rotated);
  const float* v = q + th * m.head_k + m.nope;
  float* o = qa + th * kw + m.kv_lora;
  rotate(v[a], v[b], c, s, o[a], o[b]);
}

// One launch for all three (a launch less per layer): threads [0, n_q) rotate q, the rest k and v.
__global__ void qkv_into_cache_kernel(RopeParams r, QkvParams p, float* q, const float* k, const float* v, int64_t n, const int32_t* seq,
                                      const int32_t* pos, __half* kc, __half* vc) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  const int64_t n_q = n * p.n_head * (p.head_dim / 2);
  int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx < n_q) return q_bias_rope(r, p, q, idx, pos);
  idx -= n_q;
  const int slots = p.head_dim / 2, k_width = p.n_head_kv * p.head_dim, v_width = p.n_head_kv * p.head_dim_v;
  const int64_t n_k = n * p.n_head_kv * slots;
  if (idx < n_k) {
    const int i = static_cast<int>(idx % slots);
    const int64_t th = idx / slots;
    const int h = static_cast<int>(th % p.n_head_kv);
    const int64_t t = th / p.n_head_kv;
    int a, b;
    float x0, x1;
    biased_rotated_slot(r, k + th * p.head_dim, p.bk ? p.bk + h * p.head_dim : nullptr, i, pos[t], a, b, x0, x1);
    __half* dst = kc + (static_cast<int64_t>(seq[t]) * p.n_ctx + pos[t]) * k_width + static_cast<int64_t>(h) * p.head_dim;
    dst[a] = __float2half(x0), dst[b] = __float2half(x1);
    return;
  }
  idx -= n_k;
  if (!v || idx >= n * v_width) return;
  const int64_t t = idx / v_width;
  const int e = static_cast<int>(idx % v_width);
  const float x = v[idx] + (p.bv ? p.bv[e] : 0.0f);
  vc[(static_cast<int64_t>(seq[t]) * p.n_ctx + pos[t]) * v_width + e] = __float2half(x);
}

__global__ void add_rms_norm_kernel(float* x, const float* h, const float* w, float* y, int64_t dim, float eps, int kind, int8_t* q, float4* rec) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  __shared__ double red[32];
  float* xr = x + blockIdx.x * dim;
  float* yr = y + blockIdx.x * dim;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if (h) v += h[blockIdx.x * dim + i], xr[i] = v;
    ss += static_cast<double>(v) * v;
  }
  // The reduction's barriers also order every read of h before the writes of y below.
  const float scale = rms_scale_as_cpu(block_reduce<false>(ss, red), dim, eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
  if (!q) return;
  // The row rounded for the products that follow, each warp a block at a time, from y as
  // written (the barrier makes the block's writes visible to all its warps).
  __syncthreads();
  const int block = 32 * round_lane_values(kind), lane = threadIdx.x % 32;
  for (int64_t b = threadIdx.x / 32; b < dim / block; b += blockDim.x / 32)
    round_block(kind, yr, b * block, lane, q + blockIdx.x * dim, rec + blockIdx.x * (dim / 32));
}

// The same for rows of whole 256-value chunks, up to kChunks per warp: the row stays in
// registers (a lane holds 8 consecutive values of each of its warp's chunks), so x, h and w are
// read once and the rounding needs no second pass over y.
template <int kChunks>
__global__ void add_rms_norm_regs_kernel(float* x, const float* h, const float* w, float* y, int dim, float eps, int kind, int8_t* q,
                                         float4* rec) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  __shared__ double red[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32, chunks = dim / 256;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * dim;
  float v[kChunks][8];
  double ss = 0;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int b = warp + c * warps;
    if (b >= chunks) break;
    const int64_t at = row + 256 * b + 8 * lane;
    float4 a0 = *reinterpret_cast<const float4*>(x + at), a1 = *reinterpret_cast<const float4*>(x + at + 4);
    if (h) {
      const float4 h0 = *reinterpret_cast<const float4*>(h + at), h1 = *reinterpret_cast<const float4*>(h + at + 4);
      a0.x += h0.x, a0.y += h0.y, a0.z += h0.z, a0.w += h0.w, a1.x += h1.x, a1.y += h1.y, a1.z += h1.z, a1.w += h1.w;
      *reinterpret_cast<float4*>(x + at) = a0, *reinterpret_cast<float4*>(x + at + 4) = a1;
    }
    v[c][0] = a0.x, v[c][1] = a0.y, v[c][2] = a0.z, v[c][3] = a0.w, v[c][4] = a1.x, v[c][5] = a1.y, v[c][6] = a1.z, v[c][7] = a1.w;
#pragma unroll
    for (int j = 0; j < 8; ++j) ss += static_cast<double>(v[c][j]) * v[c][j];
  }
  const float scale = rms_scale_as_cpu(block_reduce<false>(ss, red), dim, eps);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int b = warp + c * warps;
    if (b >= chunks) break;
    const int e = 256 * b + 8 * lane;
    const float4 w0 = *reinterpret_cast<const float4*>(w + e), w1 = *reinterpret_cast<const float4*>(w + e + 4);
    const float wv[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
    for (int j = 0; j < 8; ++j) v[c][j] = v[c][j] * scale * wv[j];
    *reinterpret_cast<float4*>(y + row + e) = make_float4(v[c][0], v[c][1], v[c][2], v[c][3]);
    *reinterpret_cast<float4*>(y + row + e + 4) = make_float4(v[c][4], v[c][5], v[c][6], v[c][7]);
    if (q) round_values_x8(kind, v[c], lane, q + row + 256 * b, rec + (row + 256 * b) / 32);
  }
}

// SwiGLU rounding its output for the down product: a warp per block of `kind`.
__global__ void silu_mul_round_kernel(float* g, const float* u, int64_t count, int kind, int8_t* q, float4* rec) {
  wait_for_previous_kernel();
  let_next_kernel_start();
  const int lane = threadIdx.x % 32, per = round_lane_values(kind);
  const int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32, first = b * 32 * per;
  if (first >= count) return;
  float v[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    if (j >= per) break;
    const int64_t i = first + per * lane + j;
    const float a = g[i];
    v[j] = a / (1.0f + exp_as_host(-a)) * u[i];
    g[i] = v[j];
  }
  round_values(kind, v, lane, q + first, rec + first / 32);
}

__global__ void store_rows_kernel(__half* cache, const float* rows, int64_t n, int width, const int32_t* seq, const int32_t* pos, int n_ctx) {
  wait_for_previous_kernel();  // launched early (launch_pdl): inputs are ready only after this
  let_next_kernel_start();
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= n * width) return;
  const int64_t t = idx / width;
  const int i = static_cast<int>(idx % width);
  cache[(static_cast<int64_t>(seq[t]) * n_ctx + pos[t]) * width + i] = __float2half(rows[idx]);
}

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t dim, float eps, void* s) {
  if (n <= 0) return;
  launch_op(rms_norm_kernel, dim3(static_cast<unsigned>(n)), dim3(256), st(s), "rms_norm", x, w, y, dim, eps, dim);
}

void rms_norm_strided(const float* x, int64_t stride, const float* w, float* y, int64_t n, int64_t dim, float eps, void* s) {
  if (n <= 0) return;
  launch_op(rms_norm_kernel, dim3(static_cast<unsigned>(n)), dim3(256), st(s), "rms_norm_strided", x, w, y, dim, eps, stride);
}

void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t m, int64_t width, void* s) {
  if (m <= 0) return;
  launch_op(gather_rows_kernel, dim3(blocks_for(m * width, 256)), dim3(256), st(s), "gather_rows", dst, src, rows, m, width);
}

void scatter_add_rows(float* out, const float* src, const int32_t* rows, const float* weights, int64_t m, int64_t width, void* s) {
  if (m <= 0) return;
  // One block per row keeps the adds of rows that share a token (several experts) apart in time:
  // the launches for different experts are ordered on the stream, and within one launch rows differ.
  launch_op(scatter_add_rows_kernel, dim3(static_cast<unsigned>(m)), dim3(256), st(s), "scatter_add_rows", out, src, rows, weights, width);
}

void add_bias(float* y, const float* b, int64_t n, int64_t width, void* s) {
  if (!b || n <= 0) return;
  launch_op(add_bias_kernel, dim3(blocks_for(n * width, 256)), dim3(256), st(s), "add_bias", y, b, n * width, width);
}

void add(float* y, const float* x, int64_t count, void* s) {
  if (count <= 0) return;
  launch_op(add_kernel, dim3(blocks_for(count, 256)), dim3(256), st(s), "add", y, x, count);
}

void silu_mul(float* g, const float* u, int64_t count, void* s) {
  if (count <= 0) return;
  launch_op(silu_mul_kernel, dim3(blocks_for(count, 256)), dim3(256), st(s), "silu_mul", g, u, count);
}

void rope(const RopeParams& p, float* x, int64_t n, int n_head, int head_stride, const int32_t* pos, void* s) {
  const int64_t total = n * n_head * (p.n_rot / 2);
  if (total <= 0) return;
  launch_op(rope_kernel, dim3(blocks_for(total, 256)), dim3(256), st(s), "rope", p, x, n, n_head, head_stride, pos);
}

// Rows of whole 256-value chunks, at most 4 per warp of 512 threads (8192 values), stay in
// registers; others take the plain kernel. Both round the same bytes.
constexpr int kNormThreads = 512, kNormChunks = 4;
bool norm_in_registers(int64_t dim, const void* x, const void* h, const void* w, const void* y) {
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return dim % 256 == 0 && dim <= int64_t{256} * kNormChunks * (kNormThreads / 32) && aligned(x) && aligned(w) && aligned(y) && (!h || aligned(h));
}

void add_rms_norm(float* x, const float* h, const float* w, float* y, int64_t n, int64_t dim, float eps, void* s) {
  if (n <= 0) return;
  if (norm_in_registers(dim, x, h, w, y))
    return launch_op(add_rms_norm_regs_kernel<kNormChunks>, dim3(static_cast<unsigned>(n)), dim3(kNormThreads), st(s), "add_rms_norm", x, h,
                     w, y, static_cast<int>(dim), eps, 0, static_cast<int8_t*>(nullptr), static_cast<float4*>(nullptr));
  launch_op(add_rms_norm_kernel, dim3(static_cast<unsigned>(n)), dim3(256), st(s), "add_rms_norm", x, h, w, y, dim, eps, 0,
            static_cast<int8_t*>(nullptr), static_cast<float4*>(nullptr));
}

void norm_round(float* x, const float* h, const float* w, float* y, int64_t n, int64_t dim, float eps, int kind, int8_t* q, void* rec, void* s) {
  if (n <= 0) return;
  if (dim % rounding_block(kind)) throw Error("norm_round: the row is not a whole number of blocks");
  if (norm_in_registers(dim, x, h, w, y))
    return launch_op(add_rms_norm_regs_kernel<kNormChunks>, dim3(static_cast<unsigned>(n)), dim3(kNormThreads), st(s), "norm_round", x, h,
                     w, y, static_cast<int>(dim), eps, kind, q, static_cast<float4*>(rec));
  launch_op(add_rms_norm_kernel, dim3(static_cast<unsigned>(n)), dim3(256), st(s), "norm_round", x, h, w, y, dim, eps, kind, q,
            static_cast<float4*>(rec));
}

void silu_mul_round(float* g, const float* u, int64_t count, int kind, int8_t* q, void* rec, void* s) {
  if (count <= 0) return;
  if (count % rounding_block(kind)) throw Error("silu_mul_round: not a whole number of blocks");
  const int64_t warps = count / rounding_block(kind);
  launch_op(silu_mul_round_kernel, dim3(blocks_for(warps * 32, 256)), dim3(256), st(s), "silu_mul_round", g, u, count, kind, q,
            static_cast<float4*>(rec));
}

void qkv_into_cache(const RopeParams& r, const QkvParams& p, float* q, const float* k, const float* v, int64_t n, const int32_t* seq,
                    const int32_t* pos, uint16_t* k_cache, uint16_t* v_cache, void* s) {
  if (n <= 0) return;
  const int64_t threads = n * p.n_head * (p.head_dim / 2) + n * p.n_head_kv * (p.head_dim / 2) + (v ? n * p.n_head_kv * p.head_dim_v : 0);
  launch_op(qkv_into_cache_kernel, dim3(blocks_for(threads, 256)), dim3(256), st(s), "qkv_into_cache", r, p, q, k, v, n, seq, pos,
            reinterpret_cast<__half*>(k_cache), reinterpret_cast<__half*>(v_cache));
}

void mla_inputs(const RopeParams& r, const MlaParams& m, const float* q, const float* kv, float* qa, const float* kv_norm, int64_t n,
                const int32_t* seq, const int32_t* pos, uint16_t* cache, void* s) {
  if (n <= 0) return;
  if (m.n_rot % 2 || m.n_rot > 2 * 256) throw Error("mla_inputs: unexpected rotary width");
  const int64_t q_threads = n * m.n_head * (m.n_rot / 2);
  launch_op(mla_inputs_kernel, dim3(static_cast<unsigned>(n + blocks_for(q_threads, 256))), dim3(256), st(s), "mla_inputs", r, m, q, kv, qa, kv_norm,
            n, seq, pos, reinterpret_cast<__half*>(cache));
}

void store_rows_f16(uint16_t* cache, const float* rows, int64_t n, int width, const int32_t* seq, const int32_t* pos, int n_ctx, void* s) {
  if (n <= 0 || width <= 0) return;
  launch_op(store_rows_kernel, dim3(blocks_for(n * width, 256)), dim3(256), st(s), "store_rows_f16", reinterpret_cast<__half*>(cache), rows, n, width, seq, pos, n_ctx);
}

}  // namespace jing::cuda::ops
