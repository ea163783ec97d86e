// Older deepseek2 GGUFs hold MLA's up-projection as one attn_kv_b tensor (and key/value lengths
// of the decompressed heads, no *_mla keys). The fixture rewritten in that layout must give the
// logits of the fixture itself (which matches transformers; see conformance_test).
#include <gtest/gtest.h>

#include "common/error.h"
#include "gguf/writer.h"
#include "model/model.h"
#include "quant/dequant.h"
#include "quant/fp16.h"
#include "test_support.h"

using namespace jing;

namespace {

std::vector<float> rows_of(const gguf::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.ne[0] * t.ne[1] * t.ne[2]));
  const int64_t n_rows = t.ne[1] * t.ne[2];
  const size_t row_bytes = t.nbytes / static_cast<size_t>(n_rows);
  for (int64_t r = 0; r < n_rows; ++r) dequantize_row(t.type, t.data + r * row_bytes, out.data() + r * t.ne[0], t.ne[0]);
  return out;
}

// Writes `src` with every layer's attn_k_b / attn_v_b merged back into attn_kv_b (float16).
void write_old_layout(const gguf::File& src, const std::filesystem::path& out) {
  const int n_head = static_cast<int>(*src.arch_int("attention.head_count"));
  const int kv_lora = static_cast<int>(*src.arch_int("attention.kv_lora_rank"));
  const int rope = static_cast<int>(*src.arch_int("rope.dimension_count"));
  const int nope = static_cast<int>(*src.arch_int("attention.key_length_mla")) - rope;
  const int head_v = static_cast<int>(*src.arch_int("attention.value_length_mla"));
  gguf::Writer w;
  w.copy_metadata(src);
  w.remove("deepseek2.attention.key_length_mla");
  w.remove("deepseek2.attention.value_length_mla");
  w.set("deepseek2.attention.key_length", gguf::Value::u32(static_cast<uint32_t>(nope + rope)));
  w.set("deepseek2.attention.value_length", gguf::Value::u32(static_cast<uint32_t>(head_v)));
  std::vector<const void*> data;
  std::vector<std::vector<uint16_t>> owned;
  owned.reserve(src.tensors().size());
  for (const auto& t : src.tensors()) {
    const std::string& n = t.name;
    if (n.ends_with("attn_v_b.weight")) continue;
    if (!n.ends_with("attn_k_b.weight")) {
      w.add_tensor({n, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims)});
      data.push_back(t.data);
      continue;
    }
    const std::string prefix = n.substr(0, n.size() - std::string("attn_k_b.weight").size());
    auto k = rows_of(t);                                   // [n_head][kv_lora][nope]
    auto v = rows_of(src.tensor(prefix + "attn_v_b.weight"));  // [n_head][head_v][kv_lora]
    auto& kv = owned.emplace_back(static_cast<size_t>(n_head) * (nope + head_v) * kv_lora);
    for (int h = 0; h < n_head; ++h) {
      uint16_t* head = kv.data() + static_cast<size_t>(h) * (nope + head_v) * kv_lora;
      for (int r = 0; r < nope; ++r)
        for (int c = 0; c < kv_lora; ++c)
          head[r * kv_lora + c] = fp32_to_fp16(k[(static_cast<size_t>(h) * kv_lora + c) * nope + r]);
      for (int r = 0; r < head_v; ++r)
        for (int c = 0; c < kv_lora; ++c)
          head[(nope + r) * kv_lora + c] = fp32_to_fp16(v[(static_cast<size_t>(h) * head_v + r) * kv_lora + c]);
    }
    w.add_tensor({prefix + "attn_kv_b.weight", GgmlType::F16, {kv_lora, static_cast<int64_t>(n_head) * (nope + head_v)}});
    data.push_back(kv.data());
  }
  w.write(out, data);
}

std::vector<float> logits(model::Model& m, const std::vector<int32_t>& ids) {
  model::Batch b;
  for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], static_cast<int>(i), 0, true);
  auto all = m.forward(b);
  model::Batch step;  // and one decode step through the cache
  step.add(17, static_cast<int>(ids.size()), 0, true);
  auto last = m.forward(step);
  all.insert(all.end(), last.begin(), last.end());
  return all;
}

}  // namespace

TEST(DeepSeek2, CombinedKvBTensorGivesTheSameLogits) {
  JING_FIXTURE_OR_SKIP(path, "models/deepseek2-f16.gguf");
  auto src = gguf::File::open(path);
  test::TempDir dir;
  write_old_layout(src, dir / "old.gguf");
  ASSERT_TRUE(gguf::File::open(dir / "old.gguf").find_tensor("blk.0.attn_kv_b.weight"));
  ASSERT_FALSE(gguf::File::open(dir / "old.gguf").find_tensor("blk.0.attn_k_b.weight"));

  const std::vector<int32_t> ids = {5, 100, 200, 300, 7, 11, 1000, 1500};
  auto now = model::Model::load(path, {.n_ctx = 32});
  auto old = model::Model::load(dir / "old.gguf", {.n_ctx = 32});
  auto a = logits(*now, ids), b = logits(*old, ids);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4) << "index " << i;
}

TEST(DeepSeek2, MisshapenKvBIsAClearError) {
  JING_FIXTURE_OR_SKIP(path, "models/deepseek2-f16.gguf");
  auto src = gguf::File::open(path);
  test::TempDir dir;
  write_old_layout(src, dir / "old.gguf");
  gguf::File old = gguf::File::open(dir / "old.gguf");
  gguf::Writer w;  // layer 0's attn_kv_b one row short: only the split can notice
  w.copy_metadata(old);
  std::vector<const void*> data;
  for (const auto& t : old.tensors()) {
    std::vector<int64_t> shape(t.ne, t.ne + t.n_dims);
    if (t.name == "blk.0.attn_kv_b.weight") shape[1] -= 1;
    w.add_tensor({t.name, t.type, shape});
    data.push_back(t.data);
  }
  w.write(dir / "bad.gguf", data);
  try {
    model::Model::load(dir / "bad.gguf", {.n_ctx = 32});
    ADD_FAILURE() << "loaded a misshapen attn_kv_b";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_kv_b.weight"), std::string::npos) << e.what();
  }
}
