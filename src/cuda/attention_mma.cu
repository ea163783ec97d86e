// Attention of a prompt (one sequence, consecutive positions) on the tensor cores, flash-attention
// style: a block takes 64 query rows of one key/value head, where a row is a (token, head) pair of
// that head's group (MLA's MQA: every head; GQA: the heads sharing it), and one 128-wide slice of
// the value dimensions; it walks the keys 64 at a time: scores by mma.m16n8k16 (f16 in, f32 out),
// the online softmax in f32 registers, then P (f16) times the values into f32 accumulators. Each
// warp owns 16 rows. MLA's values are the first dv columns of its keys, read from the key tile.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>

#include "cuda/check.h"
#include "cuda/mma.cuh"
#include "cuda/model_ops.h"

namespace jing::cuda::ops {
namespace {

constexpr int kRowsPerBlock = 64, kKeysPerTile = 64, kSlice = 128, kThreads = 128;

struct PromptArgs {
  AttentionParams p;
  const float* q;
  int64_t q_stride;
  const __half* k;  // this sequence's rows of the layer's key cache
  const __half* v;  // and value cache (unused when v_in_k)
  int first_pos;    // position of token 0; token t sits at first_pos + t
  int64_t n;        // tokens
  float* out;       // [n][n_head][dv]
};

// Shared memory: q [64][DK + 8], keys [64][DK + 8], values [64][kSlice + 8] (not with v_in_k).
template <int DK>
__global__ void __launch_bounds__(kThreads) attention_prompt_kernel(const PromptArgs a) {
  constexpr int kLd = DK + 8, kLdv = kSlice + 8;
  extern __shared__ __align__(16) __half smem[];
  __half* qs = smem;
  __half* ks = qs + kRowsPerBlock * kLd;
  __half* vs = ks + kKeysPerTile * kLd;
  const AttentionParams& p = a.p;
  const int group = p.n_head / p.n_head_kv, hk = blockIdx.y, slice = blockIdx.z;
  const int64_t rows = a.n * group, row0 = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
  const int dv_slice = min(kSlice, p.dv - slice * kSlice);  // a multiple of 8

  // Queries of the block's rows, as f16 (the decode kernel rounds them so too).
  for (int i = tid; i < kRowsPerBlock * (DK / 4); i += kThreads) {
    const int r = i / (DK / 4), c = 4 * (i % (DK / 4));
    const int64_t row = row0 + r;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (row < rows) {
      const int64_t t = row / group;
      const int h = hk * group + static_cast<int>(row % group);
      v = *reinterpret_cast<const float4*>(a.q + t * a.q_stride + static_cast<int64_t>(h) * DK + c);
    }
    *reinterpret_cast<uint2*>(qs + r * kLd + c) = make_uint2(mma::pack_half2(v.x, v.y), mma::pack_half2(v.z, v.w));
  }
  // The positions of this warp's two rows per thread (g and g + 8 of its 16): keys up to them.
  int my_pos[2];
  for (int e = 0; e < 2; ++e) {
    const int64_t row = row0 + 16 * warp + g + 8 * e;
    my_pos[e] = row < rows ? a.first_pos + static_cast<int>(row / group) : -1;
  }
  const int64_t last_row = min(rows, row0 + kRowsPerBlock) - 1;
  const int n_keys = a.first_pos + static_cast<int>(last_row / group) + 1;

  float o[kSlice / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const __half* kbase = a.k + static_cast<int64_t>(hk) * DK;
  const int v_stride = p.v_in_k ? p.k_width : p.v_width;
  const __half* vbase = p.v_in_k ? kbase : a.v + static_cast<int64_t>(hk) * p.dv;

  for (int j0 = 0; j0 < n_keys; j0 += kKeysPerTile) {
    __syncthreads();  // the previous tile is consumed (and, the first time, q is written)
    for (int i = tid; i < kKeysPerTile * (DK / 8); i += kThreads) {
      const int r = i / (DK / 8), c = 8 * (i % (DK / 8));
      uint4 v = make_uint4(0, 0, 0, 0);
      if (j0 + r < n_keys) v = *reinterpret_cast<const uint4*>(kbase + static_cast<int64_t>(j0 + r) * p.k_width + c);
      *reinterpret_cast<uint4*>(ks + r * kLd + c) = v;
    }
    if (!p.v_in_k) {
      for (int i = tid; i < kKeysPerTile * (kSlice / 8); i += kThreads) {
        const int r = i / (kSlice / 8), c = 8 * (i % (kSlice / 8));
        uint4 v = make_uint4(0, 0, 0, 0);
        if (j0 + r < n_keys && c < dv_slice) v = *reinterpret_cast<const uint4*>(vbase + static_cast<int64_t>(j0 + r) * v_stride + slice * kSlice + c);
        *reinterpret_cast<uint4*>(vs + r * kLdv + c) = v;
      }
    }
    __syncthreads();

    // Scores of the warp's 16 rows with the tile's 64 keys.
    float s[kKeysPerTile / 8][4] = {};
#pragma unroll
    for (int kk = 0; kk < DK; kk += 16) {
      uint32_t qa[4];
      mma::ldmatrix_x4(qa, qs + (16 * warp + lane % 16) * kLd + kk + 8 * (lane / 16));
#pragma unroll
      for (int ni = 0; ni < kKeysPerTile / 8; ++ni) {
        uint32_t kb[2];
        mma::ldmatrix_x2(kb, ks + (8 * ni + lane % 8) * kLd + kk + 8 * ((lane / 8) % 2));
        mma::mma_m16n8k16(s[ni], qa, kb);
      }
    }
    // Online softmax per row (row g: s[.][0..1], row g + 8: s[.][2..3]; a row spans the quad).
    float corr[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float mx = -INFINITY;
#pragma unroll
      for (int ni = 0; ni < kKeysPerTile / 8; ++ni)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int j = j0 + 8 * ni + 2 * t4 + c;
          float& x = s[ni][2 * e + c];
          x = j <= my_pos[e] ? x * p.scale : -INFINITY;
          mx = fmaxf(mx, x);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[e], mx);
      const float base = m_new == -INFINITY ? 0.f : m_new;  // rows past the prompt: nothing valid
      corr[e] = m[e] == -INFINITY ? 0.f : __expf(m[e] - base);
      float sum = 0.f;
#pragma unroll
      for (int ni = 0; ni < kKeysPerTile / 8; ++ni)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          float& x = s[ni][2 * e + c];
          x = x == -INFINITY ? 0.f : __expf(x - base);
          sum += x;
        }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      l[e] = l[e] * corr[e] + sum;
      m[e] = m_new;
    }
#pragma unroll
    for (int di = 0; di < kSlice / 8; ++di) o[di][0] *= corr[0], o[di][1] *= corr[0], o[di][2] *= corr[1], o[di][3] *= corr[1];
    // O += P V: P's accumulator layout is the A fragment layout, 16 keys at a time.
    const __half* vt = p.v_in_k ? ks + slice * kSlice : vs;
    const int ldv = p.v_in_k ? kLd : kLdv;
#pragma unroll
    for (int kc = 0; kc < kKeysPerTile / 16; ++kc) {
      const uint32_t pa[4] = {mma::pack_half2(s[2 * kc][0], s[2 * kc][1]), mma::pack_half2(s[2 * kc][2], s[2 * kc][3]),
                              mma::pack_half2(s[2 * kc + 1][0], s[2 * kc + 1][1]), mma::pack_half2(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
      for (int di = 0; di < kSlice / 8; ++di) {
        if (8 * di >= dv_slice) break;
        uint32_t vb[2];
        mma::ldmatrix_x2_trans(vb, vt + (16 * kc + lane % 16) * ldv + 8 * di);
        mma::mma_m16n8k16(o[di], pa, vb);
      }
    }
  }
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int64_t row = row0 + 16 * warp + g + 8 * e;
    if (row >= rows) continue;
    const int64_t t = row / group;
    const int h = hk * group + static_cast<int>(row % group);
    float* dst = a.out + (t * p.n_head + h) * p.dv + slice * kSlice;
    const float inv = 1.f / l[e];
#pragma unroll
    for (int di = 0; di < kSlice / 8; ++di) {
      if (8 * di >= dv_slice) break;
      *reinterpret_cast<float2*>(dst + 8 * di + 2 * t4) = make_float2(o[di][2 * e] * inv, o[di][2 * e + 1] * inv);
    }
  }
}

template <int DK>
void launch_prompt(const PromptArgs& a, cudaStream_t s) {
  const size_t smem = (2 * kRowsPerBlock * (DK + 8) + (a.p.v_in_k ? 0 : kKeysPerTile * (kSlice + 8))) * sizeof(__half);
  allow_dynamic_smem<attention_prompt_kernel<DK>>((2 * kRowsPerBlock * (DK + 8) + kKeysPerTile * (kSlice + 8)) * sizeof(__half),
                                                  "CUDA attention: the prompt kernel's shared memory");
  const int group = a.p.n_head / a.p.n_head_kv;
  const dim3 grid(static_cast<unsigned>((a.n * group + kRowsPerBlock - 1) / kRowsPerBlock), static_cast<unsigned>(a.p.n_head_kv),
                  static_cast<unsigned>((a.p.dv + kSlice - 1) / kSlice));
  attention_prompt_kernel<DK><<<grid, kThreads, smem, s>>>(a);
  check_launch("attention (prompt)");
}

}  // namespace

bool attention_prompt_supported(const AttentionParams& p) {
  const bool dk_ok = p.dk == 64 || p.dk == 128 || p.dk == 576;
  return dk_ok && p.dv % 8 == 0 && p.dv >= 8 && p.n_head % p.n_head_kv == 0 && p.k_width % 8 == 0 && p.v_width % 8 == 0 &&
         (!p.v_in_k || p.dv <= p.dk);
}

void attention_prompt_f16(const AttentionParams& p, const float* q, int64_t q_stride, const uint16_t* k_cache, const uint16_t* v_cache, int seq,
                          int first_pos, int64_t n, float* out, void* stream) {
  if (n <= 0) return;
  if (q_stride % 4 || reinterpret_cast<uintptr_t>(q) % 16) throw Error("CUDA attention: prompt queries must be 16-byte aligned");
  const PromptArgs a{p,
                     q,
                     q_stride,
                     reinterpret_cast<const __half*>(k_cache) + static_cast<int64_t>(seq) * p.n_ctx * p.k_width,
                     v_cache ? reinterpret_cast<const __half*>(v_cache) + static_cast<int64_t>(seq) * p.n_ctx * p.v_width : nullptr,
                     first_pos,
                     n,
                     out};
  const auto s = static_cast<cudaStream_t>(stream);
  if (p.dk == 64) launch_prompt<64>(a, s);
  else if (p.dk == 128) launch_prompt<128>(a, s);
  else launch_prompt<576>(a, s);
}

}  // namespace jing::cuda::ops
