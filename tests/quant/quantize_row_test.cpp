// The activation quantizers' fast path (AVX2 where the CPU has it) writes the same bytes as the
// scalar reference, including the cases where rounding rules differ: exact halves (Q8_0/Q8_1
// round them away from zero, Q8_K to even) and blocks whose largest magnitude appears with both
// signs (Q8_K takes the sign of the first).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "quant/quantize_row.h"

using namespace jing;

TEST(QuantizeRow, FastPathEqualsReferenceBitForBit) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0, 1);
  const int64_t n = 4096;
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = nd(rng) * (trial % 5 == 0 ? 1e-3f : 3.0f);
    if (trial % 4 == 1) {  // halves after scaling: every value a multiple of amax / 254
      for (auto& v : x) v = static_cast<float>(static_cast<int>(v * 20)) * (127.0f / 254.0f);
    }
    if (trial % 4 == 2) {  // the largest magnitude twice, with opposite signs, in every block of 256
      for (int64_t b = 0; b < n; b += 256) x[static_cast<size_t>(b + 17)] = -9.5f, x[static_cast<size_t>(b + 200)] = 9.5f;
    }
    if (trial % 4 == 3) {  // a zero block and a block of equal values
      std::fill(x.begin(), x.begin() + 256, 0.0f);
      std::fill(x.begin() + 256, x.begin() + 512, -2.5f);
    }
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K}) {
      SCOPED_TRACE(std::string(traits(t).name) + " trial " + std::to_string(trial));
      std::vector<uint8_t> fast(row_size(t, n)), ref(row_size(t, n));
      quantize_row(t, x.data(), fast.data(), n);
      quantize_row_portable(t, x.data(), ref.data(), n);
      EXPECT_EQ(0, std::memcmp(fast.data(), ref.data(), fast.size()));
    }
  }
}
