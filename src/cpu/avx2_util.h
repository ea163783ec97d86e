// Small AVX2 helpers shared by the *_avx2.cpp and *_avxvnni.cpp kernel files (include only from
// those: they need the flags their file names give them). Internal linkage, so each file keeps
// its own copy built with its own flags.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace jing::cpu::avx2 {
namespace {

// Sum of the eight lanes.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Four bytes (e.g. four activations) repeated over the register.
inline __m256i broadcast4(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// The first n of sixteen results (two registers of eight rows) to out.
inline void store_rows(float* out, __m256 lo, __m256 hi, int n) {
  alignas(32) float row[16];
  _mm256_store_ps(row, lo);
  _mm256_store_ps(row + 8, hi);
  std::memcpy(out, row, static_cast<size_t>(n) * sizeof(float));
}

// Eight 32-bit sums of a[i] * b[i] over 32 signed bytes each (maddubs needs an unsigned first operand).
inline __m256i dot_i8(__m256i a, __m256i b) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)), _mm256_set1_epi16(1));
}

// 16 packed nibble bytes -> 32 bytes: low nibbles (elements 0..15) then high nibbles (16..31).
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

// Bit i of 32 bits -> byte i as 0xFF or 0x00.
inline __m256i bits_to_bytes(uint32_t bits) {
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), shuf);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// Spreads 16-bit lane k of each 128-bit half over all eight 16-bit lanes of that half.
inline __m256i spread16(__m256i v, int k) {
  return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<int16_t>((2 * k) | ((2 * k + 1) << 8))));
}

// The eight 6-bit scales and minimums of a Q4_K / Q5_K block (its 12 packed bytes), unpacked four
// at a time into 16-bit lanes: scales as 8 lanes, minimums as 8 lanes.
struct KScales {
  __m128i scales, mins;
};
inline KScales k_scales(const uint8_t* packed) {
  uint32_t u[3];
  __builtin_memcpy(u, packed, 12);
  const uint32_t sc_lo = u[0] & 0x3f3f3f3f, mn_lo = u[1] & 0x3f3f3f3f;
  const uint32_t sc_hi = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
  const uint32_t mn_hi = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
  return {_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(sc_hi), static_cast<int>(sc_lo))),
          _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(mn_hi), static_cast<int>(mn_lo)))};
}


// q3k_scales (blocks.h) with the result in a register.
inline __m128i q3k_scales_vec(const uint8_t* packed) {
  uint32_t a[3];
  __builtin_memcpy(a, packed, 12);
  constexpr uint32_t m1 = 0x03030303, m2 = 0x0f0f0f0f;
  return _mm_set_epi32(static_cast<int>(((a[1] >> 4) & m2) | (((a[2] >> 6) & m1) << 4)),
                       static_cast<int>(((a[0] >> 4) & m2) | (((a[2] >> 4) & m1) << 4)),
                       static_cast<int>((a[1] & m2) | (((a[2] >> 2) & m1) << 4)), static_cast<int>((a[0] & m2) | ((a[2] & m1) << 4)));
}

}  // namespace
}  // namespace jing::cpu::avx2
