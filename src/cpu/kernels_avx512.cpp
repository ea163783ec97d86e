// AVX-512 versions of the vector primitives attention runs per (token, head, position): the
// score dot product and ggml's f16 value accumulator (16 values per instruction instead of 8).
#include <immintrin.h>

#include <cstdint>

#include "cpu/avx512_util.h"
#include "cpu/kernels_simd.h"

namespace jing::cpu::avx512 {

// The order every path (and the GPU) follows: two 16-lane sums by FMA, a tail of fewer than 16
// in the second, then _mm512_reduce_add_ps's halving.
float score_dot(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void f16_scale_mad(uint16_t* acc, float scale, const float* v, float weight, int n) {
  const __m512 s = _mm512_set1_ps(scale), w = _mm512_set1_ps(weight);
  const bool rescale = scale != 1.0f;
  for (int d = 0; d < n; d += 16) {
    const __mmask16 m = n - d >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (n - d)) - 1);
    __m512 a = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, acc + d));
    // Each step rounds to f16, as ggml's accumulator does.
    if (rescale) a = _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(a, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, v + d), w, a);  // fused, as ggml's f16 mad (and the GPU)
    _mm256_mask_storeu_epi16(acc + d, m, _mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}

}  // namespace jing::cpu::avx512
