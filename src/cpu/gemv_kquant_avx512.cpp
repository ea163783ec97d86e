// AVX-512 (VNNI) dot products of one Q2_K / Q3_K / Q4_K / Q5_K / Q6_K row with one Q8_K activation row: the
// decode kernels of Q4_K_M / Q5_K_M models. Twice the width of the AVX2 ones: 128 weights per step, and the
// sub-block scales applied by VPDPWSSD, which multiplies the 16-bit pair sums of VPMADDUBSW by
// their scale and accumulates in one instruction.
#include <immintrin.h>

#include "cpu/avx2_util.h"
#include "cpu/avx512_util.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"

namespace jing::cpu::avx512 {

using namespace blocks;
using avx2::h2f;
using avx2::k_scales;
using avx2::KScales;
using avx2::hsum;
using avx2::q3k_scales_vec;

namespace {

// The 16 lanes folded onto 8: each then holds exactly the integer the AVX2 kernel's lane holds, so
// both kernels round the same float sums (results identical to the last bit).
inline __m256 fold(__m512i v) { return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1))); }

// Two 256-bit halves from a and b: activations of two 32-value groups that are not adjacent.
inline __m512i join(const int8_t* a, const int8_t* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

// 16-bit lane picks (VPERMW): lanes 0-15 take element a, lanes 16-31 element b.
inline __m512i pick2(int a, int b) { return halves16(a, b); }

inline void prefetch_ahead(const void* p, int bytes) {
  for (int o = 0; o < bytes; o += 64) _mm_prefetch(static_cast<const char*>(p) + o, _MM_HINT_T0);
}

// Q4_K, and Q5_K: Q4_K's layout plus a fifth bit per weight (bit g of qh[l] for weight l of
// 32-value group g). The nibble vectors hold groups 4m and 4m+2 (lo) and 4m+1 and 4m+3 (hi), so
// Q5_K's fifth bits are tested in qh (broadcast to both halves), one bit per half, and 16 is added
// under the mask.
template <class Block, bool kFifthBit>
float dot_q45_K(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const Block*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m512i low4 = _mm512_set1_epi8(0x0F), fifth = _mm512_set1_epi8(16);
  const __m512i test_lo[2] = {halves8(1 << 0, 1 << 2), halves8(1 << 4, 1 << 6)}, test_hi[2] = {halves8(1 << 1, 1 << 3), halves8(1 << 5, 1 << 7)};
  // 64 bytes of quants hold groups 4m (low nibbles of bytes 0-31), 4m+1 (their high nibbles),
  // 4m+2 and 4m+3 (the same of bytes 32-63).
  const __m512i pick[4] = {pick2(0, 2), pick2(1, 3), pick2(4, 6), pick2(5, 7)};
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead(w + i + 16, static_cast<int>(sizeof(Block)));
    const KScales ks = k_scales(w[i].scales);
    const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].bsums)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].bsums + 8)));
    acc_m = _mm_fmadd_ps(_mm_set1_ps(x[i].d * h2f(w[i].dmin)), _mm_cvtepi32_ps(_mm_madd_epi16(ks.mins, bs)), acc_m);
    const __m512i sc = _mm512_castsi128_si512(ks.scales);
    __m512i qh = _mm512_setzero_si512();
    if constexpr (kFifthBit) qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qh)));
    __m512i sumi = _mm512_setzero_si512();
    for (int m = 0; m < 2; ++m) {
      const __m512i q = _mm512_loadu_si512(w[i].qs + 64 * m);
      const int8_t* q8 = x[i].qs + 128 * m;
      __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
      if constexpr (kFifthBit) {
        lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qh, test_lo[m]), lo, fifth);
        hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qh, test_hi[m]), hi, fifth);
      }
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(lo, join(q8, q8 + 64)), _mm512_permutexvar_epi16(pick[2 * m], sc));
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(hi, join(q8 + 32, q8 + 96)), _mm512_permutexvar_epi16(pick[2 * m + 1], sc));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), fold(sumi), acc);
  }
  __m128 m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return hsum(acc) - _mm_cvtss_f32(m);
}

}  // namespace

float dot_q4_K(const void* w, const void* x, int64_t n) { return dot_q45_K<q4_K, false>(w, x, n); }
float dot_q5_K(const void* w, const void* x, int64_t n) { return dot_q45_K<q5_K, true>(w, x, n); }

float dot_q2_K(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q2_K*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m512i three = _mm512_set1_epi8(3);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  // As dot_q3_K without the high bits: 64 values a step, groups k and k+1 of a half from its 32 qs
  // bytes broadcast to both 256-bit halves, the step's four 16-value scales one per 128-bit lane.
  const __m512i shift[2] = {halves16(0, 2), halves16(4, 6)};
  const StepScalePicks pick;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead(w + i + 16, static_cast<int>(sizeof(q2_K)));
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales));
    // Minimums (high nibbles) times the 16-value activation sums, subtracted in the accumulator.
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), low4));
    const __m256i m32 = _mm256_madd_epi16(mins, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].bsums)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(-x[i].d * h2f(w[i].dmin)), _mm256_cvtepi32_ps(m32), acc);
    const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(sc8, low4)));
    __m512i sumi = _mm512_setzero_si512();
    for (int half = 0; half < 2; ++half) {
      const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs + 32 * half)));
      for (int k = 0; k < 2; ++k) {
        const int step = 2 * half + k;
        const __m512i v = _mm512_and_si512(_mm512_srlv_epi16(q, shift[k]), three);
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(v, _mm512_loadu_si512(x[i].qs + 64 * step)), _mm512_permutexvar_epi16(pick.step[step], sc));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), fold(sumi), acc);
  }
  return hsum(acc);
}

