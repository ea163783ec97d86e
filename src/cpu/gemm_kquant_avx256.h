// The 256-value formats times Q8_K activations on 256-bit registers: the body of
// gemm_kquant_avx2.cpp and gemm_kquant_avxvnni.cpp, one kernel compiled twice (include only from
// those two files, after defining JING_AVX_VNNI and JING_KQUANT_NAMESPACE).
//
// A panel of 16 weight rows holds unsigned values four k at a time per row (two registers of
// eight rows per k-group), decoded once per call; a tile is 16 rows x 2 tokens.
//  - AVX2: PMADDUBSW multiplies the weights by a broadcast of four activation bytes into pairs of
//    16-bit sums and PMADDWD folds in each row's group scale (both halves of a 32-bit lane hold it).
//    PMADDUBSW saturates a pair at 32767: every format here keeps 2 * max(q) * 128 below that
//    (Q6_K 16128, IQ3_XXS 31744); IQ4_XS (values up to 241) is left to its dot-product kernel.
//  - AVX-VNNI (Intel client CPUs since Alder Lake): VPDPBUSD sums each group exactly and one
//    VPMULLD per group applies its scale; no saturation, so IQ4_XS is in.
// Minimums meet the activation group sums by PMADDWD in both.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/avx2_util.h"
#include "cpu/kernels_simd.h"
#include "cpu/kquant_unpack.h"
#include "cpu/matmul.h"
#include "cpu/tiles.h"

namespace jing::cpu::JING_KQUANT_NAMESPACE {

namespace {

constexpr int kPanelRows = 16;

struct Panel {
  std::vector<uint8_t> vals;  // [k/4][16 rows][4]
  std::vector<int32_t> sc2;   // [block][group][16 rows]: the scale in both 16-bit halves
  std::vector<int16_t> mn;    // [block][group pair][16 rows][2]
  std::vector<float> d, dmin; // [block][16 rows]
};

template <class B>
void unpack_panel(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t nb, Panel& p) {
  constexpr int G = KQuant<B>::kGroups;
  p.vals.resize(static_cast<size_t>(nb) * QK_K * kPanelRows);
  p.sc2.resize(static_cast<size_t>(nb) * G * kPanelRows);
  p.mn.resize(static_cast<size_t>(nb) * G * kPanelRows);
  p.d.resize(static_cast<size_t>(nb) * kPanelRows);
  p.dmin.resize(static_cast<size_t>(nb) * kPanelRows);
  if (n_rows < kPanelRows) {  // rows past the matrix's end multiply as zeros; the others are all written below
    std::fill(p.vals.begin(), p.vals.end(), 0), std::fill(p.sc2.begin(), p.sc2.end(), 0), std::fill(p.mn.begin(), p.mn.end(), 0);
    std::fill(p.d.begin(), p.d.end(), 0.f), std::fill(p.dmin.begin(), p.dmin.end(), 0.f);
  }
  Unpacked u;
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* blocks = reinterpret_cast<const B*>(w + r * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
      KQuant<B>::unpack(blocks[b], u);
      uint8_t* v = p.vals.data() + static_cast<size_t>(b) * QK_K * kPanelRows + r * 4;
      for (int kg = 0; kg < QK_K / 4; ++kg) std::memcpy(v + kg * kPanelRows * 4, u.q + 4 * kg, 4);
      for (int g = 0; g < G; ++g) {
        const uint32_t s16 = static_cast<uint16_t>(u.sc[g]);
        p.sc2[(b * G + g) * kPanelRows + r] = static_cast<int32_t>(s16 | s16 << 16);
        p.mn[((b * G / 2 + g / 2) * kPanelRows + r) * 2 + g % 2] = u.mn[g];
      }
      p.d[b * kPanelRows + r] = u.d, p.dmin[b * kPanelRows + r] = u.dmin;
    }
  }
}

using avx2::broadcast4, avx2::load;

template <int T, int G>
void tile(const Panel& p, int64_t nb, const q8_K* const* x, const int16_t* const* gsum, float* const* out, int n_rows) {
  constexpr int KG = QK_K / 4 / G;
  __m256 C[2][T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) C[0][t] = C[1][t] = _mm256_setzero_ps();
  const uint8_t* v = p.vals.data();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i S[2][T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) S[0][t] = S[1][t] = _mm256_setzero_si256();
    for (int g = 0; g < G; ++g) {
      const int32_t* sc = p.sc2.data() + (b * G + g) * kPanelRows;
      const __m256i s0 = load(sc), s1 = load(sc + 8);
#if JING_AVX_VNNI
      // VPDPBUSD sums the group's products exactly; one VPMULLD per group applies its scale.
      __m256i A[2][T];
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) A[0][t] = A[1][t] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int kk = 0; kk < KG; ++kk, v += 64) {
        const __m256i w0 = load(v), w1 = load(v + 32);
        const int off = (g * KG + kk) * 4;
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
          const __m256i a = broadcast4(x[t][b].qs + off);
          A[0][t] = _mm256_dpbusd_avx_epi32(A[0][t], w0, a);
          A[1][t] = _mm256_dpbusd_avx_epi32(A[1][t], w1, a);
        }
      }
      const __m256i c0 = _mm256_srai_epi32(_mm256_slli_epi32(s0, 16), 16), c1 = _mm256_srai_epi32(_mm256_slli_epi32(s1, 16), 16);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        S[0][t] = _mm256_add_epi32(S[0][t], _mm256_mullo_epi32(A[0][t], c0));
        S[1][t] = _mm256_add_epi32(S[1][t], _mm256_mullo_epi32(A[1][t], c1));
      }
