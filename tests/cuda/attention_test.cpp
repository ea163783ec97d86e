// The GPU attention kernel (cuda::ops::attention_f16) against softmax(q k^T * scale) v in double
// precision over the same f16 cache (within the f16 accumulator's rounding): grouped heads and MLA's shared [latent | rope] rows, decode
// steps split over the key sequence, and prompts longer than one tile of keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "quant/fp16.h"
#include "test_support.h"

#ifdef JING_WITH_CUDA
#include "cuda/device.h"
#include "cuda/model_ops.h"
#endif

using namespace jing;

#ifndef JING_WITH_CUDA
TEST(CudaAttention, Skipped) { GTEST_SKIP() << "built without CUDA (JING_CUDA=OFF): no GPU tests"; }
#else

namespace {

struct Case {
  const char* name;
  cuda::ops::AttentionParams p;
  std::vector<int32_t> pos;  // one token per entry, all of sequence 0
};

double check(const Case& c, std::mt19937& rng, bool tensor_cores = false) {
  cuda::ops::AttentionParams p = c.p;  // split over keys as a decode step up to the last position would be
  p.band = cuda::ops::attention_band(*std::max_element(c.pos.begin(), c.pos.end()) + 1);
  const int64_t n = static_cast<int64_t>(c.pos.size());
  std::normal_distribution<float> nd(0, 1);
  std::vector<uint16_t> kc(static_cast<size_t>(p.n_ctx) * p.k_width), vc(static_cast<size_t>(p.n_ctx) * std::max(p.v_width, 1));
  for (auto& x : kc) x = fp32_to_fp16(nd(rng));
  for (auto& x : vc) x = fp32_to_fp16(nd(rng));
  const int64_t q_stride = int64_t{p.n_head} * p.dk;
  std::vector<float> q(static_cast<size_t>(n * q_stride));
  for (auto& x : q) x = nd(rng);
  std::vector<int32_t> seq(static_cast<size_t>(n), 0);

  // Reference, with the kernel's inputs: q rounded to f16, keys and values as cached.
  std::vector<double> ref(static_cast<size_t>(n * p.n_head * p.dv));
  for (int64_t t = 0; t < n; ++t)
    for (int h = 0; h < p.n_head; ++h) {
      const int hk = h / (p.n_head / p.n_head_kv);
      const int len = c.pos[static_cast<size_t>(t)] + 1;
      std::vector<double> sc(static_cast<size_t>(len));
      double mx = -INFINITY;
      for (int j = 0; j < len; ++j) {
        double dot = 0;
        for (int d = 0; d < p.dk; ++d)
          dot += static_cast<double>(fp16_to_fp32(fp32_to_fp16(q[static_cast<size_t>(t * q_stride + h * p.dk + d)]))) *
                 fp16_to_fp32(kc[static_cast<size_t>(j) * p.k_width + hk * p.dk + d]);
        sc[static_cast<size_t>(j)] = dot * p.scale, mx = std::max(mx, sc[static_cast<size_t>(j)]);
      }
      double sum = 0;
      for (auto& s : sc) sum += (s = std::exp(s - mx));
      for (int d = 0; d < p.dv; ++d) {
        double o = 0;
        for (int j = 0; j < len; ++j) {
          const uint16_t v = p.v_in_k ? kc[static_cast<size_t>(j) * p.k_width + hk * p.dk + d] : vc[static_cast<size_t>(j) * p.v_width + hk * p.dv + d];
          o += sc[static_cast<size_t>(j)] * fp16_to_fp32(v);
        }
        ref[static_cast<size_t>((t * p.n_head + h) * p.dv + d)] = o / sum;
      }
    }

  cuda::Stream stream;
  cuda::DeviceBuffer kd(kc.size() * 2), vd(vc.size() * 2), qd(q.size() * 4), pd(c.pos.size() * 4), sd(seq.size() * 4), od(ref.size() * 4),
      scratch(std::max<size_t>(cuda::ops::attention_scratch_floats(p, n), 1) * 4);
  kd.upload(kc.data(), kc.size() * 2), vd.upload(vc.data(), vc.size() * 2), qd.upload(q.data(), q.size() * 4);
  pd.upload(c.pos.data(), c.pos.size() * 4), sd.upload(seq.data(), seq.size() * 4);
  if (tensor_cores)  // the prompt kernel: positions pos[0] + t
    cuda::ops::attention_prompt_f16(p, qd.as<float>(), q_stride, kd.as<uint16_t>(), p.v_in_k ? nullptr : vd.as<uint16_t>(), 0, c.pos[0], n,
                                    od.as<float>(), stream.handle());
  else
    cuda::ops::attention_f16(p, qd.as<float>(), q_stride, kd.as<uint16_t>(), p.v_in_k ? nullptr : vd.as<uint16_t>(), sd.as<int32_t>(),
                             pd.as<int32_t>(), n, od.as<float>(), scratch.as<float>(), stream.handle());
  stream.synchronize();
  std::vector<float> got(ref.size());
  od.download(got.data(), got.size() * 4);
  double e = 0, r = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    e += (got[i] - ref[i]) * (got[i] - ref[i]), r += ref[i] * ref[i];
  }
  return std::sqrt(e / r);
}

