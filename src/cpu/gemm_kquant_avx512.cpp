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

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <vector>

#include "cpu/avx512_util.h"
#include "cpu/row_tiles.h"
#include "cpu/kernels_simd.h"
#include "cpu/kquant_unpack.h"
#include "cpu/matmul.h"
#include "cpu/tiles.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/iq_tables.h"

namespace jing::cpu::avx512 {

using namespace blocks;

namespace {

// Q4_K and Q6_K (the bulk of Q4_K_M files) skip the scalar decoder: sixteen rows at a time,
// values by in-register transposes and scales by gathers.
template <class B>
struct Gathered {
  static constexpr bool kOn = false, kDminIsD = false;
};

template <>
struct Gathered<q4_K> {
  static constexpr bool kOn = true, kDminIsD = false;
  // Scales, minimums, d and dmin of one block of sixteen rows, unpacked sixteen lanes at a time
  // (the same bit surgery as k4_scale_min).
  static void gather_scales(const uint8_t* base, __m512i idx, __mmask16 m, int32_t* sc, int16_t* mn, float* d, float* dmin) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i u0 = _mm512_mask_i32gather_epi32(zero, m, idx, base + 4, 1);
    const __m512i u1 = _mm512_mask_i32gather_epi32(zero, m, idx, base + 8, 1);
    const __m512i u2 = _mm512_mask_i32gather_epi32(zero, m, idx, base + 12, 1);
    const __m512i m6 = _mm512_set1_epi32(0x3f3f3f3f), m4 = _mm512_set1_epi32(0x0f0f0f0f), m2 = _mm512_set1_epi32(0x03030303);
    const __m512i sc_lo = _mm512_and_si512(u0, m6), mn_lo = _mm512_and_si512(u1, m6);
    const __m512i sc_hi = _mm512_or_si512(_mm512_and_si512(u2, m4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), m2), 4));
    const __m512i mn_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), m4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), m2), 4));
    const __m512i byte = _mm512_set1_epi32(0xFF);
    for (int g = 0; g < 4; ++g) {
      _mm512_store_si512(sc + g * kRows, _mm512_and_si512(_mm512_srli_epi32(sc_lo, 8 * g), byte));
      _mm512_store_si512(sc + (g + 4) * kRows, _mm512_and_si512(_mm512_srli_epi32(sc_hi, 8 * g), byte));
    }
    // Minimum pairs (2p, 2p + 1) as two int16 in one lane: bytes 0,1 -> lanes 0,2 of the dword.
    auto spread = [&](__m512i v) {
      return _mm512_or_si512(_mm512_and_si512(v, byte), _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0xFF00)), 8));
    };
    _mm512_store_si512(mn + 0 * kRows * 2, spread(mn_lo));
    _mm512_store_si512(mn + 1 * kRows * 2, spread(_mm512_srli_epi32(mn_lo, 16)));
    _mm512_store_si512(mn + 2 * kRows * 2, spread(mn_hi));
    _mm512_store_si512(mn + 3 * kRows * 2, spread(_mm512_srli_epi32(mn_hi, 16)));
    const __m512i dd = _mm512_mask_i32gather_epi32(zero, m, idx, base, 1);
    _mm512_store_ps(d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd)));
    _mm512_store_ps(dmin, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16))));
  }
  // The values of one block of sixteen rows (row r at base + r * stride) straight into the panel:
  // a dword of qs holds four low nibbles (k = 64j + 4i ...) and four high ones (k + 32).
  static void values(const uint8_t* base, size_t stride, int n, uint8_t* v) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512i q[16];
    for (int part = 0; part < 2; ++part) {
      transpose16(base + offsetof(q4_K, qs) + 64 * part, stride, n, q);
      for (int m = 0; m < 16; ++m) {
        const int j = 2 * part + m / 8, i = m % 8;
        _mm512_store_si512(v + (16 * j + i) * 2 * 64, _mm512_and_si512(q[m], low4));
        _mm512_store_si512(v + (16 * j + 8 + i) * 2 * 64, _mm512_and_si512(_mm512_srli_epi32(q[m], 4), low4));
      }
    }
  }
};

