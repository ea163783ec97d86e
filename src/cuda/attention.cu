// The attention kernel of the model op set (see model_ops.h): one fused pass per (token, head),
// split over the key sequence for long contexts, with ggml's f16 rounding order.
#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "cuda/check.h"
#include "cuda/host_math.cuh"
#include "cuda/model_ops.h"
#include "cuda/pdl.cuh"
#include "cuda/reduce.cuh"

namespace jing::cuda::ops {
namespace {

constexpr int kAttnThreads = 128, kAttnTile = 128, kMaxHeadDim = 1024, kMaxValueDims = 4;  // dv <= 4 * 128 (MLA: 512): attention_kernel<VR <= 4>
constexpr int kMinSplitKeys = 256;
constexpr int kStagedValueDims = 128;  // values up to this wide are staged in shared memory (32 KB a tile)

__device__ float round_f16(float x) { return __half2float(__float2half_rn(x)); }

__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

// q . k of one cached key row (f16, 16-byte aligned, dk % 8 == 0) in the CPU engine's order
// (cpu::avx512::score_dot): 32 running sums, sum L taking dims L, L + 32, ... by FMA (a tail of
// fewer than 16 dims goes to sums 16 up), then sum L + sum L + 16, then halves as
// _mm512_reduce_add_ps adds them. Another order moves a score by ulps, which a quantized
// model's logits carry (1.6e-2 on the fixtures' 40-token prompts).
__device__ __forceinline__ float key_dot_cpu_order(const float* qs, const uint4* kr, int dk) {
  float p[32];
#pragma unroll
  for (int l = 0; l < 32; ++l) p[l] = 0;
  const int chunks = dk / 8, tail8 = dk % 32 == 8, body = chunks - tail8;
  const float4* q4 = reinterpret_cast<const float4*>(qs);
  auto add8 = [&](const uint4& u, int c, float* s) {  // dims 8c .. 8c + 7 into s[0..8)
    const float2 k0 = __half22float2(*reinterpret_cast<const __half2*>(&u.x)), k1 = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
    const float2 k2 = __half22float2(*reinterpret_cast<const __half2*>(&u.z)), k3 = __half22float2(*reinterpret_cast<const __half2*>(&u.w));
    const float4 qa = q4[2 * c], qb = q4[2 * c + 1];
    s[0] = __fmaf_rn(qa.x, k0.x, s[0]), s[1] = __fmaf_rn(qa.y, k0.y, s[1]), s[2] = __fmaf_rn(qa.z, k1.x, s[2]), s[3] = __fmaf_rn(qa.w, k1.y, s[3]);
    s[4] = __fmaf_rn(qb.x, k2.x, s[4]), s[5] = __fmaf_rn(qb.y, k2.y, s[5]), s[6] = __fmaf_rn(qb.z, k3.x, s[6]), s[7] = __fmaf_rn(qb.w, k3.y, s[7]);
  };
  for (int c0 = 0; c0 < body; c0 += 16) {  // 16 loads in flight, then their products
    uint4 u[16];
#pragma unroll
    for (int i = 0; i < 16; ++i)
      if (c0 + i < body) u[i] = __ldg(kr + c0 + i);
#pragma unroll
    for (int i = 0; i < 16; ++i)
      if (c0 + i < body) add8(u[i], c0 + i, p + 8 * (i % 4));
  }
  if (tail8) add8(__ldg(kr + body), body, p + 16);
  float t[16];
#pragma unroll
  for (int l = 0; l < 16; ++l) t[l] = __fadd_rn(p[l], p[l + 16]);
#pragma unroll
  for (int l = 0; l < 8; ++l) t[l] = __fadd_rn(t[l], t[l + 8]);
#pragma unroll
  for (int l = 0; l < 4; ++l) t[l] = __fadd_rn(t[l], t[l + 4]);
  return __fadd_rn(__fadd_rn(t[0], t[2]), __fadd_rn(t[1], t[3]));
}

// The online softmax's value walk over a tile's keys, one key after another in ggml's rounding
// order: rows are `rows` (shared or global memory), key j's at j * stride. Nothing but the
// chain's own arithmetic may sit in the loop: a branch per key around the loads (for threads past
// the last dimension) cost about 80 cycles a key, so such a thread walks a copy of the last
// dimension and its sums are dropped. (Runs between the keys that raise the max, to take the
// predicated rescale off the chain, measured slower.)
template <int VR>
__device__ __forceinline__ void walk_values(const __half* rows, int stride, const float* msh, const float* vsh, int nt, int tid, int dv,
                                            float& l, float (&acc)[VR]) {
  int dim[VR];
#pragma unroll
  for (int r = 0; r < VR; ++r) dim[r] = min(tid + r * kAttnThreads, dv - 1);
#pragma unroll 8
  for (int j = 0; j < nt; ++j) {
    const float ms = msh[j], vs = vsh[j];
    float v[VR];
#pragma unroll
    for (int r = 0; r < VR; ++r) v[r] = __half2float(rows[j * stride + dim[r]]);
    l = l * ms + vs;
    if (ms != 1.0f) {  // the key raised the max
#pragma unroll
      for (int r = 0; r < VR; ++r) acc[r] = round_f16(__fmul_rn(acc[r], ms));
    }
#pragma unroll
    for (int r = 0; r < VR; ++r) acc[r] = round_f16(__fmaf_rn(v[r], vs, acc[r]));  // fused, as ggml's f16 mad on x86 (and the CPU engine)
  }
}

// One block per (token, head, split): split `sp` of `splits` takes an equal share of the token's
// keys, so a decode step with few heads still fills the GPU (the share is worked out on the device
// from the token's position, so a recorded step replays at any context length). Keys come in
// tiles of 128: a warp scores one key at a time (lanes across the head dimension, coalesced); the
// online softmax's factors of the tile's keys come from a prefix-max scan; then every thread walks
// the keys in order updating the output dimensions it owns. The rounding follows ggml's flash
// attention (and the CPU engine) step for step: the query meets the keys as f16, and the weighted
// values accumulate in f16, rounded after the rescale and after each add. Quantized models are
// sensitive enough to that rounding (2e-2 in the logits of the fixtures) that matching it matters.
// One split writes the output; several write their (max, sum, weighted values) for
// attention_combine_kernel, which merges them in f32.
template <int VR>  // value dimensions per thread: dv <= VR * kAttnThreads
__global__ void __launch_bounds__(kAttnThreads) attention_kernel(AttentionParams p, const float* q, int64_t q_stride, const __half* kc,
                                                                 const __half* vc, const int32_t* seq, const int32_t* pos, float* out, int splits,
                                                                 float* part) {
  static_assert(kAttnTile == kAttnThreads, "one key of a tile per thread");
  __shared__ __align__(16) float qs[kMaxHeadDim];
  __shared__ float sc[kAttnTile], msh[kAttnTile], vsh[kAttnTile], wmax[kAttnThreads / 32];
  __shared__ __align__(16) __half vtile[kAttnTile * kStagedValueDims];  // the tile's values, when they fit
  const int t = blockIdx.x, h = blockIdx.y, sp = blockIdx.z, tid = threadIdx.x, lane = tid % 32, warp = tid / 32, warps = kAttnThreads / 32;
  const int hk = h / (p.n_head / p.n_head_kv);
  // Splits of fewer than kMinSplitKeys keys are not used: short contexts keep ggml's exact
  // summation order (one walk over all keys), which the quantized fixtures need.
  // Positions and sequences are uploaded before the step, so they are read before the wait.
  const int len = pos[t] + 1, used = min(splits, max(1, len / kMinSplitKeys)), per = (len + used - 1) / used;
  const int j_begin = min(len, sp * per), j_end = sp < used ? min(len, j_begin + per) : j_begin;
  const int64_t s = seq[t];
  const __half* kbase = kc + s * p.n_ctx * p.k_width + static_cast<int64_t>(hk) * p.dk;
  const int v_stride = p.v_in_k ? p.k_width : p.v_width;
  const __half* vbase = p.v_in_k ? kbase : vc + s * p.n_ctx * p.v_width + static_cast<int64_t>(hk) * p.dv;
  // The cached keys and values of earlier steps are brought into L2 while the previous kernel runs
  // (a decode step's weights have evicted them: HBM latency, twice, was most of a short walk's time).
  for (int j = j_begin + tid; j < min(j_end, len - 1); j += kAttnThreads) {
    const char* kr = reinterpret_cast<const char*>(kbase + static_cast<int64_t>(j) * p.k_width);
    for (int b = 0; b < 2 * p.dk; b += 128) prefetch_l2(kr + b);
    if (p.v_in_k) continue;
    const char* vr = reinterpret_cast<const char*>(vbase + static_cast<int64_t>(j) * v_stride);
    for (int b = 0; b < 2 * p.dv; b += 128) prefetch_l2(vr + b);
  }
  wait_for_previous_kernel();
  let_next_kernel_start();
  const float* qt = q + t * q_stride + static_cast<int64_t>(h) * p.dk;
  for (int d = tid; d < p.dk; d += kAttnThreads) qs[d] = round_f16(qt[d]);
  // A thread scores a whole key with 16-byte loads when rows allow (up to 256 dims: MLA's 576
  // measured slower so, a warp per key suits it); values of up to 128 dims are staged in shared
  // memory while the keys are scored (their loads overlap the scoring).
  const bool key_per_thread = p.dk <= 256 && p.dk % 8 == 0 && p.k_width % 8 == 0 && reinterpret_cast<uintptr_t>(kbase) % 16 == 0;
  const bool stage_v = p.dv <= kStagedValueDims && p.dv % 8 == 0 && v_stride % 8 == 0 && reinterpret_cast<uintptr_t>(vbase) % 16 == 0;
  __syncthreads();
  float m = -INFINITY, l = 0, acc[VR] = {};
  bool active[VR];  // this thread's dimension r exists
#pragma unroll
  for (int r = 0; r < VR; ++r) active[r] = tid + r * kAttnThreads < p.dv;
  for (int j0 = j_begin; j0 < j_end; j0 += kAttnTile) {
    const int nt = min(kAttnTile, j_end - j0);
    if (stage_v) {
      const int row_pieces = p.dv / 8, pieces = nt * row_pieces;
      for (int i = tid; i < pieces; i += kAttnThreads) {
        const int key = i / row_pieces, part = i % row_pieces;
        __pipeline_memcpy_async(vtile + key * p.dv + part * 8, vbase + static_cast<int64_t>(j0 + key) * v_stride + part * 8, 16);
      }
      __pipeline_commit();
    }
    if (key_per_thread) {
      if (tid < nt) {
        const uint4* kr = reinterpret_cast<const uint4*>(kbase + static_cast<int64_t>(j0 + tid) * p.k_width);
        sc[tid] = key_dot_cpu_order(qs, kr, p.dk) * p.scale;
      }
    } else {
      for (int jj = warp; jj < nt; jj += warps) {  // a warp per key, lanes across the head dimension
        const __half* kr = kbase + static_cast<int64_t>(j0 + jj) * p.k_width;
        // Lane L sums dims L, L + 32, ... (the CPU's lane L); a tail of fewer than 16 dims is the
        // CPU's second register's (lanes 16 up). warp_sum then adds as _mm512_reduce_add_ps does.
        const int full = p.dk / 32 * 32, tail = p.dk - full;
        float dot = 0;
        for (int d = lane; d < full; d += 32) dot = __fmaf_rn(qs[d], __half2float(kr[d]), dot);
        const int td = full + (tail >= 16 ? lane : lane - 16);
        if (lane >= (tail >= 16 ? 0 : 16) && td < p.dk) dot = __fmaf_rn(qs[td], __half2float(kr[td]), dot);
        dot = warp_sum(dot);
        if (lane == 0) sc[jj] = dot * p.scale;
      }
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
      msh[tid] = raises ? exp_as_host(before - s_own) : 1.0f;
      vsh[tid] = raises ? 1.0f : exp_as_host(s_own - before);
    }
    float tile_max = m;
    for (int w = 0; w < warps; ++w) tile_max = fmaxf(tile_max, wmax[w]);
    __syncthreads();
    // The walk is serial (the rounding chain): each thread's dimensions are a compile-time count
    // (a runtime one, with a branch per dimension, cost about 200 cycles a key).
    if (stage_v) __pipeline_wait_prior(0);
    __syncthreads();
    if (stage_v) walk_values<VR>(vtile, p.dv, msh, vsh, nt, tid, p.dv, l, acc);
    else walk_values<VR>(vbase + static_cast<int64_t>(j0) * v_stride, v_stride, msh, vsh, nt, tid, p.dv, l, acc);
    m = tile_max;
    __syncthreads();  // sc is rewritten by the next tile
  }
  if (splits == 1) {
    float* o = out + (static_cast<int64_t>(t) * p.n_head + h) * p.dv;
#pragma unroll
    for (int r = 0; r < VR; ++r)
      if (active[r]) o[tid + r * kAttnThreads] = acc[r] / l;
    return;
  }
  // part: per (token, head, split) the max, the sum, then dv weighted values.
  float* pp = part + ((static_cast<int64_t>(t) * p.n_head + h) * splits + sp) * (p.dv + 2);
  if (tid == 0) pp[0] = m, pp[1] = l;
#pragma unroll
  for (int r = 0; r < VR; ++r)
    if (active[r]) pp[2 + tid + r * kAttnThreads] = acc[r];
}

__global__ void attention_combine_kernel(int n_head, int dv, int splits, const float* part, float* out) {
  const int64_t th = blockIdx.x;  // token * n_head + head
  wait_for_previous_kernel();
  const float* pp = part + th * splits * (dv + 2);
  float mx = -INFINITY;
  for (int sp = 0; sp < splits; ++sp) mx = fmaxf(mx, pp[sp * (dv + 2)]);
  float l = 0;
  for (int sp = 0; sp < splits; ++sp) {
    const float ms = pp[sp * (dv + 2)];
    if (ms != -INFINITY) l += pp[sp * (dv + 2) + 1] * expf(ms - mx);
  }
  for (int d = threadIdx.x; d < dv; d += blockDim.x) {
    float v = 0;
    for (int sp = 0; sp < splits; ++sp) {
      const float ms = pp[sp * (dv + 2)];
      if (ms != -INFINITY) v += pp[sp * (dv + 2) + 2 + d] * expf(ms - mx);
    }
    out[th * dv + d] = v / l;
  }
}

}  // namespace

int attention_band(int64_t max_keys) {
  int b = 0;
  while (b < 6 && (static_cast<int64_t>(kMinSplitKeys) << (b + 1)) <= max_keys) ++b;
  return b;
}

int attention_splits(const AttentionParams& p, int64_t n) {
  // Enough blocks for two per SM (the kernel uses fewer while the context is short).
  static const int sms = [] {
    int dev = 0, count = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev);
    return count > 0 ? count : 1;
  }();
  const int64_t blocks = n * p.n_head;
  const int64_t want = (2 * sms + blocks - 1) / blocks;
  // No more splits than the band's longest keys fill: a split the kernel leaves empty still
  // costs its block and the combine launch (5% of a short-context 1.5B step).
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({want, int64_t{1} << p.band, std::max(1, p.n_ctx / kMinSplitKeys)})));
}

