// jing synth's mixes: Unsloth's dynamic R1 recipe against the fixture quantized with it, sizes of the
// 671B plans, uniform one-type mixes, and split parts that load as one model.
#include <gtest/gtest.h>

#include "common/error.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "model/synth.h"
#include "quant/mix.h"
#include "test_support.h"

namespace jing {
namespace {

TEST(SynthMix, UnslothIQ1SRecipeMatchesTheFixtureTensorByTensor) {
  JING_FIXTURE_OR_SKIP(path, "quantized/deepseek2-UD-IQ1_S.gguf");
  auto f = gguf::File::open(path);
  const int n_layer = static_cast<int>(f.arch_int("block_count").value_or(0));
  const Mix mix = mix_from_name("UD-IQ1_S");
  int checked = 0;
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(traits(choose_type(mix, t, n_layer, {})).name, traits(t.type).name) << t.name;
    ++checked;
  }
  EXPECT_GT(checked, 40);
}

uint64_t plan_bytes(const std::string& mix, std::vector<model::SynthTensor>* plan = nullptr) {
  std::vector<model::SynthTensor> local;
  model::SynthOptions o;
  o.mix = mix;
  o.dry_run = true;
  o.plan = plan ? plan : &local;
  model::write_synth(model::synth_shape("deepseek2", "671b"), o, "unused.gguf");
  uint64_t total = 0;
  for (const auto& t : *o.plan) total += gguf::TensorSpec{t.name, t.type, t.shape}.nbytes();
  return total;
}

TEST(SynthMix, R1PlansHaveThePublishedSizes) {
  constexpr double GiB = 1024.0 * 1024 * 1024;
  // Unsloth lists 131, 158, 183 and 212 (GB as their listing counts them: GiB).
  std::vector<model::SynthTensor> plan;
  EXPECT_NEAR(plan_bytes("UD-IQ1_S", &plan) / GiB, 131, 131 * 0.03);
  EXPECT_NEAR(plan_bytes("UD-IQ1_M") / GiB, 158, 158 * 0.08);
  EXPECT_NEAR(plan_bytes("UD-IQ2_XXS") / GiB, 183, 183 * 0.08);
  EXPECT_NEAR(plan_bytes("UD-Q2_K_XL") / GiB, 212, 212 * 0.03);
  size_t iq1 = 0;
  for (const auto& t : plan) {
    if (t.name.find("_exps") != std::string::npos && t.name.find("down") == std::string::npos) EXPECT_EQ(t.type, GgmlType::IQ1_S) << t.name;
    if (t.name.find("attn_") != std::string::npos && t.shape.size() > 1) EXPECT_TRUE(t.type == GgmlType::Q4_K || t.type == GgmlType::Q5_0) << t.name;
    iq1 += t.type == GgmlType::IQ1_S;
  }
  EXPECT_EQ(iq1, 58u * 2 + 46u);  // gate/up of 58 MoE layers, down of all but layers 3-14
}

TEST(SynthMix, AnyBlockTypeIsAUniformMix) {
  for (const char* name : {"IQ1_S", "IQ2_XS", "Q5_K", "IQ3_XXS"}) {
    const Mix m = mix_from_name(name);
    gguf::TensorInfo t;
    t.name = "blk.3.ffn_down.weight";
    t.n_dims = 2, t.ne[0] = 1536, t.ne[1] = 8960;
    EXPECT_EQ(choose_type(m, t, 28, {}), *type_from_name(name)) << name;
    t.name = "output.weight";
    EXPECT_EQ(choose_type(m, t, 28, {}), *type_from_name(name)) << name;
    t.ne[0] = 128;  // rows that do not split into 256-value blocks fall back
    EXPECT_NE(traits(choose_type(m, t, 28, {})).block_size, 256) << name;
  }
  EXPECT_THROW(mix_from_name("IQ9_Z"), Error);
}

TEST(SynthMix, SplitPartsLoadAsOneModel) {
  test::TempDir dir;
  model::SynthShape s = model::synth_shape("deepseek2", "671b");
  s.n_embd = 256, s.n_layer = 4, s.n_head = 4, s.n_vocab = 512, s.q_lora = 64, s.kv_lora = 64, s.rope_dim = 32, s.nope = 32, s.v_dim = 32;
  s.n_expert = 8, s.n_expert_used = 2, s.n_ff_exp = 256, s.n_ff = 512, s.n_dense = 1, s.n_group = 2, s.n_group_used = 1;
  model::SynthOptions o;
  o.mix = "UD-IQ1_S";
  o.split = 3;
  model::write_synth(s, o, dir / "R1-UD-IQ1_S.gguf");
  for (int p = 1; p <= 3; ++p) EXPECT_TRUE(std::filesystem::exists(dir / ("R1-UD-IQ1_S-0000" + std::to_string(p) + "-of-00003.gguf")));
  auto f = gguf::File::open(dir / "R1-UD-IQ1_S-00001-of-00003.gguf");
  std::vector<model::SynthTensor> plan;
  o.dry_run = true, o.plan = &plan;
  model::write_synth(s, o, dir / "unused.gguf");
  ASSERT_EQ(f.tensors().size(), plan.size());
  for (const auto& t : plan) {
    const auto* got = f.find_tensor(t.name);
    ASSERT_NE(got, nullptr) << t.name;
    EXPECT_EQ(got->type, t.type) << t.name;
  }
}

// --template stores the chat template (R1's, for the 671b shape, so the server opens a reasoning
// block as it would for the published files), over the one --vocab brings.
TEST(SynthMix, ChatTemplateOverTheVocabularys) {
  test::TempDir dir;
  model::SynthShape s = model::synth_shape("qwen2", "1.5b");
  s.n_embd = 64, s.n_layer = 1, s.n_head = 2, s.n_head_kv = 1, s.n_ff = 128, s.n_vocab = 300;
  model::SynthOptions o;
  o.mix = "F16";
  o.chat_template = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}<think>\n";
  model::write_synth(s, o, dir / "t.gguf");
  auto f = gguf::File::open(dir / "t.gguf");
  EXPECT_EQ(f.get_string("tokenizer.chat_template").value_or(""), *o.chat_template);
  const auto vocab = test::fixtures_dir() / "tokenizer" / "qwen3-vocab.gguf";
  if (!std::filesystem::exists(vocab)) GTEST_SKIP() << "fixtures absent: " << vocab;
  o.vocab = vocab;
  model::write_synth(s, o, dir / "v.gguf");
  auto g = gguf::File::open(dir / "v.gguf");
  EXPECT_EQ(g.get_string("tokenizer.chat_template").value_or(""), *o.chat_template);
  EXPECT_TRUE(gguf::File::open(vocab).get_string("tokenizer.chat_template").has_value());  // there was one to replace
}

}  // namespace
}  // namespace jing
