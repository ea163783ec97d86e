// A lane's share of the weights for the tensor-core products of few tokens (mmv_f16.cu), decoded
// straight into mma fragments: weights 8 t4 .. 8 t4 + 7 of a 32-weight item of one row, as four
// half2 (the same positions of the activations go into the B fragment). The block bytes are in
// shared memory. Formats without a decoder here take the generic path (whole items through a
// shared-memory tile).
//
// f16 from 4-8 bit codes: the code goes into the low byte of 0x6400 (1024.0 in f16, whose unit in
// the last place is 1), so subtracting 1024 gives the code exactly; one multiply applies the scale,
// rounded to f16 (about 2^-11 relative, as the f16 product rounds anyway). Formats with a min
// (scale x code - min) take f32, where the two terms cannot cancel away the precision.
#pragma once
#include <cuda_fp16.h>

#include "cuda/formats.cuh"
#include "cuda/mma.cuh"

namespace jing::cuda::mmvfrag {

// Bytes 2i and 2i + 1 of word w (each < 256) as the f16 pair 1024 + byte.
__device__ __forceinline__ __half2 bytes_to_half2(uint32_t w, int i) {
  const uint32_t h = __byte_perm(w, 0x64646464u, i == 0 ? 0x4140u : 0x4342u);
  return *reinterpret_cast<const __half2*>(&h);
}
// Byte i of word w as a float, exactly: the byte in the low bits of 2^23's pattern, minus 2^23.
__device__ __forceinline__ float code_to_float(uint32_t w, int i) {
  return __int_as_float(static_cast<int>(__byte_perm(w, 0x4B000000u, 0x7540u | static_cast<uint32_t>(i)))) - 8388608.f;
}
__device__ __forceinline__ uint32_t as_u32(__half2 h) { return *reinterpret_cast<const uint32_t*>(&h); }

template <class F>
struct Frag {
  static constexpr bool kFast = false;
};

// q4_K: item pair p (items 2p and 2p + 1) are the low and high nibbles of qs bytes 32p .. 32p + 31.
template <>
struct Frag<fmt::Q4_K> {
  static constexpr bool kFast = true;
  static constexpr int kCalls = 4, kPerCall = 2;  // per block: calls, items per call
  __device__ static int item(int call, int j) { return 2 * call + j; }
  __device__ static void load(const uint8_t* b, int call, int t4, const fmt::Tables&, uint32_t out[2][4]) {
    const uint4 head = *reinterpret_cast<const uint4*>(b);  // d, dmin, scales[12]
    const __half2 dm = *reinterpret_cast<const __half2*>(&head.x);
    const uint32_t s[3] = {head.y, head.z, head.w};
    const uint2 q = *reinterpret_cast<const uint2*>(b + 16 + 32 * call + 8 * t4);
    const float d = __low2float(dm), dmin = __high2float(dm);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      int sc, m;
      fmt::k4_scale_min_words(2 * call + j, s, sc, m);
      // In f32, as the CPU: scale and min nearly cancel for small codes, so f16 scales would not do.
      const float scale = d * static_cast<float>(sc), neg_min = -dmin * static_cast<float>(m);
      const uint32_t w[2] = {(q.x >> (4 * j)) & 0x0F0F0F0Fu, (q.y >> (4 * j)) & 0x0F0F0F0Fu};
#pragma unroll
      for (int h = 0; h < 4; ++h) {
        const float lo = fmaf(code_to_float(w[h / 2], 2 * (h % 2)), scale, neg_min);
        const float hi = fmaf(code_to_float(w[h / 2], 2 * (h % 2) + 1), scale, neg_min);
        out[j][h] = as_u32(__floats2half2_rn(lo, hi));
      }
    }
  }
};

// q6_K: call c (half c/2, g = c%2) decodes items 4 half + g and 4 half + g + 2: the low and high
// nibbles of the same ql bytes, bits 2g and 2g + 4 of the same qh bytes; minus 32, times d and a
// signed scale per 16 weights.
template <>
struct Frag<fmt::Q6_K> {
  static constexpr bool kFast = true;
  static constexpr int kCalls = 4, kPerCall = 2;
  __device__ static int item(int call, int j) { return 4 * (call / 2) + call % 2 + 2 * j; }
  __device__ static void load(const uint8_t* b, int call, int t4, const fmt::Tables&, uint32_t out[2][4]) {
    constexpr int A = fmt::Q6_K::kAlign;
    const int half = call / 2, g = call % 2;
    uint32_t ql[2], qh[2];
    fmt::ld_words<A, 2>(b + 64 * half + 32 * g + 8 * t4, ql);
    fmt::ld_words<A, 2>(b + 128 + 32 * half + 8 * t4, qh);
    const float d = fmt::half_to_float(fmt::ld16<A>(b + 208));
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * half + 2 * g + t4 / 2);
    const __half2 k1056 = __float2half2_rn(1056.f);  // 1024 + the codes' bias 32
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const __half2 scale = __float2half2_rn(d * static_cast<float>(sc[4 * j]));
      const uint32_t w0 = ((ql[0] >> (4 * j)) & 0x0F0F0F0Fu) | (((qh[0] >> (2 * g + 4 * j)) & 0x03030303u) << 4);
      const uint32_t w1 = ((ql[1] >> (4 * j)) & 0x0F0F0F0Fu) | (((qh[1] >> (2 * g + 4 * j)) & 0x03030303u) << 4);
      out[j][0] = as_u32(__hmul2(__hsub2(bytes_to_half2(w0, 0), k1056), scale));
      out[j][1] = as_u32(__hmul2(__hsub2(bytes_to_half2(w0, 1), k1056), scale));
      out[j][2] = as_u32(__hmul2(__hsub2(bytes_to_half2(w1, 0), k1056), scale));
      out[j][3] = as_u32(__hmul2(__hsub2(bytes_to_half2(w1, 1), k1056), scale));
    }
  }
};

