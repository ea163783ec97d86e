// MoE routing on the device (cuda::ops::moe_route) against model::route, the CPU's rules:
// softmax and sigmoid gating, the selection bias, group-limited choice, normalization and scale.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "model/moe.h"
#include "test_support.h"

#ifdef JING_WITH_CUDA
#include "cuda/device.h"
#include "cuda/model_ops.h"
#endif

using namespace jing;

#ifndef JING_WITH_CUDA
TEST(CudaMoe, Skipped) { GTEST_SKIP() << "built without CUDA (JING_CUDA=OFF): no GPU tests"; }
#else

TEST(CudaMoe, RoutingMatchesCpu) {
  if (!cuda::available()) GTEST_SKIP() << "no CUDA device or driver on this machine";
  struct Case {
    const char* name;
    model::MoeRouting r;
    bool bias;
  };
  auto routing = [](int e, int k, int g, int gu, model::MoeRouting::Gating gate, bool norm, float scale) {
    model::MoeRouting r;
    r.n_expert = e, r.n_expert_used = k, r.n_group = g, r.n_group_used = gu, r.gating = gate, r.normalize = norm, r.scale = scale;
    return r;
  };
  const Case cases[] = {
      {"V2-Lite: 64 experts, top 6, softmax", routing(64, 6, 1, 1, model::MoeRouting::Gating::Softmax, false, 1.0f), false},
      {"R1: 256 experts, 8 groups of which 4, top 8, sigmoid + bias", routing(256, 8, 8, 4, model::MoeRouting::Gating::Sigmoid, true, 2.5f), true},
      {"odd: 40 experts, top 3, softmax, normalized", routing(40, 3, 1, 1, model::MoeRouting::Gating::Softmax, true, 1.0f), false},
  };
  std::mt19937 rng(21);
  std::normal_distribution<float> nd(0, 2);
  cuda::Stream stream;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const int64_t n = 7;
    const int E = c.r.n_expert, k = c.r.n_expert_used;
    std::vector<float> logits(static_cast<size_t>(n * E)), bias;
    for (auto& v : logits) v = nd(rng);
    if (c.bias) bias.resize(static_cast<size_t>(E)), std::generate(bias.begin(), bias.end(), [&] { return 0.1f * nd(rng); });
    cuda::DeviceBuffer ld(logits.size() * 4), bd(std::max<size_t>(bias.size(), 1) * 4), idd(static_cast<size_t>(n * k) * 4), wd(idd.size());
    ld.upload(logits.data(), logits.size() * 4);
    if (c.bias) bd.upload(bias.data(), bias.size() * 4);
    const cuda::ops::MoeRouteParams p{E, k, c.r.n_group, c.r.n_group_used, c.r.gating == model::MoeRouting::Gating::Sigmoid, c.r.normalize, c.r.scale};
    ASSERT_TRUE(cuda::ops::moe_route_supported(p));
    cuda::ops::moe_route(p, ld.as<float>(), c.bias ? bd.as<float>() : nullptr, n, idd.as<int32_t>(), wd.as<float>(), stream.handle());
    stream.synchronize();
    std::vector<int32_t> ids(static_cast<size_t>(n * k));
    std::vector<float> wts(ids.size());
    idd.download(ids.data(), ids.size() * 4);
    wd.download(wts.data(), wts.size() * 4);
    for (int64_t t = 0; t < n; ++t) {
      auto ref = model::route(c.r, logits.data() + t * E, bias);
      std::sort(ref.begin(), ref.end());
      for (int j = 0; j < k; ++j) {
        EXPECT_EQ(ids[static_cast<size_t>(t * k + j)], ref[static_cast<size_t>(j)].first) << "token " << t << " choice " << j;
        EXPECT_NEAR(wts[static_cast<size_t>(t * k + j)], ref[static_cast<size_t>(j)].second, 1e-6f * std::max(1.0f, std::abs(ref[static_cast<size_t>(j)].second)));
      }
    }
  }
}

#endif
