// Per-family quantizer entry points behind quantize_rows (one row of n elements each).
#pragma once
#include <cstdint>

namespace jing::detail {

void quantize_q4_0(const float* x, void* out, int64_t n);
void quantize_q4_1(const float* x, void* out, int64_t n);
void quantize_q5_0(const float* x, void* out, int64_t n);
void quantize_q5_1(const float* x, void* out, int64_t n);
void quantize_q2_K(const float* x, void* out, int64_t n, const float* imatrix);
void quantize_q3_K(const float* x, void* out, int64_t n, const float* imatrix);
void quantize_q4_K(const float* x, void* out, int64_t n, const float* imatrix);
void quantize_q5_K(const float* x, void* out, int64_t n, const float* imatrix);
void quantize_q6_K(const float* x, void* out, int64_t n, const float* imatrix);
void quantize_iq4_nl(const float* x, void* out, int64_t n, const float* imatrix);
void quantize_iq4_xs(const float* x, void* out, int64_t n, const float* imatrix);

// Rounds to nearest as ggml does (ties away via the float magic-number trick).
inline int nearest_int(float v) {
  float f = v + 12582912.f;
  int i;
  __builtin_memcpy(&i, &f, 4);
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace jing::detail
