// AVX2 integer dot products of further common formats with 8-bit activations: Q5_K (Q5_K_M
// models), Q4_0 / Q5_0 / IQ4_NL / MXFP4 (with Q8_0 blocks), Q4_1 / Q5_1 (with Q8_1) and IQ4_XS
// (with Q8_K). Each decodes a block
// to signed bytes in registers and sums exact integer products per (sub-)block, then scales once.
#include <immintrin.h>

#include "cpu/avx2_util.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace jing::cpu::avx2 {

using namespace blocks;

namespace {

inline __m256i iq4_values(const uint8_t* qs) {
  const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(iq::kvalues_iq4nl));
  return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(table), nibbles(qs));
}

// ggml's E8M0 scale, halved (MXFP4's value table holds doubled values).
inline float e8m0_half(uint8_t e) {
  const uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e - 1) << 23);
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

// Q4_1 / Q5_1 rows (unsigned values, d and minimum m per block) with Q8_1 activations, summed as
// ggml does: d_w * d_x * sum(q * x) per block, plus m * s_x with s_x the Q8_1 block's f16 sum.
template <class B, bool kFifthBit>
float dot_q_1(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const B*>(wv);
  const auto* x = static_cast<const q8_1*>(xv);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  float summs = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    __m256i q = nibbles(w[i].qs);
    if constexpr (kFifthBit) {
      uint32_t qh;
      __builtin_memcpy(&qh, w[i].qh, 4);
      q = _mm256_or_si256(q, _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)));
    }
    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs))), ones);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p), acc);
    summs += h2f(w[i].m) * h2f(x[i].s);
  }
  return hsum(acc) + summs;
}

}  // namespace

float dot_q4_1(const void* w, const void* x, int64_t n) { return dot_q_1<q4_1, false>(w, x, n); }
float dot_q5_1(const void* w, const void* x, int64_t n) { return dot_q_1<q5_1, true>(w, x, n); }

float dot_mxfp4(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const mxfp4*>(wv);
  const auto* x = static_cast<const q8_0*>(xv);
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(iq::kvalues_fp4)));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / 32; ++i) {
    const __m256i v = _mm256_shuffle_epi8(table, nibbles(w[i].qs));
    const __m256i p = dot_i8(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(e8m0_half(w[i].e) * h2f(x[i].d)), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum(acc);
}

float dot_q4_0(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q4_0*>(wv);
  const auto* x = static_cast<const q8_0*>(xv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / 32; ++i) {
    const __m256i q = _mm256_sub_epi8(nibbles(w[i].qs), _mm256_set1_epi8(8));
    const __m256i p = dot_i8(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum(acc);
}

float dot_q5_0(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q5_0*>(wv);
  const auto* x = static_cast<const q8_0*>(xv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / 32; ++i) {
    uint32_t qh;
    __builtin_memcpy(&qh, w[i].qh, 4);
    // Stored values are q + 16 with the fifth bit in qh (bit i for element i).
    const __m256i hi = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10));
    const __m256i q = _mm256_sub_epi8(_mm256_or_si256(nibbles(w[i].qs), hi), _mm256_set1_epi8(16));
    const __m256i p = dot_i8(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum(acc);
}

float dot_iq4_nl(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq4_nl*>(wv);
  const auto* x = static_cast<const q8_0*>(xv);
  // Even and odd blocks in two accumulators: the summation order of ggml's AVX2 kernel.
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t i = 0; i < n / 32; ++i) {
    const __m256i p = dot_i8(iq4_values(w[i].qs), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs)));
    acc[i & 1] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p), acc[i & 1]);
  }
  return hsum(_mm256_add_ps(acc[0], acc[1]));
}

float dot_iq4_xs(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq4_xs*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(iq::kvalues_iq4nl)));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    // Two sub-blocks of 32 per step, each with its own sum; their 6-bit scales (low nibble from
    // scales_l, high two bits from scales_h) minus 32.
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    uint32_t sh = w[i].scales_h;
    for (int ib = 0; ib < 8; ib += 2, sh >>= 4) {
      const int sl = w[i].scales_l[ib / 2];
      const int ls0 = ((sl & 0xF) | ((sh << 4) & 0x30)) - 32, ls1 = ((sl >> 4) | ((sh << 2) & 0x30)) - 32;
      const __m256i v0 = _mm256_shuffle_epi8(table, nibbles(w[i].qs + 16 * ib)), v1 = _mm256_shuffle_epi8(table, nibbles(w[i].qs + 16 * ib + 16));
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * ib));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * ib + 32));
      // Pair sums of |v| * q8 fit 16 bits (|v| <= 127); the scale rides in the 16-bit multiply-add.
      sum0 = _mm256_add_epi32(sum0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(x0, v0)),
                                                      _mm256_set1_epi16(static_cast<int16_t>(ls0))));
      sum1 = _mm256_add_epi32(sum1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v1, v1), _mm256_sign_epi8(x1, v1)),
                                                      _mm256_set1_epi16(static_cast<int16_t>(ls1))));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * x[i].d), _mm256_cvtepi32_ps(_mm256_add_epi32(sum0, sum1)), acc);
  }
  return hsum(acc);
}

// As dot_q4_K, with the fifth bit of sub-block 2j / 2j+1 taken from bit 2j / 2j+1 of qh.
float dot_q5_K(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q5_K*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16) + 64, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 16) + 128, _MM_HINT_T0);
    const float d = x[i].d * h2f(w[i].d), dmin = x[i].d * h2f(w[i].dmin);
    const KScales ks = k_scales(w[i].scales);
    const __m128i mins16 = ks.mins;
    const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].bsums)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].bsums + 8)));
    acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(_mm_madd_epi16(mins16, bs)), acc_m);
    const __m256i sc16 = _mm256_broadcastsi128_si256(ks.scales);
    __m256i sumi = _mm256_setzero_si256();
    __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qh));
    const uint8_t* q5 = w[i].qs;
    const int8_t* q8 = x[i].qs;
    for (int j = 0; j < 4; ++j, q5 += 32, q8 += 64) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q5));
      const __m256i h_lo = _mm256_slli_epi16(_mm256_and_si256(hb, one), 4);
      const __m256i h_hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4);
      hb = _mm256_srli_epi16(hb, 2);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, low4), h_lo);
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4), h_hi);
      const __m256i p_lo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8)));
      const __m256i p_hi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32)));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p_lo, spread16(sc16, 2 * j)));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p_hi, spread16(sc16, 2 * j + 1)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  __m128 m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return hsum(acc) - _mm_cvtss_f32(m);
}

}  // namespace jing::cpu::avx2