#else
#pragma GCC unroll 8
      for (int kk = 0; kk < KG; ++kk, v += 64) {
        const __m256i w0 = load(v), w1 = load(v + 32);
        const int off = (g * KG + kk) * 4;
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
          const __m256i a = broadcast4(x[t][b].qs + off);
          S[0][t] = _mm256_add_epi32(S[0][t], _mm256_madd_epi16(_mm256_maddubs_epi16(w0, a), s0));
          S[1][t] = _mm256_add_epi32(S[1][t], _mm256_madd_epi16(_mm256_maddubs_epi16(w1, a), s1));
        }
      }
#endif
    }
    const __m256 d0 = _mm256_loadu_ps(p.d.data() + b * kPanelRows), d1 = _mm256_loadu_ps(p.d.data() + b * kPanelRows + 8);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const __m256 dx = _mm256_set1_ps(x[t][b].d);
      C[0][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[0][t]), _mm256_mul_ps(d0, dx), C[0][t]);
      C[1][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[1][t]), _mm256_mul_ps(d1, dx), C[1][t]);
      S[0][t] = S[1][t] = _mm256_setzero_si256();
    }
    // Minimums, two groups per PMADDWD, into the same registers.
    for (int gp = 0; gp < G / 2; ++gp) {
      const int16_t* mn = p.mn.data() + (b * G / 2 + gp) * kPanelRows * 2;
      const __m256i n0 = load(mn), n1 = load(mn + 16);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        int32_t pair;
        std::memcpy(&pair, gsum[t] + b * G + 2 * gp, 4);
        const __m256i a = _mm256_set1_epi32(pair);
        S[0][t] = _mm256_add_epi32(S[0][t], _mm256_madd_epi16(n0, a));
        S[1][t] = _mm256_add_epi32(S[1][t], _mm256_madd_epi16(n1, a));
      }
    }
    const __m256 m0 = _mm256_loadu_ps(p.dmin.data() + b * kPanelRows), m1 = _mm256_loadu_ps(p.dmin.data() + b * kPanelRows + 8);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const __m256 dx = _mm256_set1_ps(x[t][b].d);
      C[0][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(S[0][t]), _mm256_mul_ps(m0, dx), C[0][t]);
      C[1][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(S[1][t]), _mm256_mul_ps(m1, dx), C[1][t]);
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) avx2::store_rows(out[t], C[0][t], C[1][t], n_rows);
}

template <class B>
void gemm(const WeightView& w, const uint8_t* xq, size_t act_row, int64_t n_tokens, float* y, int n_threads) {
  constexpr int G = KQuant<B>::kGroups;
  const int64_t nb = w.cols / QK_K, rows = w.rows;
  const std::vector<int16_t> gsum = group_sums<G>(xq, act_row, n_tokens, nb);
  constexpr int T = 2;  // 2 x 2 accumulators + 2 x 2 sums: the rest of the 16 registers feed them
  for_each_panel<Panel>(rows, kPanelRows, n_threads, [&](int64_t r0, int n_rows, Panel& p) {
    unpack_panel<B>(static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes, w.row_bytes, n_rows, nb, p);
    token_tiles<T>(n_tokens, [&](int64_t t0, auto n) {
      const q8_K* x[n];
      const int16_t* gs[n];
      float* out[n];
      for (int k = 0; k < n; ++k) {
        x[k] = reinterpret_cast<const q8_K*>(xq + (t0 + k) * act_row);
        gs[k] = gsum.data() + (t0 + k) * nb * G;
        out[k] = y + (t0 + k) * rows + r0;
      }
      tile<n, G>(p, nb, x, gs, out, n_rows);
    });
  });
}

}  // namespace

bool gemm_kquant(const WeightView& w, const void* xq_q8k, size_t act_row, int64_t n_tokens, float* y, int n_threads) {
  if (w.cols % QK_K) return false;
  // Without VNNI, IQ4_XS (values up to 241) would saturate PMADDUBSW: its dot product serves it.
  if (!JING_AVX_VNNI && w.type == GgmlType::IQ4_XS) return false;
  const auto* xq = static_cast<const uint8_t*>(xq_q8k);
  return with_kquant_format(w.type, [&]<class B>() { gemm<B>(w, xq, act_row, n_tokens, y, n_threads); });
}

}  // namespace jing::cpu::JING_KQUANT_NAMESPACE
