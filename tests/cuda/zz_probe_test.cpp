// TEMPORARY probe (not committed): CPU logits of the quantized fixtures, whole prompt vs chunks.
#include <gtest/gtest.h>
#include <cmath>
#include <nlohmann/json.hpp>
#include "model/model.h"
#include "test_support.h"
using namespace jing;
namespace {
std::vector<float> runc(model::Model& m, const std::vector<int32_t>& ids, size_t chunk = 0) {
  m.kv_clear(0);
  std::vector<float> out;
  if (chunk == 0) chunk = ids.size();
  for (size_t i0 = 0; i0 < ids.size(); i0 += chunk) {
    model::Batch b;
    for (size_t i = i0; i < std::min(ids.size(), i0 + chunk); ++i) b.add(ids[i], static_cast<int>(i), 0, true);
    auto l = m.forward(b);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}
double rl2(const float* a, const float* b, int n) { double e = 0, r = 0; for (int i = 0; i < n; ++i) e += (a[i]-b[i])*(a[i]-b[i]), r += b[i]*b[i]; return std::sqrt(e/r); }
}
TEST(ProbeGpu, Chunks) {
  auto dir = test::fixtures_dir();
  for (const char* f : {"quantized/llama-Q4_K_M.gguf", "quantized/deepseek2-UD-IQ1_S.gguf"}) {
    auto ref = nlohmann::json::parse(test::read_file(dir / (std::string(f).find("llama") != std::string::npos ? "quantized/llama-Q4_K_M.llamacpp.json" : "quantized/deepseek2-UD-IQ1_S.llamacpp.json")));
    auto m = model::Model::load(dir / f, {.n_ctx = 256});
    auto g = model::Model::load(dir / f, {.n_ctx = 256, .n_gpu_layers = 99});
    const int V = m->n_vocab();
    for (const char* p : {"chat", "en"}) {
      auto ids = ref["prompts"][p]["ids"].get<std::vector<int32_t>>();
      auto whole = runc(*m, ids), c4 = runc(*m, ids, 4), c1 = runc(*m, ids, 1);
      auto gw = runc(*g, ids), g4 = runc(*g, ids, 4), g1 = runc(*g, ids, 1);
      std::printf("%s %s (gpu-vs-cpu whole/4/1):", f, p);
      for (size_t t = 0; t < ids.size(); ++t) std::printf(" %zu:%.1e/%.1e/%.1e", t, rl2(&gw[t*V], &whole[t*V], V), rl2(&g4[t*V], &c4[t*V], V), rl2(&g1[t*V], &c1[t*V], V));
      std::printf("\n");
    }
  }
}
