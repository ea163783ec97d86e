// AVX-512 dot products of the i-quants whose AVX2 kernels trail ggml's: 64 values a step, the
// weights' signs as one 64-bit mask (a masked subtract negates the activations) instead of a sign
// table lookup per 8 values. (Gathers for the grid rows measured slower on Zen 4 than scalar
// loads: 128 against 96 ns a 1536-value row.)
#include <immintrin.h>

#include <cstring>

#include "cpu/avx2_util.h"
#include "cpu/avx512_util.h"
#include "cpu/iq1m_fields.h"
#include "cpu/iq_scales.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace jing::cpu::avx512 {

using namespace blocks;
using avx2::h2f;
using avx2::hsum;

namespace {

// The activations negated where two aux words' 7-bit sign codes (IQ2_XXS, IQ3_XXS: four per 32
// values in bits 0-27) say so: the eight codes one per byte (PDEP), each byte's eighth bit its
// parity (the stored codes leave the parity even), the 64 bits a mask for a masked subtract.
inline __m512i signed_x_codes(const int8_t* xq, uint32_t aux0, uint32_t aux1) {
  const uint64_t codes = _pdep_u64(aux0, 0x7F7F7F7Full) | (_pdep_u64(aux1, 0x7F7F7F7Full) << 32);
  uint64_t p = codes ^ (codes >> 4);  // bit 0 of each byte: the parity of its bits 0-6 (the
  p ^= p >> 2;                        // bits shifted in from the next byte stay above bit 3)
  p ^= p >> 1;
  const __mmask64 negative = _cvtu64_mask64(codes | ((p & 0x0101010101010101ull) << 7));
  const __m512i x = _mm512_loadu_si512(xq);
  return _mm512_mask_sub_epi8(x, negative, _mm512_setzero_si512(), x);
}

// 2 s + 1 of two sub-blocks (the top 4 bits of their aux words), one per 256-bit half.
inline __m512i odd_scales(uint32_t aux0, uint32_t aux1) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(static_cast<int16_t>(2 * (aux0 >> 28) + 1))),
                            _mm256_set1_epi16(static_cast<int16_t>(2 * (aux1 >> 28) + 1)), 1);
}

}  // namespace

// IQ2_XXS: per 32 values four 8-bit grid indices (8 values each) and an aux word of four sign
// codes and the scale. 64 values a step.
float dot_iq2_xxs(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq2_xxs*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const auto* grid = reinterpret_cast<const long long*>(iq::iq2xxs_grid);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto* q = reinterpret_cast<const uint8_t*>(w[i].qs);
    __m512i sum = _mm512_setzero_si512();
    for (int p = 0; p < 4; ++p, q += 16) {  // sub-blocks 2p and 2p + 1
      uint32_t aux0, aux1;
      std::memcpy(&aux0, q + 4, 4);
      std::memcpy(&aux1, q + 12, 4);
      const __m512i magnitudes = _mm512_set_epi64(grid[q[11]], grid[q[10]], grid[q[9]], grid[q[8]], grid[q[3]], grid[q[2]], grid[q[1]], grid[q[0]]);
      sum = _mm512_add_epi32(sum, _mm512_madd_epi16(_mm512_maddubs_epi16(magnitudes, signed_x_codes(x[i].qs + 64 * p, aux0, aux1)), odd_scales(aux0, aux1)));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(h2f(w[i].d) * x[i].d), _mm512_cvtepi32_ps(sum), acc);
  }
  return 0.125f * _mm512_reduce_add_ps(acc);  // d * (0.5 + ls) / 4 = d * (2 ls + 1) / 8
}

