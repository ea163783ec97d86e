// The KV cache paths the conformance test does not cover: decoding one token per call must give
// the logits of the whole-prompt pass (the cache holds what the batch computed), and a q8_0 cache
// must keep the F16 models within the bars the issue sets for quantized models (rel-L2 <= 2e-2,
// argmax >= 95%; here against transformers, with f16 weights, so only the cache is quantized).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "test_support.h"

using namespace jing;

namespace {

struct Diff {
  double max_rel_l2 = 0;
  int argmax_agree = 0;
};

int argmax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

Diff compare(const std::vector<float>& got, const std::vector<float>& want, int n, int vocab) {
  Diff d;
  for (int t = 0; t < n; ++t) {
    const float* g = got.data() + static_cast<size_t>(t) * vocab;
    const float* w = want.data() + static_cast<size_t>(t) * vocab;
    double num = 0, den = 0;
    for (int v = 0; v < vocab; ++v) {
      num += (static_cast<double>(g[v]) - w[v]) * (static_cast<double>(g[v]) - w[v]);
      den += static_cast<double>(w[v]) * w[v];
    }
    d.max_rel_l2 = std::max(d.max_rel_l2, std::sqrt(num / den));
    d.argmax_agree += argmax(g, vocab) == argmax(w, vocab);
  }
  return d;
}

std::vector<int32_t> prompt_ids(const std::string& arch, const std::string& prompt) {
  auto ref = nlohmann::json::parse(test::read_file(test::fixtures_dir() / "models" / (arch + ".reference.json")));
  return ref["prompts"][prompt]["ids"].get<std::vector<int32_t>>();
}

}  // namespace

TEST(KvCache, DecodingTokenByTokenEqualsThePromptPass) {
  if (test::fixtures_dir().empty()) GTEST_SKIP() << "fixtures not found";
  for (const std::string arch : {"llama", "qwen2"}) {
    SCOPED_TRACE(arch);
    auto m = model::Model::load(test::fixtures_dir() / "models" / (arch + "-f16.gguf"), {.n_ctx = 64});
    auto ids = prompt_ids(arch, "en");
    const int n = static_cast<int>(ids.size()), V = m->n_vocab();
    model::Batch all;
    for (int i = 0; i < n; ++i) all.add(ids[static_cast<size_t>(i)], i, 0, true);
    auto whole = m->forward(all);
    m->kv_clear(0);
    std::vector<float> steps;
    for (int i = 0; i < n; ++i) {
      model::Batch one;
      one.add(ids[static_cast<size_t>(i)], i, 0, true);
      auto l = m->forward(one);
      steps.insert(steps.end(), l.begin(), l.end());
    }
    EXPECT_EQ(m->kv_length(0), n);
    auto d = compare(steps, whole, n, V);
    std::printf("[kv] %-6s step-by-step vs prompt pass: max rel-L2 %.2e argmax %d/%d\n", arch.c_str(), d.max_rel_l2, d.argmax_agree, n);
    // Matrix-vector and matrix-matrix kernels sum in another order, and activations are rounded to
    // f16 before F16 weights (as ggml does), so an order difference now and then flips a rounding:
    // a few f16 ulps (2^-11) at most, far below the 3e-3 the references allow.
    EXPECT_LE(d.max_rel_l2, 5e-4);
    EXPECT_EQ(d.argmax_agree, n);
  }
}

TEST(KvCache, Q8_0CacheStaysWithinTheQuantizedBars) {
  if (test::fixtures_dir().empty()) GTEST_SKIP() << "fixtures not found";
  for (const std::string arch : {"llama", "qwen2"}) {
    int agree = 0, total = 0;
    auto ref = nlohmann::json::parse(test::read_file(test::fixtures_dir() / "models" / (arch + ".reference.json")));
    auto m = model::Model::load(test::fixtures_dir() / "models" / (arch + "-f16.gguf"), {.n_ctx = 64, .kv_type = GgmlType::Q8_0});
    for (auto& [name, p] : ref["prompts"].items()) {
      SCOPED_TRACE(arch + " " + name);
      auto ids = p["ids"].get<std::vector<int32_t>>();
      const int n = static_cast<int>(ids.size()), V = m->n_vocab();
      auto want = test::read_f32(test::fixtures_dir() / "models" / p["logits_file"].get<std::string>());
      m->kv_clear(0);
      model::Batch b;
      for (int i = 0; i < n; ++i) b.add(ids[static_cast<size_t>(i)], i, 0, true);
      auto d = compare(m->forward(b), want, n, V);
      std::printf("[kv] %-6s %-5s q8_0 cache vs transformers: max rel-L2 %.2e argmax %d/%d\n", arch.c_str(), name.c_str(),
                  d.max_rel_l2, d.argmax_agree, n);
      EXPECT_LE(d.max_rel_l2, 2e-2);
      agree += d.argmax_agree, total += n;
    }
    // Over all prompts of a model: one near-tie flipped in an 18-token prompt is already 94%.
    EXPECT_GE(agree, 0.95 * total) << arch;
  }
}