template <>
struct Gathered<q6_K> {
  static constexpr bool kOn = true, kDminIsD = true;
  static void gather_scales(const uint8_t* base, __m512i idx, __mmask16 m, int32_t* sc, int16_t* mn, float* d, float*) {
    const __m512i zero = _mm512_setzero_si512();
    for (int i = 0; i < 4; ++i) {
      const __m512i v = _mm512_mask_i32gather_epi32(zero, m, idx, base + offsetof(q6_K, scales) + 4 * i, 1);
      for (int j = 0; j < 4; ++j) {
        // Byte j of the dword, sign-extended: shift it to the top, then arithmetic shift down.
        const __m512i s8 = _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * j), 24);
        _mm512_store_si512(sc + (4 * i + j) * kRows, s8);
      }
      // Pairs (4i, 4i + 1) and (4i + 2, 4i + 3) of 32 * scale as int16.
      const __m512i lo = _mm512_srai_epi16(_mm512_slli_epi16(v, 8), 8), hi = _mm512_srai_epi16(v, 8);  // bytes 0,2 / 1,3 as int16
      const __m512i p01 = _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xFFFF)), _mm512_slli_epi32(hi, 16));
      const __m512i p23 = _mm512_or_si512(_mm512_srli_epi32(lo, 16), _mm512_andnot_si512(_mm512_set1_epi32(0xFFFF), hi));
      _mm512_store_si512(mn + (2 * i) * kRows * 2, _mm512_slli_epi16(p01, 5));
      _mm512_store_si512(mn + (2 * i + 1) * kRows * 2, _mm512_slli_epi16(p23, 5));
    }
    // d is the block's last two bytes: read the dword that ends there (stays inside the block).
    const __m512i dd = _mm512_mask_i32gather_epi32(zero, m, idx, base + offsetof(q6_K, d) - 2, 1);
    _mm512_store_ps(d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16))));
  }
  // Per half h and dword i: ql[l], ql[l + 32] and qh[l] (l = 4i) give k = 128h + l + {0, 32, 64, 96}.
  static void values(const uint8_t* base, size_t stride, int n, uint8_t* v) {
    const __m512i low4 = _mm512_set1_epi8(0x0F), two = _mm512_set1_epi8(3);
    __m512i ql[16], qh[16];
    transpose16(base + offsetof(q6_K, qh), stride, n, qh);  // dwords 0..7: half 0, 8..15: half 1
    for (int h = 0; h < 2; ++h) {
      transpose16(base + offsetof(q6_K, ql) + 64 * h, stride, n, ql);
      for (int i = 0; i < 8; ++i) {
        const __m512i a = ql[i], b = ql[8 + i], hb = qh[8 * h + i];
        auto high = [&](int shift) { return _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hb, shift), two), 4); };
        uint8_t* o = v + (32 * h + i) * 2 * 64;
        _mm512_store_si512(o, _mm512_or_si512(_mm512_and_si512(a, low4), high(0)));
        _mm512_store_si512(o + 8 * 128, _mm512_or_si512(_mm512_and_si512(b, low4), high(2)));
        _mm512_store_si512(o + 16 * 128, _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(a, 4), low4), high(4)));
        _mm512_store_si512(o + 24 * 128, _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(b, 4), low4), high(6)));
      }
    }
  }
};

// 32 rows of a weight matrix in the kernel's layout (see the file comment).
struct Panel {
  std::vector<uint8_t> plain;   // tiled weights: the panel's rows untiled (cpu/row_tiles.h)
  AlignedVector<uint8_t> vals;  // [k/4][32 rows][4]
  AlignedVector<int32_t> sc;    // [block][group][32 rows]
  AlignedVector<int16_t> mn;    // [block][group pair][32 rows][2]
  AlignedVector<float> d, dmin;   // [block][32 rows]
};