// IQ3_XXS: per 32 values eight 8-bit indices into a grid of 4 values, then (after all 64 index
// bytes) an aux word per 32 values of four sign codes and the scale.
float dot_iq3_xxs(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq3_xxs*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const uint32_t* grid = iq::iq3xxs_grid;
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* q = w[i].qs;
    const uint8_t* scales_and_signs = w[i].qs + QK_K / 4;
    __m512i sum = _mm512_setzero_si512();
    for (int p = 0; p < 4; ++p, q += 16) {
      uint32_t aux0, aux1;
      std::memcpy(&aux0, scales_and_signs + 8 * p, 4);
      std::memcpy(&aux1, scales_and_signs + 8 * p + 4, 4);
      auto g = [&](int k) { return static_cast<int>(grid[q[k]]); };
      const __m512i magnitudes = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_set_epi32(g(7), g(6), g(5), g(4), g(3), g(2), g(1), g(0))),
          _mm256_set_epi32(g(15), g(14), g(13), g(12), g(11), g(10), g(9), g(8)), 1);
      sum = _mm512_add_epi32(sum, _mm512_madd_epi16(_mm512_maddubs_epi16(magnitudes, signed_x_codes(x[i].qs + 64 * p, aux0, aux1)), odd_scales(aux0, aux1)));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(h2f(w[i].d) * x[i].d), _mm512_cvtepi32_ps(sum), acc);
  }
  return 0.25f * _mm512_reduce_add_ps(acc);  // d * (0.5 + ls) / 2 = d * (2 ls + 1) / 4
}

// IQ1_M: 8-value groups of an 11-bit grid index (values g in {-1, 0, 1}) and a delta flag, a
// 3-bit scale per 16 values. Values 8 g + delta + 9 = 8 (g + 1) + (1 + delta), unsigned 0..18; the
// 9 comes off through the activations' 16-value sums. 64 values a step, the step's four scales
// one per 128-bit lane.
float dot_iq1_m(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq1_m*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const auto* grid = reinterpret_cast<const long long*>(iq::iq1s_grid);
  const __m512i one = _mm512_set1_epi8(1), two = _mm512_set1_epi8(2);
  const StepScalePicks pick;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    uint64_t sc;  // four 16-bit words: 3-bit scales of 16 values each, the f16 super-scale in their top nibbles
    std::memcpy(&sc, w[i].scales, 8);
    const uint16_t d16 = iq1m::super_scale(sc);
    const __m128i s8 = iq1m::scale_bytes(sc);
    const __m256i s16 = _mm256_cvtepu8_epi16(s8);
    const __m256i odd = _mm256_add_epi16(_mm256_add_epi16(s16, s16), _mm256_set1_epi16(1));
    const __m512i scales = _mm512_castsi256_si512(odd);
    const __m256i offset = _mm256_madd_epi16(_mm256_mullo_epi16(odd, _mm256_set1_epi16(-9)), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].bsums)));
    __m512i sum = _mm512_inserti64x4(_mm512_castsi256_si512(offset), _mm256_setzero_si256(), 1);
    const uint8_t *qs = w[i].qs, *qh = w[i].qh;
    for (int p = 0; p < 4; ++p, qs += 8, qh += 4) {
      uint64_t q8;
      uint32_t h;
      std::memcpy(&q8, qs, 8);
      std::memcpy(&h, qh, 4);
      // qh: for each group of 8 values, 3 high index bits and the delta flag.
      const auto [pa, pb] = iq1m::grid_indices(q8, h);
      const __m512i g = _mm512_set_epi64(grid[pb >> 48], grid[(pb >> 32) & 0xFFFF], grid[(pb >> 16) & 0xFFFF], grid[pb & 0xFFFF], grid[pa >> 48],
                                         grid[(pa >> 32) & 0xFFFF], grid[(pa >> 16) & 0xFFFF], grid[pa & 0xFFFF]);
      const __m512i plus = _mm512_maskz_mov_epi64(static_cast<__mmask8>(_pext_u32(~h, 0x88888888u)), two);  // 1 + delta
      const __m512i u = _mm512_add_epi8(_mm512_slli_epi16(_mm512_add_epi8(g, one), 3), plus);  // (g + 1) << 3 stays within each byte
      sum = _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(u, _mm512_loadu_si512(x[i].qs + 64 * p)), _mm512_permutexvar_epi16(pick.step[p], scales));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(d16) * x[i].d),
                          _mm256_cvtepi32_ps(_mm256_add_epi32(_mm512_castsi512_si256(sum), _mm512_extracti64x4_epi64(sum, 1))), acc);
  }
  return 0.125f * hsum(acc);
}

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
    acc = _mm512_fmadd_ps(_mm512_set1_ps(h2f(w[i].d) * x[i].d), _mm512_cvtepi32_ps(sum), acc);
  }
  return 0.125f * _mm512_reduce_add_ps(acc);  // d * (0.5 + s) / 4 = d * (2 s + 1) / 8
}

