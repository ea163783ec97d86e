// Entry points of the instruction-set-specific kernels (compiled with their own flags).
#pragma once
#include <cstdint>

namespace jing::cpu::avx2 {
float dot_q4_K(const void* w, const void* x_q8k, int64_t n);
float dot_q6_K(const void* w, const void* x_q8k, int64_t n);
float dot_q8_0(const void* w, const void* x_q80, int64_t n);
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16(const void* w, const float* b, int64_t n);
}  // namespace jing::cpu::avx2
