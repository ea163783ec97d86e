// matmul (fast kernels where the CPU has them, else the portable path) against an independent
// reference for every zoo type: each weight row decoded with dequantize_row, activations rounded
// through the partner format (Q8_0 / Q8_1 / Q8_K) and the dot taken in double. Odd row counts
// and n_tokens in {1, 3, 17}, 512 and 1536 columns, so tails and the multi-token paths are covered. Weight rows are
// ggml's own blocks from the quant zoo (valid scales), repeated to the row count needed. Q4_1/Q5_1
// follow ggml in using the Q8_1 block's f16 sum (modelled in the reference).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "cpu/kernels.h"
#include "cpu/matmul.h"
#include "gguf/gguf.h"
#include "quant/blocks.h"
#include "quant/dequant.h"
#include "quant/fp16.h"
#include "quant/quantize_row.h"
#include "test_support.h"

using namespace jing;

namespace {

// Activations as the kernels see them after their partner-format rounding.
std::vector<float> rounded(GgmlType weight, const std::vector<float>& x, int64_t cols) {
  const GgmlType a = cpu::activation_type(weight);
  if (a == GgmlType::F32) return x;
  std::vector<float> out(x.size());
  std::vector<uint8_t> q(row_size(a, cols));
  for (size_t t = 0; t < x.size() / static_cast<size_t>(cols); ++t) {
    quantize_row(a, x.data() + t * cols, q.data(), cols);
    dequantize_row(a, q.data(), out.data() + t * cols, cols);
  }
  return out;
}

// ggml's Q4_1/Q5_1 dot takes the minimum's term as m * s with s the Q8_1 block's sum stored in
// f16, not d * sum(q) exactly: the difference that makes for one weight row and one token.
double q8_1_sum_rounding(GgmlType wtype, const uint8_t* w_row, const float* x, int64_t cols) {
  std::vector<uint8_t> q(row_size(GgmlType::Q8_1, cols));
  quantize_row(GgmlType::Q8_1, x, q.data(), cols);
  const auto* xb = reinterpret_cast<const blocks::q8_1*>(q.data());
  const size_t w_block = traits(wtype).type_size;  // m: the f16 after d in both formats
  double diff = 0;
  for (int64_t b = 0; b < cols / 32; ++b) {
    uint16_t m;
    std::memcpy(&m, w_row + b * w_block + 2, 2);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += xb[b].qs[j];
    diff += static_cast<double>(fp16_to_fp32(m)) * (fp16_to_fp32(xb[b].s) - static_cast<double>(fp16_to_fp32(xb[b].d)) * sum);
  }
  return diff;
}

}  // namespace

