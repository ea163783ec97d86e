// Perplexity over a text: non-overlapping windows of n_ctx tokens, every token after the first
// of each window scored (how the fixture references were computed; llama.cpp's scores only the
// second half of each window, which reads lower on short windows).
#pragma once
#include <functional>
#include <vector>

#include "model/model.h"

namespace jing::runtime {

struct PerplexityResult {
  double ppl = 0;
  int64_t scored = 0;
  int windows = 0;
};

PerplexityResult perplexity(model::Model& m, const std::vector<int32_t>& tokens, int window,
                            const std::function<void(int window, double running_ppl)>& progress = {});

}  // namespace jing::runtime
