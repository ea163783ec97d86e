// The decode kernel of tiled IQ4_XS (cpu/row_tiles.h): 8 rows at once. As tiled Q4_0 for the
// nibbles of each 32-value sub-block (a chunk holds 8 bytes of each row), with the codebook
// looked up by VPSHUFB as value + 128 (unsigned for VPDPBUSD); the +128 comes off through the
// activations' 16-value sums, each sub-block's 6-bit scale (minus 32) applied to its 8 rows' sums.
#include <immintrin.h>

#include "cpu/avx512_util.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace jing::cpu::avx512 {

namespace {

constexpr int kTile = 1088, kD = 0, kScalesH = 16, kScalesL = 32, kQs = 64;  // row_tiles.cpp's IQ4_XS tile

template <int kAhead>
void iq4xs_tiles_dot8_impl(const void* group, const void* x_q8k, int64_t cols, float* y8) {
  const auto* t0 = static_cast<const uint8_t*>(group);
  const auto* x = static_cast<const blocks::q8_K*>(x_q8k);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  alignas(16) uint8_t shifted[16];
  for (int i = 0; i < 16; ++i) shifted[i] = static_cast<uint8_t>(iq::kvalues_iq4nl[i] + 128);
  const __m512i table = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(shifted)));
  // Activation words of a sub-block's 32 bytes for chunk half o (bytes 8o..8o+7): low nibbles
  // (values 8o..) and high nibbles (values 16 + 8o..).
  const __m512i pattern[2][2] = {{dword_pair(0, 1), dword_pair(4, 5)}, {dword_pair(2, 3), dword_pair(6, 7)}};
  const __m256i m15 = _mm256_set1_epi32(15), m3 = _mm256_set1_epi32(3), m32 = _mm256_set1_epi32(32);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < cols / 256; ++b) {
    const uint8_t* t = t0 + b * kTile;
    if constexpr (kAhead > 0) prefetch_bytes(t + kAhead * kTile, kTile);
    const __m256i sh = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + kScalesH)));
    __m512i isum = _mm512_setzero_si512();
    __m256i offset = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib) {
      const __m512i xv = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs + 32 * ib)));
      __m512i s = _mm512_setzero_si512();
      for (int o = 0; o < 2; ++o) {
        const __m512i q = _mm512_loadu_si512(t + kQs + (2 * ib + o) * 64);
        s = _mm512_dpbusd_epi32(s, _mm512_shuffle_epi8(table, _mm512_and_si512(q, low4)), _mm512_permutexvar_epi32(pattern[o][0], xv));
        s = _mm512_dpbusd_epi32(s, _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(q, 4), low4)), _mm512_permutexvar_epi32(pattern[o][1], xv));
      }
      // The 8 rows' scales of sub-block ib: 4 low bits from scales_l, 2 high bits from scales_h.
      const __m256i sl = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(t + kScalesL + 8 * (ib / 2))));
      const __m256i scale = _mm256_sub_epi32(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(sl, 4 * (ib % 2)), m15),
                                                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(sh, 2 * ib), m3), 4)),
                                             m32);
      isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(s, both_halves(scale)));
      offset = _mm256_add_epi32(offset, _mm256_mullo_epi32(scale, _mm256_set1_epi32(x[b].bsums[2 * ib] + x[b].bsums[2 * ib + 1])));
    }
    const __m256i sum8 = _mm256_sub_epi32(_mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1)), _mm256_slli_epi32(offset, 7));
    const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + kD))), _mm256_set1_ps(x[b].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum8), acc);
  }
  _mm256_storeu_ps(y8, acc);
}

}  // namespace

void iq4xs_tiles_dot8(const void* group, const void* x_q8k, int64_t cols, float* y8) { iq4xs_tiles_dot8_impl<0>(group, x_q8k, cols, y8); }
void iq4xs_tiles_dot8_prefetch(const void* group, const void* x_q8k, int64_t cols, float* y8) { iq4xs_tiles_dot8_impl<3>(group, x_q8k, cols, y8); }

}  // namespace jing::cpu::avx512
