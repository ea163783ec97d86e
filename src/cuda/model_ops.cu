// Kernels of the model op set (see model_ops.h); the math of src/model/ops.cpp.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>

#include "cuda/check.h"
#include "cuda/model_ops.h"

namespace jing::cuda::ops {
namespace {

cudaStream_t st(void* s) { return static_cast<cudaStream_t>(s); }
unsigned blocks_for(int64_t count, int threads) { return static_cast<unsigned>((count + threads - 1) / threads); }

__device__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum (or max) over the block; every thread gets the result. `red` holds one value per warp.
template <bool Max>
__device__ float block_reduce(float v, float* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  v = Max ? warp_max(v) : warp_sum(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float r = Max ? -INFINITY : 0.0f;
  for (int w = 0; w < warps; ++w) r = Max ? fmaxf(r, red[w]) : r + red[w];
  return r;
}

__global__ void rms_norm_kernel(const float* x, const float* w, float* y, int64_t dim, float eps, int64_t stride) {
  __shared__ float red[32];
  const float* xr = x + blockIdx.x * stride;
  float* yr = y + blockIdx.x * stride;
  float ss = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_reduce<false>(ss, red);
  const float scale = rsqrtf(ss / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
}

__global__ void gather_rows_kernel(float* dst, const float* src, const int32_t* rows, int64_t m, int64_t width) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx < m * width) dst[idx] = src[static_cast<int64_t>(rows[idx / width]) * width + idx % width];
}

__global__ void scatter_add_rows_kernel(float* out, const float* src, const int32_t* rows, const float* weights, int64_t width) {
  const int64_t r = blockIdx.x;
  float* o = out + static_cast<int64_t>(rows[r]) * width;
  const float wt = weights[r];
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) o[i] += wt * src[r * width + i];
}

__global__ void add_bias_kernel(float* y, const float* b, int64_t total, int64_t width) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < total) y[i] += b[i % width];
}

__global__ void add_kernel(float* y, const float* x, int64_t count) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < count) y[i] += x[i];
}

__global__ void silu_mul_kernel(float* g, const float* u, int64_t count) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < count) {
    const float a = g[i];
    g[i] = a / (1.0f + expf(-a)) * u[i];
  }
}

// cos and sin (scaled) of rotated pair i at position `position`: the angle of ops.cpp's Rope::apply.
__device__ void rope_cos_sin(const RopeParams& p, int position, int i, float& c, float& s) {
  const int i0 = 2 * i;
  const float theta_extrap = static_cast<float>(position) * powf(p.freq_base, -static_cast<float>(i0) / p.n_rot);
  const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
  const float te = theta_extrap / ff, ti = p.freq_scale * te;
  float theta = ti, mscale = p.attn_factor;
  if (p.ext_factor != 0.0f) {
    const float y = (i0 / 2 - p.corr_low) / fmaxf(0.001f, p.corr_high - p.corr_low);
    const float mix = (1 - fminf(1.0f, fmaxf(0.0f, y))) * p.ext_factor;
    theta = ti * (1 - mix) + te * mix;
    mscale *= 1.0f + 0.1f * logf(1.0f / p.freq_scale);
  }
  sincosf(theta, &s, &c);
  c *= mscale, s *= mscale;
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
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * c - x1 * s;
  v[b] = x0 * s + x1 * c;
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
    const float y0 = x0 * c - x1 * s, y1 = x0 * s + x1 * c;
    x0 = y0, x1 = y1;
  }
}

// q: one thread per (token, head, slot): bias, then rotation, in place.
__global__ void q_bias_rope_kernel(RopeParams r, QkvParams p, float* q, int64_t n, const int32_t* pos) {
  const int slots = p.head_dim / 2;
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= n * p.n_head * slots) return;
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
__global__ void kv_into_cache_kernel(RopeParams r, QkvParams p, const float* k, const float* v, int64_t n, const int32_t* seq,
                                     const int32_t* pos, __half* kc, __half* vc) {
  const int slots = p.head_dim / 2, k_width = p.n_head_kv * p.head_dim, v_width = p.n_head_kv * p.head_dim_v;
  const int64_t n_k = n * p.n_head_kv * slots;
  int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
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

__global__ void add_rms_norm_kernel(float* x, const float* h, const float* w, float* y, int64_t dim, float eps) {
  __shared__ float red[32];
  float* xr = x + blockIdx.x * dim;
  const float* hr = h + blockIdx.x * dim;
  float* yr = y + blockIdx.x * dim;
  float ss = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float v = xr[i] + hr[i];
    xr[i] = v;
    ss += v * v;
  }
  ss = block_reduce<false>(ss, red);  // also orders every read of h before the writes of y below
  const float scale = rsqrtf(ss / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
}

__global__ void store_rows_kernel(__half* cache, const float* rows, int64_t n, int width, const int32_t* seq, const int32_t* pos, int n_ctx) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= n * width) return;
  const int64_t t = idx / width;
  const int i = static_cast<int>(idx % width);
  cache[(static_cast<int64_t>(seq[t]) * n_ctx + pos[t]) * width + i] = __float2half(rows[idx]);
}