template <class B>
void unpack_panel(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t nb, Panel& p) {
  constexpr int G = KQuant<B>::kGroups;
  p.vals.resize(static_cast<size_t>(nb) * QK_K * kRows);
  p.sc.resize(static_cast<size_t>(nb) * G * kRows);
  p.mn.resize(static_cast<size_t>(nb) * G * kRows);
  p.d.resize(static_cast<size_t>(nb) * kRows);
  p.dmin.resize(static_cast<size_t>(nb) * kRows);
  if (n_rows < kRows) {  // rows past the matrix's end multiply as zeros
    std::fill(p.vals.begin(), p.vals.end(), 0), std::fill(p.sc.begin(), p.sc.end(), 0);
    std::fill(p.mn.begin(), p.mn.end(), 0), std::fill(p.d.begin(), p.d.end(), 0.f), std::fill(p.dmin.begin(), p.dmin.end(), 0.f);
  }
  if constexpr (Gathered<B>::kOn) {
    // Sixteen rows at a time, one block at a time: values by transposes, scales by gathers.
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(static_cast<int>(row_bytes)));
    for (int half = 0; half < 2; ++half) {
      const int64_t rows_here = std::clamp<int64_t>(n_rows - 16 * half, 0, 16);
      if (rows_here == 0) break;
      const __mmask16 m = rows_here == 16 ? 0xFFFF : static_cast<__mmask16>((1u << rows_here) - 1);
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* base = w + 16 * half * row_bytes + b * sizeof(B);
        Gathered<B>::values(base, row_bytes, static_cast<int>(rows_here), p.vals.data() + static_cast<size_t>(b) * QK_K * kRows + half * 64);
        float* d = p.d.data() + b * kRows + 16 * half;
        float* dmin = p.dmin.data() + b * kRows + 16 * half;
        Gathered<B>::gather_scales(base, idx, m, p.sc.data() + b * G * kRows + 16 * half,
                                 p.mn.data() + (b * G / 2 * kRows + 16 * half) * 2, d, dmin);
        if (Gathered<B>::kDminIsD) std::memcpy(dmin, d, 16 * sizeof(float));
      }
    }
  } else {
    // Sixteen rows of one block decoded into a row-major scratch, then transposed into place.
    alignas(64) uint8_t scratch[16][QK_K];
    __m512i out[16];
    Unpacked u;
    for (int half = 0; half < 2; ++half) {
      const int rows_here = static_cast<int>(std::clamp<int64_t>(n_rows - 16 * half, 0, 16));
      if (rows_here == 0) break;
      for (int64_t b = 0; b < nb; ++b) {
        for (int r = 0; r < rows_here; ++r) {
          const int row = 16 * half + r;
          KQuant<B>::unpack(reinterpret_cast<const B*>(w + row * row_bytes)[b], u);
          std::memcpy(scratch[r], u.q, QK_K);
          for (int g = 0; g < G; ++g) {
            p.sc[(b * G + g) * kRows + row] = u.sc[g];
            p.mn[((b * G / 2 + g / 2) * kRows + row) * 2 + g % 2] = u.mn[g];
          }
          p.d[b * kRows + row] = u.d, p.dmin[b * kRows + row] = u.dmin;
        }
        uint8_t* v = p.vals.data() + static_cast<size_t>(b) * QK_K * kRows + half * 64;
        for (int q = 0; q < 4; ++q) {
          transpose16(scratch[0] + 64 * q, QK_K, rows_here, out);
          for (int j = 0; j < 16; ++j) _mm512_store_si512(v + (16 * q + j) * 2 * 64, out[j]);
        }
      }
    }
  }
}

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
  const std::vector<int16_t> gsum = group_sums<G>(xq, act_row, n_tokens, nb);
  constexpr int T = 4;
  for_each_panel<Panel>(rows, kRows, n_threads, [&](int64_t r0, int n_rows, Panel& p) {
    // The panel is one contiguous run of rows; its gathers stride across sixteen rows, which the
    // hardware prefetcher does not follow, so the next panel is fetched into L2 while this one is
    // multiplied.
    if (r0 + kRows < rows) {
      const auto* next = static_cast<const char*>(w.data) + (r0 + kRows) * w.row_bytes;
      const size_t bytes = static_cast<size_t>(std::min<int64_t>(kRows, rows - r0 - kRows)) * w.row_bytes;
      for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(next + off, _MM_HINT_T1);
    }
    const uint8_t* rows_here = static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes;
    unpack_panel<B>(plain_rows(w, rows_here, n_rows, p.plain), w.row_bytes, n_rows, nb, p);  // tiled: untiled in L2
    const auto masks = row_masks(n_rows);  // (no structured binding: lambdas capture these)
    const __mmask16 m0 = masks.first, m1 = masks.second;
    token_tiles<T>(n_tokens, [&](int64_t t0, auto n) {
      const q8_K* x[n];
      const int16_t* gs[n];
      float* out[n];
      for (int k = 0; k < n; ++k) {
        x[k] = reinterpret_cast<const q8_K*>(xq + (t0 + k) * act_row);
        gs[k] = gsum.data() + (t0 + k) * nb * G;
        out[k] = y + (t0 + k) * rows + r0;
      }
      tile<n, G>(p, nb, x, gs, out, m0, m1);
    });
  });
}

}  // namespace

bool gemm_kquant(const WeightView& w, const void* xq_q8k, size_t act_row, int64_t n_tokens, float* y, int n_threads) {
  if (w.cols % QK_K) return false;
  const auto* xq = static_cast<const uint8_t*>(xq_q8k);
  return with_kquant_format(w.type, [&]<class B>() { gemm<B>(w, xq, act_row, n_tokens, y, n_threads); });
}

}  // namespace jing::cpu::avx512
