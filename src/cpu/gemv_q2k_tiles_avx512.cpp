// The decode kernel of tiled Q2_K (cpu/row_tiles.h): 8 rows at once. A 64-byte chunk holds 32
// values of each row per 2-bit plane; plane k of chunk c meets activation bytes 32 k + 8 (c % 4)..
// of its half, spread over the lanes by a permute in registers, in one VPDPBUSD (the 2-bit
// values are the unsigned operand). Sub-block scales multiply the 16 lanes' sums (8 rows x two
// 4-byte parts, folded at the end); the minimums go through the activations' 16-value sums.
// 1.2x the row kernel on one core (docs/PERFORMANCE.md).
#include <immintrin.h>

#include "cpu/avx512_util.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"

namespace jing::cpu::avx512 {

namespace {

constexpr int kTile = 672, kD = 0, kDmin = 16, kScales = 32, kQs = 160;  // row_tiles.cpp's Q2_K tile

// The 8 rows' scale bytes of sub-block j as 32-bit lanes.
inline __m256i scale_bytes(const uint8_t* t, int j) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(t + kScales + 8 * j)));
}

template <int kAhead>
void q2k_tiles_dot8_impl(const void* group, const void* x_q8k, int64_t cols, float* y8) {
  const auto* t0 = static_cast<const uint8_t*>(group);
  const auto* x = static_cast<const blocks::q8_K*>(x_q8k);
  const __m512i three = _mm512_set1_epi8(3);
  const __m256i m15 = _mm256_set1_epi32(15);
  __m512i pattern[4];  // chunk m of a half: activation words 2m (lanes 0-7) and 2m + 1 (lanes 8-15)
  for (int m = 0; m < 4; ++m) pattern[m] = dword_pair(2 * m, 2 * m + 1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < cols / 256; ++b) {
    const uint8_t* t = t0 + b * kTile;
    if constexpr (kAhead > 0) prefetch_bytes(t + kAhead * kTile, kTile);
    __m512i isum = _mm512_setzero_si512();
    __m256i msum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {  // values 128 h .. 128 h + 127: chunks 4 h .. 4 h + 3
      __m512i q[4];
      for (int m = 0; m < 4; ++m) q[m] = _mm512_loadu_si512(t + kQs + (4 * h + m) * 64);
      for (int k = 0; k < 4; ++k) {  // plane k: values 128 h + 32 k + l, sub-blocks 8 h + 2 k (l < 16) and + 1
        const __m512i seg = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs + 128 * h + 32 * k)));
        __m512i s_lo = _mm512_setzero_si512(), s_hi = _mm512_setzero_si512();
        for (int m = 0; m < 4; ++m) {
          const __m512i v = _mm512_and_si512(_mm512_srli_epi16(q[m], 2 * k), three);
          const __m512i xs = _mm512_permutexvar_epi32(pattern[m], seg);
          if (m < 2) s_lo = _mm512_dpbusd_epi32(s_lo, v, xs);
          else s_hi = _mm512_dpbusd_epi32(s_hi, v, xs);
        }
        const int j = 8 * h + 2 * k;
        const __m256i sc0 = scale_bytes(t, j), sc1 = scale_bytes(t, j + 1);
        isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(s_lo, both_halves(_mm256_and_si256(sc0, m15))));
        isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(s_hi, both_halves(_mm256_and_si256(sc1, m15))));
        msum = _mm256_add_epi32(msum, _mm256_mullo_epi32(_mm256_srli_epi32(sc0, 4), _mm256_set1_epi32(x[b].bsums[j])));
        msum = _mm256_add_epi32(msum, _mm256_mullo_epi32(_mm256_srli_epi32(sc1, 4), _mm256_set1_epi32(x[b].bsums[j + 1])));
      }
    }
    const __m256i sum8 = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
    const __m256 xd = _mm256_set1_ps(x[b].d);
    const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + kD))), xd);
    const __m256 dmin = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + kDmin))), xd);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum8), acc);
    acc = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(msum), acc);
  }
  _mm256_storeu_ps(y8, acc);
}

}  // namespace

void q2k_tiles_dot8(const void* group, const void* x_q8k, int64_t cols, float* y8) { q2k_tiles_dot8_impl<0>(group, x_q8k, cols, y8); }
void q2k_tiles_dot8_prefetch(const void* group, const void* x_q8k, int64_t cols, float* y8) { q2k_tiles_dot8_impl<5>(group, x_q8k, cols, y8); }

}  // namespace jing::cpu::avx512