float dot_q3_K(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q3_K*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m512i three = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
  // 64 values a step: groups k and k+1 of a 128-value half (bit pairs 2k and 2k+2 of its 32 qs
  // bytes, broadcast to both 256-bit halves), each group's high bit tested in hmask (bit 4 half + k)
  // and 4 added under the mask. The step's four 16-value scales go one per 128-bit lane.
  const __m512i shift[2] = {halves16(0, 2), halves16(4, 6)};
  const __m512i high[4] = {halves8(1 << 0, 1 << 1), halves8(1 << 2, 1 << 3), halves8(1 << 4, 1 << 5), halves8(1 << 6, 1 << 7)};
  const StepScalePicks pick;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead(w + i + 16, static_cast<int>(sizeof(q3_K)));
    // Scales are stored +32; values are (2 bits + 4 * high bit) - 4: the -4 is 4 * scale * block sum.
    const __m256i sc_all = _mm256_sub_epi16(_mm256_cvtepi8_epi16(q3k_scales_vec(w[i].scales)), _mm256_set1_epi16(32));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc_all, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].bsums))), 2);
    __m512i sumi = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), offset)), _mm256_setzero_si256(), 1);
    const __m512i sc = _mm512_castsi256_si512(sc_all);
    const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].hmask)));
    for (int half = 0; half < 2; ++half) {
      const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs + 32 * half)));
      for (int k = 0; k < 2; ++k) {
        const int step = 2 * half + k;  // 64 values: groups 2 step and 2 step + 1
        __m512i v = _mm512_and_si512(_mm512_srlv_epi16(q, shift[k]), three);
        v = _mm512_mask_add_epi8(v, _mm512_test_epi8_mask(hb, high[step]), v, four);
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(v, _mm512_loadu_si512(x[i].qs + 64 * step)), _mm512_permutexvar_epi16(pick.step[step], sc));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), fold(sumi), acc);
  }
  return hsum(acc);
}

float dot_q6_K(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const q6_K*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m512i low4 = _mm512_set1_epi8(0x0F), three = _mm512_set1_epi8(3);
  // Each scale covers 16 weights = 8 16-bit lanes, so 128-bit lane L takes scale L (L + 4 for the
  // upper 64): a byte shuffle of the 8 scales broadcast to every lane (cheaper than VPERMW).
  __m512i pick_lo, pick_hi;
  {
    alignas(64) int8_t a[64], b[64];
    for (int i = 0; i < 64; ++i) a[i] = static_cast<int8_t>(2 * (i / 16) + (i & 1)), b[i] = static_cast<int8_t>(8 + 2 * (i / 16) + (i & 1));
    pick_lo = _mm512_load_si512(a), pick_hi = _mm512_load_si512(b);
  }
  // qh shifted per 256-bit half: bits 0-1 / 2-3 for the low 64 weights, 4-5 / 6-7 for the high.
  const __m512i shifts01 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
  const __m512i shifts23 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    // 64 blocks ahead (13 KB) into L2: 1.5B all-Q6_K at one thread 17.1-18.2 t/s against 16.6-16.7
    // with 32 ahead into L1 (which had beaten 16 ahead, 16.9-17.0, and none, 15.8), the whole 1.5B
    // Q4_K_M 22.9 against 22.2-22.3 (interleaved rounds; the in-cache harness favours no prefetch).
    for (int o = 0; o < static_cast<int>(sizeof(q6_K)); o += 64) _mm_prefetch(reinterpret_cast<const char*>(w + i + 64) + o, _MM_HINT_T1);
    // Stored values are q + 32: subtract 32 * sum(scale * block sum), computed with one madd.
    const __m256i sc_all = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales)));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc_all, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].bsums))), 5);
    __m512i sumi = _mm512_castsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), offset));
    sumi = _mm512_inserti64x4(sumi, _mm256_setzero_si256(), 1);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = w[i].ql + 64 * half;
      const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qh + 32 * half)));
      const int8_t* q8 = x[i].qs + 128 * half;
      const __m512i sc = _mm512_broadcast_i32x4(_mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w[i].scales + 8 * half))));
      const __m512i l = _mm512_loadu_si512(ql);
      // Weights 0-63 of the half: low nibbles of ql with bits 0-1 / 2-3 of qh; 64-127: high nibbles with bits 4-5 / 6-7.
      const __m512i h01 = _mm512_srlv_epi16(h, shifts01), h23 = _mm512_srlv_epi16(h, shifts23);
      const __m512i q_lo = _mm512_or_si512(_mm512_and_si512(l, low4), _mm512_slli_epi16(_mm512_and_si512(h01, three), 4));
      const __m512i q_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4), _mm512_slli_epi16(_mm512_and_si512(h23, three), 4));
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q_lo, _mm512_loadu_si512(q8)), _mm512_shuffle_epi8(sc, pick_lo));
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q_hi, _mm512_loadu_si512(q8 + 64)), _mm512_shuffle_epi8(sc, pick_hi));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), fold(sumi), acc);
  }
  return hsum(acc);
}

}  // namespace jing::cpu::avx512
