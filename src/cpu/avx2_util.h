// Small AVX2 helpers shared by the *_avx2.cpp kernel files (include only from those: they need
// the AVX2/FMA/F16C flags their file names give them).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace jing::cpu::avx2 {

// Sum of the eight lanes.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Spreads 16-bit lane k of each 128-bit half over all eight 16-bit lanes of that half.
inline __m256i spread16(__m256i v, int k) {
  return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<int16_t>((2 * k) | ((2 * k + 1) << 8))));
}

}  // namespace jing::cpu::avx2
