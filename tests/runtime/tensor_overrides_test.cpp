// -ot REGEX=DEVICE over made-up tensor names: parsing, which group a tensor belongs to, and the
// per-layer decisions (or the error naming the tensor) for what users write.
#include "runtime/tensor_overrides.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_support.h"

using namespace jing;
using namespace jing::runtime;

namespace {

// Four layers: 0 dense, 1-3 MoE (deepseek2's names); a NextN layer 4 beyond block_count.
std::vector<std::string> names() {
  std::vector<std::string> n = {"token_embd.weight", "output_norm.weight", "output.weight", "rope_freqs.weight"};
  for (const char* t : {"attn_norm.weight", "attn_q.weight", "ffn_norm.weight", "ffn_up.weight"}) n.push_back(std::string("blk.0.") + t);
  for (int i = 1; i < 4; ++i)
    for (const char* t : {"attn_norm.weight", "attn_q.weight", "ffn_norm.weight", "ffn_gate_inp.weight", "exp_probs_b.bias",
                          "ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight", "ffn_up_shexp.weight"})
      n.push_back("blk." + std::to_string(i) + "." + t);
  n.push_back("blk.4.nextn.eh_proj.weight");
  return n;
}

OverrideRequests match(const std::vector<std::string>& specs, int gpu = 0) {
  return match_tensor_overrides(parse_tensor_overrides(specs), names(), 4, gpu);
}

Placement ngl(const std::vector<std::string>& specs, int n_gpu_layers, int n_cpu_moe = 0) {
  return ngl_placement(4, n_gpu_layers, n_cpu_moe, match(specs), "-ngl " + std::to_string(n_gpu_layers), "CUDA0");
}

constexpr Device C = Device::Cpu, G = Device::Gpu;

}  // namespace

TEST(TensorOverrides, Parses) {
  auto o = parse_tensor_overrides({"exps=CPU", "blk\\.1\\.=CUDA1"});
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0].device, -1);
  EXPECT_EQ(o[1].device, 1);
  // llama.cpp's comma-joined form; a regex keeps its own commas.
  o = parse_tensor_overrides({"blk\\.[0-9]{1,2}\\.ffn_.*_exps=CPU,output=cuda0"});
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0].spec, "blk\\.[0-9]{1,2}\\.ffn_.*_exps=CPU");
  EXPECT_TRUE(std::regex_search("blk.12.ffn_up_exps.weight", o[0].pattern));
  EXPECT_EQ(o[1].device, 0);

  EXPECT_NE(test::error_of([] { parse_tensor_overrides({"exps"}); }).find("expected REGEX=DEVICE"), std::string::npos);
  EXPECT_NE(test::error_of([] { parse_tensor_overrides({"=CPU"}); }).find("expected REGEX=DEVICE"), std::string::npos);
  EXPECT_NE(test::error_of([] { parse_tensor_overrides({""}); }).find("expected REGEX=DEVICE"), std::string::npos);
  EXPECT_NE(test::error_of([] { parse_tensor_overrides({"exps=GPU"}); }).find("unknown device 'GPU'"), std::string::npos);
  EXPECT_NE(test::error_of([] { parse_tensor_overrides({"blk.(1=CPU"}); }).find("invalid regular expression 'blk.(1'"), std::string::npos);
}

TEST(TensorOverrides, ClassifiesTensors) {
  EXPECT_EQ(classify_tensor("blk.12.attn_q.weight", 61).kind, TensorGroup::Layer);
  EXPECT_EQ(classify_tensor("blk.12.attn_q.weight", 61).layer, 12);
  EXPECT_EQ(classify_tensor("blk.3.ffn_down_exps.weight", 61).kind, TensorGroup::Experts);
  EXPECT_EQ(classify_tensor("blk.3.ffn_gate_inp.weight", 61).kind, TensorGroup::Router);
  EXPECT_EQ(classify_tensor("blk.3.exp_probs_b.bias", 61).kind, TensorGroup::Router);
  EXPECT_EQ(classify_tensor("blk.3.ffn_up_shexp.weight", 61).kind, TensorGroup::Layer);
  EXPECT_EQ(classify_tensor("blk.61.nextn.eh_proj.weight", 61).kind, TensorGroup::Other);
  EXPECT_EQ(classify_tensor("token_embd.weight", 61).kind, TensorGroup::Input);
  EXPECT_EQ(classify_tensor("output.weight", 61).kind, TensorGroup::Output);
  EXPECT_EQ(classify_tensor("output_norm.weight", 61).kind, TensorGroup::Output);
  EXPECT_EQ(classify_tensor("rope_freqs.weight", 61).kind, TensorGroup::Other);
  EXPECT_EQ(classify_tensor("blk.x.attn_q.weight", 61).kind, TensorGroup::Other);
}

TEST(TensorOverrides, ExpsToCpuKeepsEveryLayerOnTheGpu) {
  const Placement p = ngl({"exps=CPU"}, 99);
  EXPECT_EQ(p.layers, std::vector<Device>({G, G, G, G}));
  EXPECT_EQ(p.experts, std::vector<Device>({G, C, C, C}));  // layer 0 has none
  EXPECT_EQ(p.input, G);
  EXPECT_EQ(p.output, G);
}

