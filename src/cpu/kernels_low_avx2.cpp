// AVX2 integer dot products of the low-bit K-quants of DeepSeek-R1's big quantizations: Q2_K and
// Q3_K (the 671B Q2_K mixes), with Q8_K activations. Constant offsets (Q2_K's minimums, Q3_K's -4)
// go through the activation block sums, so the inner loops are plain unsigned-by-signed byte
// products. (The i-quants are in kernels_iq_avx2.cpp.)
#include <immintrin.h>

#include "cpu/avx2_util.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace jing::cpu::avx2 {

using namespace blocks;

namespace {

// 16-bit scales for 32 values whose low 16 use scale 2k and high 16 use scale 2k+1, from sc's eight
// 16-bit scales in both 128-bit halves: one shuffle (its control a constant once k is unrolled).
inline __m256i pair_scales(__m256i sc, int k) {
  const int lo = (4 * k) | ((4 * k + 1) << 8), hi = (4 * k + 2) | ((4 * k + 3) << 8);
  return _mm256_shuffle_epi8(sc, _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)), _mm_set1_epi16(static_cast<int16_t>(lo))));
}


}  // namespace

float dot_q2_K(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q2_K*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m256i three = _mm256_set1_epi8(3);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16), _MM_HINT_T0);
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales));
    // Minimums (high nibbles) times the 16-element activation sums, subtracted in the same
    // vector accumulator (as ggml does; a scalar sum per block through two hadds was a chain).
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), low4));
    const __m256i m32 = _mm256_madd_epi16(mins, load(x[i].bsums));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(-x[i].d * h2f(w[i].dmin)), _mm256_cvtepi32_ps(m32), acc);
    const __m128i scl = _mm_and_si128(sc8, low4);
    __m256i sumi = _mm256_setzero_si256();
    const int8_t* q8 = x[i].qs;
    for (int half = 0; half < 2; ++half) {
      const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(half ? _mm_srli_si128(scl, 8) : scl));
      const __m256i q = load(w[i].qs + 32 * half);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k, q8 += 32) {
        const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), three);
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(v, load(q8)), pair_scales(sc, k)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}

float dot_q3_K(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q3_K*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16), _MM_HINT_T0);
    // Scales are stored +32; values are (2 bits + 4 * high bit) - 4: the -4 is 4 * scale * block sum.
    // (Unpacked in registers: 16 bytes written as four words and read back as one vector would stall
    // on store forwarding, a third of this kernel's time.)
    const __m256i sc_all = _mm256_sub_epi16(_mm256_cvtepi8_epi16(q3k_scales_vec(w[i].scales)), _mm256_set1_epi16(32));
    __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc_all, load(x[i].bsums)), 2));
    __m256i hb = load(w[i].hmask);
    const int8_t* q8 = x[i].qs;
    for (int half = 0; half < 2; ++half) {
      const __m128i s16 = half ? _mm256_extracti128_si256(sc_all, 1) : _mm256_castsi256_si128(sc_all);
      const __m256i sc = _mm256_broadcastsi128_si256(s16);
      const __m256i q = load(w[i].qs + 32 * half);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k, q8 += 32) {
        const __m256i h = _mm256_slli_epi16(_mm256_and_si256(hb, one), 2);
        hb = _mm256_srli_epi16(hb, 1);
        const __m256i v = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * k), three), h);
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(v, load(q8)), pair_scales(sc, k)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}

}  // namespace jing::cpu::avx2
