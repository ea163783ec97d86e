#include "runtime/perplexity.h"

#include <cmath>

#include "common/error.h"

namespace jing::runtime {

PerplexityResult perplexity(model::Model& m, const std::vector<int32_t>& tokens, int window,
                            const std::function<void(int, double)>& progress) {
  if (window < 2) throw Error("the perplexity window must hold at least 2 tokens");
  if (window > m.n_ctx()) throw Error("the window is larger than the context");
  PerplexityResult r;
  double nll = 0;
  const int V = m.n_vocab();
  for (size_t start = 0; start + static_cast<size_t>(window) <= tokens.size(); start += static_cast<size_t>(window)) {
    m.kv_clear(0);
    model::Batch b;
    for (int i = 0; i < window; ++i) b.add(tokens[start + static_cast<size_t>(i)], i, 0, i + 1 < window);
    auto logits = m.forward(b);
    for (int i = 0; i + 1 < window; ++i) {
      const float* row = logits.data() + static_cast<size_t>(i) * static_cast<size_t>(V);
      double mx = row[0];
      for (int v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
      double sum = 0;
      for (int v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
      nll += (mx + std::log(sum)) - row[tokens[start + static_cast<size_t>(i) + 1]];
      ++r.scored;
    }
    ++r.windows;
    if (progress) progress(r.windows, std::exp(nll / static_cast<double>(r.scored)));
  }
  if (r.scored == 0) throw Error("the text has fewer tokens than one window (" + std::to_string(window) + ")");
  r.ppl = std::exp(nll / static_cast<double>(r.scored));
  return r;
}

}  // namespace jing::runtime
