// Decoders of the k-quants (256-weight super-blocks): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. An item is
// 32 consecutive weights of the super-block (item k = weights 32k..32k+31); sub-block scales
// are 6-bit (Q4_K/Q5_K), 4-bit + 4-bit min (Q2_K), 6-bit signed (Q3_K) or 8-bit (Q6_K).
// Layouts and rounding as src/quant/dequant.cpp.
#pragma once
#include "cuda/format_util.cuh"

namespace jing::cuda::fmt {

// The 6-bit scale and min of sub-block j from a Q4_K/Q5_K scales[12] array.
JING_HD void k4_scale_min(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// The same from the scales as three words, without branches (j varies across a warp's lanes).
JING_HD void k4_scale_min_words(int j, const uint32_t* s, int& sc, int& m) {
  const int i = 8 * (j & 3);
  const int b0 = (s[0] >> i) & 0xFF, b1 = (s[1] >> i) & 0xFF, b2 = (s[2] >> i) & 0xFF;
  const bool low = j < 4;
  sc = low ? (b0 & 63) : ((b2 & 0xF) | ((b0 >> 6) << 4));
  m = low ? (b1 & 63) : ((b2 >> 4) | ((b1 >> 6) << 4));
}

// Scale j (0-15) of a Q3_K block, unbiased: low four bits from byte j%8 (low or high nibble), the
// top two from byte 8 + j%4.
JING_HD int q3k_scale(const uint8_t* s, int j) {
  const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  const int high = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

// q2_K: scales[16] qs[64] d dmin. Item k: half k/4 (32 bytes of qs), 2-bit field k%4; the two
// 16-weight halves of an item have their own scale byte (low nibble scale, high nibble min).
struct Q2_K {
  static constexpr int kBytes = 84, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD void dequant(const uint8_t* b, int k, const Tables&, float* o) {
    const float d = half_to_float(ld16<kAlign>(b + 80)), dmin = half_to_float(ld16<kAlign>(b + 82));
    const uint8_t* q = b + 16 + 32 * (k / 4);
    const int shift = 2 * (k % 4);
    for (int part = 0; part < 2; ++part) {
      const uint8_t sc = b[2 * k + part];
      const float dl = fmul(d, static_cast<float>(sc & 0xF)), ml = fmul(dmin, static_cast<float>(sc >> 4));
      for (int l = 0; l < 16; ++l) o[16 * part + l] = fsub(fmul(dl, static_cast<float>((q[l + 16 * part] >> shift) & 3)), ml);
    }
  }
  int v[8];
  int sc0, sc1, m0, m1;
  float d, dmin;
  JING_HD void load(const uint8_t* b, int k, const Tables&) {
    d = half_to_float(ld16<kAlign>(b + 80)), dmin = half_to_float(ld16<kAlign>(b + 82));
    uint32_t w[8];
    ld_words<field_align(kAlign, 16), 8>(b + 16 + 32 * (k / 4), w);
    const int shift = 2 * (k % 4);
    for (int i = 0; i < 8; ++i) v[i] = static_cast<int>((w[i] >> shift) & 0x03030303u);
    sc0 = b[2 * k] & 0xF, m0 = b[2 * k] >> 4, sc1 = b[2 * k + 1] & 0xF, m1 = b[2 * k + 1] >> 4;
  }
  JING_HD float dot(const Q8Item& a) const {
    const int s = sc0 * idot<0, 4>(v, a.q) + sc1 * idot<4, 8>(v, a.q);
    const int mins = m0 * a.sum0 + m1 * a.sum1;
    return a.d * (d * static_cast<float>(s) - dmin * static_cast<float>(mins));
  }
};

// q3_K: hmask[32] qs[64] scales[12] d. Item k: the same 2-bit field as Q2_K plus bit k of
// hmask[l] (clear: subtract 4).
struct Q3_K {
  static constexpr int kBytes = 110, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD void dequant(const uint8_t* b, int k, const Tables&, float* o) {
    const float d = half_to_float(ld16<kAlign>(b + 108));
    const uint8_t* q = b + 32 + 32 * (k / 4);
    const int shift = 2 * (k % 4);
    for (int part = 0; part < 2; ++part) {
      const float dl = fmul(d, static_cast<float>(q3k_scale(b + 96, 2 * k + part)));
      for (int l = 16 * part; l < 16 * part + 16; ++l)
        o[l] = fmul(dl, static_cast<float>(((q[l] >> shift) & 3) - (((b[l] >> k) & 1) ? 0 : 4)));
    }
  }
  int v[8];  // unsigned 0-7 (the weight + 4)
  int sc0, sc1;
  float d;
  JING_HD void load(const uint8_t* b, int k, const Tables&) {
    d = half_to_float(ld16<kAlign>(b + 108));
    uint32_t q[8], hm[8];
    ld_words<field_align(kAlign, 32), 8>(b + 32 + 32 * (k / 4), q);
    ld_words<kAlign, 8>(b, hm);
    const int shift = 2 * (k % 4);
    for (int i = 0; i < 8; ++i) v[i] = static_cast<int>(((q[i] >> shift) & 0x03030303u) | (((hm[i] >> k) & 0x01010101u) << 2));
    sc0 = q3k_scale(b + 96, 2 * k), sc1 = q3k_scale(b + 96, 2 * k + 1);
  }
  JING_HD float dot(const Q8Item& a) const {
    const int s = sc0 * (idot<0, 4>(v, a.q) - 4 * a.sum0) + sc1 * (idot<4, 8>(v, a.q) - 4 * a.sum1);
    return d * a.d * static_cast<float>(s);
  }
};

// q4_K / q5_K: d dmin scales[12] [qh[32]] qs[128]. Item k: nibble k%2 of qs bytes 32*(k/2)..,
// (q5_K: plus bit k of qh[l] as 16), scale and min k.
template <bool kFive>
struct Q45_K {
  static constexpr int kBytes = kFive ? 176 : 144, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr int kQs = kFive ? 48 : 16;
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD void dequant(const uint8_t* b, int k, const Tables&, float* o) {
    const float d = half_to_float(ld16<kAlign>(b)), dmin = half_to_float(ld16<kAlign>(b + 2));
    int sc, m;
    k4_scale_min(k, b + 4, sc, m);
    const float d1 = fmul(d, static_cast<float>(sc)), m1 = fmul(dmin, static_cast<float>(m));
    const uint8_t* q = b + kQs + 32 * (k / 2);
    const int shift = 4 * (k % 2);
    for (int l = 0; l < 32; ++l) {
      int w = (q[l] >> shift) & 0xF;
      if constexpr (kFive) w += ((b[16 + l] >> k) & 1) ? 16 : 0;
      o[l] = fsub(fmul(d1, static_cast<float>(w)), m1);
    }
  }
  // The decode path takes 64 weights per item (item p: both nibbles of qs bytes 32p..32p+31,
  // sub-blocks 2p and 2p+1), so each qs byte and the block header are read once.
  static constexpr int kGroups = 2;
  static JING_HD int group_of(int p, int g) { return 2 * p + g; }  // 32-weight group g of item p
  int v[16];
  int sc0, m0, sc1, m1;
  float d, dmin;
  JING_HD void load(const uint8_t* b, int p, const Tables&) {
    uint32_t head[4], q[8];  // head: d, dmin, scales[12]
    ld_words<kAlign, 4>(b, head);
    d = half_to_float(static_cast<uint16_t>(head[0])), dmin = half_to_float(static_cast<uint16_t>(head[0] >> 16));
    k4_scale_min_words(2 * p, head + 1, sc0, m0);
    k4_scale_min_words(2 * p + 1, head + 1, sc1, m1);
    ld_words<field_align(kAlign, kQs), 8>(b + kQs + 32 * p, q);
    for (int i = 0; i < 8; ++i) {
      v[i] = static_cast<int>(q[i] & 0x0F0F0F0Fu);
      v[8 + i] = static_cast<int>((q[i] >> 4) & 0x0F0F0F0Fu);
    }
    if constexpr (kFive) {
      uint32_t qh[8];
      ld_words<field_align(kAlign, 16), 8>(b + 16, qh);
      for (int i = 0; i < 8; ++i) {
        v[i] |= static_cast<int>(((qh[i] >> (2 * p)) & 0x01010101u) << 4);
        v[8 + i] |= static_cast<int>(((qh[i] >> (2 * p + 1)) & 0x01010101u) << 4);
      }
    }
  }
  // x0, x1: activations of weights 64p..64p+31 and 64p+32..64p+63.
  JING_HD float dot2(const Q8Item& x0, const Q8Item& x1) const {
    const float s0 = d * static_cast<float>(sc0 * idot<0, 8>(v, x0.q)) - dmin * static_cast<float>(m0 * (x0.sum0 + x0.sum1));
    const float s1 = d * static_cast<float>(sc1 * idot<0, 8>(v + 8, x1.q)) - dmin * static_cast<float>(m1 * (x1.sum0 + x1.sum1));
    return x0.d * s0 + x1.d * s1;
  }
};
using Q4_K = Q45_K<false>;
using Q5_K = Q45_K<true>;

// q6_K: ql[128] qh[64] scales[16] (signed) d. Item k: half k/4, group g = k%4: low nibble
// (g < 2) or high nibble of ql[64*half + 32*(g%2) + l], two bits 2g of qh[32*half + l], minus 32.
struct Q6_K {
  static constexpr int kBytes = 210, kWeights = 256, kAlign = gcd16(kBytes);
  static constexpr Act kAct = Act::Q8_K;
  static JING_HD void dequant(const uint8_t* b, int k, const Tables&, float* o) {
    const float d = half_to_float(ld16<kAlign>(b + 208));
    const int half = k / 4, g = k % 4;
    const uint8_t* ql = b + 64 * half + 32 * (g % 2);
    const uint8_t* qh = b + 128 + 32 * half;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * half + 2 * g);
    for (int l = 0; l < 32; ++l) {
      const int q = (((ql[l] >> (4 * (g / 2))) & 0xF) | (((qh[l] >> (2 * g)) & 3) << 4)) - 32;
      o[l] = fmul(fmul(d, static_cast<float>(sc[l / 16])), static_cast<float>(q));
    }
  }
  // The decode path takes 64 weights per item: item p (half p/2, g = p%2) holds groups g and
  // g + 2 of that half, the low and high nibbles of the same ql bytes with the same qh bytes.
  static constexpr int kGroups = 2;
  static JING_HD int group_of(int p, int g) { return 4 * (p / 2) + p % 2 + 2 * g; }
  int v[16];  // unsigned 0-63 (the weight + 32)
  int sc[4];
  float d;
  JING_HD void load(const uint8_t* b, int p, const Tables&) {
    d = half_to_float(ld16<kAlign>(b + 208));
    const int half = p / 2, g = p % 2;
    uint32_t ql[8], qh[8];
    ld_words<kAlign, 8>(b + 64 * half + 32 * g, ql);
    ld_words<kAlign, 8>(b + 128 + 32 * half, qh);
    for (int i = 0; i < 8; ++i) {
      v[i] = static_cast<int>((ql[i] & 0x0F0F0F0Fu) | (((qh[i] >> (2 * g)) & 0x03030303u) << 4));
      v[8 + i] = static_cast<int>(((ql[i] >> 4) & 0x0F0F0F0Fu) | (((qh[i] >> (2 * g + 4)) & 0x03030303u) << 4));
    }
    const uint16_t s0 = ld16<kAlign>(b + 192 + 8 * half + 2 * g), s1 = ld16<kAlign>(b + 196 + 8 * half + 2 * g);
    sc[0] = static_cast<int8_t>(s0 & 0xFF), sc[1] = static_cast<int8_t>(s0 >> 8);
    sc[2] = static_cast<int8_t>(s1 & 0xFF), sc[3] = static_cast<int8_t>(s1 >> 8);
  }
  JING_HD float dot2(const Q8Item& x0, const Q8Item& x1) const {
    const int s0 = sc[0] * (idot<0, 4>(v, x0.q) - 32 * x0.sum0) + sc[1] * (idot<4, 8>(v, x0.q) - 32 * x0.sum1);
    const int s1 = sc[2] * (idot<0, 4>(v + 8, x1.q) - 32 * x1.sum0) + sc[3] * (idot<4, 8>(v + 8, x1.q) - 32 * x1.sum1);
    return d * (x0.d * static_cast<float>(s0) + x1.d * static_cast<float>(s1));
  }
};

}  // namespace jing::cuda::fmt
