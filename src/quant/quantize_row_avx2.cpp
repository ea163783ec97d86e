// AVX2 versions of the activation quantizers (Q8_0, Q8_1, Q8_K) that every matrix product runs
// first. Same results as the scalar code in quantize_row.cpp, bit for bit: roundf (half away from
// zero) for Q8_0/Q8_1, round-half-to-even for Q8_K, and Q8_K's scale from the first element of
// largest magnitude. Called only after a CPU check (quantize_row.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"

namespace jing::detail {

using namespace blocks;

namespace {

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// roundf: truncate, then step away from zero where the dropped part is at least one half.
inline __m256i round_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 up = _mm256_cmp_ps(abs_ps(_mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 step = _mm256_and_ps(up, _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f))));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, step));
}

// Four vectors of eight int32 (values in -128..127) to 32 int8 in order.
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

template <class Block, bool kSum>
void q8_32_rows(const float* x, Block* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
    const float amax = hmax(_mm256_max_ps(_mm256_max_ps(abs_ps(v[0]), abs_ps(v[1])), _mm256_max_ps(abs_ps(v[2]), abs_ps(v[3]))));
    const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = round_away(_mm256_mul_ps(v[k], _mm256_set1_ps(id)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), pack32(q[0], q[1], q[2], q[3]));
    if constexpr (kSum) {
      const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
      y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
    }
  }
}

}  // namespace

void q8_0_row_avx2(const float* x, void* y, int64_t n) { q8_32_rows<q8_0, false>(x, static_cast<q8_0*>(y), n); }
void q8_1_row_avx2(const float* x, void* y, int64_t n) { q8_32_rows<q8_1, true>(x, static_cast<q8_1*>(y), n); }

void q8_K_row_avx2(const float* x, void* out, int64_t n) {
  auto* y = static_cast<q8_K*>(out);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < QK_K; j += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + j)));
    const float amax = hmax(m);
    if (!amax) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    // The first element of that magnitude gives the scale its sign.
    float max = amax;
    for (int j = 0; j < QK_K; j += 8) {
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (hit) {
        max = x[j + __builtin_ctz(static_cast<unsigned>(hit))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 s = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127);
    for (int j = 0; j < QK_K; j += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k)  // round half to even, as the scalar magic-number trick does
        q[k] = _mm256_min_epi32(top, _mm256_cvtps_epi32(_mm256_mul_ps(s, _mm256_loadu_ps(x + j + 8 * k))));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), pack32(q[0], q[1], q[2], q[3]));
      y[i].bsums[j / 16] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(q[0], q[1])));
      y[i].bsums[j / 16 + 1] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(q[2], q[3])));
    }
    y[i].d = 1 / iscale;
  }
}

}  // namespace jing::detail
