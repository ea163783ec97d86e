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

// The decode path's fused op: router product and routing in one launch. Its logits match a
// double-precision product, and its choice is the CPU's routing of those logits; run twice (its
// per-token counters must be left at zero for the next call).
TEST(CudaMoe, FusedRouterMatchesCpu) {
  if (!cuda::available()) GTEST_SKIP() << "no CUDA device or driver on this machine";
  model::MoeRouting r;
  r.n_expert = 256, r.n_expert_used = 8, r.n_group = 8, r.n_group_used = 4, r.gating = model::MoeRouting::Gating::Sigmoid;
  r.normalize = true, r.scale = 2.5f;
  const int E = r.n_expert, k = r.n_expert_used;
  const int64_t cols = 1024, n = 3;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> w(static_cast<size_t>(E * cols)), x(static_cast<size_t>(n * cols)), bias(static_cast<size_t>(E));
  for (auto& v : w) v = 0.05f * nd(rng);
  for (auto& v : x) v = nd(rng);
  for (auto& v : bias) v = 0.1f * nd(rng);
  cuda::DeviceBuffer wd(w.size() * 4), xd(x.size() * 4), bd(bias.size() * 4), ld(static_cast<size_t>(n * E) * 4), done(cuda::ops::kMaxRouteTokens * 4),
      idd(static_cast<size_t>(n * k) * 4), wtd(idd.size());
  wd.upload(w.data(), w.size() * 4), xd.upload(x.data(), x.size() * 4), bd.upload(bias.data(), bias.size() * 4);
  const std::vector<unsigned> zeros(cuda::ops::kMaxRouteTokens, 0u);
  done.upload(zeros.data(), zeros.size() * 4);
  const cuda::ops::MoeRouteParams p{E, k, r.n_group, r.n_group_used, true, r.normalize, r.scale};
  cuda::Stream stream;
  for (int call = 0; call < 2; ++call) {
    SCOPED_TRACE("call " + std::to_string(call));
    ASSERT_TRUE(cuda::ops::moe_router_route(p, wd.as<float>(), cols, xd.as<float>(), n, bd.as<float>(), ld.as<float>(), static_cast<unsigned*>(done.data()),
                                            idd.as<int32_t>(), wtd.as<float>(), stream.handle()));
    stream.synchronize();
    std::vector<float> logits(static_cast<size_t>(n * E)), wts(static_cast<size_t>(n * k));
    std::vector<int32_t> ids(wts.size());
    ld.download(logits.data(), logits.size() * 4), idd.download(ids.data(), ids.size() * 4), wtd.download(wts.data(), wts.size() * 4);
    for (int64_t t = 0; t < n; ++t) {
      for (int e = 0; e < E; ++e) {
        double ref = 0;
        for (int64_t c = 0; c < cols; ++c) ref += static_cast<double>(w[static_cast<size_t>(e * cols + c)]) * x[static_cast<size_t>(t * cols + c)];
        ASSERT_NEAR(logits[static_cast<size_t>(t * E + e)], ref, 1e-4 * (1 + std::abs(ref))) << "token " << t << " expert " << e;
      }
      auto ref = model::route(r, logits.data() + t * E, bias);
      std::sort(ref.begin(), ref.end());
      for (int j = 0; j < k; ++j) {
        EXPECT_EQ(ids[static_cast<size_t>(t * k + j)], ref[static_cast<size_t>(j)].first) << "token " << t << " choice " << j;
        EXPECT_NEAR(wts[static_cast<size_t>(t * k + j)], ref[static_cast<size_t>(j)].second, 1e-6f * std::max(1.0f, std::abs(ref[static_cast<size_t>(j)].second)));
      }
    }
    std::vector<unsigned> left(zeros.size());
    done.download(left.data(), left.size() * 4);
    EXPECT_EQ(left, zeros);
  }
}

#endif