// IQ3_S: 4 values per 9-bit grid index (8 bits in qs, the 9th in qh), the signs stored as bits.
// 16 indices are worked out in vector lanes and read back for scalar grid loads (with AVX-512VL the
// compiler moves them out with VALIGND + VMOVD; the AVX2 file's build extracts each with VPEXTRD
// and is slower, so it keeps its gathers): 165 ns a streamed 1536-value row against 179 with
// gathers (ggml 169), 957 against 1039 for 8960 values (ggml 958).
float dot_iq3_s(const void* wv, const void* xv, int64_t n) {
  const auto* w = static_cast<const iq3_s*>(wv);
  const auto* x = static_cast<const q8_K*>(xv);
  const __m256i shift = _mm256_set_epi32(1, 2, 3, 4, 5, 6, 7, 8), bit8 = _mm256_set1_epi32(256), one = _mm256_set1_epi8(1);
  const uint32_t* grid = iq::iq3s_grid;
  auto signed_x = [&](const int8_t* xq, const uint8_t* sign_bits) {  // PSIGNB by 32 stored sign bits
    uint32_t bits;
    std::memcpy(&bits, sign_bits, 4);
    const __m256i bytes = _mm256_movm_epi8(_cvtu32_mask32(bits));
    return _mm256_sign_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)), _mm256_or_si256(bytes, one));
  };
  auto scales = [](int s) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(kOddScales.one[s])); };
  alignas(32) uint32_t idx[16];
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* q = w[i].qs;
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();  // even and odd sub-blocks
    for (int ib = 0; ib < 8; ib += 2, q += 16) {
      const __m256i lo = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
      const __m256i hi0 = _mm256_and_si256(_mm256_sllv_epi32(_mm256_set1_epi32(w[i].qh[ib]), shift), bit8);
      const __m256i hi1 = _mm256_and_si256(_mm256_sllv_epi32(_mm256_set1_epi32(w[i].qh[ib + 1]), shift), bit8);
      _mm256_store_si256(reinterpret_cast<__m256i*>(idx), _mm256_or_si256(hi0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo))));
      _mm256_store_si256(reinterpret_cast<__m256i*>(idx + 8), _mm256_or_si256(hi1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo, 1))));
      auto g = [&](int k) { return static_cast<int>(grid[idx[k]]); };
      const __m256i v0 = _mm256_set_epi32(g(7), g(6), g(5), g(4), g(3), g(2), g(1), g(0));
      const __m256i v1 = _mm256_set_epi32(g(15), g(14), g(13), g(12), g(11), g(10), g(9), g(8));
      const int sc = w[i].scales[ib / 2];
      sum0 = _mm256_add_epi32(sum0, _mm256_madd_epi16(_mm256_maddubs_epi16(v0, signed_x(x[i].qs + 32 * ib, w[i].signs + 4 * ib)), scales(sc & 15)));
      sum1 = _mm256_add_epi32(sum1, _mm256_madd_epi16(_mm256_maddubs_epi16(v1, signed_x(x[i].qs + 32 * ib + 32, w[i].signs + 4 * ib + 4)), scales(sc >> 4)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * x[i].d), _mm256_cvtepi32_ps(_mm256_add_epi32(sum0, sum1)), acc);
  }
  return hsum(acc);
}

}  // namespace jing::cpu::avx512
