// Block layouts of the ggml quant formats, byte for byte as GGUF files store them
// (ggml-common.h). Every block is a plain struct of bytes: no padding, little-endian fields.
#pragma once
#include <cstdint>

namespace jing::blocks {

constexpr int QK_K = 256;  // elements in a k-quant / i-quant super-block

struct q4_0 { uint16_t d; uint8_t qs[16]; };
struct q4_1 { uint16_t d, m; uint8_t qs[16]; };
struct q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
struct q5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };
struct q8_0 { uint16_t d; int8_t qs[32]; };
struct q8_1 { uint16_t d, s; int8_t qs[32]; };  // s = d * sum(qs)
struct mxfp4 { uint8_t e; uint8_t qs[16]; };
struct nvfp4 { uint8_t d[4]; uint8_t qs[32]; };
struct q1_0 { uint16_t d; uint8_t qs[16]; };
struct q2_0 { uint16_t d; uint8_t qs[16]; };

struct q2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; };
struct q3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct q4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; };
struct q5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
struct q8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

struct iq2_xxs { uint16_t d; uint16_t qs[QK_K / 8]; };
struct iq2_xs { uint16_t d; uint16_t qs[QK_K / 8]; uint8_t scales[QK_K / 32]; };
struct iq2_s { uint16_t d; uint8_t qs[QK_K / 4]; uint8_t qh[QK_K / 32]; uint8_t scales[QK_K / 32]; };
struct iq3_xxs { uint16_t d; uint8_t qs[3 * QK_K / 8]; };
struct iq3_s { uint16_t d; uint8_t qs[QK_K / 4]; uint8_t qh[QK_K / 32]; uint8_t signs[QK_K / 8]; uint8_t scales[QK_K / 64]; };
struct iq1_s { uint16_t d; uint8_t qs[QK_K / 8]; uint16_t qh[QK_K / 32]; };
struct iq1_m { uint8_t qs[QK_K / 8]; uint8_t qh[QK_K / 16]; uint8_t scales[QK_K / 32]; };
struct iq4_nl { uint16_t d; uint8_t qs[16]; };
struct iq4_xs { uint16_t d; uint16_t scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; };
struct tq1_0 { uint8_t qs[(QK_K - 4 * QK_K / 64) / 5]; uint8_t qh[QK_K / 64]; uint16_t d; };
struct tq2_0 { uint8_t qs[QK_K / 4]; uint16_t d; };

static_assert(sizeof(q4_0) == 18 && sizeof(q4_1) == 20 && sizeof(q5_0) == 22 && sizeof(q5_1) == 24);
static_assert(sizeof(q8_0) == 34 && sizeof(q8_1) == 36 && sizeof(mxfp4) == 17 && sizeof(nvfp4) == 36);
static_assert(sizeof(q2_K) == 84 && sizeof(q3_K) == 110 && sizeof(q4_K) == 144 && sizeof(q5_K) == 176);
static_assert(sizeof(q6_K) == 210 && sizeof(q8_K) == 292);
static_assert(sizeof(iq2_xxs) == 66 && sizeof(iq2_xs) == 74 && sizeof(iq2_s) == 82 && sizeof(iq3_xxs) == 98);
static_assert(sizeof(iq3_s) == 110 && sizeof(iq1_s) == 50 && sizeof(iq1_m) == 56 && sizeof(iq4_nl) == 18);
static_assert(sizeof(iq4_xs) == 136 && sizeof(tq1_0) == 54 && sizeof(tq2_0) == 66);

// The 6-bit scale and min of sub-block j packed in a q4_K / q5_K scales[12] array.
inline void k4_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// The sixteen 6-bit signed scales of a q3_K block (stored biased by 32).
inline void q3k_scales(const uint8_t* packed, int8_t out[16]) {
  uint32_t aux[4];
  __builtin_memcpy(aux, packed, 12);
  const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  __builtin_memcpy(out, aux, 16);
}

}  // namespace jing::blocks
