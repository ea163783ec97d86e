// Placement against real files: the sizes read from a GGUF's tensor infos, and the CLI failing
// fast (before any weight is read) with the sizes in its message when a plan cannot fit.
#include "runtime/placement.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/error.h"
#include "test_support.h"

using namespace jing;
using namespace jing::runtime;

TEST(Placement, SizesComeFromTheTensorInfos) {
  JING_FIXTURE_OR_SKIP(path, "models/deepseek2-f16.gguf");
  const auto f = gguf::File::open(path);
  model::ModelOptions o;
  o.n_ctx = 16, o.n_seq = 2, o.n_batch = 8;
  const ModelSizes s = model_sizes(f, 3, {80, 0, 1000}, 2048, o);
  ASSERT_EQ(s.n_layer(), 3);
  EXPECT_EQ(s.expert_bytes[0], 0u);  // the leading dense layer
  // Three f16 [8][256][256] expert tensors, the f32 router [8][256] and its bias of 8.
  EXPECT_EQ(s.expert_bytes[1], 3u * 8 * 256 * 256 * 2 + 8 * 256 * 4 + 8 * 4);
  uint64_t layer1 = 0;
  for (const auto& t : f.tensors())
    if (t.name.rfind("blk.1.", 0) == 0) layer1 += t.nbytes;
  EXPECT_EQ(s.layer_bytes[1] + s.expert_bytes[1], layer1);
  EXPECT_EQ(s.input_bytes, 2048u * 256 * 2);
  EXPECT_EQ(s.output_bytes, 2048u * 256 * 2 + 256 * 4);  // projection and norm
  EXPECT_FALSE(s.tied_output);
  EXPECT_EQ(s.kv_layer_gpu, 2u * 16 * 80 * 2);  // sequences x positions x an f16 row of the latent and k_pe
  EXPECT_EQ(s.compute_cpu, compute_estimate(Device::Cpu, 8, 1000, 2048));
}

TEST(Placement, WithoutAGpuEverythingStaysOnTheCpu) {
  JING_FIXTURE_OR_SKIP(path, "models/deepseek2-f16.gguf");
  const auto f = gguf::File::open(path);
  model::ModelOptions o;
  o.n_gpu_layers = model::kGpuLayersAuto;
  o.tensor_overrides = {"exps=CUDA0"};
  const auto plan = plan_placement(f, 3, {80, 0, 1000}, 2048, o, nullptr);
  EXPECT_FALSE(plan.placement.uses(Device::Gpu));
  EXPECT_EQ(plan.placement.input, Device::Cpu);
}

TEST(Placement, PlansTheGpuItIsGiven) {
  JING_FIXTURE_OR_SKIP(path, "models/deepseek2-f16.gguf");
  const auto f = gguf::File::open(path);
  model::ModelOptions o;
  o.n_gpu_layers = model::kGpuLayersAuto;
  o.tensor_overrides = {"exps=CPU"};
  const uint64_t free = uint64_t{80} << 30;
  auto plan = plan_placement(f, 3, {80, 0, 1000}, 2048, o, &free);
  EXPECT_EQ(plan.placement.layers_on(Device::Gpu), 3);
  EXPECT_EQ(plan.placement.experts[1], Device::Cpu);
  ASSERT_EQ(plan.lines.size(), 2u);
  EXPECT_EQ(plan.lines[1].rfind("CPU: routed experts of layers 1-2; ", 0), 0u) << plan.lines[1];

  o.n_gpu_layers = 99;
  o.gpu_memory = 1 << 20;
  try {
    plan_placement(f, 3, {80, 0, 1000}, 2048, o, &free);
    FAIL() << "1 MiB cannot hold the model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("-ngl 99 needs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1.0 MiB allowed by --gpu-memory"), std::string::npos) << e.what();
  }
}

