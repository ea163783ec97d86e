// IQ1_M's packed fields taken apart with BMI2 (PDEP/PEXT), shared by its AVX2 and AVX-512 dot
// products (include only from *_avx2.cpp / *_avx512.cpp files: they need BMI2).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "quant/blocks.h"

namespace jing::cpu::iq1m {

// The four 16-bit scale words: the f16 super-scale from their top nibbles.
inline uint16_t super_scale(uint64_t sc) { return static_cast<uint16_t>(_pext_u64(sc, 0xF000F000F000F000ull)); }

// The 16 3-bit scales (one per 16 values, in value order) one per byte.
inline __m128i scale_bytes(uint64_t sc) {
  const uint64_t bits = _pext_u64(sc, 0x0FFF0FFF0FFF0FFFull);
  return _mm_set_epi64x(static_cast<int64_t>(_pdep_u64(bits >> 24, 0x0707070707070707ull)), static_cast<int64_t>(_pdep_u64(bits, 0x0707070707070707ull)));
}

// Two sub-blocks' eight 11-bit grid indices, four per word (16 bits each): 8 bits from qs (q8),
// 3 from each group's nibble of qh (h; its fourth bit is the delta flag).
struct Indices {
  uint64_t a, b;
};
inline Indices grid_indices(uint64_t q8, uint32_t h) {
  return {_pdep_u64(q8, 0x00ff00ff00ff00ffull) | _pdep_u64(h & 0x7777u, 0x0f000f000f000f00ull),
          _pdep_u64(q8 >> 32, 0x00ff00ff00ff00ffull) | _pdep_u64((h >> 16) & 0x7777u, 0x0f000f000f000f00ull)};
}

}  // namespace jing::cpu::iq1m
