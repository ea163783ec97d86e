// AVX2 dot products of the grid-coded i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
// IQ3_S) with Q8_K activations: the decode path of Unsloth's dynamic DeepSeek-R1 quantizations.
//
// Per 32 values: four (IQ2) or eight (IQ3) table lookups give the magnitudes, the sign bits turn
// into a byte mask that flips the matching activations (PSIGNB), PMADDUBSW multiplies magnitudes
// by activations and PMADDWD folds in the group scale. IQ1's grid values g in {-1, 0, 1} with
// their +-1/8 shift become the integers 8 g +- 1 (IQ1_M), or 8 (g + 1) with the rest taken off
// through the activations' block sums (IQ1_S, whose shift is one per 32 values).
#include <immintrin.h>

#include <cstring>

#include "cpu/avx2_util.h"
#include "cpu/iq1m_fields.h"
#include "cpu/iq_scales.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace jing::cpu::avx2 {

using namespace blocks;

namespace {

// Sign bytes for PSIGNB by IQ2/IQ3's 7-bit sign code (the eighth bit makes the parity even): eight
// bytes 0x01 (keep) or 0xFF (negate), one table lookup per 8 values.
struct SignTables {
  uint64_t bits128[128];
};
const SignTables& sign_tables() {
  static const SignTables t = [] {
    SignTables s{};
    for (int i = 0; i < 128; ++i)
      for (int j = 0; j < 8; ++j) s.bits128[i] |= static_cast<uint64_t>((iq::ksigns_iq2xs[i] >> j) & 1 ? 0xFF : 0x01) << (8 * j);
    return s;
  }();
  return t;
}

// Activations with the weights' signs applied, from four 64-bit sign-byte words (one per 8 values).
inline __m256i signed_x(const int8_t* x, uint64_t s0, uint64_t s1, uint64_t s2, uint64_t s3) {
  return _mm256_sign_epi8(load(x), _mm256_set_epi64x(static_cast<int64_t>(s3), static_cast<int64_t>(s2), static_cast<int64_t>(s1),
                                                     static_cast<int64_t>(s0)));
}

// The four 7-bit sign codes packed in the low 28 bits of IQ2_XXS / IQ3_XXS's aux word (t: the
// bits128 table).
inline __m256i signed_x_codes(const int8_t* x, uint32_t packed, const uint64_t* t) {
  return signed_x(x, t[packed & 127], t[(packed >> 7) & 127], t[(packed >> 14) & 127], t[(packed >> 21) & 127]);
}

// Four stored sign bytes (IQ2_S, IQ3_S): 32 bits spread to byte masks in registers (measured
// faster here than four table lookups).
inline __m256i signed_x_bytes(const int8_t* x, const uint8_t* signs) {
  uint32_t bits;
  std::memcpy(&bits, signs, 4);
  return _mm256_sign_epi8(load(x), _mm256_or_si256(bits_to_bytes(bits), _mm256_set1_epi8(1)));
}

// One scale for all 32 values, or the low one for values 0..15 and the high one for 16..31.
inline __m256i scale16(int s) { return _mm256_set1_epi16(static_cast<int16_t>(s)); }
inline __m256i scale16(int lo, int hi) { return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)), _mm_set1_epi16(static_cast<int16_t>(lo))); }

// The scales as constant tables (cpu/iq_scales.h).
inline __m256i odd_scale(int s) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(kOddScales.one[s])); }
inline __m256i odd_scale_nibbles(int byte) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(kOddScales.nibbles[byte])); }

// sum += scale * (magnitudes . signed activations), eight int32 lanes.
inline __m256i mad(__m256i sum, __m256i magnitudes, __m256i xs, __m256i scale) {
  return _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(magnitudes, xs), scale));
}

inline __m256i grid64(const uint64_t* grid, int i0, int i1, int i2, int i3) {
  return _mm256_set_epi64x(static_cast<int64_t>(grid[i3]), static_cast<int64_t>(grid[i2]), static_cast<int64_t>(grid[i1]),
                           static_cast<int64_t>(grid[i0]));
}

}  // namespace