// iq1_s: item k's group t4 (8 weights) is grid entry qs[4k + t4] | 3 bits of qh[k] above it; its
// values -1, 0, 1 come as value + 1 from the nibble table. Weight = d (2 s + 1) (value +- 1/8).
template <>
struct Frag<fmt::IQ1_S> {
  static constexpr bool kFast = true;
  static constexpr int kCalls = 8, kPerCall = 1;
  __device__ static int item(int call, int) { return call; }
  __device__ static void load(const uint8_t* b, int call, int t4, const fmt::Tables& tab, uint32_t out[1][4]) {
    constexpr int A = fmt::IQ1_S::kAlign;
    const uint32_t qh = fmt::ld16<A>(b + 34 + 2 * call);
    const float dl = fmt::half_to_float(fmt::ld16<A>(b)) * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
    const float delta = qh & 0x8000 ? -fmt::IQ1_S::kDelta : fmt::IQ1_S::kDelta;
    const uint32_t u = __ldg(tab.iq1s_nib + (b[2 + 4 * call + t4] | (((qh >> (3 * t4)) & 7) << 8)));
    const uint32_t lo = u & 0x0F0F0F0Fu, hi = (u >> 4) & 0x0F0F0F0Fu;  // weights 0-3, 4-7, each + 1
    const __half2 k1025 = __float2half2_rn(1025.f), scale = __float2half2_rn(dl), shift = __float2half2_rn(dl * delta);
    out[0][0] = as_u32(__hfma2(__hsub2(bytes_to_half2(lo, 0), k1025), scale, shift));
    out[0][1] = as_u32(__hfma2(__hsub2(bytes_to_half2(lo, 1), k1025), scale, shift));
    out[0][2] = as_u32(__hfma2(__hsub2(bytes_to_half2(hi, 0), k1025), scale, shift));
    out[0][3] = as_u32(__hfma2(__hsub2(bytes_to_half2(hi, 1), k1025), scale, shift));
  }
};

// Chunks of the weight rows copied to shared memory: whole blocks, at least 128 bytes of a row.
template <class F>
__host__ __device__ constexpr int chunk_blocks() {
  return (128 + F::kBytes - 1) / F::kBytes;
}
// A row of a tile of CB blocks: room for the chunk landing up to 15 bytes past a 16-byte boundary,
// 32 bytes past a multiple of 128 (rows 4 apart on other banks: 8 rows' fragment loads take two
// wavefronts).
template <class F, int CB = chunk_blocks<F>()>
__host__ __device__ constexpr int tile_stride() {
  int s = (CB * F::kBytes + 30) / 16 * 16;
  while (s % 128 != 32) s += 16;
  return s;
}

// One decoder call (Frag::kPerCall items of a block) for rows g and g + 8 of a 16-row tile
// (their blocks at lo and hi), times NT8 tiles of 8 tokens: x_of(item, nt) gives lane (g, t4)'s
// 8 activations of that item for token 8 nt + g. The activations are requested first, so their
// latency hides behind the decoding.
template <class F, int NT8, class XOf>
__device__ __forceinline__ void mma_call(float (&acc)[NT8][4], const uint8_t* lo, const uint8_t* hi, int call, int t4, const fmt::Tables& tab,
                                         XOf x_of) {
  using Fr = Frag<F>;
  uint4 xb[Fr::kPerCall][NT8];
#pragma unroll
  for (int it = 0; it < Fr::kPerCall; ++it)
#pragma unroll
    for (int nt = 0; nt < NT8; ++nt) xb[it][nt] = x_of(Fr::item(call, it), nt);
  uint32_t v[2][Fr::kPerCall][4];
  Fr::load(lo, call, t4, tab, v[0]);
  Fr::load(hi, call, t4, tab, v[1]);
#pragma unroll
  for (int it = 0; it < Fr::kPerCall; ++it) {
    const uint32_t a0[4] = {v[0][it][0], v[1][it][0], v[0][it][1], v[1][it][1]};
    const uint32_t a1[4] = {v[0][it][2], v[1][it][2], v[0][it][3], v[1][it][3]};
#pragma unroll
    for (int nt = 0; nt < NT8; ++nt) {
      const uint32_t b0[2] = {xb[it][nt].x, xb[it][nt].y}, b1[2] = {xb[it][nt].z, xb[it][nt].w};
      mma::mma_m16n8k16(acc[nt], a0, b0);
      mma::mma_m16n8k16(acc[nt], a1, b1);
    }
  }
}

}  // namespace jing::cuda::mmvfrag
