// Matrix products of the 32-value block formats (Q8_0, Q4_0, Q5_0, IQ4_NL, MXFP4 with Q8_0
// activations; Q4_1, Q5_1 with Q8_1 activations) on AVX-512 VNNI.
//
// Each weight block is d * v (v a small signed integer) or d * v + m. Panels of 32 rows hold
// v + offset as unsigned bytes in VPDPBUSD order (see gemm_kquant_avx512.cpp), with d and m per
// block and row; the offset comes back out through the activation block sums:
//   sum (v + o) * x = sum v * x + o * sum x.
// Per block, the int32 sum meets d_w * d_x in float, and the _1 formats add m * s_x, with s_x the
// Q8_1 block's stored f16 sum, as ggml's dot products compute it.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "cpu/avx512_util.h"
#include "cpu/kernels_simd.h"
#include "cpu/matmul.h"
#include "cpu/q8_unpack.h"
#include "cpu/row_tiles.h"
#include "cpu/tiles.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/iq_tables.h"

namespace jing::cpu::avx512 {

using namespace blocks;

namespace {

struct Panel {
  AlignedVector<uint8_t> vals;  // [k/4][32 rows][4]
  AlignedVector<float> d, m;    // [block][32 rows]
  std::vector<uint8_t> plain;   // tiled weights: the panel's rows untiled (cpu/row_tiles.h)
};

// Rows are decoded eight blocks at a time into a row-major scratch, then transposed sixteen rows
// at a time into the panel.
template <class B>
void unpack_panel(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t nblk, Panel& p) {
  p.vals.resize(static_cast<size_t>(nblk) * QK * kRows);
  p.d.resize(static_cast<size_t>(nblk) * kRows);
  p.m.resize(static_cast<size_t>(nblk) * kRows);
  if (n_rows < kRows) std::fill(p.d.begin(), p.d.end(), 0.f), std::fill(p.m.begin(), p.m.end(), 0.f);
  alignas(64) uint8_t scratch[16][8 * QK];
  __m512i out[16];
  for (int half = 0; half < 2; ++half) {
    const int rows_here = static_cast<int>(std::clamp<int64_t>(n_rows - 16 * half, 0, 16));
    for (int64_t c = 0; c < nblk; c += 8) {
      const int nb = static_cast<int>(std::min<int64_t>(8, nblk - c));
      for (int r = 0; r < rows_here; ++r) {
        const auto* blocks = reinterpret_cast<const B*>(w + (16 * half + r) * row_bytes) + c;
        for (int i = 0; i < nb; ++i) {
          const size_t at = static_cast<size_t>(c + i) * kRows + 16 * half + r;
          Format<B>::decode(blocks[i], scratch[r] + QK * i, p.d[at], p.m[at]);
        }
      }
      const int groups = nb * QK / 4;  // k-groups of four in this chunk
      for (int q = 0; q * 16 < groups; ++q) {
        transpose16(scratch[0] + 64 * q, sizeof scratch[0], rows_here, out);
        for (int j = 0; j < 16 && 16 * q + j < groups; ++j)
          _mm512_store_si512(p.vals.data() + ((c * QK / 4 + 16 * q + j) * 2 + half) * 64, out[j]);
      }
    }
  }
}

template <int T, bool kMin>
void tile(const Panel& p, int64_t nblk, const TokenBlocks* x, float* const* out, __mmask16 m0, __mmask16 m1) {
  // Minimum terms go to their own sums, added at the end, as ggml keeps them (rows whose two parts
  // nearly cancel then round the same way).
  __m512 C[2][T], M[2][T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) C[0][t] = C[1][t] = M[0][t] = M[1][t] = _mm512_setzero_ps();
  const uint8_t* v = p.vals.data();
  for (int64_t b = 0; b < nblk; ++b) {
    __m512i A[2][T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) A[0][t] = A[1][t] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int kk = 0; kk < QK / 4; ++kk, v += 2 * 64) {
      const __m512i w0 = _mm512_load_si512(v), w1 = _mm512_load_si512(v + 64);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m512i a = _mm512_set1_epi32(load32(x[t].blocks + b * x[t].block_bytes + x[t].qs_offset + 4 * kk));
        A[0][t] = _mm512_dpbusd_epi32(A[0][t], w0, a);
        A[1][t] = _mm512_dpbusd_epi32(A[1][t], w1, a);
      }
    }
    const __m512 d0 = _mm512_load_ps(p.d.data() + b * kRows), d1 = _mm512_load_ps(p.d.data() + b * kRows + 16);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m512 dx = _mm512_set1_ps(x[t].d[b]);
      if constexpr (!kMin) {
        const __m512i o = _mm512_set1_epi32(x[t].offset_sum[b]);
        A[0][t] = _mm512_sub_epi32(A[0][t], o), A[1][t] = _mm512_sub_epi32(A[1][t], o);
      }
      C[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(A[0][t]), _mm512_mul_ps(d0, dx), C[0][t]);
      C[1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(A[1][t]), _mm512_mul_ps(d1, dx), C[1][t]);
      if constexpr (kMin) {
        const __m512 s = _mm512_set1_ps(x[t].s[b]);
        M[0][t] = _mm512_add_ps(M[0][t], _mm512_mul_ps(_mm512_load_ps(p.m.data() + b * kRows), s));
        M[1][t] = _mm512_add_ps(M[1][t], _mm512_mul_ps(_mm512_load_ps(p.m.data() + b * kRows + 16), s));
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    _mm512_mask_storeu_ps(out[t], m0, kMin ? _mm512_add_ps(C[0][t], M[0][t]) : C[0][t]);
    _mm512_mask_storeu_ps(out[t] + 16, m1, kMin ? _mm512_add_ps(C[1][t], M[1][t]) : C[1][t]);
  }
}

// The offset the panel's unsigned values carry (0 where there is none to take back out).
template <class B>
constexpr int offset() {
  if constexpr (Format<B>::kMin) return 0;
  else return Format<B>::kOffset;
}

template <class B>
void gemm(const WeightView& w, const uint8_t* xq, size_t act_row, int64_t n_tokens, float* y, int n_threads) {
  constexpr bool kMin = Format<B>::kMin;
  const int64_t nblk = w.cols / QK, rows = w.rows;
  const BlockActivations acts(xq, act_row, n_tokens, nblk, kMin, offset<B>());
  constexpr int T = 4;
  for_each_panel<Panel>(rows, kRows, n_threads, [&](int64_t r0, int n_rows, Panel& p) {
    const uint8_t* rows_here = static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes;
    unpack_panel<B>(plain_rows(w, rows_here, n_rows, p.plain), w.row_bytes, n_rows, nblk, p);  // tiled: untiled in L2
    const auto masks = row_masks(n_rows);  // (no structured binding: lambdas capture these)
    const __mmask16 m0 = masks.first, m1 = masks.second;
    token_tiles<T>(n_tokens, [&](int64_t t0, auto n) {
      TokenBlocks x[n];
      float* out[n];
      for (int k = 0; k < n; ++k) x[k] = acts.token(t0 + k), out[k] = y + (t0 + k) * rows + r0;
      tile<n, kMin>(p, nblk, x, out, m0, m1);
    });
  });
}

}  // namespace

bool gemm_q8(const WeightView& w, const void* xq_blocks, size_t act_row, int64_t n_tokens, float* y, int n_threads) {
  if (w.cols % QK) return false;
  const auto* xq = static_cast<const uint8_t*>(xq_blocks);
  return with_q8_format(w.type, [&]<class B>() { gemm<B>(w, xq, act_row, n_tokens, y, n_threads); });
}

}  // namespace jing::cpu::avx512
