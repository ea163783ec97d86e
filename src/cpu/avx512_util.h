// Small AVX-512 helpers shared by the *_avx512.cpp kernel files (include only from those: they
// need the AVX-512 flags their file names give them).
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

// GCC 12 reports the undefined pass-through operand inside several AVX-512 intrinsics (unpack,
// conversions) as "(may be) used uninitialized"; it is not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace jing::cpu::avx512 {

constexpr int kRows = 32;  // weight rows per panel: two 16-lane registers

// One constant per 256-bit half: 16-bit lanes of a (low half) and b (high half); bytes likewise.
inline __m512i halves16(int a, int b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(static_cast<int16_t>(a))), _mm256_set1_epi16(static_cast<int16_t>(b)), 1);
}
inline __m512i halves8(int a, int b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi8(static_cast<char>(a))), _mm256_set1_epi8(static_cast<char>(b)), 1);
}

// VPERMW indices giving 128-bit lane L of a 64-value step p the 16-value scale 4p + L (the K- and
// IQ1 quants' scales per 16 values, as 16-bit elements of one register).
struct StepScalePicks {
  __m512i step[4];
  StepScalePicks() {
    for (int p = 0; p < 4; ++p) {
      alignas(64) int16_t idx[32];
      for (int j = 0; j < 32; ++j) idx[j] = static_cast<int16_t>(4 * p + j / 8);
      step[p] = _mm512_load_si512(idx);
    }
  }
};

// Cache-line-aligned storage for the panel (every register load in the kernel is aligned).
template <class V>
struct AlignedAlloc {
  using value_type = V;
  AlignedAlloc() = default;
  template <class U>
  AlignedAlloc(const AlignedAlloc<U>&) {}
  V* allocate(size_t n) { return static_cast<V*>(::operator new(n * sizeof(V), std::align_val_t{64})); }
  void deallocate(V* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  bool operator==(const AlignedAlloc&) const { return true; }
};

template <class V>
using AlignedVector = std::vector<V, AlignedAlloc<V>>;

// Store masks of a panel's two 16-row registers when only n_rows of its 32 rows exist.
inline std::pair<__mmask16, __mmask16> row_masks(int64_t n_rows) {
  auto mask = [](int64_t n) { return n >= 16 ? __mmask16{0xFFFF} : n <= 0 ? __mmask16{0} : static_cast<__mmask16>((1u << n) - 1); };
  return {mask(n_rows), mask(n_rows - 16)};
}

// The tile kernels' prefetch (cpu/row_tiles.h): `bytes` from p into L1, a later block's tile
// fetched while this one is computed. On the Intel Xeons measured the hardware prefetchers did not
// keep up with these kernels (one core read tiled Q4_K from DRAM at 6.7-8.4 GB/s without, 9.6-13.6
// with, the plain rows 8.7-11.0); AMD's Zen 4 kept them without (tiles_dot8 picks per vendor).
inline void prefetch_bytes(const uint8_t* p, int bytes) {
  for (int line = 0; line < bytes; line += 64) _mm_prefetch(reinterpret_cast<const char*>(p + line), _MM_HINT_T0);
}

// The tiled decode kernels (cpu/row_tiles.h): a 256-bit vector in both halves (one value per row,
// for the 16 lanes that hold 8 rows twice), and the permute picking activation dwords a (lanes
// 0-7) and b (lanes 8-15) for a chunk's [rows 0-7 bytes 0-3 | rows 0-7 bytes 4-7].
inline __m512i both_halves(__m256i v) { return _mm512_inserti64x4(_mm512_castsi256_si512(v), v, 1); }
inline __m512i dword_pair(int a, int b) { return _mm512_inserti64x4(_mm512_set1_epi32(a), _mm256_set1_epi32(b), 1); }

inline int32_t load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// out[j] lane r = dword j of the 64 bytes at base + r * stride, for r < n (later lanes zero): a
// 16 x 16 transpose of 32-bit words in four shuffle stages.
inline void transpose16(const uint8_t* base, size_t stride, int n, __m512i out[16]) {
  __m512i r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = i < n ? _mm512_loadu_si512(base + i * stride) : _mm512_setzero_si512();
  for (int i = 0; i < 16; i += 2) t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  // u[4g + c]: rows 4g..4g+3, dword 4L + c in 128-bit lane L.
  for (int g = 0; g < 4; ++g) {
    r[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44), v1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xEE);
    const __m512i v2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44), v3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xEE);
    out[c] = _mm512_shuffle_i32x4(v0, v2, 0x88), out[4 + c] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
    out[8 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88), out[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
  }
}

}  // namespace jing::cpu::avx512
