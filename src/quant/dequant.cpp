// Scalar decoders of every block format. The arithmetic (order of multiplies and adds) follows
// ggml's to_float exactly so results match bit for bit; the fast kernels live in src/cpu.
#include "quant/dequant.h"

#include <cmath>
#include <cstring>
#include <string>

#include "common/cpu_features.h"
#include "common/error.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/iq_tables.h"

namespace jing {
namespace {

using namespace blocks;
using iq::kmask_iq2xs;
using iq::ksigns_iq2xs;

inline float h(uint16_t v) { return fp16_to_fp32(v); }
inline float sign_of(uint8_t signs, int j) { return (signs & kmask_iq2xs[j]) ? -1.f : 1.f; }

template <typename Block, typename F>
void each_block(const void* src, float* y, int64_t n, int64_t qk, F&& f) {
  const auto* x = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / qk; ++i) f(x[i], y + i * qk);
}

void deq_q4_0(const void* s, float* y, int64_t n) {
  each_block<q4_0>(s, y, n, 32, [](const q4_0& b, float* o) {
    const float d = h(b.d);
    for (int j = 0; j < 16; ++j) {
      o[j] = ((b.qs[j] & 0xF) - 8) * d;
      o[j + 16] = ((b.qs[j] >> 4) - 8) * d;
    }
  });
}

void deq_q4_1(const void* s, float* y, int64_t n) {
  each_block<q4_1>(s, y, n, 32, [](const q4_1& b, float* o) {
    const float d = h(b.d), m = h(b.m);
    for (int j = 0; j < 16; ++j) {
      o[j] = (b.qs[j] & 0xF) * d + m;
      o[j + 16] = (b.qs[j] >> 4) * d + m;
    }
  });
}

template <typename Block, bool kHasMin>
void deq_q5(const void* s, float* y, int64_t n) {
  each_block<Block>(s, y, n, 32, [](const Block& b, float* o) {
    const float d = h(b.d);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b.qs[j] & 0xF) | (((qh >> j) << 4) & 0x10);
      const int hi = (b.qs[j] >> 4) | ((qh >> (j + 12)) & 0x10);
      if constexpr (kHasMin) {
        const float m = h(b.m);
        o[j] = lo * d + m;
        o[j + 16] = hi * d + m;
      } else {
        o[j] = (lo - 16) * d;
        o[j + 16] = (hi - 16) * d;
      }
    }
  });
}

void deq_q8_0(const void* s, float* y, int64_t n) {
  each_block<q8_0>(s, y, n, 32, [](const q8_0& b, float* o) {
    const float d = h(b.d);
    for (int j = 0; j < 32; ++j) o[j] = b.qs[j] * d;
  });
}

float e8m0_half(uint8_t e) { return f32_from_bits(e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e - 1) << 23)); }

float ue4m3(uint8_t x) {
  if (x == 0 || x == 0x7F) return 0.0f;
  int exp = (x >> 3) & 0xF, man = x & 7;
  float raw = exp == 0 ? std::ldexp(static_cast<float>(man), -9) : std::ldexp(1.0f + man / 8.0f, exp - 7);
  return raw * 0.5f;
}

void deq_q8_1(const void* s, float* y, int64_t n) {
  each_block<q8_1>(s, y, n, 32, [](const q8_1& b, float* o) {
    const float d = h(b.d);
    for (int j = 0; j < 32; ++j) o[j] = b.qs[j] * d;
  });
}

void deq_mxfp4(const void* s, float* y, int64_t n) {
  each_block<mxfp4>(s, y, n, 32, [](const mxfp4& b, float* o) {
    const float d = e8m0_half(b.e);
    for (int j = 0; j < 16; ++j) {
      o[j] = iq::kvalues_fp4[b.qs[j] & 0xF] * d;
      o[j + 16] = iq::kvalues_fp4[b.qs[j] >> 4] * d;
    }
  });
}

void deq_nvfp4(const void* s, float* y, int64_t n) {
  each_block<nvfp4>(s, y, n, 64, [](const nvfp4& b, float* o) {
    for (int sb = 0; sb < 4; ++sb) {
      const float d = ue4m3(b.d[sb]);
      for (int j = 0; j < 8; ++j) {
        o[sb * 16 + j] = iq::kvalues_fp4[b.qs[sb * 8 + j] & 0xF] * d;
        o[sb * 16 + j + 8] = iq::kvalues_fp4[b.qs[sb * 8 + j] >> 4] * d;
      }
    }
  });
}

