// Block decoders of the 32-value formats (Q8_0, Q4_0, Q5_0, IQ4_NL, MXFP4, Q4_1, Q5_1) into the
// form the matrix kernels multiply: 32 unsigned bytes v + offset per block (or v with a minimum
// m for the _1 formats), and the block scale d.
//
// Included by kernel files compiled for different instruction sets, so everything here has
// internal linkage: each file gets its own copy, built with its own flags.
#pragma once
#include <cstdint>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/iq_tables.h"

namespace jing::cpu {
namespace {

using namespace blocks;

constexpr int QK = 32;

// Per format: whether it has a minimum, else the offset that makes its values unsigned, and a
// decoder of one block into 32 unsigned values (in k order), d and m.
template <class B>
struct Format;

template <>
struct Format<q8_0> {
  static constexpr int kOffset = 128;
  static constexpr bool kMin = false;
  static void decode(const q8_0& b, uint8_t* q, float& d, float&) {
    for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(b.qs[j] + 128);
    d = fp16_to_fp32(b.d);
  }
};

template <>
struct Format<q4_0> {
  static constexpr int kOffset = 8;
  static constexpr bool kMin = false;
  static void decode(const q4_0& b, uint8_t* q, float& d, float&) {
    for (int j = 0; j < 16; ++j) q[j] = b.qs[j] & 0xF, q[j + 16] = b.qs[j] >> 4;
    d = fp16_to_fp32(b.d);
  }
};

template <class B>
void decode_q5(const B& b, uint8_t* q) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<uint8_t>((b.qs[j] & 0xF) | (((qh >> j) << 4) & 0x10));
    q[j + 16] = static_cast<uint8_t>((b.qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
  }
}

template <>
struct Format<q5_0> {
  static constexpr int kOffset = 16;
  static constexpr bool kMin = false;
  static void decode(const q5_0& b, uint8_t* q, float& d, float&) {
    decode_q5(b, q);
    d = fp16_to_fp32(b.d);
  }
};

template <>
struct Format<iq4_nl> {
  static constexpr int kOffset = 128;
  static constexpr bool kMin = false;
  static void decode(const iq4_nl& b, uint8_t* q, float& d, float&) {
    for (int j = 0; j < 16; ++j) {
      q[j] = static_cast<uint8_t>(iq::kvalues_iq4nl[b.qs[j] & 0xF] + 128);
      q[j + 16] = static_cast<uint8_t>(iq::kvalues_iq4nl[b.qs[j] >> 4] + 128);
    }
    d = fp16_to_fp32(b.d);
  }
};

template <>
struct Format<mxfp4> {
  static constexpr int kOffset = 16;
  static constexpr bool kMin = false;
  static void decode(const mxfp4& b, uint8_t* q, float& d, float&) {
    for (int j = 0; j < 16; ++j) {
      q[j] = static_cast<uint8_t>(iq::kvalues_fp4[b.qs[j] & 0xF] + 16);
      q[j + 16] = static_cast<uint8_t>(iq::kvalues_fp4[b.qs[j] >> 4] + 16);
    }
    // ggml's E8M0 scale, halved (the table holds doubled values).
    const uint32_t bits = b.e < 2 ? (0x00200000u << b.e) : (static_cast<uint32_t>(b.e - 1) << 23);
    std::memcpy(&d, &bits, 4);
  }
};

template <>
struct Format<q4_1> {
  static constexpr bool kMin = true;
  static void decode(const q4_1& b, uint8_t* q, float& d, float& m) {
    for (int j = 0; j < 16; ++j) q[j] = b.qs[j] & 0xF, q[j + 16] = b.qs[j] >> 4;
    d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
  }
};

template <>
struct Format<q5_1> {
  static constexpr bool kMin = true;
  static void decode(const q5_1& b, uint8_t* q, float& d, float& m) {
    decode_q5(b, q);
    d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
  }
};

}  // namespace
}  // namespace jing::cpu
