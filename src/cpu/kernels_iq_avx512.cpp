// AVX-512 dot products of the i-quants whose AVX2 kernels trail ggml's: 64 values a step, the
// weights' signs as one 64-bit mask (a masked subtract negates the activations) instead of a sign
// table lookup per 8 values. (Gathers for the grid rows measured slower on Zen 4 than scalar
// loads: 128 against 96 ns a 1536-value row.)
#include <immintrin.h>

#include "cpu/avx512_util.h"
#include "cpu/iq_scales.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/iq_tables.h"

namespace jing::cpu::avx512 {

using namespace blocks;

// IQ2_XS: per 8 values a 16-bit code, a 9-bit grid index and 7 sign bits (the eighth makes the
// parity even). Per 64 values: the 8 sign bytes from the codes (their parity by a nibble table),
// the 8 grid rows, PMADDUBSW then PMADDWD by the 4-bit scales (2 s + 1).
float dot_iq2_xs(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq2_xs*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m128i parity4 = _mm_setr_epi8(0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0), low4 = _mm_set1_epi8(0x0F);
  const auto* grid = reinterpret_cast<const long long*>(iq::iq2xs_grid);
  auto scales = [](int byte) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(kOddScales.nibbles[byte])); };
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    __m512i sum = _mm512_setzero_si512();
    for (int p = 0; p < 4; ++p) {  // sub-blocks 2p and 2p + 1
      const uint16_t* q = w[i].qs + 8 * p;
      const __m128i codes = _mm_packus_epi16(_mm_srli_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), 9), _mm_setzero_si128());
      const __m128i parity = _mm_xor_si128(_mm_shuffle_epi8(parity4, _mm_and_si128(codes, low4)),
                                           _mm_shuffle_epi8(parity4, _mm_and_si128(_mm_srli_epi16(codes, 4), low4)));
      const __m128i signs = _mm_or_si128(codes, _mm_slli_epi16(parity, 7));  // bytes of 0/1 parity: no carry between bytes
      const __mmask64 negative = _cvtu64_mask64(static_cast<unsigned long long>(_mm_cvtsi128_si64(signs)));
      const __m512i xq = _mm512_loadu_si512(x[i].qs + 64 * p);
      const __m512i xs = _mm512_mask_sub_epi8(xq, negative, _mm512_setzero_si512(), xq);
      const __m512i magnitudes = _mm512_set_epi64(grid[q[7] & 511], grid[q[6] & 511], grid[q[5] & 511], grid[q[4] & 511], grid[q[3] & 511],
                                                  grid[q[2] & 511], grid[q[1] & 511], grid[q[0] & 511]);
      const __m512i sc = _mm512_inserti64x4(_mm512_castsi256_si512(scales(w[i].scales[2 * p])), scales(w[i].scales[2 * p + 1]), 1);
      sum = _mm512_add_epi32(sum, _mm512_madd_epi16(_mm512_maddubs_epi16(magnitudes, xs), sc));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(fp16_to_fp32(w[i].d) * x[i].d), _mm512_cvtepi32_ps(sum), acc);
  }
  return 0.125f * _mm512_reduce_add_ps(acc);  // d * (0.5 + s) / 4 = d * (2 s + 1) / 8
}

}  // namespace jing::cpu::avx512
