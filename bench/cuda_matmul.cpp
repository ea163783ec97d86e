// CUDA matrix products: GEMV bandwidth (GB/s of weights read, one token) and GEMM TFLOP/s (512
// tokens) per weight type at 4096 x 14336 (Llama-8B's ffn_up), beside the device's copy bandwidth
// measured in the same run. Weights rotate through enough copies to overflow the L2 cache.
// Usage: bench_cuda_matmul [TYPE...]   (default: Q4_K Q6_K Q8_0 IQ1_S IQ2_XXS)
#include <cstdio>

#ifndef JING_WITH_CUDA
int main() {
  std::printf("built without CUDA (JING_CUDA=OFF)\n");
  return 0;
}
#else
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda/device.h"
#include "cuda/kernels.h"
#include "cuda/matmul.h"
#include "quant/quantize.h"

using namespace jing;

namespace {

// Median of `reps` timings (ms) of `iters` back-to-back calls, after a warm-up.
double time_ms(const cuda::Stream& s, int iters, const std::function<void(int)>& body, int reps = 7) {
  auto st = static_cast<cudaStream_t>(s.handle());
  cudaEvent_t a, b;
  cudaEventCreate(&a), cudaEventCreate(&b);
  for (int i = 0; i < 3; ++i) body(i);
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    cudaEventRecord(a, st);
    for (int i = 0; i < iters; ++i) body(i);
    cudaEventRecord(b, st);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    t.push_back(ms / iters);
  }
  cudaEventDestroy(a), cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The same, but the `iters` calls captured once into a CUDA graph and replayed: the GPU's time
// without the host's launch overhead (how a model's decode step runs them).
double graph_ms(const cuda::Stream& s, int iters, const std::function<void(int)>& body) {
  auto st = static_cast<cudaStream_t>(s.handle());
  for (int i = 0; i < 3; ++i) body(i);  // scratch buffers allocated before capture
  cudaGraph_t g;
  cudaGraphExec_t exec;
  cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
  for (int i = 0; i < iters; ++i) body(i);
  cudaStreamEndCapture(st, &g);
  cudaGraphInstantiate(&exec, g, 0);
  const double ms = time_ms(s, 1, [&](int) { cudaGraphLaunch(exec, st); }, 9);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(g);
  return ms / iters;
}

struct Weights {
  cuda::DeviceBuffer buf;
  size_t one = 0;  // bytes of one copy
  int copies = 1;
  cuda::WeightView view(int i) const {
    return {type, static_cast<const uint8_t*>(buf.data()) + static_cast<size_t>(i % copies) * one, cols, rows, row_size(type, cols)};
  }
  GgmlType type;
  int64_t rows, cols;
};

Weights make(GgmlType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  const size_t rb = row_size(t, cols);
  std::vector<uint8_t> pool(rb * 16);
  if (can_quantize(t)) {
    std::normal_distribution<float> nd(0, 0.02f);
    std::vector<float> f(static_cast<size_t>(cols) * 16);
    for (auto& x : f) x = nd(rng);
    quantize_rows(t, f.data(), pool.data(), 16, cols);
  } else {  // no quantizer: random bytes run the same instructions (no value-dependent branches)
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : pool) b = static_cast<uint8_t>(byte(rng));
  }
  Weights w;
  w.type = t, w.rows = rows, w.cols = cols;
  w.one = rb * static_cast<size_t>(rows);
  w.copies = static_cast<int>(std::max<size_t>(2, (size_t{768} << 20) / w.one));  // >= 12x the 60 MB L2
  std::vector<uint8_t> host(w.one);
  for (int64_t r = 0; r < rows; ++r) std::copy_n(pool.data() + (r % 16) * rb, rb, host.data() + r * rb);
  w.buf.reserve(w.one * static_cast<size_t>(w.copies));
  for (int c = 0; c < w.copies; ++c) w.buf.upload(host.data(), w.one, static_cast<size_t>(c) * w.one);
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  if (!cuda::available()) {
    std::printf("no CUDA device\n");
    return 0;
  }
  std::vector<std::string> names;
  int64_t K = 4096, N = 14336;  // an argument ROWSxCOLS sets the shape (e.g. 8960x1536: a 1.5B model's ffn_up)
  int experts = 0;                // --experts E: also E products of one token over E such matrices in one launch (MoE decode)
  for (int i = 1; i < argc; ++i) {
    long long r = 0, c = 0;
    char tail = 0;
    if (std::string(argv[i]) == "--experts" && i + 1 < argc) experts = std::atoi(argv[++i]);
    else if (std::sscanf(argv[i], "%lldx%lld%c", &r, &c, &tail) == 2 && r > 0 && c > 0) N = r, K = c;
    else names.push_back(argv[i]);
  }
  if (names.empty()) names = {"Q4_K", "Q6_K", "Q8_0", "IQ1_S", "IQ2_XXS"};
  cuda::Stream stream;
  cuda::Matmul mm(stream);
  const auto st = static_cast<cudaStream_t>(stream.handle());
  std::printf("device: %s\n", cuda::device_name(0).c_str());