TEST(TensorOverrides, LayerRangeOfExperts) {
  const Placement p = ngl({"blk\\.(1|2)\\.ffn_.*_exps=CPU"}, 99);
  EXPECT_EQ(p.experts, std::vector<Device>({G, C, C, G}));
  EXPECT_EQ(p.layers_on(G), 4);
}

TEST(TensorOverrides, FirstMatchWins) {
  const Placement p = ngl({"blk\\.2\\.ffn_.*_exps=CUDA0", "exps=CPU"}, 99);
  EXPECT_EQ(p.experts, std::vector<Device>({G, C, G, C}));
}

TEST(TensorOverrides, AWholeLayerMoves) {
  Placement p = ngl({"blk\\.3\\.=CPU"}, 99);
  EXPECT_EQ(p.layers, std::vector<Device>({G, G, G, C}));
  EXPECT_EQ(p.experts[3], C);
  EXPECT_EQ(p.input, C) << "the embedding is on the GPU only when every layer is";
  EXPECT_EQ(p.output, G);
  p = ngl({"blk\\.0\\.=CUDA0"}, 0);  // and the other way
  EXPECT_EQ(p.layers, std::vector<Device>({G, C, C, C}));
  EXPECT_EQ(p.output, C);
}

TEST(TensorOverrides, CpuMoeUnlessAnOverrideSaysOtherwise) {
  Placement p = ngl({}, 99, 2);
  EXPECT_EQ(p.experts, std::vector<Device>({C, C, G, G}));
  p = ngl({"blk\\.1\\.ffn_.*_exps=CUDA0"}, 99, 100000);
  EXPECT_EQ(p.experts, std::vector<Device>({C, G, C, C}));
}

TEST(TensorOverrides, PartOfALayerIsAnErrorNamingTheTensors) {
  const std::string msg = test::error_of([] { ngl({"attn_q=CPU"}, 99); });
  EXPECT_NE(msg.find("blk.0.attn_q.weight on CPU but not blk.0.attn_norm.weight, which -ngl 99 places on CUDA0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("moves a layer's tensors together"), std::string::npos) << msg;
  // Where the rest of the layer goes anyway, the request is already met.
  EXPECT_EQ(ngl({"attn_q=CPU"}, 0).layers_on(G), 0);
}

TEST(TensorOverrides, PartOfTheExpertsIsAnError) {
  std::string msg = test::error_of([] { ngl({"ffn_down_exps=CPU"}, 99); });
  EXPECT_NE(msg.find("blk.1.ffn_down_exps.weight on CPU but not blk.1.ffn_gate_exps.weight"), std::string::npos) << msg;
  msg = test::error_of([] { ngl({"ffn_gate_inp=CPU"}, 99); });  // the router alone cannot leave its experts
  EXPECT_NE(msg.find("blk.1.ffn_gate_inp.weight on CPU but not blk.1.ffn_gate_exps.weight"), std::string::npos) << msg;
}

TEST(TensorOverrides, OneGroupOnTwoDevicesIsAnError) {
  const std::string msg = test::error_of([] { match({"attn_q=CPU", "blk\\.0\\.=CUDA0"}); });
  EXPECT_NE(msg.find("blk.0.attn_norm.weight on CUDA0 but blk.0.attn_q.weight on CPU"), std::string::npos) << msg;
}

TEST(TensorOverrides, OutputLayerMovesWhole) {
  EXPECT_EQ(ngl({"output=CPU"}, 99).output, C);  // output.weight and output_norm.weight
  EXPECT_NE(test::error_of([] { ngl({"output\\.weight=CPU"}, 99); }).find("output.weight on CPU but not output_norm.weight"), std::string::npos);
  EXPECT_EQ(ngl({"output\\.weight=CPU"}, 2).output, C);
  EXPECT_EQ(ngl({"token_embd=CPU"}, 99).input, C);
}

TEST(TensorOverrides, OtherGpusAndUnusedPatterns) {
  EXPECT_NE(test::error_of([] { match({"exps=CUDA1"}); }).find("--device CUDA1"), std::string::npos);
  EXPECT_NO_THROW(match({"exps=CUDA1"}, 1));
  const auto r = match({"nothing_like_this=CPU", "rope_freqs=CPU", "nextn=CPU"});
  EXPECT_EQ(r.unused, std::vector<std::string>({"nothing_like_this=CPU"}));
  EXPECT_FALSE(r.input.device);
}

TEST(TensorOverrides, AutoPinsWhatIsAskedFor) {
  // For -ngl auto, a partial request fixes its group: the tensors it did not match have no
  // preference of their own.
  Pins p = auto_pins(4, 1, match({"attn_q=CPU", "blk\\.3\\.ffn_.*_exps=CUDA0"}));
  EXPECT_EQ(p.layers, std::vector<std::optional<Device>>({C, C, C, C}));
  EXPECT_EQ(p.experts, std::vector<std::optional<Device>>({C, std::nullopt, std::nullopt, G}));  // --n-cpu-moe 1, -ot
  EXPECT_FALSE(p.output);
}