float dot_iq2_xxs(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq2_xxs*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const uint64_t* signs = sign_tables().bits128;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto* q = reinterpret_cast<const uint8_t*>(w[i].qs);
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib) {
      uint32_t idx, aux;
      std::memcpy(&idx, q + 8 * ib, 4);
      std::memcpy(&aux, q + 8 * ib + 4, 4);
      const __m256i v = grid64(iq::iq2xxs_grid, idx & 255, (idx >> 8) & 255, (idx >> 16) & 255, idx >> 24);
      sumi = mad(sumi, v, signed_x_codes(x[i].qs + 32 * ib, aux, signs), odd_scale(static_cast<int>(aux >> 28)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * x[i].d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return 0.125f * hsum(acc);  // d * (0.5 + ls) / 4 = d * (2 ls + 1) / 8
}

float dot_iq2_xs(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq2_xs*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const uint64_t* signs = sign_tables().bits128;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib) {
      const uint16_t* q = w[i].qs + 4 * ib;
      const __m256i v = grid64(iq::iq2xs_grid, q[0] & 511, q[1] & 511, q[2] & 511, q[3] & 511);
      const int sc = w[i].scales[ib];
      sumi = mad(sumi, v, signed_x(x[i].qs + 32 * ib, signs[q[0] >> 9], signs[q[1] >> 9], signs[q[2] >> 9], signs[q[3] >> 9]),
                 odd_scale_nibbles(sc));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * x[i].d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return 0.125f * hsum(acc);
}

float dot_iq2_s(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq2_s*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* qs = w[i].qs;
    const uint8_t* sign_bytes = w[i].qs + QK_K / 8;
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib, qs += 4, sign_bytes += 4) {
      const int qh = w[i].qh[ib];
      const __m256i v = grid64(iq::iq2s_grid, qs[0] | ((qh << 8) & 0x300), qs[1] | ((qh << 6) & 0x300), qs[2] | ((qh << 4) & 0x300),
                               qs[3] | ((qh << 2) & 0x300));
      const int sc = w[i].scales[ib];
      sumi = mad(sumi, v, signed_x_bytes(x[i].qs + 32 * ib, sign_bytes), odd_scale_nibbles(sc));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * x[i].d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return 0.125f * hsum(acc);
}

float dot_iq3_xxs(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq3_xxs*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const uint64_t* signs = sign_tables().bits128;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* q = w[i].qs;
    const uint8_t* scales_and_signs = w[i].qs + QK_K / 4;
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib, q += 8) {
      uint32_t aux;
      std::memcpy(&aux, scales_and_signs + 4 * ib, 4);
      const uint32_t* g = iq::iq3xxs_grid;
      const __m256i v = _mm256_set_epi32(static_cast<int>(g[q[7]]), static_cast<int>(g[q[6]]), static_cast<int>(g[q[5]]), static_cast<int>(g[q[4]]),
                                         static_cast<int>(g[q[3]]), static_cast<int>(g[q[2]]), static_cast<int>(g[q[1]]), static_cast<int>(g[q[0]]));
      sumi = mad(sumi, v, signed_x_codes(x[i].qs + 32 * ib, aux, signs), odd_scale(static_cast<int>(aux >> 28)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * x[i].d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return 0.25f * hsum(acc);  // d * (0.5 + ls) / 2 = d * (2 ls + 1) / 4
}

float dot_iq3_s(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq3_s*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), one = _mm256_set1_epi32(1);
  const int* grid = reinterpret_cast<const int*>(iq::iq3s_grid);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* q = w[i].qs;
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();  // even and odd sub-blocks
    for (int ib = 0; ib < 8; ib += 2, q += 16) {
      // Grid index j of a sub-block: 8 bits from qs, the 9th is bit j of qh; eight indices in
      // vector lanes and one gather (scalar loads and inserts per index had been the cost).
      auto values = [&](const uint8_t* qs, int qh) {
        const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qs)));
        const __m256i hi = _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(qh), lane), one), 8);
        return _mm256_i32gather_epi32(grid, _mm256_or_si256(lo, hi), 4);
      };
      const __m256i v0 = values(q, w[i].qh[ib]), v1 = values(q + 8, w[i].qh[ib + 1]);
      const int sc = w[i].scales[ib / 2];
      sum0 = mad(sum0, v0, signed_x_bytes(x[i].qs + 32 * ib, w[i].signs + 4 * ib), odd_scale(sc & 15));
      sum1 = mad(sum1, v1, signed_x_bytes(x[i].qs + 32 * ib + 32, w[i].signs + 4 * ib + 4), odd_scale(sc >> 4));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * x[i].d), _mm256_cvtepi32_ps(_mm256_add_epi32(sum0, sum1)), acc);
  }
  return hsum(acc);
}