void deq_q1_0(const void* s, float* y, int64_t n) {
  each_block<q1_0>(s, y, n, 128, [](const q1_0& b, float* o) {
    const float d = h(b.d);
    for (int j = 0; j < 128; ++j) o[j] = ((b.qs[j / 8] >> (j % 8)) & 1) ? d : -d;
  });
}

void deq_q2_0(const void* s, float* y, int64_t n) {
  each_block<q2_0>(s, y, n, 64, [](const q2_0& b, float* o) {
    const float d = h(b.d);
    for (int j = 0; j < 64; ++j) o[j] = (((b.qs[j / 4] >> ((j % 4) * 2)) & 3) - 1) * d;
  });
}

void deq_q2_K(const void* s, float* y, int64_t n) {
  each_block<q2_K>(s, y, n, QK_K, [](const q2_K& b, float* o) {
    const float d = h(b.d), dmin = h(b.dmin);
    const uint8_t* q = b.qs;
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32)
      for (int shift = 0; shift < 8; shift += 2)
        for (int part = 0; part < 2; ++part) {
          const uint8_t sc = b.scales[is++];
          const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
          for (int l = 0; l < 16; ++l) *o++ = dl * ((q[l + 16 * part] >> shift) & 3) - ml;
        }
  });
}

void deq_q3_K(const void* s, float* y, int64_t n) {
  each_block<q3_K>(s, y, n, QK_K, [](const q3_K& b, float* o) {
    const float d = h(b.d);
    int8_t scales[16];
    q3k_scales(b.scales, scales);
    const uint8_t* q = b.qs;
    uint8_t m = 1;
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32)
      for (int shift = 0; shift < 8; shift += 2, m <<= 1)
        for (int part = 0; part < 2; ++part) {
          const float dl = d * (scales[is++] - 32);
          for (int l = 16 * part; l < 16 * part + 16; ++l)
            *o++ = dl * (((q[l] >> shift) & 3) - ((b.hmask[l] & m) ? 0 : 4));
        }
  });
}

