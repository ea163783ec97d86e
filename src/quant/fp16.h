// Half-precision conversions, exact (IEEE binary16 and bfloat16), as ggml stores them.
#pragma once
#include <cstdint>
#include <cstring>

namespace jing {

inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t bits_from_f32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// binary16 -> binary32: every half value (subnormals, inf, NaN) maps exactly.
inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  if (exp == 0x1F) return f32_from_bits(sign | 0x7F800000u | (man << 13));
  if (exp == 0) {
    if (man == 0) return f32_from_bits(sign);
    // subnormal: value = man * 2^-24
    float v = static_cast<float>(man) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

// binary32 -> binary16 with round-to-nearest-even (what F16C and ggml produce).
inline uint16_t fp32_to_fp16(float f) {
  uint32_t x = bits_from_f32(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  uint32_t abs = x & 0x7FFFFFFF;
  if (abs > 0x7F800000) return static_cast<uint16_t>(sign | 0x7E00);  // NaN
  if (abs >= 0x477FF000) return static_cast<uint16_t>(sign | 0x7C00);  // overflow to inf
  if (abs < 0x38800000) {  // subnormal or zero in half
    // add 0.5 (as float) to shift the mantissa into place, rounding to nearest even
    float v = f32_from_bits(abs) + 0.5f;
    return static_cast<uint16_t>(sign | (bits_from_f32(v) - 0x3F000000));
  }
  uint32_t odd = (abs >> 13) & 1;
  abs += 0xC8000FFF + odd;  // rebias exponent (-112 << 23) and round
  return static_cast<uint16_t>(sign | (abs >> 13));
}

inline float bf16_to_fp32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

// binary32 -> bfloat16, round to nearest even; NaN stays NaN (ggml's rule).
inline uint16_t fp32_to_bf16(float f) {
  uint32_t u = bits_from_f32(f);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((u >> 16) | 64);
  return static_cast<uint16_t>((u + (0x7FFF + ((u >> 16) & 1))) >> 16);
}

}  // namespace jing
