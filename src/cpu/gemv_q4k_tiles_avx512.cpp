// The decode kernels of tiled Q4_K and Q5_K (cpu/row_tiles.h): 8 rows at once, VPDPBUSD on 64-byte
// chunks (16 values of each of the 8 rows) against the matching 8 activation bytes of each row,
// spread over the lanes by a permute in registers (64-byte pattern loads bound an earlier version).
// Q5_K's tile is Q4_K's with 4 chunks of qh after it: chunk c's bytes hold the fifth bits of the
// values at the same byte positions of every sub-block pair (bit 2p: the low nibbles of pair p).
#include <immintrin.h>

#include <cstring>

#include "cpu/avx512_util.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"

namespace jing::cpu::avx512 {

namespace {

// kAhead > 0: each block's step also prefetches the tile kAhead blocks on (prefetch_bytes).
template <bool kFifthBit, int kAhead>
void kquant_tiles_dot8(const void* group, const void* x_q8k, int64_t cols, float* y8) {
  constexpr int kTile = kFifthBit ? 1408 : 1152, kQh = 1152;
  const auto* t0 = static_cast<const uint8_t*>(group);
  const auto* x = static_cast<const blocks::q8_K*>(x_q8k);
  const __m512i low4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
  const __m256i m63 = _mm256_set1_epi32(63), m15 = _mm256_set1_epi32(15), m3 = _mm256_set1_epi32(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < cols / 256; ++b) {
    const uint8_t* t = t0 + b * kTile;
    if constexpr (kAhead > 0) prefetch_bytes(t + kAhead * kTile, kTile);  // (past the matrix's end: harmless, a prefetch never faults)
    // The 8 rows' scale words: 6-bit scale and min of sub-block j as one 32-bit lane per row.
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 32)), w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 64)),
                  w2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 96));
    auto scale = [&](int j) {
      return j < 4 ? _mm256_and_si256(_mm256_srli_epi32(w0, 8 * j), m63)
                   : _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w2, 8 * (j - 4)), m15),
                                     _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w0, 8 * (j - 4) + 6), m3), 4));
    };
    auto min = [&](int j) {
      return j < 4 ? _mm256_and_si256(_mm256_srli_epi32(w1, 8 * j), m63)
                   : _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w2, 8 * (j - 4) + 4), m15),
                                     _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w1, 8 * (j - 4) + 6), m3), 4));
    };
    __m512i isum = _mm512_setzero_si512();
    __m256i msum = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {  // sub-blocks 2p (low nibbles) and 2p + 1 (high nibbles)
      __m512i slo = _mm512_setzero_si512(), shi = _mm512_setzero_si512();
      // The sub-blocks' 32 activation bytes each, loaded once; chunk c's pattern (bytes 8c..8c+3
      // in lanes 0-7, 8c+4..8c+7 in lanes 8-15) by a permute in registers, not a 64-byte load.
      const __m512i xlo = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs + 64 * p)));
      const __m512i xhi = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs + 64 * p + 32)));
      for (int c = 0; c < 4; ++c) {
        const __m512i q = _mm512_loadu_si512(t + 128 + (4 * p + c) * 64);
        const __m512i idx = dword_pair(2 * c, 2 * c + 1);
        __m512i vlo = _mm512_and_si512(q, low4), vhi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
        if constexpr (kFifthBit) {  // bit 2p (2p + 1) of each qh byte to bit 4
          const __m512i qh = _mm512_loadu_si512(t + kQh + c * 64);
          vlo = _mm512_or_si512(vlo, _mm512_and_si512(_mm512_slli_epi16(_mm512_srli_epi16(qh, 2 * p), 4), bit4));
          vhi = _mm512_or_si512(vhi, _mm512_and_si512(_mm512_slli_epi16(_mm512_srli_epi16(qh, 2 * p + 1), 4), bit4));
        }
        slo = _mm512_dpbusd_epi32(slo, vlo, _mm512_permutexvar_epi32(idx, xlo));
        shi = _mm512_dpbusd_epi32(shi, vhi, _mm512_permutexvar_epi32(idx, xhi));
      }
      const __m256i s0 = scale(2 * p), s1 = scale(2 * p + 1);
      isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(slo, both_halves(s0)));
      isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(shi, both_halves(s1)));
      msum = _mm256_add_epi32(msum, _mm256_mullo_epi32(min(2 * p), _mm256_set1_epi32(x[b].bsums[4 * p] + x[b].bsums[4 * p + 1])));
      msum = _mm256_add_epi32(msum, _mm256_mullo_epi32(min(2 * p + 1), _mm256_set1_epi32(x[b].bsums[4 * p + 2] + x[b].bsums[4 * p + 3])));
    }
    const __m256i sum8 = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
    const __m256 xd = _mm256_set1_ps(x[b].d);
    const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t))), xd);
    const __m256 dmin = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16))), xd);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum8), acc);
    acc = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(msum), acc);
  }
  _mm256_storeu_ps(y8, acc);
}

}  // namespace

void q4k_tiles_dot8(const void* group, const void* x_q8k, int64_t cols, float* y8) { kquant_tiles_dot8<false, 0>(group, x_q8k, cols, y8); }
void q5k_tiles_dot8(const void* group, const void* x_q8k, int64_t cols, float* y8) { kquant_tiles_dot8<true, 0>(group, x_q8k, cols, y8); }
void q4k_tiles_dot8_prefetch(const void* group, const void* x_q8k, int64_t cols, float* y8) { kquant_tiles_dot8<false, 3>(group, x_q8k, cols, y8); }
void q5k_tiles_dot8_prefetch(const void* group, const void* x_q8k, int64_t cols, float* y8) { kquant_tiles_dot8<true, 3>(group, x_q8k, cols, y8); }

}  // namespace jing::cpu::avx512
