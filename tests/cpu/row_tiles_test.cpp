// Q4_K, Q5_K, Q2_K, Q4_0 and IQ4_XS in 8-row tiles (cpu/row_tiles.h): the tiles hold exactly the plain rows' bytes (a
// round trip gives them back), and products read from tiles match the plain rows' products: one
// token, a few tokens, a prompt (which reads untiled rows), and matvecs mixing tiled with plain weights.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/matmul.h"
#include "cpu/row_tiles.h"
#include "quant/quantize.h"
#include "quant/types.h"

using namespace jing;

namespace {

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]), n += static_cast<double>(b[i]) * b[i];
  return std::sqrt(d / n);
}

class RowTiles : public ::testing::TestWithParam<GgmlType> {};

TEST_P(RowTiles, SameBytesAndSameProducts) {
  const GgmlType type = GetParam();
  const int64_t rows = 48, cols = 1536;
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> wf(static_cast<size_t>(rows * cols));
  for (auto& v : wf) v = 0.02f * nd(rng);
  const size_t row_bytes = row_size(type, cols);
  std::vector<uint8_t> plain(row_bytes * rows), tiles(plain.size()), back(plain.size());
  quantize_rows(type, wf.data(), plain.data(), rows, cols);
  cpu::tile_rows(type, plain.data(), rows, cols, tiles.data());
  cpu::untile_rows(type, tiles.data(), rows, cols, back.data());
  EXPECT_EQ(back, plain);
  EXPECT_NE(tiles, plain);

  cpu::WeightView pw{type, plain.data(), cols, rows, row_bytes};
  if (!cpu::tiles_fit(pw)) GTEST_SKIP() << "no tiled kernels on this CPU (AVX-512 VNNI)";
  cpu::WeightView tw = pw;
  tw.data = tiles.data(), tw.tiled = true;
  for (int64_t n : {1, 3, 9}) {
    SCOPED_TRACE("tokens " + std::to_string(n));
    std::vector<float> x(static_cast<size_t>(n * cols)), yp(static_cast<size_t>(n * rows)), yt(yp.size());
    for (auto& v : x) v = nd(rng);
    cpu::matmul(pw, x.data(), n, yp.data(), 2);
    cpu::matmul(tw, x.data(), n, yt.data(), 2);
    EXPECT_LT(rel_l2(yt, yp), 1e-5);
  }
  // matvecs: a tiled gate, a plain up (another type), a tiled down sharing nothing.
  const int64_t rows2 = 40;
  std::vector<float> w2(static_cast<size_t>(rows2 * cols));
  for (auto& v : w2) v = 0.02f * nd(rng);
  std::vector<uint8_t> q6(row_size(GgmlType::Q6_K, cols) * rows2);
  quantize_rows(GgmlType::Q6_K, w2.data(), q6.data(), rows2, cols);
  const cpu::WeightView q6w{GgmlType::Q6_K, q6.data(), cols, rows2, row_size(GgmlType::Q6_K, cols)};
  std::vector<float> x1(cols), x2(cols);
  for (auto& v : x1) v = nd(rng);
  for (auto& v : x2) v = nd(rng);
  const cpu::WeightView ws[3] = {tw, q6w, tw};
  const float* xs[3] = {x1.data(), x1.data(), x2.data()};
  std::vector<float> y0(rows), y1(rows2), y2(rows), r0(rows), r1(rows2), r2(rows);
  float* ys[3] = {y0.data(), y1.data(), y2.data()};
  for (int threads : {1, 2, 3}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    cpu::matvecs(ws, xs, ys, 3, threads);
    cpu::matmul(pw, x1.data(), 1, r0.data(), 1), cpu::matmul(q6w, x1.data(), 1, r1.data(), 1), cpu::matmul(pw, x2.data(), 1, r2.data(), 1);
    EXPECT_LT(rel_l2(y0, r0), 1e-5);
    EXPECT_EQ(y1, r1);
    EXPECT_LT(rel_l2(y2, r2), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, RowTiles, ::testing::Values(GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q2_K, GgmlType::Q4_0, GgmlType::IQ4_XS),
                         [](const ::testing::TestParamInfo<GgmlType>& i) { return std::string(traits(i.param).name); });

}  // namespace
