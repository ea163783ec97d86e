// K-quant quantizers (Q4_K, Q5_K, Q6_K): 256-element super-blocks of sub-blocks with their own
// 6-bit (8-bit for Q6_K) scales. Each sub-block's scale and minimum come from a weighted
// least-squares search over candidate scales (the approach of llama.cpp's reference quantizer);
// the scales themselves are then quantized against the super-block's scale.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quantize_detail.h"

namespace jing::detail {

using namespace blocks;

namespace {

// Best (scale, min) for x ~ scale * L + min with L in [0, nmax], min <= 0, weights w.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min) {
  float mn = x[0], mx = x[0], sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    std::fill(L, L + n, 0);
    *neg_min = -mn;
    return 0;
  }
  float iscale = nmax / (mx - mn), scale = 1 / iscale, best = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * (x[i] - mn)), 0, nmax));
    const float d = scale * L[i] + mn - x[i];
    best += w[i] * d * d;
  }
  uint8_t aux[32];
  for (int step = 0; step <= 20; ++step) {
    iscale = (-1.0f + 0.1f * step + nmax) / (mx - mn);
    float sl = 0, sl2 = 0, sxl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - mn)), 0, nmax);
      aux[i] = static_cast<uint8_t>(l);
      sl += w[i] * l;
      sl2 += w[i] * l * l;
      sxl += w[i] * l * x[i];
    }
    const float D = sum_w * sl2 - sl * sl;
    if (D <= 0) continue;
    float s = (sum_w * sxl - sum_x * sl) / D, m = (sl2 * sum_x - sl * sxl) / D;
    if (m > 0) m = 0, s = sxl / sl2;
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float d = s * aux[i] + m - x[i];
      err += w[i] * d * d;
    }
    if (err < best) {
      std::copy(aux, aux + n, L);
      best = err, scale = s, mn = m;
    }
  }
  *neg_min = -mn;
  return scale;
}

// Weights of a 32-element sub-block: the imatrix scaled by the local magnitude, or (without one)
// |x| plus the block's RMS, favouring large values as llama.cpp does.
void sub_weights(const float* x, const float* imatrix, float rms, float* w) {
  for (int l = 0; l < 32; ++l)
    w[l] = imatrix ? imatrix[l] * std::sqrt(rms * rms + x[l] * x[l]) : rms + std::fabs(x[l]);
}

template <int kMax, typename Block>
void quantize_k45(const float* x, Block* y, int64_t n, const float* imatrix) {
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float sum2 = 0;
    for (int l = 0; l < QK_K; ++l) sum2 += x[l] * x[l];
    const float rms = std::sqrt(2 * sum2 / QK_K);
    uint8_t L[QK_K];
    float scales[8], mins[8], w[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      sub_weights(x + 32 * j, imatrix ? imatrix + i * QK_K + 32 * j : nullptr, rms, w);
      scales[j] = fit_scale_min(32, kMax, x + 32 * j, w, L + 32 * j, &mins[j]);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    std::memset(y[i].scales, 0, sizeof y[i].scales);
    for (int j = 0; j < 8; ++j) {
      const uint8_t ls = static_cast<uint8_t>(std::min(63, nearest_int(inv_scale * scales[j])));
      const uint8_t lm = static_cast<uint8_t>(std::min(63, nearest_int(inv_min * mins[j])));
      if (j < 4) {
        y[i].scales[j] = ls;
        y[i].scales[j + 4] = lm;
      } else {
        y[i].scales[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
        y[i].scales[j - 4] |= (ls >> 4) << 6;
        y[i].scales[j] |= (lm >> 4) << 6;
      }
    }
    y[i].d = fp32_to_fp16(max_scale / 63.f);
    y[i].dmin = fp32_to_fp16(max_min / 63.f);
    // Requantize against the scales as stored.
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, y[i].scales, sc, m);
      const float d = fp16_to_fp32(y[i].d) * sc;
      if (!d) continue;
      const float dm = fp16_to_fp32(y[i].dmin) * m;
      for (int l = 0; l < 32; ++l) L[32 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + l] + dm) / d), 0, kMax));
    }
    if constexpr (kMax == 15) {
      uint8_t* q = y[i].qs;
      for (int j = 0; j < QK_K; j += 64, q += 32)
        for (int l = 0; l < 32; ++l) q[l] = L[j + l] | (L[j + l + 32] << 4);
    } else {
      uint8_t* ql = y[i].qs;
      std::memset(y[i].qh, 0, sizeof y[i].qh);
      uint8_t m1 = 1, m2 = 2;
      for (int j = 0; j < QK_K; j += 64, ql += 32, m1 <<= 2, m2 <<= 2)
        for (int l = 0; l < 32; ++l) {
          int a = L[j + l], b = L[j + l + 32];
          if (a > 15) a -= 16, y[i].qh[l] |= m1;
          if (b > 15) b -= 16, y[i].qh[l] |= m2;
          ql[l] = static_cast<uint8_t>(a | (b << 4));
        }
    }
  }
}

