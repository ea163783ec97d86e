// Tensor parallelism (--split-mode row, model/row_split.h) checked on the CPU: the same sharding
// as over GPUs, over two or four CPU backends, against the model on one backend.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "model/backend.h"
#include "model/model.h"
#include "model/row_split.h"
#include "test_support.h"

using namespace jing;

namespace {

double rel_l2(const float* a, const float* b, size_t n) {
  double d = 0, r = 0;
  for (size_t i = 0; i < n; ++i) d += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), r += double(b[i]) * b[i];
  return std::sqrt(d / std::max(r, 1e-30));
}

// Every position's logits of ids in one sequence, `chunk` tokens a call (0: all at once).
std::vector<float> run(model::Model& m, const std::vector<int32_t>& ids, int seq, size_t chunk) {
  m.kv_clear(seq);
  std::vector<float> all;
  for (size_t at = 0; at < ids.size();) {
    const size_t end = chunk ? std::min(ids.size(), at + chunk) : ids.size();
    model::Batch b;
    for (size_t i = at; i < end; ++i) b.add(ids[i], static_cast<int>(i), seq, true);
    const auto l = m.forward(b);
    all.insert(all.end(), l.begin(), l.end());
    at = end;
  }
  return all;
}

// 12 token ids spread over the vocabulary.
std::vector<int32_t> probe_ids(int n_vocab) {
  std::vector<int32_t> ids;
  for (int i = 0; i < 12; ++i) ids.push_back((i * 7919 + 13) % n_vocab);
  return ids;
}

// The largest rel-L2 of other's logits against one's at every position of ids in sequence 1,
// the prompt whole and 1 and 5 tokens a call.
double worst_over_chunks(model::Model& one, model::Model& other, const std::vector<int32_t>& ids) {
  const int V = one.n_vocab();
  double worst = 0;
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{5}}) {
    const auto a = run(one, ids, 1, chunk), b = run(other, ids, 1, chunk);
    EXPECT_EQ(a.size(), b.size());
    for (size_t t = 0; t < ids.size() && (t + 1) * V <= std::min(a.size(), b.size()); ++t)
      worst = std::max(worst, rel_l2(&b[t * V], &a[t * V], static_cast<size_t>(V)));
  }
  return worst;
}

}  // namespace

TEST(RowSplit, ColumnSlicesPackWholeBlocks) {
  // An f32 matrix of 3 rows x 8 columns: columns [2, 6) of each row, packed.
  std::vector<float> m(24);
  for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<float>(i);
  cpu::WeightView w{GgmlType::F32, m.data(), 8, 3, 32};
  ASSERT_TRUE(model::row_split::columns_split(w, 2));
  std::vector<uint8_t> store;
  const auto v = model::row_split::columns(w, 2, 4, store);
  EXPECT_EQ(v.cols, 4);
  EXPECT_EQ(v.row_bytes, 16u);
  const auto* p = static_cast<const float*>(v.data);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) EXPECT_EQ(p[r * 4 + c], m[static_cast<size_t>(r * 8 + 2 + c)]);
  const auto rows = model::row_split::rows(w, 1, 2);
  EXPECT_EQ(static_cast<const float*>(rows.data)[0], 8.0f);
  EXPECT_EQ(rows.rows, 2);
  // Q4_K rows of 256 values split in two: 128 is not a whole block.
  cpu::WeightView q{GgmlType::Q4_K, nullptr, 256, 4, 144};
  EXPECT_FALSE(model::row_split::columns_split(q, 2));
}

TEST(RowSplit, AllReduceLeavesTheSameSumEverywhere) {
  auto a = model::make_cpu_backend(1), b = model::make_cpu_backend(1), c = model::make_cpu_backend(1);
  const size_t n = 5;
  std::vector<float*> ps;
  std::vector<std::pair<model::Backend*, float*>> parts;
  int k = 0;
  for (auto* be : {a.get(), b.get(), c.get()}) {
    float* p = be->alloc(n);
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>((k + 1) * (i + 1));
    be->upload(p, v.data(), n);
    parts.push_back({be, p});
    ++k;
  }
  model::row_split::all_reduce(parts, n);
  for (auto [be, p] : parts) {
    std::vector<float> v(n);
    be->download(v.data(), p, n);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(v[i], 6.0f * (i + 1));
    be->release(p);
  }
}

