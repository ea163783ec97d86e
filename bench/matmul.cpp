// GEMV (decode) throughput per weight type in GB/s of weights read, GEMM (prompt) in GFLOP/s at
// batch 512, with this machine's measured memory read bandwidth printed beside them.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/kernels_simd.h"
#include "cpu/matmul.h"
#include "quant/quantize.h"

using namespace jing;

namespace {

struct Weights {
  std::vector<uint8_t> data;
  size_t copies = 1;
  cpu::WeightView view;  // the first copy
};

Weights make(GgmlType t, int64_t rows, int64_t cols) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 0.02f);
  std::vector<float> pool(static_cast<size_t>(cols) * 16);
  for (auto& x : pool) x = nd(rng);
  const size_t rb = row_size(t, cols);
  std::vector<uint8_t> qpool(rb * 16);
  if (can_quantize(t)) {
    quantize_rows(t, pool.data(), qpool.data(), 16, cols);
  } else {  // no quantizer for this type: random bytes run the same instructions (no value-dependent branches)
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : qpool) b = static_cast<uint8_t>(byte(rng));
  }
  // Enough copies of the matrix to overflow the last-level cache: each iteration reads the next
  // copy, so GEMV figures are DRAM streaming rates, not cache rates.
  Weights w;
  const size_t one = rb * static_cast<size_t>(rows);
  w.copies = std::max<size_t>(1, (size_t{256} << 20) / one);
  w.data.resize(one * w.copies);
  for (int64_t r = 0; r < rows * static_cast<int64_t>(w.copies); ++r) std::memcpy(w.data.data() + r * rb, qpool.data() + (r % 16) * rb, rb);
  w.view = {t, w.data.data(), cols, rows, rb};
  return w;
}

cpu::WeightView copy_view(const Weights& w, size_t k) {
  cpu::WeightView v = w.view;
  v.data = w.data.data() + (k % w.copies) * w.view.row_bytes * static_cast<size_t>(w.view.rows);
  return v;
}

double read_bandwidth_gbs() {
  static double bw = [] {
    std::vector<float> big(static_cast<size_t>(256) << 20 >> 2, 1.0f);  // 256 MiB
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      double s = 0;
#pragma omp parallel for reduction(+ : s) num_threads(cpu::default_threads())
      for (size_t i = 0; i < big.size(); i += 16) s += big[i] + big[i + 4] + big[i + 8] + big[i + 12];
      double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      benchmark::DoNotOptimize(s);
      best = std::max(best, big.size() * 4.0 / sec / 1e9);
    }
    return best;
  }();
  return bw;
}

void gemv(benchmark::State& st, GgmlType t, int64_t rows, int64_t cols) {
  auto w = make(t, rows, cols);
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  size_t k = 0;
  for (auto _ : st) cpu::matmul(copy_view(w, k++), x.data(), 1, y.data());
  const double bytes = static_cast<double>(w.data.size() / w.copies);
  st.counters["GB/s"] = benchmark::Counter(bytes * st.iterations() / 1e9, benchmark::Counter::kIsRate);
  st.counters["mem_GB/s"] = read_bandwidth_gbs();
}

void gemm(benchmark::State& st, GgmlType t, int64_t rows, int64_t cols) {
  auto w = make(t, rows, cols);
  const int64_t n = 512;
  std::vector<float> x(static_cast<size_t>(cols * n), 0.5f), y(static_cast<size_t>(rows * n));
  for (auto _ : st) cpu::matmul(w.view, x.data(), n, y.data());
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * cols * n * st.iterations() / 1e9, benchmark::Counter::kIsRate);
}

// The same product with float activations: the weight panel decoded to float and multiplied by
// FMA (the AVX-512 float kernel), for comparison with the 8-bit integer kernels above.
void gemm_float_activations(benchmark::State& st, GgmlType t, int64_t rows, int64_t cols) {
  if (!cpu::avx512_available()) {
    st.SkipWithError("needs AVX-512");
    return;
  }
  auto w = make(t, rows, cols);
  const int64_t n = 512;
  std::vector<float> x(static_cast<size_t>(cols * n), 0.5f), y(static_cast<size_t>(rows * n));
  for (auto _ : st) cpu::avx512::gemm_float(w.view, x.data(), n, y.data(), cpu::default_threads());
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * cols * n * st.iterations() / 1e9, benchmark::Counter::kIsRate);
}

}  // namespace

#define GEMV(T) \
  BENCHMARK_CAPTURE(gemv, T##_4096x4096, GgmlType::T, 4096, 4096)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(gemv, T##_8960x1536, GgmlType::T, 8960, 1536)->Unit(benchmark::kMillisecond)->UseRealTime();
GEMV(Q4_K)
GEMV(Q6_K)
GEMV(Q8_0)
GEMV(F16)
GEMV(Q5_K)
GEMV(Q3_K)
GEMV(Q2_K)
GEMV(Q5_0)
GEMV(Q4_0)
GEMV(IQ4_XS)
GEMV(IQ1_S)
GEMV(Q4_1)
GEMV(Q5_1)
GEMV(MXFP4)
GEMV(IQ4_NL)
GEMV(IQ2_XXS)
GEMV(IQ2_XS)
GEMV(IQ2_S)
GEMV(IQ3_XXS)
GEMV(IQ3_S)
GEMV(IQ1_M)
GEMV(TQ2_0)
GEMV(BF16)

#define GEMM(T) \
  BENCHMARK_CAPTURE(gemm, T##_8960x1536_b512, GgmlType::T, 8960, 1536)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
GEMM(Q4_K)
GEMM(Q6_K)
GEMM(Q5_K)
GEMM(Q3_K)
GEMM(Q2_K)
GEMM(Q8_0)
GEMM(Q4_0)
GEMM(Q4_1)
GEMM(IQ4_NL)
GEMM(IQ4_XS)
GEMM(IQ1_S)
GEMM(IQ2_XS)
GEMM(F16)
GEMM(BF16)
BENCHMARK_CAPTURE(gemm_float_activations, Q4_K_8960x1536_b512, GgmlType::Q4_K, 8960, 1536)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK_CAPTURE(gemm_float_activations, Q8_0_8960x1536_b512, GgmlType::Q8_0, 8960, 1536)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

BENCHMARK_MAIN();
