// Quantizers of the 32-element formats: Q4_0, Q4_1, Q5_0, Q5_1 (Q8_0 lives in quantize_row).
// Each block's scale comes from its extreme value, as llama.cpp's reference quantizers do.
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quantize_detail.h"

namespace jing::detail {

using namespace blocks;

void quantize_q4_0(const float* x, void* out, int64_t n) {
  auto* y = static_cast<q4_0*>(out);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    const float max = signed_max(x, 32).value;
    const float d = max / -8, id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
      const uint8_t a = static_cast<uint8_t>(std::min(15, static_cast<int>(x[j] * id + 8.5f)));
      const uint8_t b = static_cast<uint8_t>(std::min(15, static_cast<int>(x[j + 16] * id + 8.5f)));
      y[i].qs[j] = a | (b << 4);
    }
  }
}

void quantize_q4_1(const float* x, void* out, int64_t n) {
  auto* y = static_cast<q4_1*>(out);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < 32; ++j) mn = std::min(mn, x[j]), mx = std::max(mx, x[j]);
    const float d = (mx - mn) / 15, id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(mn);
    for (int j = 0; j < 16; ++j) {
      const uint8_t a = static_cast<uint8_t>(std::min(15, static_cast<int>((x[j] - mn) * id + 0.5f)));
      const uint8_t b = static_cast<uint8_t>(std::min(15, static_cast<int>((x[j + 16] - mn) * id + 0.5f)));
      y[i].qs[j] = a | (b << 4);
    }
  }
}

void quantize_q5_0(const float* x, void* out, int64_t n) {
  auto* y = static_cast<q5_0*>(out);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    const float max = signed_max(x, 32).value;
    const float d = max / -16, id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const uint8_t a = static_cast<uint8_t>(std::min(31, static_cast<int>(x[j] * id + 16.5f)));
      const uint8_t b = static_cast<uint8_t>(std::min(31, static_cast<int>(x[j + 16] * id + 16.5f)));
      y[i].qs[j] = (a & 0xF) | ((b & 0xF) << 4);
      qh |= static_cast<uint32_t>((a & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((b & 0x10) >> 4) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void quantize_q5_1(const float* x, void* out, int64_t n) {
  auto* y = static_cast<q5_1*>(out);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < 32; ++j) mn = std::min(mn, x[j]), mx = std::max(mx, x[j]);
    const float d = (mx - mn) / 31, id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(mn);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const uint8_t a = static_cast<uint8_t>(std::min(31, static_cast<int>((x[j] - mn) * id + 0.5f)));
      const uint8_t b = static_cast<uint8_t>(std::min(31, static_cast<int>((x[j + 16] - mn) * id + 0.5f)));
      y[i].qs[j] = (a & 0xF) | ((b & 0xF) << 4);
      qh |= static_cast<uint32_t>((a & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((b & 0x10) >> 4) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

}  // namespace jing::detail
