// IQ4_NL / IQ4_XS quantizers: 4-bit indices into a fixed non-linear grid (kvalues_iq4nl), one
// scale per 32 values (IQ4_NL) or 6-bit sub-scales under a super-block scale (IQ4_XS).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/iq_tables.h"
#include "quant/quantize_detail.h"

namespace jing::detail {

using namespace blocks;

namespace {

int best_index(float v) {
  const int8_t* g = iq::kvalues_iq4nl;
  int best = 0;
  for (int k = 1; k < 16; ++k)
    if (std::fabs(v - g[k]) < std::fabs(v - g[best])) best = k;
  return best;
}

// Scale for 32 values against the grid: a search around max/grid_max, least squares per candidate.
float fit_grid(const float* x, const float* w, uint8_t* L) {
  const auto [max, amax] = signed_max(x, 32);
  if (amax < 1e-15f) {
    std::fill(L, L + 32, static_cast<uint8_t>(best_index(0)));
    return 0;
  }
  float best_d = max / iq::kvalues_iq4nl[0], best_err = INFINITY;
  for (int step = -7; step <= 7; ++step) {
    const float id = (iq::kvalues_iq4nl[0] + 0.1f * step) / max;
    float sxg = 0, sgg = 0;
    uint8_t idx[32];
    for (int i = 0; i < 32; ++i) {
      idx[i] = static_cast<uint8_t>(best_index(x[i] * id));
      const float g = iq::kvalues_iq4nl[idx[i]];
      sxg += w[i] * x[i] * g;
      sgg += w[i] * g * g;
    }
    const float d = sgg > 0 ? sxg / sgg : 0;
    float err = 0;
    for (int i = 0; i < 32; ++i) {
      const float e = d * iq::kvalues_iq4nl[idx[i]] - x[i];
      err += w[i] * e * e;
    }
    if (err < best_err) best_err = err, best_d = d;
  }
  for (int i = 0; i < 32; ++i) L[i] = static_cast<uint8_t>(best_d ? best_index(x[i] / best_d) : best_index(0));
  return best_d;
}

void weights_of(const float* x, const float* imatrix, float* w) {
  for (int i = 0; i < 32; ++i) w[i] = imatrix ? imatrix[i] * (x[i] * x[i] + 1e-8f) : x[i] * x[i] + 1e-8f;
}

}  // namespace

void quantize_iq4_nl(const float* x, void* out, int64_t n, const float* imatrix) {
  auto* y = static_cast<iq4_nl*>(out);
  float w[32];
  uint8_t L[32];
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    weights_of(x, imatrix ? imatrix + 32 * i : nullptr, w);
    const float d = fit_grid(x, w, L);
    y[i].d = fp32_to_fp16(d);
    const float dq = fp16_to_fp32(y[i].d);
    for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>(dq ? best_index(x[j] / dq) : L[j]);
    for (int j = 0; j < 16; ++j) y[i].qs[j] = L[j] | (L[j + 16] << 4);
  }
}

void quantize_iq4_xs(const float* x, void* out, int64_t n, const float* imatrix) {
  auto* y = static_cast<iq4_xs*>(out);
  float w[32], scales[8];
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    for (int ib = 0; ib < 8; ++ib) {
      weights_of(x + 32 * ib, imatrix ? imatrix + i * QK_K + 32 * ib : nullptr, w);
      scales[ib] = fit_grid(x + 32 * ib, w, L + 32 * ib);
    }
    const float max = signed_max(scales, 8).value;
    std::memset(&y[i], 0, sizeof y[i]);
    const float d = -max / 32, id = d ? 1 / d : 0;
    y[i].d = fp32_to_fp16(d);
    const float dq = fp16_to_fp32(y[i].d);
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = std::clamp(nearest_int(id * scales[ib]), -32, 31) + 32;
      y[i].scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0xF) << (4 * (ib % 2)));
      y[i].scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * ib));
      const float dl = dq * (ls - 32);
      uint8_t* q = y[i].qs + 16 * ib;
      for (int j = 0; j < 32; ++j) L[32 * ib + j] = static_cast<uint8_t>(dl ? best_index(x[32 * ib + j] / dl) : best_index(0));
      for (int j = 0; j < 16; ++j) q[j] = L[32 * ib + j] | (L[32 * ib + j + 16] << 4);
    }
  }
}

}  // namespace jing::detail
