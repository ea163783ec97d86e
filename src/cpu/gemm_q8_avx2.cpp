// Matrix-matrix product of the 32-value block formats on AVX2 (CPUs without AVX-512): the scheme
// of gemm_q8_avx512.cpp on 16 ymm registers, with PMADDUBSW + PMADDWD in place of VPDPBUSD.
//
// PMADDUBSW saturates a pair at 32767, so the formats whose unsigned form reaches 255 (Q8_0 and
// IQ4_NL: v + 128) keep their values signed in the panel and go through the sign trick instead:
// |w| times x with w's sign, per register. Q4_0, Q5_0, MXFP4 (v + offset <= 31) and Q4_1, Q5_1
// (unsigned with a minimum) multiply directly; their offset comes back out through the
// activation block sums, as in the AVX-512 kernel.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "cpu/avx2_util.h"
#include "cpu/kernels_simd.h"
#include "cpu/matmul.h"
#include "cpu/q8_unpack.h"
#include "cpu/tiles.h"

namespace jing::cpu::avx2 {

namespace {

constexpr int kPanelRows = 16;

template <class B>
constexpr bool is_signed() {
  if constexpr (Format<B>::kMin) return false;
  else return Format<B>::kOffset == 128;
}
template <class B>
constexpr bool kSigned = is_signed<B>();

struct Panel {
  std::vector<uint8_t> vals;  // [k/4][16 rows][4]: v + offset, or v itself (signed formats)
  std::vector<float> d, m;    // [block][16 rows]
};

template <class B>
void unpack_panel(const uint8_t* w, size_t row_bytes, int n_rows, int64_t nblk, Panel& p) {
  p.vals.resize(static_cast<size_t>(nblk) * QK * kPanelRows);
  p.d.resize(static_cast<size_t>(nblk) * kPanelRows);
  p.m.resize(static_cast<size_t>(nblk) * kPanelRows);
  if (n_rows < kPanelRows)  // rows past the matrix's end multiply as zeros; the others are all written below
    std::fill(p.vals.begin(), p.vals.end(), 0), std::fill(p.d.begin(), p.d.end(), 0.f), std::fill(p.m.begin(), p.m.end(), 0.f);
  uint8_t q[QK];
  for (int r = 0; r < n_rows; ++r) {
    const auto* blocks = reinterpret_cast<const B*>(w + r * row_bytes);
    for (int64_t b = 0; b < nblk; ++b) {
      Format<B>::decode(blocks[b], q, p.d[b * kPanelRows + r], p.m[b * kPanelRows + r]);
      if constexpr (kSigned<B>)
        for (auto& v : q) v ^= 0x80;  // back to two's complement v
      uint8_t* dst = p.vals.data() + static_cast<size_t>(b) * QK * kPanelRows + r * 4;
      for (int kg = 0; kg < QK / 4; ++kg) std::memcpy(dst + kg * kPanelRows * 4, q + 4 * kg, 4);
    }
  }
}

template <int T, class B>
void tile(const Panel& p, int64_t nblk, const TokenBlocks* x, float* const* out, int n_rows) {
  constexpr bool kMin = Format<B>::kMin;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 C[2][T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) C[0][t] = C[1][t] = _mm256_setzero_ps();
  const uint8_t* v = p.vals.data();
  for (int64_t b = 0; b < nblk; ++b) {
    __m256i A[2][T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) A[0][t] = A[1][t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int kk = 0; kk < QK / 4; ++kk, v += 64) {
      __m256i w0 = load(v), w1 = load(v + 32);
      __m256i s0 = w0, s1 = w1;  // (signed formats: the weights' signs)
      if constexpr (kSigned<B>) w0 = _mm256_abs_epi8(w0), w1 = _mm256_abs_epi8(w1);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        const __m256i a = broadcast4(x[t].blocks + b * x[t].block_bytes + x[t].qs_offset + 4 * kk);
        const __m256i a0 = kSigned<B> ? _mm256_sign_epi8(a, s0) : a, a1 = kSigned<B> ? _mm256_sign_epi8(a, s1) : a;
        A[0][t] = _mm256_add_epi32(A[0][t], _mm256_madd_epi16(_mm256_maddubs_epi16(w0, a0), ones));
        A[1][t] = _mm256_add_epi32(A[1][t], _mm256_madd_epi16(_mm256_maddubs_epi16(w1, a1), ones));
      }
    }
    const __m256 d0 = _mm256_loadu_ps(p.d.data() + b * kPanelRows), d1 = _mm256_loadu_ps(p.d.data() + b * kPanelRows + 8);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const __m256 dx = _mm256_set1_ps(x[t].d[b]);
      if constexpr (!kMin && !kSigned<B>) {
        const __m256i o = _mm256_set1_epi32(x[t].offset_sum[b]);
        A[0][t] = _mm256_sub_epi32(A[0][t], o), A[1][t] = _mm256_sub_epi32(A[1][t], o);
      }
      C[0][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(A[0][t]), _mm256_mul_ps(d0, dx), C[0][t]);
      C[1][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(A[1][t]), _mm256_mul_ps(d1, dx), C[1][t]);
      if constexpr (kMin) {
        const __m256 s = _mm256_set1_ps(x[t].s[b]);
        C[0][t] = _mm256_fmadd_ps(_mm256_loadu_ps(p.m.data() + b * kPanelRows), s, C[0][t]);
        C[1][t] = _mm256_fmadd_ps(_mm256_loadu_ps(p.m.data() + b * kPanelRows + 8), s, C[1][t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) store_rows(out[t], C[0][t], C[1][t], n_rows);
}

// The offset the panel's unsigned values carry (0 where there is none to take back out).
template <class B>
constexpr int offset() {
  if constexpr (Format<B>::kMin) return 0;
  else return kSigned<B> ? 0 : Format<B>::kOffset;
}

template <class B>
void gemm(const WeightView& w, const uint8_t* xq, size_t act_row, int64_t n_tokens, float* y, int n_threads) {
  constexpr bool kMin = Format<B>::kMin;
  const int64_t nblk = w.cols / QK, rows = w.rows;
  const BlockActivations acts(xq, act_row, n_tokens, nblk, kMin, offset<B>());
  constexpr int T = 2;
  for_each_panel<Panel>(rows, kPanelRows, n_threads, [&](int64_t r0, int n_rows, Panel& p) {
    unpack_panel<B>(static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes, w.row_bytes, n_rows, nblk, p);
    token_tiles<T>(n_tokens, [&](int64_t t0, auto n) {
      TokenBlocks x[n];
      float* out[n];
      for (int k = 0; k < n; ++k) x[k] = acts.token(t0 + k), out[k] = y + (t0 + k) * rows + r0;
      tile<n, B>(p, nblk, x, out, n_rows);
    });
  });
}

}  // namespace

bool gemm_q8(const WeightView& w, const void* xq_blocks, size_t act_row, int64_t n_tokens, float* y, int n_threads) {
  if (w.cols % QK) return false;
  const auto* xq = static_cast<const uint8_t*>(xq_blocks);
  return with_q8_format(w.type, [&]<class B>() { gemm<B>(w, xq, act_row, n_tokens, y, n_threads); });
}

}  // namespace jing::cpu::avx2
