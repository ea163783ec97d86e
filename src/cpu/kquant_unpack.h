// Scalar decoders of the 256-value block formats into the form the matrix kernels multiply:
// d * sc[g] * q - dmin * mn[g] with q unsigned bytes and g a group of 16 or 32 values.
//
// K-quants fit directly (Q6_K and Q3_K write their signed offset as a minimum:
// d * sc * (q - 32) = d * sc * q - d * (32 * sc)); the i-quants and ternary formats do with a
// constant offset o (d * sc * v = d * sc * (v + o) - d * (o * sc)) and d divided by the factor
// that makes their values integers.
//
// Included by kernel files compiled for different instruction sets, so everything here has
// internal linkage: each file gets its own copy, built with its own flags.
#pragma once
#include <immintrin.h>

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

// One 256-value block of one row, unpacked: q[k] unsigned, group scales and minimums.
struct Unpacked {
  alignas(64) uint8_t q[QK_K];
  int32_t sc[16];
  int16_t mn[16];
  float d, dmin;
};

// Per type: the group count of a block (8 or 16) and the block decoder.
template <class B>
struct KQuant;

// The eight 6-bit scales and minimums of a Q4_K / Q5_K block.
inline void k4_scales(const uint8_t* packed, Unpacked& u) {
  for (int g = 0; g < 8; ++g) {
    uint8_t sc, m;
    k4_scale_min(g, packed, sc, m);
    u.sc[g] = sc, u.mn[g] = m;
  }
}

template <>
struct KQuant<q4_K> {
  static constexpr int kGroups = 8;
  static void unpack(const q4_K& b, Unpacked& u) {
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) {
        u.q[64 * j + l] = b.qs[32 * j + l] & 0xF;
        u.q[64 * j + 32 + l] = b.qs[32 * j + l] >> 4;
      }
    k4_scales(b.scales, u);
    u.d = fp16_to_fp32(b.d), u.dmin = fp16_to_fp32(b.dmin);
  }
};

template <>
struct KQuant<q5_K> {
  static constexpr int kGroups = 8;
  static void unpack(const q5_K& b, Unpacked& u) {
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) {
        const uint8_t h = b.qh[l] >> (2 * j);
        u.q[64 * j + l] = (b.qs[32 * j + l] & 0xF) | ((h & 1) << 4);
        u.q[64 * j + 32 + l] = (b.qs[32 * j + l] >> 4) | ((h & 2) << 3);
      }
    k4_scales(b.scales, u);
    u.d = fp16_to_fp32(b.d), u.dmin = fp16_to_fp32(b.dmin);
  }
};

