// Matrix-matrix product of K-quant weights (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) with Q8_K activations
// on AVX-512 VNNI: the prompt-processing path.
//
// Every K-quant value is  d * scale[g] * q - dmin * min[g]  with q a small unsigned integer and g
// a group of 16 or 32 values (Q6_K and Q3_K fit by writing their signed offset as a "min":
// d * sc * (q - 32) = d * sc * q - d * (32 * sc)). So one kernel serves them all:
//   1. A panel of 32 weight rows is unpacked once per call into unsigned bytes laid out for
//      VPDPBUSD (four consecutive k of sixteen rows per register) plus per-group integer scales
//      and minimums; the cost is spread over every token of the batch.
//   2. For a tile of 32 rows x T tokens, VPDPBUSD multiplies the unsigned weights by a broadcast of
//      four activation bytes; each group's int32 sums are scaled by VPMULLD, the minimums meet the
//      activation group sums through VPDPWSSD, and each 256-value block ends in float with d * d_x.
// Integer sums are exact (bounds in the comments below), so results equal the AVX2 kernel's up to
// the order of the float additions.
#include <immintrin.h>

// GCC 12 reports the undefined source operand inside the AVX-512 conversion intrinsics as
// "may be used uninitialized"; it is not.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "cpu/kernels_simd.h"
#include "cpu/matmul.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace jing::cpu::avx512 {

using namespace blocks;

namespace {

constexpr int kRows = 32;  // rows per panel: two 16-lane registers

// Cache-line-aligned storage for the panel (every register load in the kernel is aligned).
template <class V>
struct AlignedAlloc {
  using value_type = V;
  AlignedAlloc() = default;
  template <class U>
  AlignedAlloc(const AlignedAlloc<U>&) {}
  V* allocate(size_t n) { return static_cast<V*>(::operator new(n * sizeof(V), std::align_val_t{64})); }
  void deallocate(V* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  bool operator==(const AlignedAlloc&) const { return true; }
};

// One 256-value block of one row, unpacked: q[k] unsigned, group scales and minimums.
struct Unpacked {
  alignas(64) uint8_t q[QK_K];
  int32_t sc[16];
  int16_t mn[16];
  float d, dmin;
};

// Per type: the group count of a block and the block decoder.
template <class B>
struct KQuant;

template <>
struct KQuant<q4_K> {
  static constexpr int kGroups = 8;
  static void unpack(const q4_K& b, Unpacked& u) {
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) {
        u.q[64 * j + l] = b.qs[32 * j + l] & 0xF;
        u.q[64 * j + 32 + l] = b.qs[32 * j + l] >> 4;
      }
    for (int g = 0; g < 8; ++g) {
      uint8_t sc, m;
      k4_scale_min(g, b.scales, sc, m);
      u.sc[g] = sc, u.mn[g] = m;
    }
    u.d = fp16_to_fp32(b.d), u.dmin = fp16_to_fp32(b.dmin);
  }
};

template <>
struct KQuant<q5_K> {
  static constexpr int kGroups = 8;
  static void unpack(const q5_K& b, Unpacked& u) {
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) {
        const uint8_t h = b.qh[l] >> (2 * j);
        u.q[64 * j + l] = (b.qs[32 * j + l] & 0xF) | ((h & 1) << 4);
        u.q[64 * j + 32 + l] = (b.qs[32 * j + l] >> 4) | ((h & 2) << 3);
      }
    for (int g = 0; g < 8; ++g) {
      uint8_t sc, m;
      k4_scale_min(g, b.scales, sc, m);
      u.sc[g] = sc, u.mn[g] = m;
    }
    u.d = fp16_to_fp32(b.d), u.dmin = fp16_to_fp32(b.dmin);
  }
};

