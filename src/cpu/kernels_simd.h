// Entry points of the instruction-set-specific kernels (compiled with their own flags; call them
// only after the CPU checks in kernels.cpp). Dot products take one weight row and one activation
// row in the weight type's partner format (Q8_K, Q8_0, Q8_1) or float; matrix kernels take whole
// matrices and n_tokens activation rows act_row bytes apart, and return false for a type or shape
// they do not cover.
#pragma once
#include <cstddef>
#include <cstdint>

namespace jing::cpu {
struct WeightView;
}

namespace jing::cpu::avx2 {
// kernels_avx2.cpp
float dot_q4_K(const void* w, const void* x_q8k, int64_t n);
// Four activation rows (x_stride bytes apart) against one Q4_K row: out4[t].
void dot_q4_K_x4(const void* w, const void* x_q8k, size_t x_stride, int64_t n, float* out4);
float dot_q6_K(const void* w, const void* x_q8k, int64_t n);
float dot_q8_0(const void* w, const void* x_q80, int64_t n);
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16(const void* w, const float* b, int64_t n);
float dot_bf16(const void* w, const float* b, int64_t n);
// Attention's score q . k in avx512::score_dot's order (bit for bit, with 8-lane registers).
float score_dot(const float* a, const float* b, int64_t n);
// acc[0..n) (f16 values) = f16(f16(acc) * scale + v * weight), the product fused into the add:
// ggml's f16 attention accumulator.
void f16_scale_mad(uint16_t* acc, float scale, const float* v, float weight, int n);
// out[t][r] = w_r . x_t for 4 tokens at once (weight row as float, read once).
void dot_rows_x4(const float* w, const float* x, int64_t x_stride, int64_t cols, float* out4);
// kernels_low_avx2.cpp
float dot_q2_K(const void* w, const void* x_q8k, int64_t n);
float dot_q3_K(const void* w, const void* x_q8k, int64_t n);
// kernels_iq_avx2.cpp
float dot_iq1_s(const void* w, const void* x_q8k, int64_t n);
float dot_iq1_m(const void* w, const void* x_q8k, int64_t n);
float dot_iq2_xxs(const void* w, const void* x_q8k, int64_t n);
float dot_iq2_xs(const void* w, const void* x_q8k, int64_t n);
float dot_iq2_s(const void* w, const void* x_q8k, int64_t n);
float dot_iq3_xxs(const void* w, const void* x_q8k, int64_t n);
float dot_iq3_s(const void* w, const void* x_q8k, int64_t n);
// kernels_more_avx2.cpp
float dot_q5_K(const void* w, const void* x_q8k, int64_t n);
float dot_iq4_xs(const void* w, const void* x_q8k, int64_t n);
float dot_q4_0(const void* w, const void* x_q80, int64_t n);
float dot_q5_0(const void* w, const void* x_q80, int64_t n);
float dot_iq4_nl(const void* w, const void* x_q80, int64_t n);
float dot_mxfp4(const void* w, const void* x_q80, int64_t n);
float dot_q4_1(const void* w, const void* x_q81, int64_t n);
float dot_q5_1(const void* w, const void* x_q81, int64_t n);
// gemm_kquant_avx2.cpp: the 256-value formats but IQ4_XS (Q8_K rows).
bool gemm_kquant(const WeightView& w, const void* x_q8k, size_t act_row, int64_t n_tokens, float* y, int n_threads);
// gemm_q8_avx2.cpp: the 32-value formats (Q8_0 rows; Q8_1 rows for Q4_1, Q5_1).
bool gemm_q8(const WeightView& w, const void* x_blocks, size_t act_row, int64_t n_tokens, float* y, int n_threads);
}  // namespace jing::cpu::avx2

namespace jing::cpu::avxvnni {
// gemm_kquant_avxvnni.cpp: as avx2::gemm_kquant with VPDPBUSD (and IQ4_XS).
bool gemm_kquant(const WeightView& w, const void* x_q8k, size_t act_row, int64_t n_tokens, float* y, int n_threads);
}  // namespace jing::cpu::avxvnni