template <>
struct KQuant<q6_K> {
  static constexpr int kGroups = 16;
  static void unpack(const q6_K& b, Unpacked& u) {
    for (int half = 0; half < 2; ++half) {
      const uint8_t *ql = b.ql + 64 * half, *qh = b.qh + 32 * half;
      uint8_t* q = u.q + 128 * half;
      for (int l = 0; l < 32; ++l) {
        q[l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
        q[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
        q[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
        q[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
      }
    }
    for (int g = 0; g < 16; ++g) u.sc[g] = b.scales[g], u.mn[g] = static_cast<int16_t>(32 * b.scales[g]);
    u.d = u.dmin = fp16_to_fp32(b.d);
  }
};

template <>
struct KQuant<q3_K> {
  static constexpr int kGroups = 16;
  static void unpack(const q3_K& b, Unpacked& u) {
    // Stored: 2 low bits in qs, the third bit in hmask; value (q - 4) with q = low | (bit << 2).
    for (int half = 0; half < 2; ++half)
      for (int s = 0; s < 4; ++s)
        for (int l = 0; l < 32; ++l)
          u.q[128 * half + 32 * s + l] =
              ((b.qs[32 * half + l] >> (2 * s)) & 3) | (((b.hmask[l] >> (4 * half + s)) & 1) << 2);
    int8_t sc[16];
    q3k_scales(b.scales, sc);
    for (int g = 0; g < 16; ++g) u.sc[g] = sc[g] - 32, u.mn[g] = static_cast<int16_t>(4 * (sc[g] - 32));
    u.d = u.dmin = fp16_to_fp32(b.d);
  }
};

template <>
struct KQuant<q2_K> {
  static constexpr int kGroups = 16;
  static void unpack(const q2_K& b, Unpacked& u) {
    for (int half = 0; half < 2; ++half)
      for (int s = 0; s < 4; ++s)
        for (int l = 0; l < 32; ++l) u.q[128 * half + 32 * s + l] = (b.qs[32 * half + l] >> (2 * s)) & 3;
    for (int g = 0; g < 16; ++g) u.sc[g] = b.scales[g] & 0xF, u.mn[g] = b.scales[g] >> 4;
    u.d = fp16_to_fp32(b.d), u.dmin = fp16_to_fp32(b.dmin);
  }
};

// Eight grid bytes with their sign bits applied and an offset added, in one 64-bit word: no
// byte leaves 0..255 on the way (offset >= every grid value), so no carry crosses a byte.
inline uint64_t signed_offset8(uint64_t grid, uint8_t signs, uint8_t offset) {
  const uint64_t neg = _pdep_u64(signs, 0x0101010101010101ull) * 0xFF;
  return offset * 0x0101010101010101ull + (grid & ~neg) - (grid & neg);
}
inline void put8(uint8_t* q, uint64_t v) { std::memcpy(q, &v, 8); }

// IQ1 grids (bytes -1, 0, 1) as 8 * (g + 1): 0, 8, 16; built once from the transcribed table.
const uint64_t* iq1_grid_x8() {
  static const auto table = [] {
    std::vector<uint64_t> t(2048);
    for (int i = 0; i < 2048; ++i) {
      const auto* g = reinterpret_cast<const int8_t*>(iq::iq1s_grid + i);
      uint8_t b[8];
      for (int j = 0; j < 8; ++j) b[j] = static_cast<uint8_t>(8 * (g[j] + 1));
      std::memcpy(&t[static_cast<size_t>(i)], b, 8);
    }
    return t;
  }();
  return table.data();
}

// The i-quants and ternary formats fit the same mould with a constant offset o written as a
// minimum (d * sc * v = d * sc * (v + o) - d * (o * sc)) and d divided by the factor that makes
// their values integers.
template <>
struct KQuant<iq4_xs> {
  static constexpr int kGroups = 8;
  static void unpack(const iq4_xs& b, Unpacked& u) {
    for (int g = 0; g < 8; ++g) {
      const uint8_t* qs = b.qs + 16 * g;
      for (int j = 0; j < 16; ++j) {
        u.q[32 * g + j] = static_cast<uint8_t>(iq::kvalues_iq4nl[qs[j] & 0xF] + 128);
        u.q[32 * g + j + 16] = static_cast<uint8_t>(iq::kvalues_iq4nl[qs[j] >> 4] + 128);
      }
      const int ls = ((b.scales_l[g / 2] >> 4 * (g % 2)) & 0xF) | (((b.scales_h >> 2 * g) & 3) << 4);
      u.sc[g] = ls - 32, u.mn[g] = static_cast<int16_t>(128 * (ls - 32));
    }
    u.d = u.dmin = fp16_to_fp32(b.d);
  }
};

template <>
struct KQuant<iq1_s> {
  static constexpr int kGroups = 8;
  // Values 8 * (grid +- 1/8) = 8 * grid +- 1 in [-9, 9], offset 9; d / 8 (exact).
  static void unpack(const iq1_s& b, Unpacked& u) {
    for (int g = 0; g < 8; ++g) {
      // 8 * grid + delta + 9 = 8 * (grid + 1) + (delta + 1), delta + 1 in {0, 2}.
      const uint64_t delta = b.qh[g] & 0x8000 ? 0 : 0x0202020202020202ull;
      const uint64_t* grid8 = iq1_grid_x8();
      for (int l = 0; l < 4; ++l) put8(u.q + 32 * g + 8 * l, grid8[b.qs[4 * g + l] | (((b.qh[g] >> 3 * l) & 7) << 8)] + delta);
      const int sc = 2 * ((b.qh[g] >> 12) & 7) + 1;
      u.sc[g] = sc, u.mn[g] = static_cast<int16_t>(9 * sc);
    }
    u.d = u.dmin = fp16_to_fp32(b.d) * 0.125f;
  }
};

template <>
struct KQuant<tq2_0> {
  static constexpr int kGroups = 8;
  static void unpack(const tq2_0& b, Unpacked& u) {  // stored q in 0..2, value q - 1
    for (int j = 0; j < 64; j += 32)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m) u.q[4 * j + 32 * l + m] = (b.qs[j + m] >> (2 * l)) & 3;
    for (int g = 0; g < 8; ++g) u.sc[g] = 1, u.mn[g] = 1;
    u.d = u.dmin = fp16_to_fp32(b.d);
  }
};

template <>
struct KQuant<tq1_0> {
  static constexpr int kGroups = 8;
  static void unpack(const tq1_0& b, Unpacked& u) {  // base-3 digits in 0..2, value digit - 1
    static constexpr uint8_t pow3[5] = {1, 3, 9, 27, 81};
    auto trit = [](uint8_t byte, uint8_t p) { return static_cast<uint8_t>((static_cast<uint16_t>(static_cast<uint8_t>(byte * p)) * 3) >> 8); };
    uint8_t* q = u.q;
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 32; ++m) *q++ = trit(b.qs[m], pow3[k]);
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 16; ++m) *q++ = trit(b.qs[32 + m], pow3[k]);
    for (int k = 0; k < 4; ++k)
      for (int m = 0; m < 4; ++m) *q++ = trit(b.qh[m], pow3[k]);
    for (int g = 0; g < 8; ++g) u.sc[g] = 1, u.mn[g] = 1;
    u.d = u.dmin = fp16_to_fp32(b.d);
  }
};

template <>
struct KQuant<iq2_xxs> {  // d/8 * (2 ls + 1) * (+-grid), grid in {8, 25, 43}: offset 43
  static constexpr int kGroups = 8;
  static void unpack(const iq2_xxs& b, Unpacked& u) {
    for (int g = 0; g < 8; ++g) {
      uint32_t aux[2];
      std::memcpy(aux, b.qs + 4 * g, 8);
      const auto* idx = reinterpret_cast<const uint8_t*>(aux);
      for (int l = 0; l < 4; ++l) {
        put8(u.q + 32 * g + 8 * l, signed_offset8(iq::iq2xxs_grid[idx[l]], iq::ksigns_iq2xs[(aux[1] >> 7 * l) & 127], 43));
      }
      const int sc = 2 * static_cast<int>(aux[1] >> 28) + 1;
      u.sc[g] = sc, u.mn[g] = static_cast<int16_t>(43 * sc);
    }
    u.d = u.dmin = fp16_to_fp32(b.d) * 0.125f;
  }
};

template <>
struct KQuant<iq2_xs> {  // as IQ2_XXS with a scale per 16 values
  static constexpr int kGroups = 16;
  static void unpack(const iq2_xs& b, Unpacked& u) {
    for (int g = 0; g < 8; ++g) {
      for (int l = 0; l < 4; ++l) {
        const uint16_t q = b.qs[4 * g + l];
        put8(u.q + 32 * g + 8 * l, signed_offset8(iq::iq2xs_grid[q & 511], iq::ksigns_iq2xs[q >> 9], 43));
      }
      for (int h = 0; h < 2; ++h) {
        const int sc = 2 * ((b.scales[g] >> 4 * h) & 0xF) + 1;
        u.sc[2 * g + h] = sc, u.mn[2 * g + h] = static_cast<int16_t>(43 * sc);
      }
    }
    u.d = u.dmin = fp16_to_fp32(b.d) * 0.125f;
  }
};

template <>
struct KQuant<iq2_s> {
  static constexpr int kGroups = 16;
  static void unpack(const iq2_s& b, Unpacked& u) {
    const uint8_t* signs = b.qs + QK_K / 8;
    for (int g = 0; g < 8; ++g) {
      for (int l = 0; l < 4; ++l) {
        const uint64_t grid = iq::iq2s_grid[b.qs[4 * g + l] | ((b.qh[g] << (8 - 2 * l)) & 0x300)];
        put8(u.q + 32 * g + 8 * l, signed_offset8(grid, signs[4 * g + l], 43));
      }
      for (int h = 0; h < 2; ++h) {
        const int sc = 2 * ((b.scales[g] >> 4 * h) & 0xF) + 1;
        u.sc[2 * g + h] = sc, u.mn[2 * g + h] = static_cast<int16_t>(43 * sc);
      }
    }
    u.d = u.dmin = fp16_to_fp32(b.d) * 0.125f;
  }
};

template <>
struct KQuant<iq3_xxs> {  // d/4 * (2 ls + 1) * (+-grid), grid up to 62: offset 62
  static constexpr int kGroups = 8;
  static void unpack(const iq3_xxs& b, Unpacked& u) {
    const uint8_t* scales_and_signs = b.qs + QK_K / 4;
    for (int g = 0; g < 8; ++g) {
      uint32_t aux;
      std::memcpy(&aux, scales_and_signs + 4 * g, 4);
      const uint8_t* qs = b.qs + 8 * g;
      for (int l = 0; l < 4; ++l) {
        const uint64_t grid = iq::iq3xxs_grid[qs[2 * l]] | static_cast<uint64_t>(iq::iq3xxs_grid[qs[2 * l + 1]]) << 32;
        put8(u.q + 32 * g + 8 * l, signed_offset8(grid, iq::ksigns_iq2xs[(aux >> 7 * l) & 127], 62));
      }
      const int sc = 2 * static_cast<int>(aux >> 28) + 1;
      u.sc[g] = sc, u.mn[g] = static_cast<int16_t>(62 * sc);
    }
    u.d = u.dmin = fp16_to_fp32(b.d) * 0.25f;
  }
};

template <>
struct KQuant<iq3_s> {  // d * (2 s + 1) * (+-grid), grid up to 15: offset 15
  static constexpr int kGroups = 8;
  static void unpack(const iq3_s& b, Unpacked& u) {
    const uint8_t *qs = b.qs, *signs = b.signs;
    for (int g = 0; g < 8; ++g, qs += 8, signs += 4) {
      const uint8_t qh = b.qh[g];
      for (int l = 0; l < 4; ++l) {
        const uint64_t grid = iq::iq3s_grid[qs[2 * l] | ((qh << (8 - 2 * l)) & 256)] |
                              static_cast<uint64_t>(iq::iq3s_grid[qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256)]) << 32;
        put8(u.q + 32 * g + 8 * l, signed_offset8(grid, signs[l], 15));
      }
      const int sc = 2 * ((b.scales[g / 2] >> 4 * (g % 2)) & 0xF) + 1;
      u.sc[g] = sc, u.mn[g] = static_cast<int16_t>(15 * sc);
    }
    u.d = u.dmin = fp16_to_fp32(b.d);
  }
};

