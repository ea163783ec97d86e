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

// Rounds to nearest as ggml does: the float magic-number trick (ties go to even).
inline int nearest_int(float v) {
  float f = v + 12582912.f;
  int i;
  __builtin_memcpy(&i, &f, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// The element of largest magnitude (the first of equals) with that magnitude: symmetric scales
// take their sign from it, as ggml's quantizers do.
struct SignedMax {
  float value, magnitude;
};
inline SignedMax signed_max(const float* x, int64_t n) {
  SignedMax m{0, 0};
  for (int64_t i = 0; i < n; ++i)
    if (__builtin_fabsf(x[i]) > m.magnitude) m = {x[i], __builtin_fabsf(x[i])};
  return m;
}

}  // namespace jing::detail