float dot_iq1_s(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq1_s*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m256i one = _mm256_set1_epi8(1), next = _mm256_set1_epi8(4);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* qs = w[i].qs;
    // Values 8 g + delta = 8 (g + 1) + (delta - 8): g + 1 in {0, 1, 2} multiplies the activations
    // unsigned (no sign flips), and the second term needs only each 32 values' activation sum,
    // which the Q8_K block carries (bsums).
    const __m128i qh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].qh));
    const __m128i scale = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(qh, 11), _mm_set1_epi16(14)), _mm_set1_epi16(1));  // 2 ls + 1
    // The scales stay in a register, picked per sub-block by PSHUFB (table loads compete with
    // the grid lookups for the load ports). Two sub-blocks a step, each with its own sum.
    const __m256i scales = _mm256_broadcastsi128_si256(scale);
    __m256i pick0 = _mm256_set1_epi16(0x0100), pick1 = _mm256_set1_epi16(0x0302);
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib += 2, qs += 8) {
      // Four 11-bit grid indices at once: 8 bits from qs, 3 from qh each (PDEP spreads both).
      uint32_t q4a, q4b;
      std::memcpy(&q4a, qs, 4);
      std::memcpy(&q4b, qs + 4, 4);
      const uint64_t pa = _pdep_u64(q4a, 0x00ff00ff00ff00ffull) | _pdep_u64(w[i].qh[ib], 0x0700070007000700ull);
      const uint64_t pb = _pdep_u64(q4b, 0x00ff00ff00ff00ffull) | _pdep_u64(w[i].qh[ib + 1], 0x0700070007000700ull);
      const __m256i ua = _mm256_add_epi8(grid64(iq::iq1s_grid, pa & 0xFFFF, (pa >> 16) & 0xFFFF, (pa >> 32) & 0xFFFF, pa >> 48), one);
      const __m256i ub = _mm256_add_epi8(grid64(iq::iq1s_grid, pb & 0xFFFF, (pb >> 16) & 0xFFFF, (pb >> 32) & 0xFFFF, pb >> 48), one);
      sum0 = mad(sum0, ua, load(x[i].qs + 32 * ib), _mm256_shuffle_epi8(scales, pick0));
      sum1 = mad(sum1, ub, load(x[i].qs + 32 * ib + 32), _mm256_shuffle_epi8(scales, pick1));
      pick0 = _mm256_add_epi8(pick0, next), pick1 = _mm256_add_epi8(pick1, next);
    }
    // (2 ls + 1) (delta - 8) per sub-block, each paired with its two 16-value activation sums.
    const __m128i shift = _mm_sub_epi16(_mm_set1_epi16(-7), _mm_and_si128(_mm_srli_epi16(qh, 14), _mm_set1_epi16(2)));
    const __m128i c = _mm_mullo_epi16(scale, shift);
    const __m256i offset = _mm256_madd_epi16(_mm256_set_m128i(_mm_unpackhi_epi16(c, c), _mm_unpacklo_epi16(c, c)), load(x[i].bsums));
    const __m256i sumi = _mm256_add_epi32(_mm256_slli_epi32(_mm256_add_epi32(sum0, sum1), 3), offset);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * x[i].d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return 0.125f * hsum(acc);  // values were 8 (g +- 1/8)
}