TEST(MatmulRandom, EveryTypeMatchesReferenceForOddShapes) {
  JING_FIXTURE_OR_SKIP(path, "quants/quant-zoo.gguf");
  auto zoo = gguf::File::open(path);
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0, 1);
  for (const char* name : {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ1_S",
                           "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4"}) {
    SCOPED_TRACE(name);
    const auto& src = zoo.tensor(std::string(name) + ".w");
    const int64_t src_rows = src.ne[1];
    const size_t src_rb = src.row_bytes();
    // Width 3 (1536 columns: rows of three zoo rows end to end) crosses the matrix-matrix
    // kernels' 1024-column chunks.
    for (auto [width, rows] : {std::pair<int64_t, int64_t>{1, 7}, {1, 301}, {3, 45}}) {
      const int64_t cols = src.ne[0] * width;
      const size_t rb = src_rb * static_cast<size_t>(width);
      // Rows cycle through the zoo's rows with a stride, so neighbours differ.
      std::vector<uint8_t> w(rb * static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t p = 0; p < width; ++p)
          std::memcpy(w.data() + r * rb + p * src_rb, src.data + ((r * 5 + p) % src_rows) * src_rb, src_rb);
      const cpu::WeightView view{src.type, w.data(), cols, rows, rb};
      std::vector<float> deq(static_cast<size_t>(cols * rows));
      for (int64_t r = 0; r < rows; ++r) dequantize_row(src.type, w.data() + r * rb, deq.data() + r * cols, cols);
      for (int64_t n_tokens : {int64_t{1}, int64_t{3}, int64_t{17}}) {
        SCOPED_TRACE("cols " + std::to_string(cols) + " rows " + std::to_string(rows) + " tokens " + std::to_string(n_tokens));
        std::vector<float> x(static_cast<size_t>(cols * n_tokens));
        for (auto& v : x) v = nd(rng);
        const auto xr = rounded(src.type, x, cols);
        std::vector<float> y(static_cast<size_t>(rows * n_tokens), NAN);
        cpu::matmul(view, x.data(), n_tokens, y.data(), 2);
        double worst = 0;
        for (int64_t t = 0; t < n_tokens; ++t)
          for (int64_t r = 0; r < rows; ++r) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < cols; ++k) {
              const double p = static_cast<double>(deq[r * cols + k]) * xr[t * cols + k];
              ref += p, mag += std::fabs(p);
            }
            // (The AVX2/AVX-512 kernels follow ggml there; the portable path sums exactly.)
            if (cpu::activation_type(src.type) == GgmlType::Q8_1 && cpu::simd_available()) ref += q8_1_sum_rounding(src.type, w.data() + r * rb, x.data() + t * cols, cols);
            // Relative to the sum of |products|: float summation order is free, cancellation is not an error.
            const double err = std::fabs(y[t * rows + r] - ref) / std::max(mag, 1e-20);
            if (!(err <= worst)) worst = err;  // (a NaN output sticks and fails below)
          }
        EXPECT_LE(worst, 1e-5);
      }
    }
  }
}

// cpu::matvecs (a token's products in one parallel region: MoE experts, q/k/v) gives each
// product exactly what matmul gives it alone, for every zoo type, with inputs shared (gate and
// up) and not, and rows of several products split over the threads.
TEST(MatmulRandom, MatvecsEqualsMatmulPerProduct) {
  JING_FIXTURE_OR_SKIP(path, "quants/quant-zoo.gguf");
  auto zoo = gguf::File::open(path);
  std::mt19937 rng(43);
  std::normal_distribution<float> nd(0, 1);
  for (const char* name : {"F16", "Q4_0", "Q4_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS",
                           "IQ3_S", "IQ4_XS", "TQ1_0", "MXFP4"}) {
    SCOPED_TRACE(name);
    const auto& src = zoo.tensor(std::string(name) + ".w");
    const int64_t cols = src.ne[0], rows = src.ne[1];
    const size_t rb = src.row_bytes();
    // Three products: two over the same input (gate and up), one over another, of different row counts.
    const cpu::WeightView ws[3] = {{src.type, src.data, cols, rows, rb},
                                   {src.type, src.data + rb, cols, rows - 1, rb},
                                   {src.type, src.data + 2 * rb, cols, rows - 3, rb}};
    std::vector<float> x0(static_cast<size_t>(cols)), x1(static_cast<size_t>(cols));
    for (auto& v : x0) v = nd(rng);
    for (auto& v : x1) v = nd(rng);
    const float* xs[3] = {x0.data(), x0.data(), x1.data()};
    std::vector<float> got[3], want[3];
    float* ys[3];
    for (int i = 0; i < 3; ++i) {
      got[i].assign(static_cast<size_t>(ws[i].rows), NAN);
      want[i].assign(static_cast<size_t>(ws[i].rows), NAN);
      ys[i] = got[i].data();
      cpu::matmul(ws[i], xs[i], 1, want[i].data(), 2);
    }
    cpu::matvecs(ws, xs, ys, 3, 2);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(0, std::memcmp(got[i].data(), want[i].data(), got[i].size() * sizeof(float))) << "product " << i;
  }
}