template <>
struct KQuant<iq1_m> {  // as IQ1_S with a scale per 16 values and a delta sign per 8; d in the scales
  static constexpr int kGroups = 16;
  static void unpack(const iq1_m& b, Unpacked& u) {
    uint16_t sc[4];
    std::memcpy(sc, b.scales, 8);
    const uint16_t packed = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000);
    const uint8_t *qs = b.qs, *qh = b.qh;
    for (int g = 0; g < 8; ++g, qs += 4, qh += 2) {
      const int idx[4] = {qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700), qs[2] | ((qh[1] << 8) & 0x700),
                          qs[3] | ((qh[1] << 4) & 0x700)};
      const uint8_t flags[4] = {static_cast<uint8_t>(qh[0] & 0x08), static_cast<uint8_t>(qh[0] & 0x80),
                                static_cast<uint8_t>(qh[1] & 0x08), static_cast<uint8_t>(qh[1] & 0x80)};
      const uint64_t* grid8 = iq1_grid_x8();
      for (int l = 0; l < 4; ++l) put8(u.q + 32 * g + 8 * l, grid8[idx[l]] + (flags[l] ? 0 : 0x0202020202020202ull));
      for (int h = 0; h < 2; ++h) {
        const int s = 2 * ((sc[g / 2] >> (6 * (g % 2) + 3 * h)) & 7) + 1;
        u.sc[2 * g + h] = s, u.mn[2 * g + h] = static_cast<int16_t>(9 * s);
      }
    }
    u.d = u.dmin = fp16_to_fp32(packed) * 0.125f;
  }
};

