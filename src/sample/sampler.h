// The sampling chain: penalties, logit bias, top-k, typical-p, top-p, min-p, temperature, then a
// seeded draw (or greedy). (Contract shared by run and the server; implemented in src/sample.)
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <vector>

namespace jing::sample {

class GrammarMatcher;

struct SamplingParams {
  // DeepSeek's advice for R1: temperature 0.6, top-p 0.95. 0 temperature = greedy.
  float temperature = 0.6f;
  int top_k = 40;            // 0: off
  float top_p = 0.95f;       // 1: off
  float min_p = 0.05f;       // 0: off
  float typical_p = 1.0f;    // 1: off
  float repeat_penalty = 1.0f;     // 1: off
  int repeat_last_n = 64;          // window the penalties look at (-1: whole context)
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  std::map<int32_t, float> logit_bias;
  uint64_t seed = 0xFFFFFFFFu;     // 0xFFFFFFFF: random
};

// Fields a user set explicitly (flags, request fields), laid over defaults from elsewhere.
struct SamplingOverrides {
  std::optional<float> temperature, top_p, min_p, repeat_penalty;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  void apply(SamplingParams& p) const {
    if (temperature) p.temperature = *temperature;
    if (top_p) p.top_p = *top_p;
    if (min_p) p.min_p = *min_p;
    if (repeat_penalty) p.repeat_penalty = *repeat_penalty;
    if (top_k) p.top_k = *top_k;
    if (seed) p.seed = *seed;
  }
};

struct TokenLogprob {
  int32_t token;
  float logprob;
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int n_vocab);
  // Picks the next token from one row of logits (not modified). With a grammar, only tokens it
  // allows next are candidates (the caller advances the grammar over the chosen one).
  int32_t sample(const float* logits, GrammarMatcher* grammar = nullptr);
  // Records a token (prompt or generated) for the penalty window.
  void accept(int32_t token);
  void reset();
  // Log-probabilities of the chosen token and the top n alternatives, from the raw distribution
  // of the last sample() call (as OpenAI's logprobs report them).
  TokenLogprob chosen_logprob() const;
  std::vector<TokenLogprob> top_logprobs(int n) const;
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  int n_vocab_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;
  std::vector<float> logits_;  // the last biased, penalized logits (reused between calls)
  // log-softmax of logits_, computed only when logprobs are asked for.
  mutable std::vector<float> last_logprobs_;
  mutable bool logprobs_ready_ = false;
  int32_t last_token_ = -1;
  const std::vector<float>& logprobs() const;
};

}  // namespace jing::sample
