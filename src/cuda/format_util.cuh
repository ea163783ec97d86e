// What every block decoder of src/cuda uses: loads at a known alignment, the integer SIMD
// instructions (dp4a, per-byte subtract, byte permute) and exactly rounded float ops.
// Compiles for the device (nvcc) and for the host (plain C++), so the decoders can be checked on
// machines without a GPU (tests/cuda/format_host_test.cpp); host versions mirror device results.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "quant/fp16.h"

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define JING_HD __host__ __device__ __forceinline__
#define JING_HD_CONSTEXPR __host__ __device__ constexpr
#else
#define JING_HD inline
#define JING_HD_CONSTEXPR constexpr
#endif

namespace jing::cuda::fmt {

// The IQ/FP4 lookup tables (src/quant/iq_tables.cpp), in device memory for kernels.
struct Tables {
  const uint64_t* iq2xxs = nullptr;
  const uint64_t* iq2xs = nullptr;
  const uint64_t* iq2s = nullptr;
  const uint32_t* iq3xxs = nullptr;
  const uint32_t* iq3s = nullptr;
  const uint64_t* iq1s = nullptr;
  // iq1s as nibbles (value + 1 in 0..2): weights 0-3 of an entry in the low nibbles of its four
  // bytes, 4-7 in the high ones. A quarter of iq1s's bytes, so the decode kernels keep it in
  // shared memory, where random lookups cost a few bank cycles instead of a cache line each.
  const uint32_t* iq1s_nib = nullptr;
  const uint8_t* ksigns = nullptr;  // 7 sign bits -> 8 (the eighth makes the parity even)
  const int8_t* iq4nl = nullptr;
  const int8_t* fp4 = nullptr;
};

// Read-only loads of table entries (through the non-coherent cache on the device).
template <class T>
JING_HD T ro(const T* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

// 32 little-endian bits at p, whose address is a multiple of A.
template <int A>
JING_HD uint32_t ld32(const uint8_t* p) {
#ifdef __CUDA_ARCH__
  if constexpr (A % 4 == 0) {
    return *reinterpret_cast<const uint32_t*>(p);
  } else if constexpr (A % 2 == 0) {
    const auto* h = reinterpret_cast<const uint16_t*>(p);
    return h[0] | (static_cast<uint32_t>(h[1]) << 16);
  } else {
    return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  }
#else
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}

// N consecutive little-endian words at p (address a multiple of A) with the widest loads that
// alignment allows; 2-byte aligned runs take aligned words and funnel-shift them (one extra word
// is read only when p is not 4-byte aligned, so nothing past the run is touched).
template <int A, int N>
JING_HD void ld_words(const uint8_t* p, uint32_t* w) {
#ifdef __CUDA_ARCH__
  if constexpr (A % 16 == 0 && N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N / 4; ++i) {
      const uint4 v = reinterpret_cast<const uint4*>(p)[i];
      w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
    }
  } else if constexpr (A % 8 == 0 && N % 2 == 0) {
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      const uint2 v = reinterpret_cast<const uint2*>(p)[i];
      w[2 * i] = v.x, w[2 * i + 1] = v.y;
    }
  } else if constexpr (A % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N; ++i) w[i] = reinterpret_cast<const uint32_t*>(p)[i];
  } else if constexpr (A % 2 == 0) {
    const auto* base = reinterpret_cast<const uint32_t*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{3});
    const uint32_t shift = (reinterpret_cast<uintptr_t>(p) & 2) * 8;
    uint32_t cur = base[0];
#pragma unroll
    for (int i = 0; i < N; ++i) {
      const uint32_t next = (i + 1 < N || shift) ? base[i + 1] : 0u;
      w[i] = __funnelshift_r(cur, next, shift);
      cur = next;
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) w[i] = ld32<1>(p + 4 * i);
  }
#else
  std::memcpy(w, p, 4 * N);
#endif
}

// 16 bits at p (p even unless A is odd).
template <int A>
JING_HD uint16_t ld16(const uint8_t* p) {
#ifdef __CUDA_ARCH__
  if constexpr (A % 2 == 0) return *reinterpret_cast<const uint16_t*>(p);
  else return static_cast<uint16_t>(p[0] | (p[1] << 8));
#else
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
#endif
}

JING_HD float half_to_float(uint16_t h) {
#ifdef __CUDA_ARCH__
  return __half2float(__ushort_as_half(h));
#else
  return fp16_to_fp32(h);
#endif
}