namespace jing::cpu::avx512 {
// kernels_avx512.cpp: attention's vector primitives (as the avx2:: ones, 16 lanes). score_dot
// sets the summation order that avx2::score_dot, the portable one and the GPU's reproduce.
float score_dot(const float* a, const float* b, int64_t n);
void f16_scale_mad(uint16_t* acc, float scale, const float* v, float weight, int n);
// gemv_kquant_avx512.cpp: decode dot products (as the avx2:: ones, 128 weights per step, VNNI).
float dot_q2_K(const void* w, const void* x_q8k, int64_t n);
float dot_q3_K(const void* w, const void* x_q8k, int64_t n);
float dot_q4_K(const void* w, const void* x_q8k, int64_t n);
float dot_q5_K(const void* w, const void* x_q8k, int64_t n);
float dot_q6_K(const void* w, const void* x_q8k, int64_t n);
// kernels_legacy_avx512.cpp: 32-value formats with Q8_0 activations.
float dot_q5_0(const void* w, const void* x_q80, int64_t n);
// kernels_iq_avx512.cpp: i-quants (64 values a step, signs as a mask).
float dot_iq1_m(const void* w, const void* x_q8k, int64_t n);
float dot_iq2_xxs(const void* w, const void* x_q8k, int64_t n);
float dot_iq2_xs(const void* w, const void* x_q8k, int64_t n);
float dot_iq3_xxs(const void* w, const void* x_q8k, int64_t n);
float dot_iq3_s(const void* w, const void* x_q8k, int64_t n);
// gemm_float_avx512.cpp: F16 / BF16 / F32 weights (and any decodable type), float activations.
bool gemm_float(const WeightView& w, const float* x, int64_t n_tokens, float* y, int n_threads);
// gemm_q8_avx512.cpp: the 32-value formats (Q8_0 rows; Q8_1 rows for Q4_1, Q5_1).
bool gemm_q8(const WeightView& w, const void* x_blocks, size_t act_row, int64_t n_tokens, float* y, int n_threads);
// gemm_kquant_avx512.cpp: the K-quants, i-quants and ternary formats (Q8_K rows).
bool gemm_kquant(const WeightView& w, const void* x_q8k, size_t act_row, int64_t n_tokens, float* y, int n_threads);
// gemv_{q4k,q2k,q40,iq4xs}_tiles_avx512.cpp: y[0..7] = the 8 rows of one group of tiled Q4_K /
// Q5_K / Q2_K / Q4_0 / IQ4_XS (cpu/row_tiles.h) times x (one activation row of cols values: Q8_0 for Q4_0,
// Q8_K for the others).
void q4k_tiles_dot8(const void* group, const void* x_q8k, int64_t cols, float* y8);
void q5k_tiles_dot8(const void* group, const void* x_q8k, int64_t cols, float* y8);
void q4k_tiles_dot8_prefetch(const void* group, const void* x_q8k, int64_t cols, float* y8);  // the same, prefetching ahead (Intel)
void q5k_tiles_dot8_prefetch(const void* group, const void* x_q8k, int64_t cols, float* y8);
void q2k_tiles_dot8(const void* group, const void* x_q8k, int64_t cols, float* y8);
void q2k_tiles_dot8_prefetch(const void* group, const void* x_q8k, int64_t cols, float* y8);
void q40_tiles_dot8(const void* group, const void* x_q80, int64_t cols, float* y8);
void q40_tiles_dot8_prefetch(const void* group, const void* x_q80, int64_t cols, float* y8);
void iq4xs_tiles_dot8(const void* group, const void* x_q8k, int64_t cols, float* y8);
void iq4xs_tiles_dot8_prefetch(const void* group, const void* x_q8k, int64_t cols, float* y8);
}  // namespace jing::cpu::avx512
