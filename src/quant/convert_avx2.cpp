// F16 -> F32 rows with the F16C instruction (8 values per instruction): the KV cache and float
// weights are read through this on every decode step. Called only after a CPU check (dequant.cpp).
#include <immintrin.h>

#include <cstdint>

namespace jing::detail {

void f16_to_f32_f16c(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

}  // namespace jing::detail