float dot_iq1_m(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq1_m*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m256i one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2), next = _mm256_set1_epi8(2);
  const __m256i shifts = _mm256_set_epi64x(9, 3, 6, 0);
  // Each 8-value group's delta flag (bit 3 of its nibble of qh), as a bit per 64-bit lane.
  const __m256i flags_a = _mm256_set_epi64x(1ll << 15, 1ll << 11, 1ll << 7, 1ll << 3);
  const __m256i flags_b = _mm256_set_epi64x(1ll << 31, 1ll << 27, 1ll << 23, 1ll << 19);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    uint64_t sc;  // four 16-bit words: 3-bit scales of 16 values each, the f16 super-scale in their top nibbles
    std::memcpy(&sc, w[i].scales, 8);
    const uint16_t d16 = iq1m::super_scale(sc);
    // The 16 scales (2 s + 1) in a register, 16-bit lanes in an order PSHUFB picks per sub-block
    // (table loads compete with the grid lookups for the load ports).
    __m256i scales = _mm256_srlv_epi64(_mm256_set1_epi64x(static_cast<int64_t>(sc)), shifts);
    scales = _mm256_add_epi16(_mm256_slli_epi16(_mm256_and_si256(scales, _mm256_set1_epi16(7)), 1), _mm256_set1_epi16(1));
    __m256i pick0 = _mm256_set1_epi16(0x0100), pick1 = _mm256_set1_epi16(0x0908);
    const uint8_t *qs = w[i].qs, *qh = w[i].qh;
    // Values 8 g + delta (delta +-1 per 8) + 9 = 8 (g + 1) + (1 + delta): unsigned 0..18, so no
    // sign flips; the 9 comes off through the activations' 16-value sums below.
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib += 2, qs += 8, qh += 4) {
      // qh: for each group of 8 values, 3 high index bits and a delta sign bit.
      uint64_t q8;
      uint32_t h;
      std::memcpy(&q8, qs, 8);
      std::memcpy(&h, qh, 4);
      const auto [pa, pb] = iq1m::grid_indices(q8, h);
      const __m256i ga = grid64(iq::iq1s_grid, pa & 0xFFFF, (pa >> 16) & 0xFFFF, (pa >> 32) & 0xFFFF, pa >> 48);
      const __m256i gb = grid64(iq::iq1s_grid, pb & 0xFFFF, (pb >> 16) & 0xFFFF, (pb >> 32) & 0xFFFF, pb >> 48);
      const __m256i plus = _mm256_set1_epi32(static_cast<int>(~h));  // 1 + delta: 2 where the flag is clear, else 0
      const __m256i da = _mm256_and_si256(_mm256_cmpeq_epi64(_mm256_and_si256(plus, flags_a), flags_a), two);
      const __m256i db = _mm256_and_si256(_mm256_cmpeq_epi64(_mm256_and_si256(plus, flags_b), flags_b), two);
      // (g + 1) << 3 stays within each byte (at most 16)
      const __m256i ua = _mm256_add_epi8(_mm256_slli_epi16(_mm256_add_epi8(ga, one), 3), da);
      const __m256i ub = _mm256_add_epi8(_mm256_slli_epi16(_mm256_add_epi8(gb, one), 3), db);
      sum0 = mad(sum0, ua, load(x[i].qs + 32 * ib), _mm256_shuffle_epi8(scales, pick0));
      sum1 = mad(sum1, ub, load(x[i].qs + 32 * ib + 32), _mm256_shuffle_epi8(scales, pick1));
      pick0 = _mm256_add_epi8(pick0, next), pick1 = _mm256_add_epi8(pick1, next);
    }
    // minus 9 (2 s + 1) times each 16 values' activation sum: the 3-bit scales one per byte,
    // widened to 16 bits beside bsums.
    const __m128i s8 = iq1m::scale_bytes(sc);
    const __m256i s16 = _mm256_cvtepu8_epi16(s8);
    const __m256i nine_scales = _mm256_mullo_epi16(_mm256_add_epi16(_mm256_add_epi16(s16, s16), _mm256_set1_epi16(1)), _mm256_set1_epi16(-9));
    const __m256i offset = _mm256_madd_epi16(nine_scales, load(x[i].bsums));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(d16) * x[i].d), _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(sum0, sum1), offset)), acc);
  }
  return 0.125f * hsum(acc);
}

}  // namespace jing::cpu::avx2
