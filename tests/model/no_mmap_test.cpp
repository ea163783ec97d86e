// --no-mmap, the default huge-page copy of small models, and --mlock on the CPU: the weights read
// into RAM of their own (or locked where they are mapped) give exactly the logits of the mapped file, for a dense model with tied or separate
// output and for MLA + MoE (experts placed whole).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "model/model.h"
#include "test_support.h"

using namespace jing;

namespace {

std::vector<float> logits(const std::filesystem::path& path, model::ModelOptions opts) {
  opts.n_ctx = 32;
  auto m = model::Model::load(path, opts);
  model::Batch b;
  const std::vector<int32_t> ids = {1, 15, 200, 3000, 42, 7};
  for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i] % m->n_vocab(), static_cast<int>(i), 0, true);
  return m->forward(b);
}

}  // namespace

TEST(Weights, ReadIntoMemoryOrLockedGiveTheMappedLogits) {
  for (const char* rel : {"models/qwen2-f16.gguf", "models/deepseek2-f16.gguf", "quantized/deepseek2-UD-IQ1_S.gguf"}) {
    JING_FIXTURE_OR_SKIP(path, rel);
    SCOPED_TRACE(rel);
    setenv("JING_HUGE_COPY", "0", 1);  // small models are copied into huge pages unasked: mapped here
    const auto mapped = logits(path, {});
    unsetenv("JING_HUGE_COPY");
    EXPECT_EQ(logits(path, {}), mapped);  // the default, copied
    EXPECT_EQ(logits(path, {.use_mmap = false}), mapped);
    EXPECT_EQ(logits(path, {.mlock = true}), mapped);  // a refused lock only warns
    EXPECT_EQ(logits(path, {.mlock = true, .use_mmap = false}), mapped);
  }
}

// The CPU backend keeps Q4_K matrices in 8-row tiles (JING_TILES=0: plain rows). A prompt (the matrix kernel untiles each panel),
// then single-token steps (read from the tiles), give the plain weights' logits within rounding.
TEST(Weights, TiledQ4KGivesThePlainLogits) {
  JING_FIXTURE_OR_SKIP(path, "quantized/llama-Q4_K_M.gguf");
  auto run = [&](bool tiles) {
    setenv("JING_TILES", tiles ? "1" : "0", 1);
    model::ModelOptions opts;
    opts.n_ctx = 32;
    auto m = model::Model::load(path, opts);
    unsetenv("JING_TILES");
    std::vector<float> out;
    model::Batch prompt;
    const std::vector<int32_t> ids = {1, 15, 200, 3000, 42, 7, 99, 5, 17, 300};
    for (size_t i = 0; i < ids.size(); ++i) prompt.add(ids[i] % m->n_vocab(), static_cast<int>(i), 0, i + 1 == ids.size());
    out = m->forward(prompt);
    for (int step = 0; step < 3; ++step) {
      model::Batch b;
      b.add((7 + 31 * step) % m->n_vocab(), static_cast<int>(ids.size()) + step, 0, true);
      const auto l = m->forward(b);
      out.insert(out.end(), l.begin(), l.end());
    }
    return out;
  };
  const auto plain = run(false), tiled = run(true);
  ASSERT_EQ(plain.size(), tiled.size());
  double d = 0, n = 0;
  for (size_t i = 0; i < plain.size(); ++i) d += (tiled[i] - plain[i]) * static_cast<double>(tiled[i] - plain[i]), n += static_cast<double>(plain[i]) * plain[i];
  EXPECT_LT(std::sqrt(d / n), 1e-4);
}
