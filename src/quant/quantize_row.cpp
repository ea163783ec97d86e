#include "quant/quantize_row.h"

#include <cmath>
#include <cstring>
#include <string>

#include "common/cpu_features.h"
#include "common/error.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quantize_detail.h"

namespace jing {
namespace {

using namespace blocks;

void q8_0_row(const float* x, q8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < 32; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

void q8_1_row(const float* x, q8_1* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
      sum += y[i].qs[j];
    }
    y[i].s = fp32_to_fp16(sum * d);
  }
}

// Q8_K: the scale maps the largest magnitude (with its sign) to -127; rounding by nearest_int.
void q8_K_row(const float* x, q8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    const auto [max, amax] = detail::signed_max(x, QK_K);
    if (!amax) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, detail::nearest_int(iscale * x[j])));
    for (int j = 0; j < QK_K / 16; ++j) {
      int sum = 0;
      for (int k = 0; k < 16; ++k) sum += y[i].qs[j * 16 + k];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

}  // namespace

namespace detail {  // quantize_row_avx2.cpp
void q8_0_row_avx2(const float* x, void* y, int64_t n);
void q8_1_row_avx2(const float* x, void* y, int64_t n);
void q8_K_row_avx2(const float* x, void* y, int64_t n);
}  // namespace detail

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  // The activation formats (run before every matrix product) have AVX2 versions, bit-identical.
  if (cpu_features::avx2()) {
    switch (type) {
      case GgmlType::Q8_0: return detail::q8_0_row_avx2(src, dst, n);
      case GgmlType::Q8_1: return detail::q8_1_row_avx2(src, dst, n);
      case GgmlType::Q8_K: return detail::q8_K_row_avx2(src, dst, n);
      default: break;
    }
  }
  quantize_row_portable(type, src, dst, n);
}

void quantize_row_portable(GgmlType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
      return;
    }
    case GgmlType::BF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
      return;
    }
    case GgmlType::Q8_0: return q8_0_row(src, static_cast<q8_0*>(dst), n);
    case GgmlType::Q8_1: return q8_1_row(src, static_cast<q8_1*>(dst), n);
    case GgmlType::Q8_K: return q8_K_row(src, static_cast<q8_K*>(dst), n);
    default: throw Error("quantize_row: unsupported type " + std::string(traits(type).name));
  }
}

}  // namespace jing
