// Decoders of the 32-weight block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4.
// Each format: dequant() gives 32 floats rounded exactly as src/quant/dequant.cpp; load() + dot()
// decode one 32-weight item to signed bytes once and take its dot product with 8-bit activations
// (the CPU engine's integer dot, up to float summation order).
#pragma once
#include "cuda/format_util.cuh"

namespace jing::cuda::fmt {

// Low and high nibbles of 16 bytes (address a multiple of A): weights 0-15 and 16-31 as eight
// words of bytes.
template <int A>
JING_HD void nibbles16(const uint8_t* qs, int v[8]) {
  uint32_t w[4];
  ld_words<A, 4>(qs, w);
  for (int k = 0; k < 4; ++k) {
    v[k] = static_cast<int>(w[k] & 0x0F0F0F0Fu);
    v[k + 4] = static_cast<int>((w[k] >> 4) & 0x0F0F0F0Fu);
  }
}

// Bits i..i+3 of qh to bit 4 of four bytes (the fifth bit of Q5 weights).
JING_HD uint32_t fifth_bits(uint32_t qh) { return ((qh & 1) << 4) | ((qh & 2) << 11) | ((qh & 4) << 18) | ((qh & 8) << 25); }

struct Q4_0 {
  static constexpr int kBytes = 18, kWeights = 32, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_0;
  static JING_HD void dequant(const uint8_t* b, int, const Tables&, float* o) {
    const float d = half_to_float(ld16<kAlign>(b));
    for (int j = 0; j < 16; ++j) {
      o[j] = fmul(static_cast<float>((b[2 + j] & 0xF) - 8), d);
      o[j + 16] = fmul(static_cast<float>((b[2 + j] >> 4) - 8), d);
    }
  }
  int v[8];
  float d;
  JING_HD void load(const uint8_t* b, int, const Tables&) {
    d = half_to_float(ld16<kAlign>(b));
    nibbles16<field_align(kAlign, 2)>(b + 2, v);
  }
  JING_HD float dot(const Q8Item& a) const { return d * a.d * static_cast<float>(idot<0, 8>(v, a.q) - 8 * (a.sum0 + a.sum1)); }
};

struct Q4_1 {
  static constexpr int kBytes = 20, kWeights = 32, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_1;
  static JING_HD void dequant(const uint8_t* b, int, const Tables&, float* o) {
    const float d = half_to_float(ld16<kAlign>(b)), m = half_to_float(ld16<kAlign>(b + 2));
    for (int j = 0; j < 16; ++j) {
      o[j] = fadd(fmul(static_cast<float>(b[4 + j] & 0xF), d), m);
      o[j + 16] = fadd(fmul(static_cast<float>(b[4 + j] >> 4), d), m);
    }
  }
  int v[8];
  float d, m;
  JING_HD void load(const uint8_t* b, int, const Tables&) {
    d = half_to_float(ld16<kAlign>(b)), m = half_to_float(ld16<kAlign>(b + 2));
    nibbles16<field_align(kAlign, 4)>(b + 4, v);
  }
  JING_HD float dot(const Q8Item& a) const { return d * a.d * static_cast<float>(idot<0, 8>(v, a.q)) + m * a.s; }
};

// Q5_0 (no minimum, weights - 16) and Q5_1 (with minimum): d [m] qh[4] qs[16].
template <bool kHasMin>
struct Q5 {
  static constexpr int kBytes = kHasMin ? 24 : 22, kWeights = 32, kAlign = gcd16(kBytes);
  static constexpr int kQh = kHasMin ? 4 : 2, kQs = kQh + 4;
  static constexpr Act kAct = kHasMin ? Act::Q8_1 : Act::Q8_0;
  static JING_HD void dequant(const uint8_t* b, int, const Tables&, float* o) {
    const float d = half_to_float(ld16<kAlign>(b));
    const uint32_t qh = ld32<kAlign>(b + kQh);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b[kQs + j] & 0xF) | (((qh >> j) << 4) & 0x10);
      const int hi = (b[kQs + j] >> 4) | ((qh >> (j + 12)) & 0x10);
      if constexpr (kHasMin) {
        const float m = half_to_float(ld16<kAlign>(b + 2));
        o[j] = fadd(fmul(static_cast<float>(lo), d), m);
        o[j + 16] = fadd(fmul(static_cast<float>(hi), d), m);
      } else {
        o[j] = fmul(static_cast<float>(lo - 16), d);
        o[j + 16] = fmul(static_cast<float>(hi - 16), d);
      }
    }
  }
  int v[8];
  float d, m;
  JING_HD void load(const uint8_t* b, int, const Tables&) {
    d = half_to_float(ld16<kAlign>(b));
    m = kHasMin ? half_to_float(ld16<kAlign>(b + 2)) : 0.f;
    const uint32_t qh = ld32<kAlign>(b + kQh);
    nibbles16<field_align(kAlign, kQs)>(b + kQs, v);
    for (int k = 0; k < 4; ++k) {
      v[k] |= static_cast<int>(fifth_bits(qh >> (4 * k)));
      v[k + 4] |= static_cast<int>(fifth_bits(qh >> (16 + 4 * k)));
    }
  }
  JING_HD float dot(const Q8Item& a) const {
    if constexpr (kHasMin) return d * a.d * static_cast<float>(idot<0, 8>(v, a.q)) + m * a.s;
    else return d * a.d * static_cast<float>(idot<0, 8>(v, a.q) - 16 * (a.sum0 + a.sum1));
  }
};
using Q5_0 = Q5<false>;
using Q5_1 = Q5<true>;

