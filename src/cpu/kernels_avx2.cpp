// AVX2 integer dot products of the formats Q4_K_M models are made of (Q4_K, Q6_K, Q8_0) with
// 8-bit activations (Q8_K / Q8_0). Same arithmetic as the scalar decoders, reordered for SIMD:
// the sub-block scales are folded into _mm256_madd_epi16 and the K-quants' minimums (or Q6_K's
// offset of 32) into the activation block sums.
#include <immintrin.h>

#include <cmath>

#include "cpu/avx2_util.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"

namespace jing::cpu::avx2 {

using namespace blocks;

// T tokens at once: each weight block is unpacked once and meets T activation rows (x_stride
// bytes apart). T = 1 is the decode kernel.
template <int T>
void dot_q4_K_n(const void* wv, const void* xv, size_t x_stride, int64_t n, float* out) {
  const auto* w = static_cast<const q4_K*>(wv);
  const q8_K* x[T];
  for (int t = 0; t < T; ++t) x[t] = reinterpret_cast<const q8_K*>(static_cast<const uint8_t*>(xv) + t * x_stride);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc[T];
  __m128 acc_m[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps(), acc_m[t] = _mm_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    // Weights stream from memory: ask for the blocks a few iterations ahead.
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16) + 64, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16) + 128, _MM_HINT_T0);
    const float wd = h2f(w[i].d), wdmin = h2f(w[i].dmin);
    const KScales ks = k_scales(w[i].scales);
    const __m128i mins16 = ks.mins;
    for (int t = 0; t < T; ++t) {
      const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[t][i].bsums)),
                                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[t][i].bsums + 8)));
      acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(x[t][i].d * wdmin), _mm_cvtepi32_ps(_mm_madd_epi16(mins16, bs)), acc_m[t]);
    }
    const __m256i sc16 = _mm256_broadcastsi128_si256(ks.scales);
    __m256i sumi[T];
    for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
    const uint8_t* q4 = w[i].qs;
    for (int j = 0; j < 4; ++j, q4 += 32) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q4));
      const __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      const __m256i s_lo = spread16(sc16, 2 * j), s_hi = spread16(sc16, 2 * j + 1);
      for (int t = 0; t < T; ++t) {
        const int8_t* q8 = x[t][i].qs + 64 * j;
        const __m256i p_lo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8)));
        const __m256i p_hi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32)));
        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p_lo, s_lo));
        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p_hi, s_hi));
      }
    }
    for (int t = 0; t < T; ++t) acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(x[t][i].d * wd), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
  }
  for (int t = 0; t < T; ++t) {
    __m128 m = _mm_add_ps(acc_m[t], _mm_movehl_ps(acc_m[t], acc_m[t]));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    out[t] = hsum(acc[t]) - _mm_cvtss_f32(m);
  }
}

float dot_q4_K(const void* wv, const void* xv, int64_t n) {
  float out;
  dot_q4_K_n<1>(wv, xv, 0, n, &out);
  return out;
}

void dot_q4_K_x4(const void* w, const void* x, size_t x_stride, int64_t n, float* out4) { dot_q4_K_n<4>(w, x, x_stride, n, out4); }

float dot_q6_K(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q6_K*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m256i low4 = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16) + 64, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16) + 128, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16) + 192, _MM_HINT_T0);
    const float d = x[i].d * h2f(w[i].d);
    // Stored values are q + 32: subtract 32 * sum(scale * block sum), computed with one madd.
    const __m256i sc_all = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales)));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc_all, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].bsums))), 5);
    __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), offset);
    const uint8_t *ql = w[i].ql, *qh = w[i].qh;
    const int8_t* q8 = x[i].qs;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, q8 += 128) {
      // Scales of this half (8 of them) in both 128-bit lanes, as 16-bit values.
      const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w[i].scales + 8 * half))));
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(h, three), 4)),
          _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), three), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), three), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), three), 4)),
      };
      for (int k = 0; k < 4; ++k) {
        const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32 * k)));
        // Low 128 bits hold the products of scale 2k, high bits those of scale 2k+1.
        const __m256i s2 = _mm256_blend_epi32(spread16(sc, 2 * k), spread16(sc, 2 * k + 1), 0xF0);
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s2));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}

