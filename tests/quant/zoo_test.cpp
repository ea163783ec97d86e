// The quant zoo (fixture): ggml's own quantizations of one matrix in every block format, with
// ggml's dequantization and dot products. Ours must decode every type bit for bit.
#include <gtest/gtest.h>

#include <cstring>

#include "gguf/gguf.h"
#include "quant/dequant.h"
#include "quant/fp16.h"
#include "test_support.h"

using namespace jing;

namespace {
const char* kZooTypes[] = {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
                           "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS",
                           "TQ1_0", "TQ2_0", "MXFP4"};
}

TEST(QuantZoo, DequantizationIsBitExactForEveryType) {
  JING_FIXTURE_OR_SKIP(path, "quants/quant-zoo.gguf");
  auto zoo = gguf::File::open(path);
  int checked = 0;
  for (const char* name : kZooTypes) {
    SCOPED_TRACE(name);
    const auto& w = zoo.tensor(std::string(name) + ".w");
    const auto& deq = zoo.tensor(std::string(name) + ".deq");
    ASSERT_EQ(w.type, *type_from_name(name));
    std::vector<float> out(static_cast<size_t>(w.n_elements()));
    dequantize_row(w.type, w.data, out.data(), w.n_elements());
    const auto* ref = reinterpret_cast<const float*>(deq.data);
    int64_t mismatches = 0, first = -1;
    for (size_t i = 0; i < out.size(); ++i)
      if (std::memcmp(&out[i], &ref[i], 4) != 0) {
        if (first < 0) first = static_cast<int64_t>(i);
        ++mismatches;
      }
    EXPECT_EQ(mismatches, 0) << "first at " << first << ": " << (first >= 0 ? out[first] : 0) << " vs "
                             << (first >= 0 ? ref[first] : 0);
    ++checked;
  }
  EXPECT_EQ(checked, 24);
}

TEST(QuantZoo, HalfConversionsRoundLikeGgml) {
  JING_FIXTURE_OR_SKIP(path, "quants/quant-zoo.gguf");
  auto zoo = gguf::File::open(path);
  const auto* src = reinterpret_cast<const float*>(zoo.tensor("src").data);
  const auto* f16 = reinterpret_cast<const uint16_t*>(zoo.tensor("F16.w").data);
  const auto* bf16 = reinterpret_cast<const uint16_t*>(zoo.tensor("BF16.w").data);
  for (int64_t i = 0; i < zoo.tensor("src").n_elements(); ++i) {
    ASSERT_EQ(fp32_to_fp16(src[i]), f16[i]) << i;
    ASSERT_EQ(fp32_to_bf16(src[i]), bf16[i]) << i;
  }
  // Every half value converts exactly both ways.
  for (uint32_t h = 0; h < 65536; ++h) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;  // NaN payloads
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h))), h) << h;
  }
}
