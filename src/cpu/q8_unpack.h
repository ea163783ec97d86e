// Block decoders of the 32-value formats (Q8_0, Q4_0, Q5_0, IQ4_NL, MXFP4, Q4_1, Q5_1) into the
// form the matrix kernels multiply: 32 unsigned bytes v + offset per block (or v with a minimum
// m for the _1 formats), and the block scale d.
//
// Included by kernel files compiled for different instruction sets, so everything here has
// internal linkage: each file gets its own copy, built with its own flags.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/iq_tables.h"
#include "quant/types.h"

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

// Calls f.template operator()<B>() with the block struct of a 32-value format; false for others.
template <class F>
bool with_q8_format(GgmlType type, F&& f) {
  switch (type) {
    case GgmlType::Q8_0: f.template operator()<q8_0>(); return true;
    case GgmlType::Q4_0: f.template operator()<q4_0>(); return true;
    case GgmlType::Q5_0: f.template operator()<q5_0>(); return true;
    case GgmlType::IQ4_NL: f.template operator()<iq4_nl>(); return true;
    case GgmlType::MXFP4: f.template operator()<mxfp4>(); return true;
    case GgmlType::Q4_1: f.template operator()<q4_1>(); return true;
    case GgmlType::Q5_1: f.template operator()<q5_1>(); return true;
    default: return false;
  }
}

// One token's activation blocks (Q8_0, or Q8_1 for the formats with a minimum) and, per block, its
// scale d, its stored sum s (Q8_1) and offset * sum(q) (what an unsigned panel adds back out).
struct TokenBlocks {
  const uint8_t* blocks;
  size_t block_bytes, qs_offset;
  const float *d, *s;
  const int32_t* offset_sum;
};

// The per-block numbers above for all tokens, computed once per matrix product.
class BlockActivations {
 public:
  BlockActivations(const uint8_t* xq, size_t act_row, int64_t n_tokens, int64_t nblk, bool has_min, int offset)
      : xq_(xq), act_row_(act_row), nblk_(nblk), block_bytes_(has_min ? sizeof(q8_1) : sizeof(q8_0)),
        qs_offset_(has_min ? offsetof(q8_1, qs) : offsetof(q8_0, qs)), d_(static_cast<size_t>(n_tokens * nblk)) {
    if (has_min) s_.resize(d_.size());
    if (!has_min && offset) offset_sum_.resize(d_.size());
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t b = 0; b < nblk; ++b) {
        const uint8_t* blk = xq + t * act_row + b * block_bytes_;
        uint16_t h[2];
        std::memcpy(h, blk, 4);
        const size_t i = static_cast<size_t>(t * nblk + b);
        d_[i] = fp16_to_fp32(h[0]);
        if (has_min) s_[i] = fp16_to_fp32(h[1]);
        if (!offset_sum_.empty()) {
          int32_t sum = 0;
          for (int j = 0; j < QK; ++j) sum += static_cast<int8_t>(blk[qs_offset_ + j]);
          offset_sum_[i] = offset * sum;
        }
      }
  }
  TokenBlocks token(int64_t t) const {
    const size_t at = static_cast<size_t>(t * nblk_);
    return {xq_ + t * act_row_, block_bytes_, qs_offset_, d_.data() + at, s_.empty() ? nullptr : s_.data() + at,
            offset_sum_.empty() ? nullptr : offset_sum_.data() + at};
  }

 private:
  const uint8_t* xq_;
  size_t act_row_;
  int64_t nblk_;
  size_t block_bytes_, qs_offset_;
  std::vector<float> d_, s_;
  std::vector<int32_t> offset_sum_;
};

}  // namespace
}  // namespace jing::cpu