TEST(RowSplit, ShardsOverCpuBackendsMatchOneBackend) {
  auto dir = test::fixtures_dir();
  if (dir.empty()) GTEST_SKIP() << "fixtures not found (set JING_FIXTURES or provide ../shared/fixtures)";
  int split_models = 0;
  for (const char* file : {"models/llama-f16.gguf", "models/qwen2-f16.gguf", "quantized/llama-Q4_K_M.gguf", "models/deepseek2-f16.gguf"}) {
    if (!std::filesystem::exists(dir / file)) continue;
    SCOPED_TRACE(file);
    for (int parts : {2, 4}) {
      auto one = model::Model::load(dir / file, {.n_ctx = 64, .n_seq = 2, .n_threads = 1});
      model::ModelOptions o{.n_ctx = 64, .n_seq = 2, .n_threads = 1};
      o.cpu_row_shards = parts;
      auto split = model::Model::load(dir / file, o);
      const bool shared = split->backend_name().find("row split") != std::string::npos;
      std::printf("[row split] %-30s over %d CPU backends: %s\n", file, parts, shared ? split->backend_name().c_str() : "whole layers (shapes do not divide)");
      if (one->arch() == "deepseek2") {  // MLA + MoE: not shared out (whole layers), and says so
        EXPECT_FALSE(shared);
        continue;
      }
      if (!shared) continue;
      ++split_models;
      const std::vector<int32_t> ids = probe_ids(one->n_vocab());
      double worst = worst_over_chunks(*one, *split, ids);
      // Two sequences in one batch, as the server mixes them.
      model::Batch both;
      for (size_t i = 0; i < 6; ++i) both.add(ids[i], static_cast<int>(i), 0, i == 5), both.add(ids[i + 6], static_cast<int>(i), 1, i == 5);
      one->kv_clear(0), one->kv_clear(1), split->kv_clear(0), split->kv_clear(1);
      const auto a = one->forward(both), b = split->forward(both);
      worst = std::max(worst, rel_l2(b.data(), a.data(), a.size()));
      std::printf("[row split] %-30s over %d CPU backends vs one: max rel-L2 %.2e\n", file, parts, worst);
      EXPECT_LE(worst, 5e-3);
    }
  }
  if (split_models == 0) GTEST_SKIP() << "no fixture model found whose shapes divide";
}

TEST(ExpertParallel, SharesOverCpuBackendsMatchOneBackend) {
  auto dir = test::fixtures_dir();
  if (dir.empty()) GTEST_SKIP() << "fixtures not found (set JING_FIXTURES or provide ../shared/fixtures)";
  int checked = 0;
  for (const char* file : {"models/deepseek2-f16.gguf", "quantized/deepseek2-UD-IQ1_S.gguf"}) {
    if (!std::filesystem::exists(dir / file)) continue;
    SCOPED_TRACE(file);
    auto one = model::Model::load(dir / file, {.n_ctx = 64, .n_seq = 2, .n_threads = 1});
    model::ModelOptions o{.n_ctx = 64, .n_seq = 2, .n_threads = 1};
    o.cpu_row_shards = 2;
    setenv("JING_EXPERT_PARALLEL", "1", 1);
    auto shared = model::Model::load(dir / file, o);
    unsetenv("JING_EXPERT_PARALLEL");
    EXPECT_EQ(shared->backend_name(), "2 x CPU (experts shared out)");
    const double worst = worst_over_chunks(*one, *shared, probe_ids(one->n_vocab()));
    std::printf("[expert parallel] %-34s experts shared out over 2 CPU backends vs one: max rel-L2 %.2e\n", file, worst);
    EXPECT_LE(worst, 5e-3);
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no deepseek2 fixture found";
}
