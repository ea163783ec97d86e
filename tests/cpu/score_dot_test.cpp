// Attention's score dot product gives the same bits on every CPU path (portable, AVX2, AVX-512):
// the GPU reproduces that order too, so a quantized model's logits do not depend on which of them
// ran (an ulp in a score is carried into the logits). Also: it is a dot product (near the double sum).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/kernels_simd.h"

using namespace jing;

TEST(ScoreDot, EveryPathGivesTheSameBits) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0, 1);
  int compared = 0;
  for (int n = 1; n <= 600; n += (n < 80 ? 1 : 37)) {
    std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    for (auto& x : a) x = nd(rng);
    for (auto& x : b) x = nd(rng);
    const float portable = cpu::score_dot(a.data(), b.data(), n);
    double exact = 0, mag = 0;
    for (int i = 0; i < n; ++i) exact += static_cast<double>(a[static_cast<size_t>(i)]) * b[static_cast<size_t>(i)], mag += std::fabs(a[static_cast<size_t>(i)] * b[static_cast<size_t>(i)]);
    EXPECT_LE(std::fabs(portable - exact), 1e-6 * mag + 1e-30) << "n=" << n;
    auto same = [&](float got, const char* path) {
      uint32_t x, y;
      std::memcpy(&x, &portable, 4), std::memcpy(&y, &got, 4);
      EXPECT_EQ(x, y) << path << " n=" << n << ": " << got << " vs portable " << portable;
      ++compared;
    };
    if (cpu::simd_available()) same(cpu::avx2::score_dot(a.data(), b.data(), n), "AVX2");
    if (cpu::avx512_available()) same(cpu::avx512::score_dot(a.data(), b.data(), n), "AVX-512");
  }
  if (compared == 0) GTEST_SKIP() << "no SIMD path on this CPU to compare with the portable one";
}