// Symmetric scale for 16 values in [-nmax, nmax-1], refined by a small search (weighted).
float fit_symmetric(int n, int nmax, const float* x, const float* w, int8_t* L) {
  const auto [max, amax] = signed_max(x, n);
  if (amax < 1e-15f) {
    std::fill(L, L + n, 0);
    return 0;
  }
  float best_scale = 0, best = -1;
  for (int is = -9; is <= 9; ++is) {
    const float iscale = -(nmax + 0.1f * is) / max;
    float sxl = 0, sl2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      sxl += w[i] * x[i] * l;
      sl2 += w[i] * l * l;
    }
    if (sl2 > 0 && sxl * sxl / sl2 > best) best = sxl * sxl / sl2, best_scale = sxl / sl2;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(best_scale ? std::clamp(nearest_int(x[i] / best_scale), -nmax, nmax - 1) : 0);
  return best_scale;
}

}  // namespace

void quantize_q2_K(const float* x, void* out, int64_t n, const float* imatrix) {
  auto* y = static_cast<q2_K*>(out);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    float scales[16], mins[16], w[16];
    float max_scale = 0, max_min = 0, sum2 = 0;
    for (int l = 0; l < QK_K; ++l) sum2 += x[l] * x[l];
    const float sigma2 = sum2 / QK_K;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) {
        const float v = x[16 * j + l];
        w[l] = imatrix ? imatrix[i * QK_K + 16 * j + l] * std::sqrt(sigma2 + v * v) + 1e-20f : std::fabs(v) + 1e-20f;
      }
      scales[j] = fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j]);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    std::memset(&y[i], 0, sizeof y[i]);
    const float iscale = max_scale > 0 ? 15.f / max_scale : 0.f, imin = max_min > 0 ? 15.f / max_min : 0.f;
    for (int j = 0; j < 16; ++j)
      y[i].scales[j] = static_cast<uint8_t>(std::min(15, nearest_int(iscale * scales[j])) | (std::min(15, nearest_int(imin * mins[j])) << 4));
    y[i].d = fp32_to_fp16(max_scale / 15.f);
    y[i].dmin = fp32_to_fp16(max_min / 15.f);
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[i].d) * (y[i].scales[j] & 0xF);
      if (!d) continue;
      const float dm = fp16_to_fp32(y[i].dmin) * (y[i].scales[j] >> 4);
      for (int l = 0; l < 16; ++l) L[16 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * j + l] + dm) / d), 0, 3));
    }
    for (int j = 0; j < QK_K; j += 128)
      for (int l = 0; l < 32; ++l)
        y[i].qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
  }
}

