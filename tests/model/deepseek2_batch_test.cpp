// deepseek2 (MLA latent cache + MoE routing per token): several sequences computed in one batch
// give the logits each gives alone, and decoding token by token through the cache (absorbed
// attention over cached latents) gives the logits of processing the whole prompt at once.
#include <gtest/gtest.h>

#include "model/model.h"
#include "test_support.h"

using namespace jing;

namespace {
// Batched and alone runs see different token counts, so their matrix products take different
// kernels (matrix-vector vs matrix-matrix) and sum in a different order; a last-bit difference
// can then round a value stored in the f16 KV cache the other way (5e-4 relative). Mixing up two
// sequences moves logits by whole units.
constexpr float kBatchTolerance = 2e-3f;
}  // namespace

namespace {

std::vector<float> run_alone(model::Model& m, const std::vector<int32_t>& ids, int seq) {
  model::Batch b;
  for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], static_cast<int>(i), seq, i + 1 == ids.size());
  return m.forward(b);
}

void check_deepseek2_batching(const char* fixture) {
  JING_FIXTURE_OR_SKIP(path, fixture);
  auto m = model::Model::load(path, {.n_ctx = 64, .n_seq = 3});
  ASSERT_EQ(m->arch(), "deepseek2");
  const std::vector<std::vector<int32_t>> prompts = {
      {5, 100, 200, 300, 7, 11}, {9, 8, 7}, {1000, 1500, 2000, 40, 41, 42, 43, 44, 45}};
  std::vector<std::vector<float>> alone;
  for (size_t s = 0; s < prompts.size(); ++s) {
    alone.push_back(run_alone(*m, prompts[s], static_cast<int>(s)));
    m->kv_clear(static_cast<int>(s));
  }
  model::Batch all;  // interleaved, as the server's scheduler mixes them
  std::vector<int> order;
  for (size_t i = 0; i < 9; ++i)
    for (size_t s = 0; s < prompts.size(); ++s)
      if (i < prompts[s].size()) {
        const bool last = i + 1 == prompts[s].size();
        all.add(prompts[s][i], static_cast<int>(i), static_cast<int>(s), last);
        if (last) order.push_back(static_cast<int>(s));
      }
  auto together = m->forward(all);
  const int V = m->n_vocab();
  ASSERT_EQ(together.size(), static_cast<size_t>(3) * V);
  for (int r = 0; r < 3; ++r)
    for (int v = 0; v < V; ++v)
      ASSERT_NEAR(together[static_cast<size_t>(r) * V + v], alone[static_cast<size_t>(order[r])][static_cast<size_t>(v)], kBatchTolerance)
          << "row " << r << " vocab " << v;

  // Prompt in one call vs one token per call (decode path) on sequence 2.
  m->kv_clear(2);
  const auto& ids = prompts[2];
  model::Batch prefix;
  for (size_t i = 0; i + 1 < ids.size(); ++i) prefix.add(ids[i], static_cast<int>(i), 2, false);
  m->forward(prefix);
  m->kv_truncate(2, 3);  // prefix reuse: drop the tail and decode it again step by step
  std::vector<float> last;
  for (size_t i = 3; i < ids.size(); ++i) {
    model::Batch step;
    step.add(ids[i], static_cast<int>(i), 2, true);
    last = m->forward(step);
  }
  ASSERT_EQ(last.size(), static_cast<size_t>(V));
  for (int v = 0; v < V; ++v) ASSERT_NEAR(last[static_cast<size_t>(v)], alone[2][static_cast<size_t>(v)], 1e-3) << "vocab " << v;
}

}  // namespace

TEST(DeepSeek2, BatchedSequencesEqualAloneF16) { check_deepseek2_batching("models/deepseek2-f16.gguf"); }
TEST(DeepSeek2, BatchedSequencesEqualAloneIQ1_S) { check_deepseek2_batching("quantized/deepseek2-UD-IQ1_S.gguf"); }