template <>
struct KQuant<q6_K> {
  static constexpr int kGroups = 16;
  static void unpack(const q6_K& b, Unpacked& u) {
    for (int half = 0; half < 2; ++half) {
      const uint8_t *ql = b.ql + 64 * half, *qh = b.qh + 32 * half;
      uint8_t* q = u.q + 128 * half;
      for (int l = 0; l < 32; ++l) {
        q[l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
        q[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
        q[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
        q[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
      }
    }
    for (int g = 0; g < 16; ++g) u.sc[g] = b.scales[g], u.mn[g] = static_cast<int16_t>(32 * b.scales[g]);
    u.d = u.dmin = fp16_to_fp32(b.d);
  }
};

template <>
struct KQuant<q3_K> {
  static constexpr int kGroups = 16;
  static void unpack(const q3_K& b, Unpacked& u) {
    // Stored: 2 low bits in qs, the third bit in hmask; value (q - 4) with q = low | (bit << 2).
    for (int half = 0; half < 2; ++half)
      for (int s = 0; s < 4; ++s)
        for (int l = 0; l < 32; ++l)
          u.q[128 * half + 32 * s + l] =
              ((b.qs[32 * half + l] >> (2 * s)) & 3) | (((b.hmask[l] >> (4 * half + s)) & 1) << 2);
    int8_t sc[16];
    q3k_scales(b.scales, sc);
    for (int g = 0; g < 16; ++g) u.sc[g] = sc[g] - 32, u.mn[g] = static_cast<int16_t>(4 * (sc[g] - 32));
    u.d = u.dmin = fp16_to_fp32(b.d);
  }
};

template <>
struct KQuant<q2_K> {
  static constexpr int kGroups = 16;
  static void unpack(const q2_K& b, Unpacked& u) {
    for (int half = 0; half < 2; ++half)
      for (int s = 0; s < 4; ++s)
        for (int l = 0; l < 32; ++l) u.q[128 * half + 32 * s + l] = (b.qs[32 * half + l] >> (2 * s)) & 3;
    for (int g = 0; g < 16; ++g) u.sc[g] = b.scales[g] & 0xF, u.mn[g] = b.scales[g] >> 4;
    u.d = fp16_to_fp32(b.d), u.dmin = fp16_to_fp32(b.dmin);
  }
};

// 32 rows of a weight matrix in the kernel's layout (see the file comment).
struct Panel {
  std::vector<uint8_t, AlignedAlloc<uint8_t>> vals;  // [k/4][32 rows][4]
  std::vector<int32_t, AlignedAlloc<int32_t>> sc;    // [block][group][32 rows]
  std::vector<int16_t, AlignedAlloc<int16_t>> mn;    // [block][group pair][32 rows][2]
  std::vector<float, AlignedAlloc<float>> d, dmin;   // [block][32 rows]
};

template <class B>
void unpack_panel(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t nb, Panel& p) {
  constexpr int G = KQuant<B>::kGroups;
  p.vals.assign(static_cast<size_t>(nb) * QK_K * kRows, 0);
  p.sc.assign(static_cast<size_t>(nb) * G * kRows, 0);
  p.mn.assign(static_cast<size_t>(nb) * G * kRows, 0);
  p.d.assign(static_cast<size_t>(nb) * kRows, 0.f);
  p.dmin.assign(static_cast<size_t>(nb) * kRows, 0.f);
  Unpacked u;
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* blocks = reinterpret_cast<const B*>(w + r * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
      KQuant<B>::unpack(blocks[b], u);
      // Four k of this row go to lane r of the register for k-group kg.
      uint8_t* v = p.vals.data() + static_cast<size_t>(b) * QK_K * kRows + r * 4;
      for (int kg = 0; kg < QK_K / 4; ++kg) std::memcpy(v + kg * kRows * 4, u.q + 4 * kg, 4);
      for (int g = 0; g < G; ++g) {
        p.sc[(b * G + g) * kRows + r] = u.sc[g];
        p.mn[((b * G / 2 + g / 2) * kRows + r) * 2 + g % 2] = u.mn[g];
      }
      p.d[b * kRows + r] = u.d, p.dmin[b * kRows + r] = u.dmin;
    }
  }
}

inline int32_t load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// out[t][0..32) = panel rows . activation row t, for T tokens. gsum[t]: the token's int16 sums over
// each weight group (G per block).
//
// Bounds: a group's VPDPBUSD sum is at most 32 * 31 * 127 (Q5_K) or 16 * 63 * 128 (Q6_K) and a
// block's scaled sum at most 16 * 127 * 129024 < 2^31, so int32 never overflows.
template <int T, int G>
void tile(const Panel& p, int64_t nb, const q8_K* const* x, const int16_t* const* gsum, float* const* out, __mmask16 m0,
          __mmask16 m1) {
  constexpr int KG = QK_K / 4 / G;  // k-groups of four per weight group
  __m512 C[2][T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) C[0][t] = C[1][t] = _mm512_setzero_ps();
  const uint8_t* v = p.vals.data();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i S[2][T], A[2][T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) S[0][t] = S[1][t] = _mm512_setzero_si512();
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) A[0][t] = A[1][t] = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int kk = 0; kk < KG; ++kk, v += 2 * 64) {
        const __m512i w0 = _mm512_load_si512(v), w1 = _mm512_load_si512(v + 64);
        const int off = (g * KG + kk) * 4;
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m512i a = _mm512_set1_epi32(load32(x[t][b].qs + off));
          A[0][t] = _mm512_dpbusd_epi32(A[0][t], w0, a);
          A[1][t] = _mm512_dpbusd_epi32(A[1][t], w1, a);
        }
      }
      const int32_t* sc = p.sc.data() + (b * G + g) * kRows;
      const __m512i s0 = _mm512_load_si512(sc), s1 = _mm512_load_si512(sc + 16);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        S[0][t] = _mm512_add_epi32(S[0][t], _mm512_mullo_epi32(A[0][t], s0));
        S[1][t] = _mm512_add_epi32(S[1][t], _mm512_mullo_epi32(A[1][t], s1));
      }
    }
    // Minimums: sum over groups of min[g] * (activation sum over group g), two groups per VPDPWSSD.
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) A[0][t] = A[1][t] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int gp = 0; gp < G / 2; ++gp) {
      const int16_t* mn = p.mn.data() + (b * G / 2 + gp) * kRows * 2;
      const __m512i n0 = _mm512_load_si512(mn), n1 = _mm512_load_si512(mn + 32);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m512i a = _mm512_set1_epi32(load32(gsum[t] + b * G + 2 * gp));
        A[0][t] = _mm512_dpwssd_epi32(A[0][t], n0, a);
        A[1][t] = _mm512_dpwssd_epi32(A[1][t], n1, a);
      }
    }
    const float* d = p.d.data() + b * kRows;
    const float* dm = p.dmin.data() + b * kRows;
    const __m512 d0 = _mm512_load_ps(d), d1 = _mm512_load_ps(d + 16);
    const __m512 dm0 = _mm512_load_ps(dm), dm1 = _mm512_load_ps(dm + 16);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m512 dx = _mm512_set1_ps(x[t][b].d);
      C[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[0][t]), _mm512_mul_ps(d0, dx), C[0][t]);
      C[1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[1][t]), _mm512_mul_ps(d1, dx), C[1][t]);
      C[0][t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(A[0][t]), _mm512_mul_ps(dm0, dx), C[0][t]);
      C[1][t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(A[1][t]), _mm512_mul_ps(dm1, dx), C[1][t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    _mm512_mask_storeu_ps(out[t], m0, C[0][t]);
    _mm512_mask_storeu_ps(out[t] + 16, m1, C[1][t]);
  }
}