constexpr int kAttnThreads = 128, kAttnTile = 128, kMaxHeadDim = 1024, kMaxValueDims = 4;  // dv <= 4 * 128 (MLA: 512)

// One block per (token, head): keys in tiles of 128. A warp scores one key at a time (lanes across
// the head dimension, coalesced); the online softmax's factors of the tile's keys come from a
// prefix-max scan; then every thread walks the keys in order updating the output dimensions it owns. The rounding follows ggml's flash
// attention (and the CPU engine) step for step: the query meets the keys as f16, and the weighted
// values accumulate in f16, rounded after the rescale and after each add. Quantized models are
// sensitive enough to that rounding (1e-2 in the logits) that matching it matters.
__device__ float round_f16(float x) { return __half2float(__float2half_rn(x)); }

__global__ void __launch_bounds__(kAttnThreads) attention_kernel(AttentionParams p, const float* q, int64_t q_stride, const __half* kc,
                                                                 const __half* vc, const int32_t* seq, const int32_t* pos, float* out) {
  static_assert(kAttnTile == kAttnThreads, "one key of a tile per thread");
  __shared__ float qs[kMaxHeadDim], sc[kAttnTile], msh[kAttnTile], vsh[kAttnTile], wmax[kAttnThreads / 32];
  const int t = blockIdx.x, h = blockIdx.y, tid = threadIdx.x, lane = tid % 32, warp = tid / 32, warps = kAttnThreads / 32;
  const int hk = h / (p.n_head / p.n_head_kv);
  const int len = pos[t] + 1;
  const int64_t s = seq[t];
  for (int d = tid; d < p.dk; d += kAttnThreads) qs[d] = round_f16(q[t * q_stride + static_cast<int64_t>(h) * p.dk + d]);
  const __half* kbase = kc + s * p.n_ctx * p.k_width + static_cast<int64_t>(hk) * p.dk;
  const int v_stride = p.v_in_k ? p.k_width : p.v_width;
  const __half* vbase = p.v_in_k ? kbase : vc + s * p.n_ctx * p.v_width + static_cast<int64_t>(hk) * p.dv;
  __syncthreads();
  float m = -INFINITY, l = 0, acc[kMaxValueDims] = {};
  for (int j0 = 0; j0 < len; j0 += kAttnTile) {
    const int nt = min(kAttnTile, len - j0);
    for (int jj = warp; jj < nt; jj += warps) {
      const __half* kr = kbase + static_cast<int64_t>(j0 + jj) * p.k_width;
      float dot = 0;
      for (int d = lane; d < p.dk; d += 32) dot += qs[d] * __half2float(kr[d]);
      dot = warp_sum(dot);
      if (lane == 0) sc[jj] = dot * p.scale;
    }
    __syncthreads();
    // The online softmax's factors for every key of the tile at once: key j rescales by
    // exp(max_before_j - s_j) when it raises the running max, else enters with exp(s_j - max_before_j),
    // where max_before_j is a prefix maximum (a scan over the tile), not a serial walk.
    const float s_own = tid < nt ? sc[tid] : -INFINITY;
    float incl = s_own;
    for (int o = 1; o < 32; o <<= 1) {
      const float y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl = fmaxf(incl, y);
    }
    float excl = __shfl_up_sync(0xffffffffu, incl, 1);
    if (lane == 31) wmax[warp] = incl;
    __syncthreads();
    float before = m;
    for (int w = 0; w < warp; ++w) before = fmaxf(before, wmax[w]);
    if (lane > 0) before = fmaxf(before, excl);
    if (tid < nt) {
      const bool raises = s_own > before;
      msh[tid] = raises ? expf(before - s_own) : 1.0f;
      vsh[tid] = raises ? 1.0f : expf(s_own - before);
    }
    float tile_max = m;
    for (int w = 0; w < warps; ++w) tile_max = fmaxf(tile_max, wmax[w]);
    __syncthreads();
    for (int jj = 0; jj < nt; ++jj) {
      const float ms = msh[jj], vs = vsh[jj];
      l = l * ms + vs;
      const __half* vr = vbase + static_cast<int64_t>(j0 + jj) * v_stride;
#pragma unroll
      for (int r = 0; r < kMaxValueDims; ++r) {
        const int d = tid + r * kAttnThreads;
        if (d < p.dv) {
          if (ms != 1.0f) acc[r] = round_f16(__fmul_rn(acc[r], ms));
          acc[r] = round_f16(__fadd_rn(acc[r], __fmul_rn(__half2float(vr[d]), vs)));
        }
      }
    }
    m = tile_max;
    __syncthreads();  // sc is rewritten by the next tile
  }
  float* o = out + (static_cast<int64_t>(t) * p.n_head + h) * p.dv;
#pragma unroll
  for (int r = 0; r < kMaxValueDims; ++r)
    if (tid + r * kAttnThreads < p.dv) o[tid + r * kAttnThreads] = acc[r] / l;
}

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t dim, float eps, void* s) {
  if (n <= 0) return;
  rms_norm_kernel<<<static_cast<unsigned>(n), 256, 0, st(s)>>>(x, w, y, dim, eps, dim);
  check_launch("rms_norm");
}

