// Our quantizers against ggml's on the quant zoo: reconstruction RMSE (vs the source matrix)
// within 5% of ggml's for every type we quantize; Q8_0 and the float types byte-identical.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "gguf/gguf.h"
#include "quant/dequant.h"
#include "quant/quantize.h"
#include "test_support.h"

using namespace jing;

namespace {
double rmse(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s / n);
}
}  // namespace

TEST(Quantize, RmseWithinFivePercentOfGgml) {
  JING_FIXTURE_OR_SKIP(path, "quants/quant-zoo.gguf");
  auto zoo = gguf::File::open(path);
  const auto& src_t = zoo.tensor("src");
  const auto* src = reinterpret_cast<const float*>(src_t.data);
  const auto* imatrix = reinterpret_cast<const float*>(zoo.tensor("imatrix").data);
  const int64_t cols = src_t.ne[0], rows = src_t.ne[1], n = cols * rows;
  for (const char* name : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "F16", "BF16"}) {
    SCOPED_TRACE(name);
    const GgmlType t = *type_from_name(name);
    // The zoo passed the imatrix to every type with id >= 10 (its zoo.imatrix_note).
    const float* im = static_cast<uint32_t>(t) >= 10 ? imatrix : nullptr;
    std::vector<uint8_t> q(row_size(t, cols) * static_cast<size_t>(rows));
    quantize_rows(t, src, q.data(), rows, cols, im);
    std::vector<float> ours(static_cast<size_t>(n));
    dequantize_row(t, q.data(), ours.data(), n);
    const auto* ggml_deq = reinterpret_cast<const float*>(zoo.tensor(std::string(name) + ".deq").data);
    const double mine = rmse(ours.data(), src, n), theirs = rmse(ggml_deq, src, n);
    std::printf("[quantize] %-7s rmse ours %.5f ggml %.5f (%.1f%%)\n", name, mine, theirs, 100.0 * (mine / theirs - 1));
    EXPECT_LE(mine, theirs * 1.05);
    if (t == GgmlType::Q8_0 || t == GgmlType::F16 || t == GgmlType::BF16)
      EXPECT_EQ(std::memcmp(q.data(), zoo.tensor(std::string(name) + ".w").data, q.size()), 0);
  }
}
