// Sampling chain properties that can fail: truncation keeps exactly what each rule allows,
// seeds reproduce, penalties touch only the tokens seen, and draws follow the distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "sample/sampler.h"

using namespace jing::sample;

namespace {
std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}
SamplingParams plain() {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 1234;
  return p;
}
std::set<int32_t> support(SamplingParams p, const std::vector<float>& l, int draws = 3000) {
  Sampler s(p, static_cast<int>(l.size()));
  std::set<int32_t> seen;
  for (int i = 0; i < draws; ++i) seen.insert(s.sample(l.data()));
  return seen;
}
}  // namespace

TEST(Sampler, GreedyPicksTheArgmax) {
  SamplingParams p = plain();
  p.temperature = 0;
  auto l = logits_of({0.1, 0.5, 0.4});
  Sampler s(p, 3);
  EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, TopKTopPMinPKeepExactlyTheirSets) {
  auto l = logits_of({0.4, 0.3, 0.2, 0.06, 0.04});
  SamplingParams k = plain();
  k.top_k = 2;
  EXPECT_EQ(support(k, l), (std::set<int32_t>{0, 1}));
  SamplingParams tp = plain();
  tp.top_p = 0.85f;  // 0.4 + 0.3 + 0.2 = 0.9 is the first cumulative mass >= 0.85
  EXPECT_EQ(support(tp, l), (std::set<int32_t>{0, 1, 2}));
  SamplingParams mp = plain();
  mp.min_p = 0.5f;  // keep p >= 0.2
  EXPECT_EQ(support(mp, l), (std::set<int32_t>{0, 1, 2}));
}

TEST(Sampler, SeedReproducesAndTemperatureFollowsTheDistribution) {
  auto l = logits_of({0.5, 0.3, 0.2});
  SamplingParams p = plain();
  Sampler a(p, 3), b(p, 3);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.sample(l.data()), b.sample(l.data()));
  std::map<int32_t, int> counts;
  Sampler s(p, 3);
  const int n = 20000;
  for (int i = 0; i < n; ++i) counts[s.sample(l.data())]++;
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.02);
  // Temperature 0.5 squares the ratios: p ~ (0.25, 0.09, 0.04) / 0.38.
  p.temperature = 0.5f;
  Sampler t(p, 3);
  counts.clear();
  for (int i = 0; i < n; ++i) counts[t.sample(l.data())]++;
  EXPECT_NEAR(counts[0] / double(n), 0.25 / 0.38, 0.02);
}

TEST(Sampler, PenaltiesAndBiasChangeOnlyTheirTokens) {
  std::vector<float> l = {2.0f, 2.0f, -1.0f, 0.5f};
  SamplingParams p = plain();
  p.temperature = 0;
  p.repeat_penalty = 2.0f;
  Sampler s(p, 4);
  s.accept(0);
  EXPECT_EQ(s.sample(l.data()), 1);  // token 0 penalized from 2.0 to 1.0
  SamplingParams f = plain();
  f.temperature = 0;
  f.presence_penalty = 1.6f;
  f.frequency_penalty = 0.0f;
  Sampler pres(f, 4);
  pres.accept(0);
  pres.accept(1);
  EXPECT_EQ(pres.sample(l.data()), 3);  // 0 and 1 drop to 0.4 < 0.5
  SamplingParams bias = plain();
  bias.temperature = 0;
  bias.logit_bias[2] = 10.0f;
  Sampler bs(bias, 4);
  EXPECT_EQ(bs.sample(l.data()), 2);
  auto top = bs.top_logprobs(2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].token, 2);
  EXPECT_LE(top[0].logprob, 0.0f);
  EXPECT_NEAR(bs.chosen_logprob().logprob, top[0].logprob, 1e-6);
}