// Calls f.template operator()<B>() with the block struct of a 256-value format; false for others.
template <class F>
bool with_kquant_format(GgmlType type, F&& f) {
  switch (type) {
    case GgmlType::Q4_K: f.template operator()<q4_K>(); return true;
    case GgmlType::Q5_K: f.template operator()<q5_K>(); return true;
    case GgmlType::Q6_K: f.template operator()<q6_K>(); return true;
    case GgmlType::Q3_K: f.template operator()<q3_K>(); return true;
    case GgmlType::Q2_K: f.template operator()<q2_K>(); return true;
    case GgmlType::IQ4_XS: f.template operator()<iq4_xs>(); return true;
    case GgmlType::IQ1_S: f.template operator()<iq1_s>(); return true;
    case GgmlType::IQ1_M: f.template operator()<iq1_m>(); return true;
    case GgmlType::IQ2_XXS: f.template operator()<iq2_xxs>(); return true;
    case GgmlType::IQ2_XS: f.template operator()<iq2_xs>(); return true;
    case GgmlType::IQ2_S: f.template operator()<iq2_s>(); return true;
    case GgmlType::IQ3_XXS: f.template operator()<iq3_xxs>(); return true;
    case GgmlType::IQ3_S: f.template operator()<iq3_s>(); return true;
    case GgmlType::TQ1_0: f.template operator()<tq1_0>(); return true;
    case GgmlType::TQ2_0: f.template operator()<tq2_0>(); return true;
    default: return false;
  }
}

// Each token's activation sums over the weight groups of a format with G groups per block (Q8_K
// keeps them per 16 values; 32-value groups add two): [token][block][group].
template <int G>
std::vector<int16_t> group_sums(const uint8_t* xq, size_t act_row, int64_t n_tokens, int64_t nb) {
  std::vector<int16_t> out(static_cast<size_t>(n_tokens * nb * G));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t b = 0; b < nb; ++b) {
      const auto& xb = reinterpret_cast<const q8_K*>(xq + t * act_row)[b];
      int16_t* gs = out.data() + (t * nb + b) * G;
      for (int g = 0; g < G; ++g)
        gs[g] = G == 16 ? xb.bsums[g] : static_cast<int16_t>(xb.bsums[2 * g] + xb.bsums[2 * g + 1]);
    }
  return out;
}

}  // namespace
}  // namespace jing::cpu
