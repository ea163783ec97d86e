// Matrix multiplication over any weight type. The portable path decodes each weight row once
// into float (L1-resident) and reuses it for every token of the batch; types with a fast kernel
// (see kernels.h) take that path instead.
#include "cpu/matmul.h"

#include "common/error.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/kernels_simd.h"
#include "quant/dequant.h"
#include "quant/quantize_row.h"

namespace jing::cpu {

int default_threads() {
  static const int n = [] {
    if (const char* env = std::getenv("JING_THREADS"); env && std::atoi(env) > 0) return std::atoi(env);
    // Physical cores: distinct (physical id, core id) pairs; hyper-threads share a core's units.
    std::ifstream in("/proc/cpuinfo");
    std::set<std::pair<int, int>> cores;
    std::string line;
    int phys = 0;
    while (std::getline(in, line)) {
      if (line.rfind("physical id", 0) == 0) phys = std::atoi(line.substr(line.find(':') + 1).c_str());
      if (line.rfind("core id", 0) == 0) cores.insert({phys, std::atoi(line.substr(line.find(':') + 1).c_str())});
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cores.empty() ? static_cast<int>(online) : static_cast<int>(cores.size());
    return std::max(1, std::min<int>(n, static_cast<int>(online)));
  }();
  return n;
}

float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

GgmlType activation_type(GgmlType w) {
  switch (w) {
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: case GgmlType::IQ4_NL: case GgmlType::MXFP4:
    case GgmlType::NVFP4: case GgmlType::Q1_0: case GgmlType::Q2_0:
      return GgmlType::Q8_0;
    case GgmlType::Q4_1: case GgmlType::Q5_1:
      return GgmlType::Q8_1;
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
      return GgmlType::F32;
    default:
      return GgmlType::Q8_K;  // k-quants, i-quants, ternary
  }
}

void round_activations(GgmlType w, const float* x, int64_t n_tokens, int64_t cols, std::vector<float>& out) {
  const GgmlType a = activation_type(w);
  out.resize(static_cast<size_t>(n_tokens * cols));
  if (a == GgmlType::F32 || cols % traits(a).block_size) {
    std::copy(x, x + n_tokens * cols, out.begin());
    return;
  }
  std::vector<uint8_t> q(row_size(a, cols));
  for (int64_t t = 0; t < n_tokens; ++t) {
    quantize_row(a, x + t * cols, q.data(), cols);
    dequantize_row(a, q.data(), out.data() + t * cols, cols);
  }
}

void matvecs(const WeightView* ws, const float* const* xs, float* const* ys, int count, int n_threads) {
  if (n_threads <= 0) n_threads = default_threads();
  if (matvecs_fast(ws, xs, ys, count, n_threads)) return;
  for (int i = 0; i < count; ++i) matmul(ws[i], xs[i], 1, ys[i], n_threads);
}

void matmul(const WeightView& w, const float* x_in, int64_t n_tokens, float* y, int n_threads) {
  if (n_threads <= 0) n_threads = default_threads();
  if (matmul_fast(w, x_in, n_tokens, y, n_threads)) return;
  if (w.tiled) throw Error("tiled weights are read by the AVX-512 kernels only");
  const int64_t rows = w.rows, cols = w.cols;
  // Activations are rounded through the weight type's partner format (Q8_0, Q8_1, Q8_K) as
  // ggml's integer dot products do, so results track llama.cpp's closely.
  std::vector<float> xq;
  round_activations(w.type, x_in, n_tokens, cols, xq);
  const float* x = xq.data();
  // Several tokens on AVX-512: decode each weight panel once and multiply in float.
  if (n_tokens >= 4 && avx512_available() && avx512::gemm_float(w, x, n_tokens, y, threads_for(rows * cols * n_tokens, n_threads)))
    return;
  const bool is_f32 = w.type == GgmlType::F32;
  n_threads = threads_for(rows * cols * n_tokens, n_threads);
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
  {
    std::vector<float> row(is_f32 ? 0 : static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const auto* src = static_cast<const uint8_t*>(w.data) + r * w.row_bytes;
      const float* wr = reinterpret_cast<const float*>(src);
      if (!is_f32) {
        dequantize_row(w.type, src, row.data(), cols);
        wr = row.data();
      }
      for (int64_t t = 0; t < n_tokens; ++t) y[t * rows + r] = dot_f32(wr, x + t * cols, cols);
    }
  }
}

}  // namespace jing::cpu