size_t attention_scratch_floats(const AttentionParams& p, int64_t n) {
  const int splits = attention_splits(p, n);
  return splits == 1 ? 0 : static_cast<size_t>(n * p.n_head * splits * (p.dv + 2));
}

void attention_f16(const AttentionParams& p, const float* q, int64_t q_stride, const uint16_t* k, const uint16_t* v, const int32_t* seq,
                   const int32_t* pos, int64_t n, float* out, float* scratch, void* s) {
  if (n <= 0) return;
  if (p.dk > kMaxHeadDim || p.dk % 2 || p.k_width % 2 || p.dv > kMaxValueDims * kAttnThreads)
    throw Error("CUDA attention: keys wider than 1024 (or of odd width) or values wider than 512 are not supported");
  const int splits = attention_splits(p, n);
  dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(p.n_head), static_cast<unsigned>(splits));
  const int vr = (p.dv + kAttnThreads - 1) / kAttnThreads;
  auto kernel = vr == 1 ? attention_kernel<1> : vr == 2 ? attention_kernel<2> : attention_kernel<4>;
  launch_pdl(kernel, grid, dim3(kAttnThreads), static_cast<cudaStream_t>(s), "attention", p, q, q_stride, reinterpret_cast<const __half*>(k),
             reinterpret_cast<const __half*>(v), seq, pos, out, splits, scratch);
  if (splits > 1)
    launch_pdl(attention_combine_kernel, dim3(static_cast<unsigned>(n * p.n_head)), dim3(128), static_cast<cudaStream_t>(s), "attention_combine", p.n_head, p.dv, splits,
               static_cast<const float*>(scratch), out);
}

}  // namespace jing::cuda::ops