void deq_q4_K(const void* s, float* y, int64_t n) {
  each_block<q4_K>(s, y, n, QK_K, [](const q4_K& b, float* o) {
    const float d = h(b.d), dmin = h(b.dmin);
    const uint8_t* q = b.qs;
    for (int is = 0; is < 8; is += 2, q += 32) {
      uint8_t sc, m;
      k4_scale_min(is, b.scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      k4_scale_min(is + 1, b.scales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *o++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *o++ = d2 * (q[l] >> 4) - m2;
    }
  });
}

void deq_q5_K(const void* s, float* y, int64_t n) {
  each_block<q5_K>(s, y, n, QK_K, [](const q5_K& b, float* o) {
    const float d = h(b.d), dmin = h(b.dmin);
    const uint8_t* ql = b.qs;
    uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      k4_scale_min(is, b.scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      k4_scale_min(is + 1, b.scales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *o++ = d1 * ((ql[l] & 0xF) + (b.qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *o++ = d2 * ((ql[l] >> 4) + (b.qh[l] & u2 ? 16 : 0)) - m2;
    }
  });
}

void deq_q6_K(const void* s, float* y, int64_t n) {
  each_block<q6_K>(s, y, n, QK_K, [](const q6_K& b, float* o) {
    const float d = h(b.d);
    const uint8_t *ql = b.ql, *qh = b.qh;
    const int8_t* sc = b.scales;
    for (int half = 0; half < 2; ++half, o += 128, ql += 64, qh += 32, sc += 8)
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        o[l] = d * sc[is + 0] * q1;
        o[l + 32] = d * sc[is + 2] * q2;
        o[l + 64] = d * sc[is + 4] * q3;
        o[l + 96] = d * sc[is + 6] * q4;
      }
  });
}

void deq_q8_K(const void* s, float* y, int64_t n) {
  each_block<q8_K>(s, y, n, QK_K, [](const q8_K& b, float* o) {
    for (int j = 0; j < QK_K; ++j) o[j] = b.d * b.qs[j];
  });
}

void deq_iq2_xxs(const void* s, float* y, int64_t n) {
  each_block<iq2_xxs>(s, y, n, QK_K, [](const iq2_xxs& b, float* o) {
    const float d = h(b.d);
    for (int ib = 0; ib < 8; ++ib) {
      uint32_t aux[2];
      std::memcpy(aux, b.qs + 4 * ib, 8);
      const uint8_t* idx = reinterpret_cast<const uint8_t*>(aux);
      const float db = d * (0.5f + (aux[1] >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, o += 8) {
        const auto* grid = reinterpret_cast<const uint8_t*>(iq::iq2xxs_grid + idx[l]);
        const uint8_t signs = ksigns_iq2xs[(aux[1] >> 7 * l) & 127];
        for (int j = 0; j < 8; ++j) o[j] = db * grid[j] * sign_of(signs, j);
      }
    }
  });
}

void deq_iq2_xs(const void* s, float* y, int64_t n) {
  each_block<iq2_xs>(s, y, n, QK_K, [](const iq2_xs& b, float* o) {
    const float d = h(b.d);
    for (int ib = 0; ib < 8; ++ib) {
      const float db[2] = {d * (0.5f + (b.scales[ib] & 0xF)) * 0.25f, d * (0.5f + (b.scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, o += 8) {
        const uint16_t q = b.qs[4 * ib + l];
        const auto* grid = reinterpret_cast<const uint8_t*>(iq::iq2xs_grid + (q & 511));
        const uint8_t signs = ksigns_iq2xs[q >> 9];
        for (int j = 0; j < 8; ++j) o[j] = db[l / 2] * grid[j] * sign_of(signs, j);
      }
    }
  });
}

void deq_iq2_s(const void* s, float* y, int64_t n) {
  each_block<iq2_s>(s, y, n, QK_K, [](const iq2_s& b, float* o) {
    const float d = h(b.d);
    const uint8_t* qs = b.qs;
    const uint8_t* signs = b.qs + QK_K / 8;
    for (int ib = 0; ib < 8; ++ib, qs += 4, signs += 4) {
      const float db[2] = {d * (0.5f + (b.scales[ib] & 0xF)) * 0.25f, d * (0.5f + (b.scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, o += 8) {
        const auto* grid = reinterpret_cast<const uint8_t*>(iq::iq2s_grid + (qs[l] | ((b.qh[ib] << (8 - 2 * l)) & 0x300)));
        for (int j = 0; j < 8; ++j) o[j] = db[l / 2] * grid[j] * sign_of(signs[l], j);
      }
    }
  });
}

void deq_iq3_xxs(const void* s, float* y, int64_t n) {
  each_block<iq3_xxs>(s, y, n, QK_K, [](const iq3_xxs& b, float* o) {
    const float d = h(b.d);
    const uint8_t* qs = b.qs;
    const uint8_t* scales_and_signs = b.qs + QK_K / 4;
    for (int ib = 0; ib < 8; ++ib, qs += 8) {
      uint32_t aux;
      std::memcpy(&aux, scales_and_signs + 4 * ib, 4);
      const float db = d * (0.5f + (aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l, o += 8) {
        const uint8_t signs = ksigns_iq2xs[(aux >> 7 * l) & 127];
        const auto* g1 = reinterpret_cast<const uint8_t*>(iq::iq3xxs_grid + qs[2 * l + 0]);
        const auto* g2 = reinterpret_cast<const uint8_t*>(iq::iq3xxs_grid + qs[2 * l + 1]);
        for (int j = 0; j < 4; ++j) {
          o[j] = db * g1[j] * sign_of(signs, j);
          o[j + 4] = db * g2[j] * sign_of(signs, j + 4);
        }
      }
    }
  });
}

void deq_iq3_s(const void* s, float* y, int64_t n) {
  each_block<iq3_s>(s, y, n, QK_K, [](const iq3_s& b, float* o) {
    const float d = h(b.d);
    const uint8_t *qs = b.qs, *qh = b.qh, *signs = b.signs;
    for (int ib = 0; ib < 8; ib += 2, qh += 2) {
      for (int half = 0; half < 2; ++half) {
        const int scale = half == 0 ? (b.scales[ib / 2] & 0xF) : (b.scales[ib / 2] >> 4);
        const float db = d * (1 + 2 * scale);
        for (int l = 0; l < 4; ++l, o += 8) {
          const auto* g1 = reinterpret_cast<const uint8_t*>(iq::iq3s_grid + (qs[2 * l + 0] | ((qh[half] << (8 - 2 * l)) & 256)));
          const auto* g2 = reinterpret_cast<const uint8_t*>(iq::iq3s_grid + (qs[2 * l + 1] | ((qh[half] << (7 - 2 * l)) & 256)));
          for (int j = 0; j < 4; ++j) {
            o[j] = db * g1[j] * sign_of(signs[l], j);
            o[j + 4] = db * g2[j] * sign_of(signs[l], j + 4);
          }
        }
        qs += 8;
        signs += 4;
      }
    }
  });
}

void deq_iq1_s(const void* s, float* y, int64_t n) {
  each_block<iq1_s>(s, y, n, QK_K, [](const iq1_s& b, float* o) {
    const float d = h(b.d);
    const uint8_t* qs = b.qs;
    for (int ib = 0; ib < 8; ++ib, qs += 4) {
      const float dl = d * (2 * ((b.qh[ib] >> 12) & 7) + 1);
      const float delta = b.qh[ib] & 0x8000 ? -iq::kIq1sDelta : iq::kIq1sDelta;
      for (int l = 0; l < 4; ++l, o += 8) {
        const auto* grid = reinterpret_cast<const int8_t*>(iq::iq1s_grid + (qs[l] | (((b.qh[ib] >> 3 * l) & 7) << 8)));
        for (int j = 0; j < 8; ++j) o[j] = dl * (grid[j] + delta);
      }
    }
  });
}

void deq_iq1_m(const void* s, float* y, int64_t n) {
  each_block<iq1_m>(s, y, n, QK_K, [](const iq1_m& b, float* o) {
    uint16_t sc[4];
    std::memcpy(sc, b.scales, 8);
    const uint16_t packed = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000);
    const float d = h(packed);
    const uint8_t *qs = b.qs, *qh = b.qh;
    for (int ib = 0; ib < 8; ++ib, qs += 4, qh += 2) {
      const float dl[2] = {d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 7) + 1),
                           d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1)};
      const uint16_t idx[4] = {static_cast<uint16_t>(qs[0] | ((qh[0] << 8) & 0x700)), static_cast<uint16_t>(qs[1] | ((qh[0] << 4) & 0x700)),
                               static_cast<uint16_t>(qs[2] | ((qh[1] << 8) & 0x700)), static_cast<uint16_t>(qs[3] | ((qh[1] << 4) & 0x700))};
      const float delta[4] = {qh[0] & 0x08 ? -iq::kIq1sDelta : iq::kIq1sDelta, qh[0] & 0x80 ? -iq::kIq1sDelta : iq::kIq1sDelta,
                              qh[1] & 0x08 ? -iq::kIq1sDelta : iq::kIq1sDelta, qh[1] & 0x80 ? -iq::kIq1sDelta : iq::kIq1sDelta};
      for (int l = 0; l < 4; ++l, o += 8) {
        const auto* grid = reinterpret_cast<const int8_t*>(iq::iq1s_grid + idx[l]);
        for (int j = 0; j < 8; ++j) o[j] = dl[l / 2] * (grid[j] + delta[l]);
      }
    }
  });
}

void deq_iq4_nl(const void* s, float* y, int64_t n) {
  each_block<iq4_nl>(s, y, n, 32, [](const iq4_nl& b, float* o) {
    const float d = h(b.d);
    for (int j = 0; j < 16; ++j) {
      o[j] = d * iq::kvalues_iq4nl[b.qs[j] & 0xF];
      o[j + 16] = d * iq::kvalues_iq4nl[b.qs[j] >> 4];
    }
  });
}

void deq_iq4_xs(const void* s, float* y, int64_t n) {
  each_block<iq4_xs>(s, y, n, QK_K, [](const iq4_xs& b, float* o) {
    const float d = h(b.d);
    const uint8_t* qs = b.qs;
    for (int ib = 0; ib < 8; ++ib, qs += 16, o += 32) {
      const int ls = ((b.scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((b.scales_h >> 2 * ib) & 3) << 4);
      const float dl = d * (ls - 32);
      for (int j = 0; j < 16; ++j) {
        o[j] = dl * iq::kvalues_iq4nl[qs[j] & 0xF];
        o[j + 16] = dl * iq::kvalues_iq4nl[qs[j] >> 4];
      }
    }
  });
}

// One base-3 digit per element: trit = (byte * 3^n mod 256) * 3 >> 8.
inline float ternary(uint8_t byte, uint8_t pow3, float d) {
  const uint8_t q = static_cast<uint8_t>(byte * pow3);
  return static_cast<float>(((static_cast<uint16_t>(q) * 3) >> 8) - 1) * d;
}

void deq_tq1_0(const void* s, float* y, int64_t n) {
  static constexpr uint8_t pow3[5] = {1, 3, 9, 27, 81};
  each_block<tq1_0>(s, y, n, QK_K, [](const tq1_0& b, float* o) {
    const float d = h(b.d);
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 32; ++m) *o++ = ternary(b.qs[m], pow3[k], d);
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 16; ++m) *o++ = ternary(b.qs[32 + m], pow3[k], d);
    for (int k = 0; k < 4; ++k)
      for (int m = 0; m < 4; ++m) *o++ = ternary(b.qh[m], pow3[k], d);
  });
}

void deq_tq2_0(const void* s, float* y, int64_t n) {
  each_block<tq2_0>(s, y, n, QK_K, [](const tq2_0& b, float* o) {
    const float d = h(b.d);
    for (int j = 0; j < 64; j += 32)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m) *o++ = static_cast<float>(((b.qs[j + m] >> (2 * l)) & 3) - 1) * d;
  });
}

using Decoder = void (*)(const void*, float*, int64_t);

Decoder decoder(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return deq_q4_0;
    case GgmlType::Q4_1: return deq_q4_1;
    case GgmlType::Q5_0: return deq_q5<q5_0, false>;
    case GgmlType::Q5_1: return deq_q5<q5_1, true>;
    case GgmlType::Q8_0: return deq_q8_0;
    case GgmlType::Q8_1: return deq_q8_1;
    case GgmlType::MXFP4: return deq_mxfp4;
    case GgmlType::NVFP4: return deq_nvfp4;
    case GgmlType::Q1_0: return deq_q1_0;
    case GgmlType::Q2_0: return deq_q2_0;
    case GgmlType::Q2_K: return deq_q2_K;
    case GgmlType::Q3_K: return deq_q3_K;
    case GgmlType::Q4_K: return deq_q4_K;
    case GgmlType::Q5_K: return deq_q5_K;
    case GgmlType::Q6_K: return deq_q6_K;
    case GgmlType::Q8_K: return deq_q8_K;
    case GgmlType::IQ2_XXS: return deq_iq2_xxs;
    case GgmlType::IQ2_XS: return deq_iq2_xs;
    case GgmlType::IQ2_S: return deq_iq2_s;
    case GgmlType::IQ3_XXS: return deq_iq3_xxs;
    case GgmlType::IQ3_S: return deq_iq3_s;
    case GgmlType::IQ1_S: return deq_iq1_s;
    case GgmlType::IQ1_M: return deq_iq1_m;
    case GgmlType::IQ4_NL: return deq_iq4_nl;
    case GgmlType::IQ4_XS: return deq_iq4_xs;
    case GgmlType::TQ1_0: return deq_tq1_0;
    case GgmlType::TQ2_0: return deq_tq2_0;
    default: return nullptr;
  }
}

}  // namespace

namespace detail {
void f16_to_f32_f16c(const uint16_t* src, float* dst, int64_t n);  // convert_avx2.cpp
}

bool can_dequantize(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || decoder(t) != nullptr;
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16: {
      const auto* s = static_cast<const uint16_t*>(src);
      if (cpu_features::avx2()) return detail::f16_to_f32_f16c(s, dst, n);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(s[i]);
      return;
    }
    case GgmlType::BF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
      return;
    }
    default: break;
  }
  Decoder f = decoder(type);
  if (!f) throw Error("no decoder for tensor type " + std::string(traits(type).name));
  if (n % traits(type).block_size) throw Error("dequantize: row length is not a multiple of the block size");
  f(src, dst, n);
}

}  // namespace jing