template <class B>
void gemm(const WeightView& w, const uint8_t* xq, size_t act_row, int64_t n_tokens, float* y, int n_threads) {
  constexpr int G = KQuant<B>::kGroups;
  const int64_t nb = w.cols / QK_K, rows = w.rows;
  // Activation sums per weight group (Q8_K keeps them per 16 values; Q4_K/Q5_K groups are 32).
  std::vector<int16_t> gsum(static_cast<size_t>(n_tokens * nb * G));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t b = 0; b < nb; ++b) {
      const auto& xb = reinterpret_cast<const q8_K*>(xq + t * act_row)[b];
      int16_t* gs = gsum.data() + (t * nb + b) * G;
      for (int g = 0; g < G; ++g)
        gs[g] = G == 16 ? xb.bsums[g] : static_cast<int16_t>(xb.bsums[2 * g] + xb.bsums[2 * g + 1]);
    }
  const int64_t n_panels = (rows + kRows - 1) / kRows;
  constexpr int T = 4;
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
  {
    Panel p;
#pragma omp for schedule(static)
    for (int64_t pi = 0; pi < n_panels; ++pi) {
      const int64_t r0 = pi * kRows, n_rows = std::min<int64_t>(kRows, rows - r0);
      unpack_panel<B>(static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes, w.row_bytes, n_rows, nb, p);
      const __mmask16 m0 = n_rows >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n_rows) - 1);
      const __mmask16 m1 = n_rows >= 32 ? 0xFFFF : n_rows <= 16 ? 0 : static_cast<__mmask16>((1u << (n_rows - 16)) - 1);
      const q8_K* x[T];
      const int16_t* gs[T];
      float* out[T];
      auto point = [&](int64_t t0, int n) {
        for (int k = 0; k < n; ++k) {
          x[k] = reinterpret_cast<const q8_K*>(xq + (t0 + k) * act_row);
          gs[k] = gsum.data() + (t0 + k) * nb * G;
          out[k] = y + (t0 + k) * rows + r0;
        }
      };
      int64_t t = 0;
      for (; t + T <= n_tokens; t += T) point(t, T), tile<T, G>(p, nb, x, gs, out, m0, m1);
      switch (n_tokens - t) {
        case 3: point(t, 3), tile<3, G>(p, nb, x, gs, out, m0, m1); break;
        case 2: point(t, 2), tile<2, G>(p, nb, x, gs, out, m0, m1); break;
        case 1: point(t, 1), tile<1, G>(p, nb, x, gs, out, m0, m1); break;
        default: break;
      }
    }
  }
}

}  // namespace

bool gemm_kquant(const WeightView& w, const void* xq_q8k, size_t act_row, int64_t n_tokens, float* y, int n_threads) {
  if (w.cols % QK_K) return false;
  const auto* xq = static_cast<const uint8_t*>(xq_q8k);
  switch (w.type) {
    case GgmlType::Q4_K: gemm<q4_K>(w, xq, act_row, n_tokens, y, n_threads); return true;
    case GgmlType::Q5_K: gemm<q5_K>(w, xq, act_row, n_tokens, y, n_threads); return true;
    case GgmlType::Q6_K: gemm<q6_K>(w, xq, act_row, n_tokens, y, n_threads); return true;
    case GgmlType::Q3_K: gemm<q3_K>(w, xq, act_row, n_tokens, y, n_threads); return true;
    case GgmlType::Q2_K: gemm<q2_K>(w, xq, act_row, n_tokens, y, n_threads); return true;
    default: return false;
  }
}

}  // namespace jing::cpu::avx512
