// CPU matrix multiplication over any ggml weight type: the op every model layer spends its time in.
// (Contract shared by src/model and src/cpu; implemented in src/cpu.)
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace jing::cpu {

// A weight matrix as GGUF stores it: `rows` rows of `cols` elements each, row-major, in `type`.
// For a 3-D expert tensor [cols, rows, n_expert], expert e is at data + e * rows * row_bytes.
struct WeightView {
  GgmlType type = GgmlType::F32;
  const void* data = nullptr;
  int64_t cols = 0;  // K: the input size (ne[0])
  int64_t rows = 0;  // N: the output size (ne[1])
  size_t row_bytes = 0;
  bool tiled = false;  // Q4_K, Q5_K, Q2_K, Q4_0 or IQ4_XS in 8-row tiles (cpu/row_tiles.h): made and read by the CPU backend only
};

// y[m][n] = sum_k W[n][k] * x[m][k] for m < n_tokens (x: [n_tokens][cols], y: [n_tokens][rows]).
// n_tokens == 1 is the decode (matrix-vector) path; larger counts use the matrix-matrix path.
// Runs on the calling thread pool (OpenMP) with n_threads threads (0: the default).
void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, int n_threads = 0);

// Several products of one token each, y_i = W_i x_i (i < count), in one parallel region: the
// rows of all of them split over the threads (a MoE layer's experts at decode, each too small to
// keep the threads busy alone). Results equal matmul()'s for each product.
void matvecs(const WeightView* ws, const float* const* xs, float* const* ys, int count, int n_threads = 0);

// The format ggml converts activations to before its dot product with a weight type
// (Q8_0, Q8_1 or Q8_K; F32 for float weights).
GgmlType activation_type(GgmlType weight_type);

// Threads used when a caller passes 0: JING_THREADS, else the number of physical cores.
int default_threads();

}  // namespace jing::cpu
