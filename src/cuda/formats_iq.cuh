// Decoders of the i-quants (256-weight super-blocks, codebook grids): IQ2_XXS, IQ2_XS, IQ2_S,
// IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, IQ4_XS. Item k = weights 32k..32k+31. Grids hold unsigned
// magnitudes (IQ1: -1/0/1) as bytes; signs come as bit masks. Layouts and rounding as
// src/quant/dequant.cpp.
#pragma once
#include <type_traits>

#include "cuda/format_util.cuh"

namespace jing::cuda::fmt {

JING_HD float signed_value(float db, uint8_t g, uint32_t signs, int j) {
  const float v = fmul(db, static_cast<float>(g));
  return (signs >> j) & 1 ? -v : v;
}

// Eight grid bytes (a 64-bit entry) with signs applied, as two words.
JING_HD void signed_grid8(uint64_t g, uint32_t signs, int& lo, int& hi) {
  uint32_t l = static_cast<uint32_t>(g), h = static_cast<uint32_t>(g >> 32);
  apply_signs(l, h, signs);
  lo = static_cast<int>(l), hi = static_cast<int>(h);
}

// An iq1s grid entry as iq1s_nib stores it (see Tables).
JING_HD_CONSTEXPR uint32_t iq1s_nibbles(uint64_t g) {
  uint32_t e = 0;
  for (int j = 0; j < 4; ++j) {
    e |= static_cast<uint32_t>(static_cast<int8_t>(g >> (8 * j)) + 1) << (8 * j);
    e |= static_cast<uint32_t>(static_cast<int8_t>(g >> (8 * j + 32)) + 1) << (8 * j + 4);
  }
  return e;
}

// Grid entry idx of iq1s_nib as two words of bytes value + 1 (dp4a with them counts each
// activation once too many; the callers subtract the activations' sum).
JING_HD void iq1s_unsigned8(const Tables& t, int idx, int& lo, int& hi) {
  const uint32_t e = t.iq1s_nib[idx];
  lo = static_cast<int>(e & 0x0F0F0F0Fu), hi = static_cast<int>((e >> 4) & 0x0F0F0F0Fu);
}

// iq2_xxs: d, then per item 8 bytes: four grid indices and a word of 4 x 7 sign bits + 4-bit scale.
struct IQ2_XXS {
  static constexpr int kBytes = 66, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD void dequant(const uint8_t* b, int ib, const Tables& t, float* o) {
    const float d = half_to_float(ld16<kAlign>(b));
    const uint8_t* p = b + 2 + 8 * ib;
    const uint32_t aux1 = ld32<kAlign>(p + 4);
    const float db = fmul(fmul(d, 0.5f + static_cast<float>(aux1 >> 28)), 0.25f);
    for (int l = 0; l < 4; ++l) {
      const uint64_t g = ro(t.iq2xxs + p[l]);
      const uint32_t signs = ro(t.ksigns + ((aux1 >> (7 * l)) & 127));
      for (int j = 0; j < 8; ++j) o[8 * l + j] = signed_value(db, static_cast<uint8_t>(g >> (8 * j)), signs, j);
    }
  }
  int v[8];
  float db;
  JING_HD void load(const uint8_t* b, int ib, const Tables& t) {
    uint32_t w[2];
    ld_words<field_align(kAlign, 2), 2>(b + 2 + 8 * ib, w);
    const uint32_t idx = w[0], aux1 = w[1];
    db = half_to_float(ld16<kAlign>(b)) * (0.5f + static_cast<float>(aux1 >> 28)) * 0.25f;
    for (int l = 0; l < 4; ++l)
      signed_grid8(ro(t.iq2xxs + ((idx >> (8 * l)) & 0xFF)), ro(t.ksigns + ((aux1 >> (7 * l)) & 127)), v[2 * l], v[2 * l + 1]);
  }
  JING_HD float dot(const Q8Item& a) const { return db * a.d * static_cast<float>(idot<0, 8>(v, a.q)); }
};

// iq2_xs: d, qs[32] words (9-bit grid index, 7 sign bits), scales[8] (4 bits per 16 weights).
struct IQ2_XS {
  static constexpr int kBytes = 74, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD void dequant(const uint8_t* b, int ib, const Tables& t, float* o) {
    const float d = half_to_float(ld16<kAlign>(b));
    const uint8_t sc = b[66 + ib];
    const float db[2] = {fmul(fmul(d, 0.5f + static_cast<float>(sc & 0xF)), 0.25f), fmul(fmul(d, 0.5f + static_cast<float>(sc >> 4)), 0.25f)};
    for (int l = 0; l < 4; ++l) {
      const uint16_t q = ld16<kAlign>(b + 2 + 8 * ib + 2 * l);
      const uint64_t g = ro(t.iq2xs + (q & 511));
      const uint32_t signs = ro(t.ksigns + (q >> 9));
      for (int j = 0; j < 8; ++j) o[8 * l + j] = signed_value(db[l / 2], static_cast<uint8_t>(g >> (8 * j)), signs, j);
    }
  }
  int v[8];
  float db0, db1;
  JING_HD void load(const uint8_t* b, int ib, const Tables& t) {
    const float d = half_to_float(ld16<kAlign>(b));
    const uint8_t sc = b[66 + ib];
    db0 = d * (0.5f + static_cast<float>(sc & 0xF)) * 0.25f, db1 = d * (0.5f + static_cast<float>(sc >> 4)) * 0.25f;
    uint32_t w[2];
    ld_words<field_align(kAlign, 2), 2>(b + 2 + 8 * ib, w);
    const uint32_t q01 = w[0], q23 = w[1];
    for (int l = 0; l < 4; ++l) {
      const uint32_t q = ((l < 2 ? q01 : q23) >> (16 * (l & 1))) & 0xFFFF;
      signed_grid8(ro(t.iq2xs + (q & 511)), ro(t.ksigns + (q >> 9)), v[2 * l], v[2 * l + 1]);
    }
  }
  JING_HD float dot(const Q8Item& a) const {
    return a.d * (db0 * static_cast<float>(idot<0, 4>(v, a.q)) + db1 * static_cast<float>(idot<4, 8>(v, a.q)));
  }
};

// iq2_s: d, qs[32] grid index low bytes, signs[32], qh[8] (2 high index bits each), scales[8].
struct IQ2_S {
  static constexpr int kBytes = 82, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD int index(const uint8_t* b, int ib, int l) { return b[2 + 4 * ib + l] | ((b[66 + ib] << (8 - 2 * l)) & 0x300); }
  static JING_HD void dequant(const uint8_t* b, int ib, const Tables& t, float* o) {
    const float d = half_to_float(ld16<kAlign>(b));
    const uint8_t sc = b[74 + ib];
    const float db[2] = {fmul(fmul(d, 0.5f + static_cast<float>(sc & 0xF)), 0.25f), fmul(fmul(d, 0.5f + static_cast<float>(sc >> 4)), 0.25f)};
    for (int l = 0; l < 4; ++l) {
      const uint64_t g = ro(t.iq2s + index(b, ib, l));
      const uint32_t signs = b[34 + 4 * ib + l];
      for (int j = 0; j < 8; ++j) o[8 * l + j] = signed_value(db[l / 2], static_cast<uint8_t>(g >> (8 * j)), signs, j);
    }
  }
  int v[8];
  float db0, db1;
  JING_HD void load(const uint8_t* b, int ib, const Tables& t) {
    const float d = half_to_float(ld16<kAlign>(b));
    const uint8_t sc = b[74 + ib];
    db0 = d * (0.5f + static_cast<float>(sc & 0xF)) * 0.25f, db1 = d * (0.5f + static_cast<float>(sc >> 4)) * 0.25f;
    uint32_t qs, signs;
    ld_words<field_align(kAlign, 2), 1>(b + 2 + 4 * ib, &qs);
    ld_words<field_align(kAlign, 2), 1>(b + 34 + 4 * ib, &signs);
    const uint32_t qh = b[66 + ib];
    for (int l = 0; l < 4; ++l) {
      const uint32_t idx = ((qs >> (8 * l)) & 0xFF) | ((qh << (8 - 2 * l)) & 0x300);
      signed_grid8(ro(t.iq2s + idx), signs >> (8 * l), v[2 * l], v[2 * l + 1]);
    }
  }
  JING_HD float dot(const Q8Item& a) const {
    return a.d * (db0 * static_cast<float>(idot<0, 4>(v, a.q)) + db1 * static_cast<float>(idot<4, 8>(v, a.q)));
  }
};

// iq3_xxs: d, qs[64] grid indices (4 values each), then per item a word of 4 x 7 sign bits and a
// 4-bit scale.
struct IQ3_XXS {
  static constexpr int kBytes = 98, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD void dequant(const uint8_t* b, int ib, const Tables& t, float* o) {
    const float d = half_to_float(ld16<kAlign>(b));
    const uint8_t* qs = b + 2 + 8 * ib;
    const uint32_t aux = ld32<kAlign>(b + 66 + 4 * ib);
    const float db = fmul(fmul(d, 0.5f + static_cast<float>(aux >> 28)), 0.5f);
    for (int l = 0; l < 4; ++l) {
      const uint32_t signs = ro(t.ksigns + ((aux >> (7 * l)) & 127));
      const uint32_t g1 = ro(t.iq3xxs + qs[2 * l]), g2 = ro(t.iq3xxs + qs[2 * l + 1]);
      for (int j = 0; j < 4; ++j) {
        o[8 * l + j] = signed_value(db, static_cast<uint8_t>(g1 >> (8 * j)), signs, j);
        o[8 * l + j + 4] = signed_value(db, static_cast<uint8_t>(g2 >> (8 * j)), signs, j + 4);
      }
    }
  }
  int v[8];
  float db;
  JING_HD void load(const uint8_t* b, int ib, const Tables& t) {
    uint32_t aux, w[2];
    ld_words<field_align(kAlign, 2), 1>(b + 66 + 4 * ib, &aux);
    ld_words<field_align(kAlign, 2), 2>(b + 2 + 8 * ib, w);
    db = half_to_float(ld16<kAlign>(b)) * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
    const uint32_t i0 = w[0], i1 = w[1];
    for (int l = 0; l < 4; ++l) {
      const uint32_t idx = l < 2 ? i0 >> (16 * l) : i1 >> (16 * (l - 2));
      uint32_t g1 = ro(t.iq3xxs + (idx & 0xFF)), g2 = ro(t.iq3xxs + ((idx >> 8) & 0xFF));
      apply_signs(g1, g2, ro(t.ksigns + ((aux >> (7 * l)) & 127)));
      v[2 * l] = static_cast<int>(g1), v[2 * l + 1] = static_cast<int>(g2);
    }
  }
  JING_HD float dot(const Q8Item& a) const { return db * a.d * static_cast<float>(idot<0, 8>(v, a.q)); }
};

// iq3_s: d, qs[64] grid index low bytes, qh[8] (ninth bits), signs[32], scales[4] (4 bits per item).
struct IQ3_S {
  static constexpr int kBytes = 110, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD void indices(const uint8_t* b, int k, int l, int& i1, int& i2) {
    const uint8_t* qs = b + 2 + 8 * k;
    const int qh = b[66 + k];
    i1 = qs[2 * l] | ((qh << (8 - 2 * l)) & 256);
    i2 = qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
  }
  static JING_HD float scale(const uint8_t* b, int k, float d) {
    return fmul(d, static_cast<float>(1 + 2 * ((b[106 + k / 2] >> (4 * (k % 2))) & 0xF)));
  }
  static JING_HD void dequant(const uint8_t* b, int k, const Tables& t, float* o) {
    const float db = scale(b, k, half_to_float(ld16<kAlign>(b)));
    for (int l = 0; l < 4; ++l) {
      int i1, i2;
      indices(b, k, l, i1, i2);
      const uint32_t signs = b[74 + 4 * k + l];
      const uint32_t g1 = ro(t.iq3s + i1), g2 = ro(t.iq3s + i2);
      for (int j = 0; j < 4; ++j) {
        o[8 * l + j] = signed_value(db, static_cast<uint8_t>(g1 >> (8 * j)), signs, j);
        o[8 * l + j + 4] = signed_value(db, static_cast<uint8_t>(g2 >> (8 * j)), signs, j + 4);
      }
    }
  }
  int v[8];
  float db;
  JING_HD void load(const uint8_t* b, int k, const Tables& t) {
    db = scale(b, k, half_to_float(ld16<kAlign>(b)));
    uint32_t signs, qs[2];
    ld_words<field_align(kAlign, 2), 1>(b + 74 + 4 * k, &signs);
    ld_words<field_align(kAlign, 2), 2>(b + 2 + 8 * k, qs);
    const uint32_t qh = b[66 + k];
    for (int l = 0; l < 4; ++l) {
      const uint32_t pair = qs[l / 2] >> (16 * (l % 2));
      const uint32_t i1 = (pair & 0xFF) | ((qh << (8 - 2 * l)) & 256), i2 = ((pair >> 8) & 0xFF) | ((qh << (7 - 2 * l)) & 256);
      uint32_t g1 = ro(t.iq3s + i1), g2 = ro(t.iq3s + i2);
      apply_signs(g1, g2, signs >> (8 * l));
      v[2 * l] = static_cast<int>(g1), v[2 * l + 1] = static_cast<int>(g2);
    }
  }
  JING_HD float dot(const Q8Item& a) const { return db * a.d * static_cast<float>(idot<0, 8>(v, a.q)); }
};

// iq1_s: d, qs[32] grid index low bytes, qh[8] words (3 high bits per group of 8, a 3-bit scale,
// the sign of the +-1/8 shift).
struct IQ1_S {
  static constexpr int kBytes = 50, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static constexpr float kDelta = 0.125f;
  static JING_HD void dequant(const uint8_t* b, int ib, const Tables& t, float* o) {
    const float d = half_to_float(ld16<kAlign>(b));
    const uint32_t qh = ld16<kAlign>(b + 34 + 2 * ib);
    const float dl = fmul(d, static_cast<float>(2 * ((qh >> 12) & 7) + 1));
    const float delta = qh & 0x8000 ? -kDelta : kDelta;
    for (int l = 0; l < 4; ++l) {
      const uint64_t g = ro(t.iq1s + (b[2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)));
      for (int j = 0; j < 8; ++j) o[8 * l + j] = fmul(dl, fadd(static_cast<float>(static_cast<int8_t>(g >> (8 * j))), delta));
    }
  }
  int v[8];
  float dl, delta;
  JING_HD void load(const uint8_t* b, int ib, const Tables& t) {
    const uint32_t qh = ld16<kAlign>(b + 34 + 2 * ib);
    dl = half_to_float(ld16<kAlign>(b)) * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
    delta = qh & 0x8000 ? -kDelta : kDelta;
    // Group l's index: byte l of qs, bits 3l..3l+2 of qh above it. Two 16-bit loads (blocks are
    // only 2-byte aligned) and one mask per group.
    const uint32_t q01 = ld16<kAlign>(b + 2 + 4 * ib), q23 = ld16<kAlign>(b + 4 + 4 * ib);
    iq1s_unsigned8(t, static_cast<int>((q01 & 0xFF) | ((qh << 8) & 0x700)), v[0], v[1]);
    iq1s_unsigned8(t, static_cast<int>((q01 >> 8) | ((qh << 5) & 0x700)), v[2], v[3]);
    iq1s_unsigned8(t, static_cast<int>((q23 & 0xFF) | ((qh << 2) & 0x700)), v[4], v[5]);
    iq1s_unsigned8(t, static_cast<int>((q23 >> 8) | ((qh >> 1) & 0x700)), v[6], v[7]);
  }
  JING_HD float dot(const Q8Item& a) const {  // v holds values + 1: the item's sum comes off once
    const int sum = a.sum0 + a.sum1;
    return dl * a.d * (static_cast<float>(idot<0, 8>(v, a.q) - sum) + delta * static_cast<float>(sum));
  }
};

// iq1_m: qs[32], qh[16] (3 high index bits + shift sign per group of 8), scales[8]: 3-bit scales
// per 16 weights, with the f16 super-block scale spread over the top nibbles of the four words.
struct IQ1_M {
  static constexpr int kBytes = 56, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static constexpr float kDelta = 0.125f;
  static JING_HD void scales(const uint8_t* b, int ib, float& d0, float& d1) {
    uint16_t sc[4];
    for (int i = 0; i < 4; ++i) sc[i] = ld16<kAlign>(b + 48 + 2 * i);
    const uint16_t packed = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
    const float d = half_to_float(packed);
    const int s = sc[ib / 2] >> (6 * (ib % 2));
    d0 = fmul(d, static_cast<float>(2 * (s & 7) + 1));
    d1 = fmul(d, static_cast<float>(2 * ((s >> 3) & 7) + 1));
  }
  // Grid index and shift of group l (8 weights).
  static JING_HD void group(const uint8_t* b, int ib, int l, int& idx, float& delta) {
    const int qh = b[32 + 2 * ib + l / 2];
    idx = b[4 * ib + l] | ((l % 2 ? qh << 4 : qh << 8) & 0x700);
    delta = qh & (l % 2 ? 0x80 : 0x08) ? -kDelta : kDelta;
  }
  static JING_HD void dequant(const uint8_t* b, int ib, const Tables& t, float* o) {
    float dl[2];
    scales(b, ib, dl[0], dl[1]);
    for (int l = 0; l < 4; ++l) {
      int idx;
      float delta;
      group(b, ib, l, idx, delta);
      const uint64_t g = ro(t.iq1s + idx);
      for (int j = 0; j < 8; ++j) o[8 * l + j] = fmul(dl[l / 2], fadd(static_cast<float>(static_cast<int8_t>(g >> (8 * j))), delta));
    }
  }
  int v[8];
  float dl0, dl1, delta[4];
  JING_HD void load(const uint8_t* b, int ib, const Tables& t) {
    scales(b, ib, dl0, dl1);
    for (int l = 0; l < 4; ++l) {
      int idx;
      group(b, ib, l, idx, delta[l]);
      iq1s_unsigned8(t, idx, v[2 * l], v[2 * l + 1]);
    }
  }
  JING_HD float dot(const Q8Item& a) const {  // v holds values + 1: each group's sum comes off once
    float s[4];
    for (int l = 0; l < 4; ++l) {
      const int x8 = sum_bytes(a.q[2 * l]) + sum_bytes(a.q[2 * l + 1]);
      s[l] = static_cast<float>(dp4a(v[2 * l + 1], a.q[2 * l + 1], dp4a(v[2 * l], a.q[2 * l], 0)) - x8) + delta[l] * static_cast<float>(x8);
    }
    return a.d * (dl0 * (s[0] + s[1]) + dl1 * (s[2] + s[3]));
  }
};

// iq4_xs: d, scales_h (2 bits per item), scales_l[4] (4 bits per item), qs[128] nibbles indexing
// the IQ4_NL table; item scale = d * (6-bit - 32).
struct IQ4_XS {
  static constexpr int kBytes = 136, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD float scale(const uint8_t* b, int ib) {
    const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((ld16<kAlign>(b + 2) >> (2 * ib)) & 3) << 4);
    return fmul(half_to_float(ld16<kAlign>(b)), static_cast<float>(ls - 32));
  }
  static JING_HD void dequant(const uint8_t* b, int ib, const Tables& t, float* o) {
    const float dl = scale(b, ib);
    const uint8_t* qs = b + 8 + 16 * ib;
    for (int j = 0; j < 16; ++j) {
      o[j] = fmul(dl, static_cast<float>(ro(t.iq4nl + (qs[j] & 0xF))));
      o[j + 16] = fmul(dl, static_cast<float>(ro(t.iq4nl + (qs[j] >> 4))));
    }
  }
  int v[8];
  float dl;
  JING_HD void load(const uint8_t* b, int ib, const Tables& t) {
    dl = scale(b, ib);
    uint32_t lut[4];
    load_lut(t.iq4nl, lut);
    uint32_t w[4];
    ld_words<field_align(kAlign, 8), 4>(b + 8 + 16 * ib, w);
    for (int k = 0; k < 4; ++k) {
      v[k] = static_cast<int>(lut16(w[k], lut));
      v[k + 4] = static_cast<int>(lut16(w[k] >> 4, lut));
    }
  }
  JING_HD float dot(const Q8Item& a) const { return dl * a.d * static_cast<float>(idot<0, 8>(v, a.q)); }
};

// Formats whose decode kernels read iq1s_nib from a copy in shared memory.
template <class F>
inline constexpr bool reads_iq1s_grid = std::is_same_v<F, IQ1_S> || std::is_same_v<F, IQ1_M>;
constexpr int kIq1sGridEntries = 2048;

}  // namespace jing::cuda::fmt
