// Conformance against the fixtures: every model in models/ (F16, vs HF transformers) and every
// model in quantized/ (vs llama.cpp) that names an architecture Jing runs. Bars from the issue:
// F16 rel-L2 <= 3e-3 and argmax >= 97%; quantized rel-L2 <= 2e-2 and argmax >= 95%.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "runtime/perplexity.h"
#include "tokenizer/tokenizer.h"
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

struct Case {
  std::filesystem::path model, reference;
  double max_rel_l2, min_argmax;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  auto dir = test::fixtures_dir();
  if (dir.empty()) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir / "models"))
    if (e.path().string().ends_with(".reference.json")) {
      std::string arch = e.path().filename().string();
      arch = arch.substr(0, arch.find('.'));
      out.push_back({dir / "models" / (arch + "-f16.gguf"), e.path(), 3e-3, 0.97});
    }
  for (const auto& e : std::filesystem::directory_iterator(dir / "quantized"))
    if (e.path().string().ends_with(".llamacpp.json")) {
      std::string name = e.path().filename().string();
      name = name.substr(0, name.size() - std::string(".llamacpp.json").size());
      out.push_back({dir / "quantized" / (name + ".gguf"), e.path(), 2e-2, 0.95});
    }
  std::sort(out.begin(), out.end(), [](const Case& a, const Case& b) { return a.model < b.model; });
  return out;
}

int argmax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

}  // namespace

TEST(Conformance, LogitsMatchTheReferences) {
  auto all = cases();
  if (all.empty()) GTEST_SKIP() << "fixtures not found";
  for (const auto& c : all) {
    SCOPED_TRACE(c.model.filename().string());
    std::unique_ptr<model::Model> m;
    try {
      m = model::Model::load(c.model, {.n_ctx = 256});
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cannot load: " << e.what();
      continue;
    }
    auto ref = nlohmann::json::parse(test::read_file(c.reference));
    for (auto& [name, p] : ref["prompts"].items()) {
      SCOPED_TRACE(name);
      std::vector<int32_t> ids = p["ids"].get<std::vector<int32_t>>();
      const int n = p["shape"][0], vocab = p["shape"][1];
      ASSERT_EQ(vocab, m->n_vocab());
      auto expected = test::read_f32(c.reference.parent_path() / p["logits_file"].get<std::string>());
      ASSERT_EQ(expected.size(), static_cast<size_t>(n) * vocab);
      m->kv_clear(0);
      model::Batch b;
      for (int i = 0; i < n; ++i) b.add(ids[static_cast<size_t>(i)], i, 0, true);
      auto got = m->forward(b);
      double worst = 0;
      int agree = 0;
      for (int t = 0; t < n; ++t) {
        double num = 0, den = 0;
        for (int v = 0; v < vocab; ++v) {
          double d = got[static_cast<size_t>(t) * vocab + v] - expected[static_cast<size_t>(t) * vocab + v];
          num += d * d;
          den += static_cast<double>(expected[static_cast<size_t>(t) * vocab + v]) * expected[static_cast<size_t>(t) * vocab + v];
        }
        worst = std::max(worst, std::sqrt(num / den));
        agree += argmax(&got[static_cast<size_t>(t) * vocab], vocab) == argmax(&expected[static_cast<size_t>(t) * vocab], vocab);
      }
      // Greedy continuation, token by token through the cache (the decode path).
      int greedy_same = -1;
      if (p.contains("greedy_32") && !p["greedy_32"].empty()) {
        auto want = p["greedy_32"].get<std::vector<int32_t>>();
        greedy_same = 0;
        int32_t next = argmax(&got[static_cast<size_t>(n - 1) * vocab], vocab);
        bool diverged = false;
        for (size_t k = 0; k < want.size(); ++k) {
          if (next != want[k]) diverged = true;
          if (!diverged) ++greedy_same;
          model::Batch step;
          step.add(diverged ? want[k] : next, n + static_cast<int>(k), 0, true);
          auto l = m->forward(step);
          next = argmax(l.data(), vocab);
        }
      }
      std::printf("[conformance] %-28s %-5s max rel-L2 %.2e  argmax %d/%d", c.model.filename().c_str(), name.c_str(), worst, agree, n);
      if (greedy_same >= 0) std::printf("  greedy %d/%zu", greedy_same, p["greedy_32"].size());
      std::printf("\n");
      EXPECT_LE(worst, c.max_rel_l2);
      EXPECT_GE(agree, c.min_argmax * n);
    }
  }
}