TEST(PlacementCli, NoMmapBeyondAvailableRamFailsFast) {
  JING_FIXTURE_OR_SKIP(path, "models/qwen2-f16.gguf");
  setenv("JING_TEST_MEM_AVAILABLE", "1MiB", 1);
  const auto r = test::run_jing({"run", path.string(), "hi", "-n", "1", "--no-mmap", "-ngl", "0"});  // all in RAM, GPU or not
  unsetenv("JING_TEST_MEM_AVAILABLE");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("with --no-mmap needs"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("of RAM (weights "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1.0 MiB available"), std::string::npos) << r.err;
}

TEST(PlacementCli, GpuMemoryCapFailsFastOnAGpu) {
  JING_FIXTURE_OR_SKIP(path, "models/qwen2-f16.gguf");
  const auto r = test::run_jing({"run", path.string(), "hi", "-n", "1", "-ngl", "99", "--gpu-memory", "1MiB"});
  if (r.err.find("all layers run on the CPU") != std::string::npos)
    GTEST_SKIP() << "no GPU here (" << r.err.substr(0, r.err.find('\n')) << "): the cap has nothing to limit";
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("-ngl 99 needs"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1.0 MiB allowed by --gpu-memory"), std::string::npos) << r.err;
}

TEST(PlacementCli, BadOverridesAreClearErrors) {
  JING_FIXTURE_OR_SKIP(path, "models/qwen2-f16.gguf");
  auto r = test::run_jing({"run", "-ot", "blk.(1=CPU", path.string(), "hi"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("invalid regular expression 'blk.(1'"), std::string::npos) << r.err;
  r = test::run_jing({"bench", path.string(), "-ot", "exps=GPU0"});
  EXPECT_NE(r.err.find("unknown device 'GPU0'"), std::string::npos) << r.err;
  r = test::run_jing({"run", path.string(), "hi", "-ngl", "many"});
  EXPECT_NE(r.err.find("--n-gpu-layers 'many'"), std::string::npos) << r.err;
  // A valid override before the positional arguments leaves them alone.
  r = test::run_jing({"run", "-ot", "blk\\.0\\.=CPU", "-ot", "exps=CPU", path.string(), "hi", "-n", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("note: -ot 'exps=CPU' matches no tensor of this model"), std::string::npos) << r.err;
}

TEST(Placement, TensorSplitSharesAndLayersPerGpu) {
  EXPECT_EQ(parse_tensor_split("1"), (std::vector<double>{1}));
  EXPECT_EQ(parse_tensor_split("0/0/2.5"), (std::vector<double>{0, 0, 2.5}));
  EXPECT_EQ(parse_tensor_split("3,1"), (std::vector<double>{3, 1}));
  for (const char* bad : {"", "1,", "a", "1,-1", "1;2", "nan", "0,0"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(parse_tensor_split(bad), Error);
  }
  // Whole layers, in order, in proportion: llama.cpp's layer split.
  EXPECT_EQ(split_layers(8, {1, 1}), (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(split_layers(8, {3, 1}), (std::vector<int>{0, 0, 0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(split_layers(5, {1, 1, 1}), (std::vector<int>{0, 0, 1, 2, 2}));  // bounds round(5/3), round(10/3)
  EXPECT_EQ(split_layers(3, {1, 0, 2}), (std::vector<int>{0, 2, 2}));
  EXPECT_EQ(split_layers(1, {1, 1}), (std::vector<int>{0}));
  EXPECT_TRUE(split_layers(0, {1, 1}).empty());
  // A placement's GPU part over two GPUs: layers 2-5 on the GPU (-ngl 4 of 6), the output layer
  // with the last of them, the embedding on the first GPU, experts with their layer.
  Placement p = Placement::all(6, Device::Cpu);
  for (size_t l = 2; l < 6; ++l) p.layers[l] = p.experts[l] = Device::Gpu;
  p.experts[5] = Device::Cpu;  // --n-cpu-moe style: this layer's experts in RAM
  p.output = p.input = Device::Gpu;
  const auto parts = split_over_gpus(p, {1, 1});
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].layers, (std::vector<Device>{Device::Cpu, Device::Cpu, Device::Gpu, Device::Gpu, Device::Cpu, Device::Cpu}));
  EXPECT_EQ(parts[1].layers, (std::vector<Device>{Device::Cpu, Device::Cpu, Device::Cpu, Device::Cpu, Device::Gpu, Device::Gpu}));
  EXPECT_EQ(parts[1].experts, (std::vector<Device>{Device::Cpu, Device::Cpu, Device::Cpu, Device::Cpu, Device::Gpu, Device::Cpu}));
  EXPECT_EQ(parts[0].input, Device::Gpu);
  EXPECT_EQ(parts[1].input, Device::Cpu);
  EXPECT_EQ(parts[0].output, Device::Cpu);
  EXPECT_EQ(parts[1].output, Device::Gpu);
  // Each GPU's usage is its own: GPU 1's weights are layers 4 and 5 (no experts of 5) + output.
  ModelSizes s;
  s.layer_bytes.assign(6, 100), s.expert_bytes.assign(6, 1000);
  s.input_bytes = 7, s.output_bytes = 9, s.kv_layer_gpu = 3, s.compute_gpu = 50;
  EXPECT_EQ(usage_on(Device::Gpu, s, parts[1]).weights, 100u + 100 + 1000 + 9);
  EXPECT_EQ(usage_on(Device::Gpu, s, parts[1]).kv, 6u);
  EXPECT_EQ(usage_on(Device::Gpu, s, parts[0]).weights, 100u + 1000 + 100 + 1000 + 7);
}

TEST(PlacementCli, SplitFlagsAreAcceptedAsLlamaCppSpellsThem) {
  JING_FIXTURE_OR_SKIP(path, "models/qwen2-f16.gguf");
  auto r = test::run_jing({"run", path.string(), "hi", "-n", "2", "-sm", "row", "-ts", "1,1", "-dev", "CUDA0,CUDA1", "-ngl", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;  // (-ngl 0: no layer on a GPU, so the split has nothing to share out)
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
  r = test::run_jing({"bench", path.string(), "-dev", "CUDA0,GPU1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown --device 'CUDA0,GPU1'"), std::string::npos) << r.err;
  r = test::run_jing({"bench", path.string(), "-dev", "CUDA0,CUDA1", "-ts", "0,0,1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("gives none of the --device GPUs a share"), std::string::npos) << r.err;
  r = test::run_jing({"bench", path.string(), "-ts", "0,0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--tensor-split '0,0': every share is 0"), std::string::npos) << r.err;
  r = test::run_jing({"bench", path.string(), "-sm", "rows"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("split-mode"), std::string::npos) << r.err;
  // -sm none keeps the main GPU: the shares are not read
  r = test::run_jing({"run", path.string(), "hi", "-n", "2", "-sm", "none", "-ts", "0,0", "-ngl", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}