float dot_q8_0(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q8_0*>(wv);
  const auto* x = static_cast<const q8_0*>(xv);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / 32; ++i) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    // |a| * (b with a's sign): maddubs needs its first operand unsigned.
    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)), ones);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum(acc);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

float score_dot(const float* a, const float* b, int64_t n) {
  // r0, r1 are avx512::score_dot's first sum (lanes 0-15), r2, r3 its second (lanes 16-31).
  __m256 r0 = _mm256_setzero_ps(), r1 = r0, r2 = r0, r3 = r0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    r0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), r0);
    r1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), r1);
    r2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), r2);
    r3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), r3);
  }
  if (i + 16 <= n) {
    r0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), r0);
    r1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), r1);
    i += 16;
  }
  if (i < n) {  // fewer than 16 left: into the second sum, zeros past the end (the masked load)
    alignas(32) float ta[16] = {}, tb[16] = {};
    for (int64_t k = 0; k < n - i; ++k) ta[k] = a[i + k], tb[k] = b[i + k];
    r2 = _mm256_fmadd_ps(_mm256_load_ps(ta), _mm256_load_ps(tb), r2);
    r3 = _mm256_fmadd_ps(_mm256_load_ps(ta + 8), _mm256_load_ps(tb + 8), r3);
  }
  // Lane l + lane l + 16, then l + 8, l + 4, l + 2, and [0] + [1]: _mm512_reduce_add_ps's tree.
  const __m256 t = _mm256_add_ps(_mm256_add_ps(r1, r3), _mm256_add_ps(r0, r2));
  __m128 s = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
  s = _mm_add_ps(s, _mm_shuffle_ps(s, s, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtss_f32(s) + _mm_cvtss_f32(_mm_shuffle_ps(s, s, _MM_SHUFFLE(1, 1, 1, 1)));
}

// 16-bit float rows (F16 or BF16: `widen8` turns eight of them into floats) with float activations.
template <class Widen8, class Widen1>
float dot_16bit(const uint16_t* w, const float* b, int64_t n, Widen8 widen8, Widen1 widen1) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(widen8(w + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(widen8(w + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += widen1(w[i]) * b[i];
  return s;
}

float dot_f16(const void* w, const float* b, int64_t n) {
  return dot_16bit(
      static_cast<const uint16_t*>(w), b, n, [](const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); },
      [](uint16_t h) { return _cvtsh_ss(h); });
}

float dot_bf16(const void* w, const float* b, int64_t n) {
  return dot_16bit(
      static_cast<const uint16_t*>(w), b, n,
      [](const uint16_t* p) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
      },
      [](uint16_t h) {
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        float f;
        __builtin_memcpy(&f, &bits, 4);
        return f;
      });
}

}  // namespace jing::cpu::avx2

namespace jing::cpu::avx2 {

void f16_scale_mad(uint16_t* acc, float scale, const float* v, float weight, int n) {
  int d = 0;
  const __m256 s = _mm256_set1_ps(scale), w = _mm256_set1_ps(weight);
  for (; d + 8 <= n; d += 8) {
    __m256 a = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(acc + d)));
    if (scale != 1.0f) a = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(a, s), _MM_FROUND_TO_NEAREST_INT));
    a = _mm256_fmadd_ps(_mm256_loadu_ps(v + d), w, a);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(acc + d), _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; d < n; ++d) {
    float a = _cvtsh_ss(acc[d]);
    if (scale != 1.0f) a = _cvtsh_ss(_cvtss_sh(a * scale, 0));
    acc[d] = _cvtss_sh(std::fma(v[d], weight, a), 0);
  }
}

void dot_rows_x4(const float* w, const float* x, int64_t xs, int64_t cols, float* out) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 8 <= cols; i += 8) {
    const __m256 wv = _mm256_loadu_ps(w + i);
    a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + xs + i), a1);
    a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 2 * xs + i), a2);
    a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 3 * xs + i), a3);
  }
  out[0] = hsum(a0), out[1] = hsum(a1), out[2] = hsum(a2), out[3] = hsum(a3);
  for (; i < cols; ++i)
    for (int t = 0; t < 4; ++t) out[t] += w[i] * x[t * xs + i];
}

}  // namespace jing::cpu::avx2
