// The decode kernel of tiled Q4_0 (cpu/row_tiles.h): 8 rows at once, one 32-value block a step.
// A 64-byte chunk holds 8 bytes of each row: their low nibbles (values 8c..8c+7) and high nibbles
// (values 16+8c..) each meet the matching activation bytes, spread over the lanes by a permute, in
// one VPDPBUSD (nibbles unsigned); the stored +8 comes off as 8 x the same activations' sum. The
// block's 8 row scales come in one load, so the per-block float work is shared by 8 rows.
#include <immintrin.h>

#include "cpu/avx2_util.h"
#include "cpu/avx512_util.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"

namespace jing::cpu::avx512 {

namespace {

constexpr int kTile = 144, kD = 0, kQs = 16;  // row_tiles.cpp's Q4_0 tile

template <int kAhead>
void q40_tiles_dot8_impl(const void* group, const void* x_q80, int64_t cols, float* y8) {
  const auto* t0 = static_cast<const uint8_t*>(group);
  const auto* x = static_cast<const blocks::q8_0*>(x_q80);
  const __m512i low4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
  // Activation words for chunk c's low nibbles (bytes 8c..8c+7) and high nibbles (16 + 8c..).
  const __m512i pattern[2][2] = {{dword_pair(0, 1), dword_pair(4, 5)}, {dword_pair(2, 3), dword_pair(6, 7)}};
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < cols / 32; ++b) {
    const uint8_t* t = t0 + b * kTile;
    if constexpr (kAhead > 0) prefetch_bytes(t + kAhead * kTile, kTile);
    const __m512i xv = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs)));
    __m512i isum = _mm512_setzero_si512(), offset = _mm512_setzero_si512();
    for (int c = 0; c < 2; ++c) {
      const __m512i q = _mm512_loadu_si512(t + kQs + 64 * c);
      const __m512i xl = _mm512_permutexvar_epi32(pattern[c][0], xv), xh = _mm512_permutexvar_epi32(pattern[c][1], xv);
      isum = _mm512_dpbusd_epi32(isum, _mm512_and_si512(q, low4), xl);
      isum = _mm512_dpbusd_epi32(isum, _mm512_and_si512(_mm512_srli_epi16(q, 4), low4), xh);
      offset = _mm512_dpbusd_epi32(offset, eight, xl);
      offset = _mm512_dpbusd_epi32(offset, eight, xh);
    }
    const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + kD))), _mm256_set1_ps(avx2::h2f(x[b].d)));
    const __m512 scale16 = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(scale)));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum, offset)), scale16, acc);
  }
  _mm256_storeu_ps(y8, _mm256_add_ps(_mm512_castps512_ps256(acc), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1))));
}

}  // namespace

void q40_tiles_dot8(const void* group, const void* x_q80, int64_t cols, float* y8) { q40_tiles_dot8_impl<0>(group, x_q80, cols, y8); }
void q40_tiles_dot8_prefetch(const void* group, const void* x_q80, int64_t cols, float* y8) { q40_tiles_dot8_impl<24>(group, x_q80, cols, y8); }

}  // namespace jing::cpu::avx512