void quantize_q3_K(const float* x, void* out, int64_t n, const float* imatrix) {
  auto* y = static_cast<q3_K*>(out);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    int8_t S[QK_K];
    float scales[16], w[16];
    float sum2 = 0;
    for (int l = 0; l < QK_K; ++l) sum2 += x[l] * x[l];
    const float sigma2 = 2 * sum2 / QK_K;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) {
        const float v = x[16 * j + l];
        w[l] = imatrix ? imatrix[i * QK_K + 16 * j + l] * std::sqrt(sigma2 + v * v) + 1e-20f : v * v + 1e-20f;
      }
      scales[j] = fit_symmetric(16, 4, x + 16 * j, w, S + 16 * j);
    }
    const auto [max_scale, max_abs] = signed_max(scales, 16);
    std::memset(&y[i], 0, sizeof y[i]);
    if (max_abs < 1e-15f) continue;
    const float iscale = -32.f / max_scale;
    y[i].d = fp32_to_fp16(1 / iscale);
    for (int j = 0; j < 16; ++j) {
      int l = std::clamp(nearest_int(iscale * scales[j]), -32, 31) + 32;
      if (j < 8) y[i].scales[j] = static_cast<uint8_t>(l & 0xF);
      else y[i].scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
      y[i].scales[j % 4 + 8] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
    }
    int8_t sc[16];
    q3k_scales(y[i].scales, sc);
    uint8_t L[QK_K];
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[i].d) * (sc[j] - 32);
      for (int l = 0; l < 16; ++l) L[16 * j + l] = static_cast<uint8_t>((d ? std::clamp(nearest_int(x[16 * j + l] / d), -4, 3) : 0) + 4);
    }
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < QK_K; ++j) {
      if (L[j] > 3) y[i].hmask[m] |= hm, L[j] -= 4;
      if (++m == QK_K / 8) m = 0, hm <<= 1;
    }
    for (int j = 0; j < QK_K; j += 128)
      for (int l = 0; l < 32; ++l)
        y[i].qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
  }
}

void quantize_q4_K(const float* x, void* out, int64_t n, const float* imatrix) { quantize_k45<15>(x, static_cast<q4_K*>(out), n, imatrix); }
void quantize_q5_K(const float* x, void* out, int64_t n, const float* imatrix) { quantize_k45<31>(x, static_cast<q5_K*>(out), n, imatrix); }

void quantize_q6_K(const float* x, void* out, int64_t n, const float* imatrix) {
  auto* y = static_cast<q6_K*>(out);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    int8_t L[QK_K];
    float scales[16], w[16];
    for (int ib = 0; ib < 16; ++ib) {
      for (int l = 0; l < 16; ++l) w[l] = imatrix ? imatrix[i * QK_K + 16 * ib + l] * x[16 * ib + l] * x[16 * ib + l] + 1e-20f : x[16 * ib + l] * x[16 * ib + l];
      scales[ib] = fit_symmetric(16, 32, x + 16 * ib, w, L + 16 * ib);
    }
    const auto [max_scale, max_abs] = signed_max(scales, 16);
    std::memset(&y[i], 0, sizeof y[i]);
    if (max_abs < 1e-15f) continue;
    const float iscale = -128.f / max_scale;
    y[i].d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) y[i].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    uint8_t U[QK_K];
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[i].d) * y[i].scales[j];
      for (int l = 0; l < 16; ++l) U[16 * j + l] = static_cast<uint8_t>((d ? std::clamp(nearest_int(x[16 * j + l] / d), -32, 31) : 0) + 32);
    }
    uint8_t *ql = y[i].ql, *qh = y[i].qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
      for (int l = 0; l < 32; ++l) {
        ql[l] = (U[j + l] & 0xF) | ((U[j + l + 64] & 0xF) << 4);
        ql[l + 32] = (U[j + l + 32] & 0xF) | ((U[j + l + 96] & 0xF) << 4);
        qh[l] = (U[j + l] >> 4) | ((U[j + l + 32] >> 4) << 2) | ((U[j + l + 64] >> 4) << 4) | ((U[j + l + 96] >> 4) << 6);
      }
  }
}

}  // namespace jing::detail
