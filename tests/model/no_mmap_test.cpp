// --no-mmap and --mlock on the CPU: the weights read into RAM of their own (or locked where they
// are mapped) give exactly the logits of the mapped file, for a dense model with tied or separate
// output and for MLA + MoE (experts placed whole).
#include <gtest/gtest.h>

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
    const auto mapped = logits(path, {});
    EXPECT_EQ(logits(path, {.use_mmap = false}), mapped);
    EXPECT_EQ(logits(path, {.mlock = true}), mapped);  // a refused lock only warns
    EXPECT_EQ(logits(path, {.mlock = true, .use_mmap = false}), mapped);
  }
}
