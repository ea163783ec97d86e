// Text generation for one sequence: feeds the prompt in batches (reusing whatever prefix the
// cache already holds), then samples token by token until end-of-generation, a stop string, the
// token limit, or the caller says stop. Used by `jing run` and `jing bench`.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "sample/grammar_matcher.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace jing::runtime {

// Holds back text that could be the start of a stop string; reports when one appears.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Returns the text safe to emit now; sets `stopped` when a stop string completed (the stop
  // string and anything after it are not emitted).
  std::string push(const std::string& text, bool& stopped);
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
};

struct GenerateParams {
  sample::SamplingParams sampling;
  std::shared_ptr<const sample::Grammar> grammar;  // structured output (jing run --format)
  bool grammar_after_think = false;                // the prompt opened <think>: the grammar waits for </think>
  std::shared_ptr<const sample::TokenIndex> grammar_tokens;  // the tokenizer's index (built here when absent)
  int max_tokens = -1;  // -1: until the context is full
  std::vector<std::string> stop;
  int n_batch = 512;
};

struct GenerateStats {
  int prompt_tokens = 0;   // tokens computed for the prompt (after prefix reuse)
  int cached_tokens = 0;   // prompt tokens the cache already held
  int generated = 0;
  double prompt_seconds = 0, generate_seconds = 0;
  std::string finish_reason;  // "stop" (eog or stop string), "length", "cancelled"
};

// on_text receives whole UTF-8 characters; returning false cancels. `cached` is the token list
// the sequence's cache currently holds (updated to what it holds afterwards).
GenerateStats generate(model::Model& m, const tok::Tokenizer& tok, int seq, const std::vector<int32_t>& prompt,
                       std::vector<int32_t>& cached, const GenerateParams& p, const std::function<bool(const std::string&)>& on_text);

// Runs prompt tokens through the cache in batches of n_batch (logits only for the last).
std::vector<float> prefill(model::Model& m, int seq, const std::vector<int32_t>& tokens, int start_pos, int n_batch);

}  // namespace jing::runtime