struct Q8_0 {
  static constexpr int kBytes = 34, kWeights = 32, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_0;
  static JING_HD void dequant(const uint8_t* b, int, const Tables&, float* o) {
    const float d = half_to_float(ld16<kAlign>(b));
    for (int j = 0; j < 32; ++j) o[j] = fmul(static_cast<float>(static_cast<int8_t>(b[2 + j])), d);
  }
  int v[8];
  float d;
  JING_HD void load(const uint8_t* b, int, const Tables&) {
    d = half_to_float(ld16<kAlign>(b));
    ld_words<field_align(kAlign, 2), 8>(b + 2, reinterpret_cast<uint32_t*>(v));
  }
  JING_HD float dot(const Q8Item& a) const { return d * a.d * static_cast<float>(idot<0, 8>(v, a.q)); }
};

// IQ4_NL: d, then 32 nibbles indexing a non-linear 16-value table.
struct IQ4_NL {
  static constexpr int kBytes = 18, kWeights = 32, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_0;
  static JING_HD void dequant(const uint8_t* b, int, const Tables& t, float* o) {
    const float d = half_to_float(ld16<kAlign>(b));
    for (int j = 0; j < 16; ++j) {
      o[j] = fmul(d, static_cast<float>(ro(t.iq4nl + (b[2 + j] & 0xF))));
      o[j + 16] = fmul(d, static_cast<float>(ro(t.iq4nl + (b[2 + j] >> 4))));
    }
  }
  int v[8];
  float d;
  JING_HD void load(const uint8_t* b, int, const Tables& t) {
    d = half_to_float(ld16<kAlign>(b));
    uint32_t lut[4];
    load_lut(t.iq4nl, lut);
    nibbles16<field_align(kAlign, 2)>(b + 2, v);
    for (int k = 0; k < 8; ++k) v[k] = static_cast<int>(lut16(static_cast<uint32_t>(v[k]), lut));
  }
  JING_HD float dot(const Q8Item& a) const { return d * a.d * static_cast<float>(idot<0, 8>(v, a.q)); }
};

// MXFP4: a power-of-two scale byte (E8M0), then 32 FP4 (E2M1) nibbles; table values are doubled,
// so the scale is taken as half.
struct MXFP4 {
  static constexpr int kBytes = 17, kWeights = 32, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_0;
  static JING_HD float scale(uint8_t e) {
    const uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e - 1) << 23);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  static JING_HD void dequant(const uint8_t* b, int, const Tables& t, float* o) {
    const float d = scale(b[0]);
    for (int j = 0; j < 16; ++j) {
      o[j] = fmul(static_cast<float>(ro(t.fp4 + (b[1 + j] & 0xF))), d);
      o[j + 16] = fmul(static_cast<float>(ro(t.fp4 + (b[1 + j] >> 4))), d);
    }
  }
  int v[8];
  float d;
  JING_HD void load(const uint8_t* b, int, const Tables& t) {
    d = scale(b[0]);
    uint32_t lut[4];
    load_lut(t.fp4, lut);
    nibbles16<field_align(kAlign, 1)>(b + 1, v);
    for (int k = 0; k < 8; ++k) v[k] = static_cast<int>(lut16(static_cast<uint32_t>(v[k]), lut));
  }
  JING_HD float dot(const Q8Item& a) const { return d * a.d * static_cast<float>(idot<0, 8>(v, a.q)); }
};

}  // namespace jing::cuda::fmt