  // Copy bandwidth: bytes read + bytes written per second, 1 GiB device to device.
  const size_t copy_bytes = size_t{1} << 30;
  cuda::DeviceBuffer src(copy_bytes), dst(copy_bytes);
  cudaMemsetAsync(src.data(), 1, copy_bytes, st);
  const double copy_ms = time_ms(stream, 5, [&](int) { cudaMemcpyAsync(dst.data(), src.data(), copy_bytes, cudaMemcpyDeviceToDevice, st); });
  const double copy_gbs = 2.0 * copy_bytes / copy_ms / 1e6;
  std::printf("copy bandwidth (cudaMemcpy D2D, read+write): %.0f GB/s\n\n", copy_gbs);

  std::printf("shape: %lld rows x %lld columns\n", static_cast<long long>(N), static_cast<long long>(K));
  std::mt19937 rng(1);
  std::vector<float> xh(static_cast<size_t>(512 * K));
  std::normal_distribution<float> nd(0, 1);
  for (auto& v : xh) v = nd(rng);
  cuda::DeviceBuffer x(xh.size() * 4), y(static_cast<size_t>(512 * N) * 4);
  x.upload(xh.data(), xh.size() * 4);

  std::printf("%-8s %7s | %8s %8s %6s %6s | %7s %7s %7s | %8s %8s %8s | %8s %8s\n", "type", "MB", "gemv1 us", "graph us", "GB/s", "%copy",
              "gemv2", "gemv4", "gemv8", "gemm16", "gemm64", "gemm512", "TFLOP/s", "f16 copy");
  for (const auto& name : names) {
    const auto t = type_from_name(name);
    if (!t || !cuda::supports(*t)) {
      std::printf("%-8s unknown or unsupported\n", name.c_str());
      continue;
    }
    Weights w = make(*t, N, K, rng);
    auto gemv_body = [&](int n) { return [&, n](int i) { mm.run_gemv(w.view(i), x.as<float>(), n, y.as<float>()); }; };
    auto gemm = [&](int n) { return time_ms(stream, 10, [&](int i) { mm.run_gemm(w.view(i), x.as<float>(), n, y.as<float>()); }) * 1e3; };
    const double eager1 = time_ms(stream, 40, gemv_body(1)) * 1e3;
    const double g1 = graph_ms(stream, 40, gemv_body(1)) * 1e3, g2 = graph_ms(stream, 40, gemv_body(2)) * 1e3;
    const double g4 = graph_ms(stream, 40, gemv_body(4)) * 1e3, g8 = graph_ms(stream, 40, gemv_body(8)) * 1e3;
    const double m16 = gemm(16), m64 = gemm(64), m512 = gemm(512);
    const double gbs = w.one / g1 / 1e3;
    cuda::DeviceBuffer f16(static_cast<size_t>(N * K) * 2);
    const auto tab = cuda::detail::device_tables();
    const double deq = time_ms(stream, 10, [&](int i) {
      cuda::detail::dequantize(w.type, w.view(i).data, w.view(i).row_bytes, N, K, f16.data(), true, tab, st);
    }) * 1e3;
    std::printf("%-8s %7.1f | %8.1f %8.1f %6.0f %5.0f%% | %7.1f %7.1f %7.1f | %8.1f %8.1f %8.1f | %8.1f %8.1f\n", name.c_str(), w.one / 1e6, eager1, g1, gbs,
                100 * gbs / copy_gbs, g2, g4, g8, m16, m64, m512, 2.0 * N * K * 512 / m512 / 1e6, deq);
    if (cuda::Matmul::few_supported(w.view(0))) {  // 9-64 tokens (batched decode) on the tensor cores, each weight read once
      std::printf("%-8s %7s   tensor cores, few tokens:", "", "");
      for (int n : {16, 32, 64}) {
        const double us = graph_ms(stream, 20, [&](int i) { mm.run_few(w.view(i), x.as<float>(), n, y.as<float>()); }) * 1e3;
        std::printf("  n=%d %.1f us (%.0f GB/s)", n, us, w.one / us / 1e3);
      }
      std::printf("\n");
    }
    if (experts > 0) {  // E matrices back to back, product p = matrix p times the one token
      Weights we = make(*t, N * experts, K, rng);
      cuda::GemvBatch b;
      b.count = experts, b.n_mats = experts, b.x_div = experts, b.y_stride = N;
      const double us = graph_ms(stream, 40, [&](int i) {
        cuda::WeightView v = we.view(i);
        v.rows = N;
        const cuda::WeightView* ws[1] = {&v};
        float* ys[1] = {y.as<float>()};
        mm.run_batched(ws, ys, 1, b, x.as<float>(), 1);
      }) * 1e3;
      std::printf("%-8s %d experts of %lld x %lld in one launch: %.1f us, %.0f GB/s (%.0f%% of copy)\n", name.c_str(), experts,
                  static_cast<long long>(N), static_cast<long long>(K), us, we.one / us / 1e3, 100 * we.one / us / 1e3 / copy_gbs);
    }
  }
  std::printf("(gemv: microseconds per call, 'graph' = replayed from a CUDA graph; GB/s = weight bytes / graph time;\n 'f16 copy' = the matrix path's dequantization of all weights to f16, microseconds)\n");
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    std::printf("CUDA error: %s\n", cudaGetErrorString(e));
    return 1;
  }
  return 0;
}
#endif
