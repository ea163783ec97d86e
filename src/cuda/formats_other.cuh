// Decoders of the ternary formats (TQ1_0: five trits per byte in base 3; TQ2_0: 2 bits per
// weight), and of float weights (F32, F16, BF16), whose products take float activations.
// Layouts and rounding as src/quant/dequant.cpp.
#pragma once
#include "cuda/format_util.cuh"

namespace jing::cuda::fmt {

// Trit n of each byte as 0..2 (the weight + 1): (byte * 3^n mod 256) * 3 >> 8.
JING_HD uint32_t trits4(uint32_t bytes, uint32_t pow3) {
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) {
    const uint32_t q = (((bytes >> (8 * i)) & 0xFF) * pow3) & 0xFF;
    r |= ((q * 3) >> 8) << (8 * i);
  }
  return r;
}

JING_HD uint32_t pow3(int n) { return n == 0 ? 1 : n == 1 ? 3 : n == 2 ? 9 : n == 3 ? 27 : 81; }

// tq1_0: qs[48] qh[4] d. Weights 0-159: trit k of qs[m] (k = w / 32, m = w % 32); 160-239:
// trit k of qs[32 + m] (16 per trit); 240-255: trit k of qh[m] (4 per trit).
struct TQ1_0 {
  static constexpr int kBytes = 54, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  // Four trits (weights 4i..4i+3 of the item) as bytes 0..2.
  static JING_HD uint32_t word(const uint8_t* b, int k, int i) {
    if (k < 5) return trits4(ld32<kAlign>(b + 4 * i), pow3(k));
    const int kk = 2 * (k - 5) + i / 4;  // which 16-weight run past weight 160
    if (kk < 5) return trits4(ld32<kAlign>(b + 32 + 4 * (i % 4)), pow3(kk));
    return trits4(ld32<kAlign>(b + 48), pow3(i % 4));  // weights 240 + 4 * (i % 4)
  }
  static JING_HD void dequant(const uint8_t* b, int k, const Tables&, float* o) {
    const float d = half_to_float(ld16<kAlign>(b + 52));
    for (int i = 0; i < 8; ++i) {
      const uint32_t w = word(b, k, i);
      for (int j = 0; j < 4; ++j) o[4 * i + j] = fmul(static_cast<float>(static_cast<int>((w >> (8 * j)) & 0xFF) - 1), d);
    }
  }
  int v[8];
  float d;
  JING_HD void load(const uint8_t* b, int k, const Tables&) {
    d = half_to_float(ld16<kAlign>(b + 52));
    for (int i = 0; i < 8; ++i) v[i] = static_cast<int>(word(b, k, i));
  }
  JING_HD float dot(const Q8Item& a) const { return d * a.d * static_cast<float>(idot<0, 8>(v, a.q) - a.sum0 - a.sum1); }
};

// tq2_0: qs[64] d. Item k: 2-bit field k%4 of qs[32 * (k/4) + m], minus 1.
struct TQ2_0 {
  static constexpr int kBytes = 66, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD void dequant(const uint8_t* b, int k, const Tables&, float* o) {
    const float d = half_to_float(ld16<kAlign>(b + 64));
    const uint8_t* q = b + 32 * (k / 4);
    for (int m = 0; m < 32; ++m) o[m] = fmul(static_cast<float>(((q[m] >> (2 * (k % 4))) & 3) - 1), d);
  }
  int v[8];
  float d;
  JING_HD void load(const uint8_t* b, int k, const Tables&) {
    d = half_to_float(ld16<kAlign>(b + 64));
    uint32_t q[8];
    ld_words<kAlign, 8>(b + 32 * (k / 4), q);
    for (int i = 0; i < 8; ++i) v[i] = static_cast<int>((q[i] >> (2 * (k % 4))) & 0x03030303u);
  }
  JING_HD float dot(const Q8Item& a) const { return d * a.d * static_cast<float>(idot<0, 8>(v, a.q) - a.sum0 - a.sum1); }
};

// Float weights: a "block" of 32 values, so they share the dequantizer with the block formats.
JING_HD float bf16_value(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

struct F32 {
  static constexpr int kBytes = 128, kWeights = 32, kAlign = 16;
  static constexpr Act kAct = Act::F32;
  static JING_HD float value(const uint8_t* b, int j) {
    float f;
    std::memcpy(&f, b + 4 * j, 4);
    return f;
  }
  static JING_HD void dequant(const uint8_t* b, int, const Tables&, float* o) {
    for (int j = 0; j < 32; ++j) o[j] = value(b, j);
  }
};

struct F16 {
  static constexpr int kBytes = 64, kWeights = 32, kAlign = 16;
  static constexpr Act kAct = Act::F32;
  static JING_HD float value(const uint8_t* b, int j) { return half_to_float(ld16<2>(b + 2 * j)); }
  static JING_HD void dequant(const uint8_t* b, int, const Tables&, float* o) {
    for (int j = 0; j < 32; ++j) o[j] = value(b, j);
  }
};

struct BF16 {
  static constexpr int kBytes = 64, kWeights = 32, kAlign = 16;
  static constexpr Act kAct = Act::F32;
  static JING_HD float value(const uint8_t* b, int j) { return bf16_value(ld16<2>(b + 2 * j)); }
  static JING_HD void dequant(const uint8_t* b, int, const Tables&, float* o) {
    for (int j = 0; j < 32; ++j) o[j] = value(b, j);
  }
};

}  // namespace jing::cuda::fmt