// Several sequences in one forward call give the logits each gives alone; truncating a cache and
// recomputing reproduces the same logits (prompt-prefix reuse relies on both).
TEST(Conformance, BatchedSequencesAndTruncationAreExact) {
  JING_FIXTURE_OR_SKIP(path, "models/qwen2-f16.gguf");
  auto m = model::Model::load(path, {.n_ctx = 64, .n_seq = 3});
  const std::vector<std::vector<int32_t>> prompts = {{5, 100, 200, 300, 7}, {9, 8, 7}, {1000, 1500, 2000, 40, 41, 42, 43}};
  std::vector<std::vector<float>> alone;
  for (size_t s = 0; s < prompts.size(); ++s) {
    model::Batch b;
    for (size_t i = 0; i < prompts[s].size(); ++i) b.add(prompts[s][i], static_cast<int>(i), static_cast<int>(s), i + 1 == prompts[s].size());
    alone.push_back(m->forward(b));
    m->kv_clear(static_cast<int>(s));
  }
  model::Batch all;  // interleaved, as the server's scheduler mixes them
  for (size_t i = 0; i < 7; ++i)
    for (size_t s = 0; s < prompts.size(); ++s)
      if (i < prompts[s].size()) all.add(prompts[s][i], static_cast<int>(i), static_cast<int>(s), i + 1 == prompts[s].size());
  auto together = m->forward(all);
  const int V = m->n_vocab();
  // Output rows come in batch order: seq 1 ends first (i=2), then seq 0 (i=4), then seq 2 (i=6).
  const int order[3] = {1, 0, 2};
  for (int r = 0; r < 3; ++r)
    for (int v = 0; v < V; ++v) ASSERT_NEAR(together[static_cast<size_t>(r) * V + v], alone[static_cast<size_t>(order[r])][static_cast<size_t>(v)], kBatchTolerance);

  m->kv_truncate(2, 4);
  EXPECT_EQ(m->kv_length(2), 4);
  model::Batch rest;
  for (size_t i = 4; i < 7; ++i) rest.add(prompts[2][i], static_cast<int>(i), 2, i == 6);
  auto again = m->forward(rest);
  for (int v = 0; v < V; ++v) ASSERT_NEAR(again[static_cast<size_t>(v)], alone[2][static_cast<size_t>(v)], kBatchTolerance);

  model::Batch gap;  // a position that skips ahead is an error, not silent garbage
  gap.add(1, 20, 0, true);
  EXPECT_ANY_THROW(m->forward(gap));
}

TEST(Conformance, FullContextIsAClearError) {
  JING_FIXTURE_OR_SKIP(path, "models/llama-f16.gguf");
  auto m = model::Model::load(path, {.n_ctx = 4});
  model::Batch b;
  for (int i = 0; i < 4; ++i) b.add(10 + i, i, 0, false);
  m->forward(b);
  model::Batch more;
  more.add(5, 4, 0, true);
  try {
    m->forward(more);
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("context is full"), std::string::npos) << e.what();
  }
}

// Perplexity over the fixture corpus matches transformers' (first 2048 tokens, windows of 128).
TEST(Conformance, PerplexityMatchesTheReference) {
  auto dir = test::fixtures_dir();
  if (dir.empty()) GTEST_SKIP() << "fixtures not found";
  for (const char* arch : {"llama", "qwen2", "deepseek2"}) {
    SCOPED_TRACE(arch);
    auto ref = nlohmann::json::parse(test::read_file(dir / "models" / (std::string(arch) + ".reference.json")))["perplexity"];
    auto m = model::Model::load(dir / "models" / (std::string(arch) + "-f16.gguf"), {.n_ctx = 128, .n_batch = 128});
    auto tok = tok::Tokenizer::from_gguf(m->file());
    auto ids = tok->encode(test::read_file(dir / "models" / ref["text"].get<std::string>()), false, false);
    ids.resize(static_cast<size_t>(ref["tokens"].get<int>()));
    auto r = runtime::perplexity(*m, ids, ref["window"].get<int>());
    std::printf("[perplexity] %-9s ours %.4f transformers %.4f\n", arch, r.ppl, ref["ppl"].get<double>());
    EXPECT_NEAR(r.ppl / ref["ppl"].get<double>(), 1.0, 2e-3);
  }
}