// Float ops that the compiler must not fuse into FMAs: the dequantizers round as the CPU's do.
JING_HD float fmul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
JING_HD float fadd(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
JING_HD float fsub(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

// c + the dot product of the four signed bytes of a and b.
JING_HD int dp4a(int a, int b, int c) {
#ifdef __CUDA_ARCH__
  return __dp4a(a, b, c);
#else
  for (int i = 0; i < 4; ++i) c += static_cast<int8_t>(a >> (8 * i)) * static_cast<int8_t>(b >> (8 * i));
  return c;
#endif
}

JING_HD int sum_bytes(int a) { return dp4a(a, 0x01010101, 0); }

// Per-byte a - b, modulo 256.
JING_HD uint32_t vsub4(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
  return __vsub4(a, b);
#else
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r |= ((((a >> (8 * i)) & 0xFF) - ((b >> (8 * i)) & 0xFF)) & 0xFF) << (8 * i);
  return r;
#endif
}

// Bytes of the pair (x: bytes 0-3, y: bytes 4-7) picked by the selector's four nibbles (0-7).
JING_HD uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
#ifdef __CUDA_ARCH__
  return __byte_perm(x, y, s);
#else
  const uint64_t in = x | (static_cast<uint64_t>(y) << 32);
  uint32_t r = 0;
  for (int n = 0; n < 4; ++n) r |= static_cast<uint32_t>((in >> (8 * ((s >> (4 * n)) & 7))) & 0xFF) << (8 * n);
  return r;
#endif
}

// Four bits -> four bytes, 0xFF where the bit is set.
JING_HD uint32_t bit_masks4(uint32_t bits) { return ((bits & 0xF) * 0x00204081u & 0x01010101u) * 0xFFu; }

// Eight unsigned bytes (two words) of grid values with the sign byte applied: -v where a bit is set.
JING_HD void apply_signs(uint32_t& lo, uint32_t& hi, uint32_t signs) {
  const uint32_t ml = bit_masks4(signs), mh = bit_masks4(signs >> 4);
  lo = vsub4(lo ^ ml, ml);
  hi = vsub4(hi ^ mh, mh);
}

// A 16-entry signed-byte table (as four words) looked up by the low nibbles of four bytes.
JING_HD uint32_t lut16(uint32_t idx, const uint32_t t[4]) {
  const uint32_t x = idx & 0x07070707u;
  uint32_t sel = x | (x >> 4);
  sel = (sel & 0xFFu) | ((sel >> 8) & 0xFF00u);
  const uint32_t lo = byte_perm(t[0], t[1], sel), hi = byte_perm(t[2], t[3], sel);
  const uint32_t m = ((idx >> 3) & 0x01010101u) * 0xFFu;
  return (hi & m) | (lo & ~m);
}

// A 16-byte table into four words.
JING_HD void load_lut(const int8_t* table, uint32_t t[4]) {
#ifdef __CUDA_ARCH__
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(table));  // device copies are 16-byte aligned
  t[0] = v.x, t[1] = v.y, t[2] = v.z, t[3] = v.w;
#else
  std::memcpy(t, table, 16);
#endif
}

// One 32-weight group of the activations, rounded through an 8-bit format (Q8_0, Q8_1 or Q8_K):
// value = d * q. s is the Q8_1 block's f16 sum d * sum(q) (formats with a minimum use it as
// ggml does); sum0/sum1 the integer sums of q over each half.
struct Q8Item {
  int q[8];
  float d, s;
  int sum0, sum1;
};

// sum of dp4a(v[i], q[i]) for i in [from, to)
// (two partial sums: shorter dependency chains)
template <int From, int To>
JING_HD int idot(const int* v, const int* q) {
  int s0 = 0, s1 = 0;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (int i = From; i < To; i += 2) {
    s0 = dp4a(v[i], q[i], s0);
    if (i + 1 < To) s1 = dp4a(v[i + 1], q[i + 1], s1);
  }
  return s0 + s1;
}

enum class Act { F32, Q8_0, Q8_1, Q8_K };

// 32-weight groups per item of the decode path: 1, or a format's kGroups (then it has dot2()).
template <class F, class = void>
struct item_groups {
  static constexpr int value = 1;
};
template <class F>
struct item_groups<F, std::void_t<decltype(F::kGroups)>> {
  static constexpr int value = F::kGroups;
};

// The 32-weight group (within its block) that group g of decode item `item` covers.
template <class F>
JING_HD int item_group(int item, int g) {
  if constexpr (item_groups<F>::value == 1) return item;
  else return F::group_of(item, g);
}

// Alignment of a field at byte `offset` of a block whose start is a multiple of A.
JING_HD_CONSTEXPR int field_align(int A, int offset) { return offset == 0 ? A : (offset & -offset) < A ? (offset & -offset) : A; }

JING_HD_CONSTEXPR int gcd16(int bytes) { return (bytes & 15) == 0 ? 16 : (bytes & 7) == 0 ? 8 : (bytes & 3) == 0 ? 4 : (bytes & 1) == 0 ? 2 : 1; }

}  // namespace jing::cuda::fmt
