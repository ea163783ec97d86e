// AVX-512 (VL, VNNI) dot products of the 32-value legacy formats with Q8_0 activations, 256 bits
// wide: the fifth bits of Q5_0 become a lane mask (one masked add where the AVX2 kernel spreads
// them to bytes in five steps), and VPDPBUSD multiplies unsigned weights by signed activations,
// so no sign flips; the offset comes off through a second VPDPBUSD of the constant.
#include <immintrin.h>

#include "cpu/avx2_util.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"

namespace jing::cpu::avx512 {

using namespace blocks;
using avx2::h2f;
using avx2::hsum;

float dot_q5_0(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q5_0*>(wv);
  const auto* x = static_cast<const q8_0*>(xv);
  const __m256i sixteen = _mm256_set1_epi8(16);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / 32; ++i) {
    uint32_t qh;
    __builtin_memcpy(&qh, w[i].qh, 4);
    // Stored values are q + 16: the nibble plus 16 where bit i of qh is set, for element i
    // (low nibbles are elements 0..15, high nibbles 16..31).
    __m256i u = avx2::nibbles(w[i].qs);
    u = _mm256_mask_add_epi8(u, _cvtu32_mask32(qh), u, sixteen);
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    const __m256i p = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, xq), _mm256_dpbusd_epi32(_mm256_setzero_si256(), sixteen, xq));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum(acc);
}

}  // namespace jing::cpu::avx512