void rms_norm_strided(const float* x, int64_t stride, const float* w, float* y, int64_t n, int64_t dim, float eps, void* s) {
  if (n <= 0) return;
  rms_norm_kernel<<<static_cast<unsigned>(n), 256, 0, st(s)>>>(x, w, y, dim, eps, stride);
  check_launch("rms_norm_strided");
}

void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t m, int64_t width, void* s) {
  if (m <= 0) return;
  gather_rows_kernel<<<blocks_for(m * width, 256), 256, 0, st(s)>>>(dst, src, rows, m, width);
  check_launch("gather_rows");
}

void scatter_add_rows(float* out, const float* src, const int32_t* rows, const float* weights, int64_t m, int64_t width, void* s) {
  if (m <= 0) return;
  // One block per row keeps the adds of rows that share a token (several experts) apart in time:
  // the launches for different experts are ordered on the stream, and within one launch rows differ.
  scatter_add_rows_kernel<<<static_cast<unsigned>(m), 256, 0, st(s)>>>(out, src, rows, weights, width);
  check_launch("scatter_add_rows");
}

void add_bias(float* y, const float* b, int64_t n, int64_t width, void* s) {
  if (!b || n <= 0) return;
  add_bias_kernel<<<blocks_for(n * width, 256), 256, 0, st(s)>>>(y, b, n * width, width);
  check_launch("add_bias");
}

void add(float* y, const float* x, int64_t count, void* s) {
  if (count <= 0) return;
  add_kernel<<<blocks_for(count, 256), 256, 0, st(s)>>>(y, x, count);
  check_launch("add");
}

void silu_mul(float* g, const float* u, int64_t count, void* s) {
  if (count <= 0) return;
  silu_mul_kernel<<<blocks_for(count, 256), 256, 0, st(s)>>>(g, u, count);
  check_launch("silu_mul");
}

void rope(const RopeParams& p, float* x, int64_t n, int n_head, int head_stride, const int32_t* pos, void* s) {
  const int64_t total = n * n_head * (p.n_rot / 2);
  if (total <= 0) return;
  rope_kernel<<<blocks_for(total, 256), 256, 0, st(s)>>>(p, x, n, n_head, head_stride, pos);
  check_launch("rope");
}

void add_rms_norm(float* x, const float* h, const float* w, float* y, int64_t n, int64_t dim, float eps, void* s) {
  if (n <= 0) return;
  add_rms_norm_kernel<<<static_cast<unsigned>(n), 256, 0, st(s)>>>(x, h, w, y, dim, eps);
  check_launch("add_rms_norm");
}

void qkv_into_cache(const RopeParams& r, const QkvParams& p, float* q, const float* k, const float* v, int64_t n, const int32_t* seq,
                    const int32_t* pos, uint16_t* k_cache, uint16_t* v_cache, void* s) {
  if (n <= 0) return;
  const int64_t q_threads = n * p.n_head * (p.head_dim / 2);
  q_bias_rope_kernel<<<blocks_for(q_threads, 256), 256, 0, st(s)>>>(r, p, q, n, pos);
  check_launch("q_bias_rope");
  const int64_t kv_threads = n * p.n_head_kv * (p.head_dim / 2) + (v ? n * p.n_head_kv * p.head_dim_v : 0);
  kv_into_cache_kernel<<<blocks_for(kv_threads, 256), 256, 0, st(s)>>>(r, p, k, v, n, seq, pos, reinterpret_cast<__half*>(k_cache),
                                                                        reinterpret_cast<__half*>(v_cache));
  check_launch("kv_into_cache");
}

void store_rows_f16(uint16_t* cache, const float* rows, int64_t n, int width, const int32_t* seq, const int32_t* pos, int n_ctx, void* s) {
  if (n <= 0 || width <= 0) return;
  store_rows_kernel<<<blocks_for(n * width, 256), 256, 0, st(s)>>>(reinterpret_cast<__half*>(cache), rows, n, width, seq, pos, n_ctx);
  check_launch("store_rows_f16");
}

void attention_f16(const AttentionParams& p, const float* q, int64_t q_stride, const uint16_t* k, const uint16_t* v, const int32_t* seq,
                   const int32_t* pos, int64_t n, float* out, void* s) {
  if (n <= 0) return;
  if (p.dk > kMaxHeadDim || p.dv > kMaxValueDims * kAttnThreads)
    throw Error("CUDA attention: keys wider than 1024 or values wider than 512 are not supported");
  dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(p.n_head));
  attention_kernel<<<grid, kAttnThreads, 0, st(s)>>>(p, q, q_stride, reinterpret_cast<const __half*>(k), reinterpret_cast<const __half*>(v),
                                                    seq, pos, out);
  check_launch("attention");
}

}  // namespace jing::cuda::ops