std::vector<int32_t> range(int from, int to) {
  std::vector<int32_t> v;
  for (int i = from; i < to; ++i) v.push_back(i);
  return v;
}

}  // namespace

TEST(CudaAttention, MatchesDoublePrecision) {
  if (!cuda::available()) GTEST_SKIP() << "no CUDA device or driver on this machine";
  const float s128 = 1.0f / std::sqrt(128.0f), s192 = 1.0f / std::sqrt(192.0f);
  const Case cases[] = {
      {"GQA 12/2 heads, one token at 1500 (split)", {12, 2, 128, 128, s128, 2048, 256, 256, false}, {1500}},
      {"GQA 12/2 heads, one token at 300", {12, 2, 128, 128, s128, 512, 256, 256, false}, {300}},
      {"GQA 12/2 heads, one token at 0", {12, 2, 128, 128, s128, 512, 256, 256, false}, {0}},
      {"GQA 28/4 heads, 3 tokens at 5, 260, 511", {28, 4, 128, 128, s128, 512, 512, 512, false}, {5, 260, 511}},
      {"GQA 12/2 heads, a 300-token prompt (tiles)", {12, 2, 128, 128, s128, 512, 256, 256, false}, range(0, 300)},
      {"MLA 16 heads over [512 | 64], one token at 200", {16, 1, 576, 512, s192, 256, 576, 0, true}, {200}},
      {"MLA 16 heads, two tokens at 700, 1000 (split)", {16, 1, 576, 512, s192, 1024, 576, 0, true}, {700, 1000}},
      {"MLA 16 heads, a 200-token prompt", {16, 1, 576, 512, s192, 256, 576, 0, true}, range(0, 200)},
  };
  std::mt19937 rng(31);
  for (const auto& c : cases) {
    const double e = check(c, rng);
    std::printf("[cuda attention] %-48s rel-L2 %.2e\n", c.name, e);
    // The kernel accumulates the weighted values in f16 as ggml does (2^-11 per rounding).
    EXPECT_LE(e, 5e-3) << c.name;
  }
}


// The prompt kernel on the tensor cores (f32 accumulation: closer to the reference than the f16
// chain): grouped heads (one, several and a partial tile of 64 rows), MLA, a prompt that starts
// after earlier positions, head widths 64 and 128.
TEST(CudaAttention, PromptOnTensorCoresMatchesDoublePrecision) {
  if (!cuda::available()) GTEST_SKIP() << "no CUDA device or driver on this machine";
  const float s64 = 0.125f, s128 = 1.0f / std::sqrt(128.0f), s192 = 1.0f / std::sqrt(192.0f);
  const Case cases[] = {
      {"GQA 12/2 heads, a 300-token prompt", {12, 2, 128, 128, s128, 512, 256, 256, false}, range(0, 300)},
      {"GQA 28/4 heads, 77 tokens after 100", {28, 4, 128, 128, s128, 512, 512, 512, false}, range(100, 177)},
      {"MHA 8/8 heads of 64, 130 tokens", {8, 8, 64, 64, s64, 256, 512, 512, false}, range(0, 130)},
      {"MLA 16 heads over [512 | 64], a 200-token prompt", {16, 1, 576, 512, s192, 256, 576, 0, true}, range(0, 200)},
      {"MLA 16 heads, 65 tokens after 300", {16, 1, 576, 512, s192, 512, 576, 0, true}, range(300, 365)},
  };
  std::mt19937 rng(32);
  for (const auto& c : cases) {
    ASSERT_TRUE(cuda::ops::attention_prompt_supported(c.p)) << c.name;
    const double e = check(c, rng, true);
    std::printf("[cuda attention] tensor cores: %-44s rel-L2 %.2e\n", c.name, e);
    EXPECT_LE(e, 3e-3) << c.name;  // P rounded to f16 once per key (2^-11), accumulated in f32
  }
}
#endif
