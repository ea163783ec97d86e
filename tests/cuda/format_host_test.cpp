// The CUDA block decoders (src/cuda/formats*.cuh) compiled for the host, against the CPU engine:
// every item of every zoo block dequantizes bit for bit as dequantize_row, and the integer dot
// products with 8-bit activations match cpu::matmul. Needs no GPU, so it runs in CI.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "cpu/matmul.h"
#include "cuda/formats.cuh"
#include "gguf/gguf.h"
#include "quant/blocks.h"
#include "quant/dequant.h"
#include "quant/fp16.h"
#include "quant/iq_tables.h"
#include "quant/quantize_row.h"
#include "test_support.h"

using namespace jing;
namespace fmt = jing::cuda::fmt;

namespace {

const char* const kZooTypes[] = {"F16",  "BF16",  "Q4_0",    "Q4_1",   "Q5_0",  "Q5_1",    "Q8_0",  "Q2_K",   "Q3_K",   "Q4_K",  "Q5_K",  "Q6_K",
                                 "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4"};

fmt::Tables host_tables() {
  fmt::Tables t;
  t.iq2xxs = iq::iq2xxs_grid, t.iq2xs = iq::iq2xs_grid, t.iq2s = iq::iq2s_grid, t.iq3xxs = iq::iq3xxs_grid, t.iq3s = iq::iq3s_grid;
  t.iq1s = iq::iq1s_grid, t.ksigns = iq::ksigns_iq2xs, t.iq4nl = iq::kvalues_iq4nl, t.fp4 = iq::kvalues_fp4;
  static const std::vector<uint32_t> iq1s_nib = [] {
    std::vector<uint32_t> n(fmt::kIq1sGridEntries);
    for (int i = 0; i < fmt::kIq1sGridEntries; ++i) n[i] = fmt::iq1s_nibbles(iq::iq1s_grid[i]);
    return n;
  }();
  t.iq1s_nib = iq1s_nib.data();
  return t;
}

// The CPU's activation blocks as the kernels' 32-value items.
std::vector<fmt::Q8Item> q8_items(GgmlType weight, const float* x, int64_t cols) {
  const GgmlType a = cpu::activation_type(weight);
  std::vector<uint8_t> q(row_size(a, cols));
  quantize_row(a, x, q.data(), cols);
  std::vector<fmt::Q8Item> items(static_cast<size_t>(cols / 32));
  for (size_t g = 0; g < items.size(); ++g) {
    fmt::Q8Item& it = items[g];
    const int8_t* qs;
    if (a == GgmlType::Q8_K) {
      const auto& b = reinterpret_cast<const blocks::q8_K*>(q.data())[g / 8];
      it.d = b.d, it.s = 0, qs = b.qs + 32 * (g % 8);
      it.sum0 = b.bsums[2 * (g % 8)], it.sum1 = b.bsums[2 * (g % 8) + 1];
    } else {
      uint16_t d, s = 0;
      if (a == GgmlType::Q8_1) {
        const auto& b = reinterpret_cast<const blocks::q8_1*>(q.data())[g];
        d = b.d, s = b.s, qs = b.qs;
      } else {
        const auto& b = reinterpret_cast<const blocks::q8_0*>(q.data())[g];
        d = b.d, qs = b.qs;
      }
      it.d = fp16_to_fp32(d), it.s = fp16_to_fp32(s);
      it.sum0 = it.sum1 = 0;
      for (int j = 0; j < 16; ++j) it.sum0 += qs[j], it.sum1 += qs[16 + j];
    }
    std::memcpy(it.q, qs, 32);
  }
  return items;
}

}  // namespace

TEST(CudaFormats, HostDecodersMatchCpu) {
  JING_FIXTURE_OR_SKIP(path, "quants/quant-zoo.gguf");
  auto zoo = gguf::File::open(path);
  const fmt::Tables tab = host_tables();
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0, 1);
  for (const char* name : kZooTypes) {
    SCOPED_TRACE(name);
    const auto& w = zoo.tensor(std::string(name) + ".w");
    const int64_t rows = w.ne[1], cols = w.ne[0];
    std::vector<float> x(static_cast<size_t>(cols));
    for (auto& v : x) v = nd(rng);
    std::vector<float> ref(static_cast<size_t>(rows));
    cpu::matmul({w.type, w.data, cols, rows, w.row_bytes()}, x.data(), 1, ref.data(), 1);
    const bool found = fmt::with_format(w.type, [&](auto f) {
      using F = decltype(f);
      constexpr int kItems = F::kWeights / 32;
      int64_t mismatches = 0;
      double err2 = 0, ref2 = 0;
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* src = w.data + r * w.row_bytes();
        dequantize_row(w.type, src, row.data(), cols);
        for (int64_t g = 0; g < cols / 32; ++g) {
          float out[32];
          F::dequant(src + g / kItems * F::kBytes, static_cast<int>(g % kItems), tab, out);
          mismatches += std::memcmp(out, row.data() + g * 32, sizeof out) != 0;
        }
        if constexpr (F::kAct != fmt::Act::F32) {
          const auto items = q8_items(w.type, x.data(), cols);
          constexpr int kGroups = fmt::item_groups<F>::value, kDecodeItems = F::kWeights / (32 * kGroups);
          double dot = 0;
          for (int64_t it = 0; it < cols / (32 * kGroups); ++it) {
            F dec;
            dec.load(src + it / kDecodeItems * F::kBytes, static_cast<int>(it % kDecodeItems), tab);
            const int64_t base = it / kDecodeItems * (F::kWeights / 32);
            const int item = static_cast<int>(it % kDecodeItems);
            if constexpr (kGroups == 2)
              dot += dec.dot2(items[static_cast<size_t>(base + fmt::item_group<F>(item, 0))], items[static_cast<size_t>(base + fmt::item_group<F>(item, 1))]);
            else dot += dec.dot(items[static_cast<size_t>(base + item)]);
          }
          err2 += (dot - ref[r]) * (dot - ref[r]);
          ref2 += static_cast<double>(ref[r]) * ref[r];
        }
      }
      EXPECT_EQ(mismatches, 0) << "32-weight groups that dequantize differently from the CPU";
      if constexpr (F::kAct != fmt::Act::F32) {
        const double rel = std::sqrt(err2 / ref2);
        std::printf("[cuda-format] %-8s dequant exact, dot rel-L2 vs cpu::matmul %.2e\n", name, rel);
        EXPECT_LE(rel, 1e-5);
      }
    });
    EXPECT_TRUE(found) << "no CUDA decoder";
  }
}
