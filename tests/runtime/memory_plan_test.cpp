// The memory planner over made-up sizes: what a placement costs per device, the fit check's
// message, and the order in which the automatic placement gives up GPU memory.
#include "runtime/memory_plan.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_support.h"

using namespace jing;
using namespace jing::runtime;

namespace {

constexpr uint64_t MiB = uint64_t{1} << 20, GiB = uint64_t{1} << 30;

// Ten layers of 1 GiB; layers 1-9 with 4 GiB of routed experts; 0.5 GiB embedding and output;
// 0.1 GiB of cache per layer on the GPU (0.2 in RAM); 1 GiB of GPU scratch. Everything: 49 GiB.
ModelSizes sizes() {
  ModelSizes s;
  s.layer_bytes.assign(10, GiB);
  s.expert_bytes.assign(10, 4 * GiB);
  s.expert_bytes[0] = 0;
  s.input_bytes = s.output_bytes = GiB / 2;
  s.kv_layer_gpu = GiB / 10;
  s.kv_layer_cpu = GiB / 5;
  s.compute_gpu = GiB;
  s.compute_cpu = 100 * MiB;
  return s;
}

Budget gpu(uint64_t bytes) {
  Budget b;
  b.gpu = bytes;
  return b;
}

}  // namespace

TEST(MemoryPlan, UsageCountsWeightsCacheAndScratchPerDevice) {
  const ModelSizes s = sizes();
  Placement p = Placement::all(10, Device::Gpu);
  Usage u = usage_on(Device::Gpu, s, p);
  EXPECT_EQ(u.weights, 10 * GiB + 36 * GiB + GiB);
  EXPECT_EQ(u.kv, 10 * (GiB / 10));
  EXPECT_EQ(u.compute, GiB);
  EXPECT_EQ(usage_on(Device::Cpu, s, p).total(), 0u);

  // Layer 3 and the experts of layer 5 in RAM: the GPU holds the cache of its 9 layers, the CPU
  // a whole cache of its own.
  p.layers[3] = p.experts[3] = p.experts[5] = Device::Cpu;
  u = usage_on(Device::Gpu, s, p);
  EXPECT_EQ(u.weights, 9 * GiB + 28 * GiB + GiB);
  EXPECT_EQ(u.kv, 9 * (GiB / 10));
  const Usage c = usage_on(Device::Cpu, s, p);
  EXPECT_EQ(c.weights, GiB + 8 * GiB);
  EXPECT_EQ(c.kv, 10 * (GiB / 5));
  EXPECT_EQ(c.compute, 100 * MiB);
}

TEST(MemoryPlan, RowSplitSharesEveryLayerAndKeepsEmbeddingAndOutputOnTheFirstGpu) {
  ModelSizes s = sizes();
  const Usage first = row_split_usage(s, 0, 2), second = row_split_usage(s, 1, 2);
  EXPECT_EQ(second.weights, 23 * GiB);  // half of 10 + 36 GiB
  EXPECT_EQ(first.weights, 23 * GiB + GiB);
  EXPECT_EQ(first.kv, second.kv);
  EXPECT_EQ(2 * second.kv, 10 * (GiB / 10));
  EXPECT_EQ(second.compute, GiB);
  s.tied_output = true;
  EXPECT_EQ(row_split_usage(s, 0, 2).weights, 23 * GiB + GiB / 2);
}

TEST(MemoryPlan, TiedOutputCountsTheTableOnceWhereBothLive) {
  ModelSizes s = sizes();
  s.tied_output = true;
  s.output_bytes = s.input_bytes + MiB;  // the table plus the output norm
  Placement p = Placement::all(10, Device::Gpu);
  EXPECT_EQ(usage_on(Device::Gpu, s, p).weights, 46 * GiB + GiB / 2 + MiB);
  p.input = Device::Cpu;
  EXPECT_EQ(usage_on(Device::Gpu, s, p).weights, 46 * GiB + GiB / 2 + MiB);
  EXPECT_EQ(usage_on(Device::Cpu, s, p).weights, GiB / 2);
}

TEST(MemoryPlan, CheckNamesTheSizesAndTheFlagsToChange) {
  const ModelSizes s = sizes();
  Placement p = Placement::all(10, Device::Gpu);
  EXPECT_NO_THROW(check_fits(s, p, gpu(49 * GiB), "-ngl 99"));
  const std::string msg = test::error_of([&] { check_fits(s, p, gpu(40 * GiB), "-ngl 99"); });
  EXPECT_EQ(msg,
            "-ngl 99 needs 49.0 GiB on CUDA0 (weights 47.0, KV cache 1.0, compute 1.0), 40.0 GiB free: lower --n-gpu-layers, "
            "add --cpu-moe / --n-cpu-moe N, lower --ctx-size / --parallel or leave -ngl out to place automatically");

  Budget capped = gpu(512 * MiB);
  capped.gpu_capped = true;
  for (auto& e : p.experts) e = Device::Cpu;
  const std::string cap = test::error_of([&] { check_fits(s, p, capped, "-ngl 99"); });
  EXPECT_NE(cap.find("512.0 MiB allowed by --gpu-memory"), std::string::npos) << cap;
  EXPECT_EQ(cap.find("--cpu-moe"), std::string::npos) << "every expert is in RAM already: " << cap;
}

TEST(MemoryPlan, NoMmapChecksRamForTheCpuPart) {
  const ModelSizes s = sizes();
  Placement p = Placement::all(10, Device::Cpu);
  Budget b;
  b.ram = 100 * GiB;
  EXPECT_NO_THROW(check_fits(s, p, b, "the model"));
  b.ram = 8 * GiB;
  const std::string msg = test::error_of([&] { check_fits(s, p, b, "the model"); });
  EXPECT_EQ(msg.rfind("the model with --no-mmap needs 49.1 GiB of RAM (weights 47.0, KV cache 2.0, compute 0.1), 8.0 GiB available", 0), 0u)
      << msg;
}

TEST(MemoryPlan, AutoPutsEverythingOnTheGpuWhenItFits) {
  const Placement p = auto_place(sizes(), {}, gpu(49 * GiB));
  EXPECT_EQ(p.layers_on(Device::Gpu), 10);
  EXPECT_EQ(p.input, Device::Gpu);
  EXPECT_EQ(p.output, Device::Gpu);
}

TEST(MemoryPlan, AutoGivesUpTheEmbeddingThenExpertsThenLayers) {
  const ModelSizes s = sizes();
  Placement p = auto_place(s, {}, gpu(48 * GiB + 600 * MiB));  // 0.5 GiB short: the table goes
  EXPECT_EQ(p.input, Device::Cpu);
  EXPECT_EQ(p.experts[1], Device::Gpu);

  p = auto_place(s, {}, gpu(45 * GiB));  // the experts of layer 1 (layer 0 has none)
  EXPECT_EQ(p.input, Device::Cpu);
  EXPECT_EQ(p.experts[1], Device::Cpu);
  EXPECT_EQ(p.experts[2], Device::Gpu);
  EXPECT_EQ(p.layers_on(Device::Gpu), 10);

  p = auto_place(s, {}, gpu(14 * GiB));  // every layer's experts, no layer
  for (int i = 1; i < 10; ++i) EXPECT_EQ(p.experts[static_cast<size_t>(i)], Device::Cpu) << i;
  EXPECT_EQ(p.layers_on(Device::Gpu), 10);

  p = auto_place(s, {}, gpu(10 * GiB));  // then layers 0-2: 7 layers, output, cache, scratch = 9.5
  EXPECT_EQ(p.layers_on(Device::Gpu), 7);
  EXPECT_EQ(p.layers[2], Device::Cpu);
  EXPECT_EQ(p.layers[3], Device::Gpu);
  EXPECT_EQ(p.output, Device::Gpu);
  EXPECT_NO_THROW(check_fits(s, p, gpu(10 * GiB), "-ngl auto"));

  p = auto_place(s, {}, gpu(GiB + GiB / 2));  // not one layer fits: the GPU stays out
  EXPECT_FALSE(p.uses(Device::Gpu));
  EXPECT_EQ(p.input, Device::Cpu);
}

TEST(MemoryPlan, AutoKeepsPinnedParts) {
  const ModelSizes s = sizes();
  Pins pins;
  pins.layers.assign(10, std::nullopt);
  pins.experts.assign(10, std::nullopt);
  pins.experts[9] = Device::Cpu;  // -ot 'blk\.9\.ffn_.*_exps=CPU'
  pins.layers[0] = Device::Cpu;   // -ot 'blk\.0\.=CPU'
  Placement p = auto_place(s, pins, gpu(100 * GiB));
  EXPECT_EQ(p.layers[0], Device::Cpu);
  EXPECT_EQ(p.experts[0], Device::Cpu) << "unpinned experts go with their layer";
  EXPECT_EQ(p.experts[9], Device::Cpu);
  EXPECT_EQ(p.layers[9], Device::Gpu);

  pins.layers[0] = std::nullopt;
  pins.experts[9] = Device::Gpu;
  pins.layers[9] = Device::Gpu;
  p = auto_place(s, pins, gpu(8 * GiB));  // layer 9 and its experts stay, the rest gives way
  EXPECT_EQ(p.layers[9], Device::Gpu);
  EXPECT_EQ(p.experts[9], Device::Gpu);
  EXPECT_EQ(p.experts[8], Device::Cpu);
  EXPECT_NO_THROW(check_fits(s, p, gpu(8 * GiB), "-ngl auto"));

  const std::string msg = test::error_of([&] { auto_place(s, pins, gpu(2 * GiB)); });
  EXPECT_EQ(msg.rfind("-ot needs 6.1 GiB on CUDA0 (weights 5.0, KV cache 0.1, compute 1.0), 2.0 GiB free: send fewer tensors there with -ot", 0),
            0u)
      << msg;
}

TEST(MemoryPlan, ComputeEstimate) {
  // 512 tokens x 1000 floats x 4 bytes x 2 + 512 x 32000 logits x 4 bytes, plus the GPU's reserve.
  const uint64_t act = 512ull * 1000 * 4 * 2 + 512ull * 32000 * 4;
  EXPECT_EQ(compute_estimate(Device::Cpu, 512, 1000, 32000), act);
  EXPECT_EQ(compute_estimate(Device::Gpu, 512, 1000, 32000), act + 512 * MiB);
}

TEST(MemoryPlan, DescribesEachDevice) {
  const ModelSizes s = sizes();
  Placement p = Placement::all(10, Device::Gpu);
  for (int i : {0, 1, 2}) p.layers[static_cast<size_t>(i)] = Device::Cpu;
  for (int i : {0, 1, 2, 3, 4, 5, 7}) p.experts[static_cast<size_t>(i)] = Device::Cpu;
  p.input = Device::Cpu;
  Budget b = gpu(80 * GiB);
  const auto lines = describe(s, p, b);
  ASSERT_EQ(lines.size(), 2u);
  // The GPU keeps a cache for its 7 layers only (7 x 0.1 GiB); the CPU for all 10.
  EXPECT_EQ(lines[0], "CUDA0: layers 3-9, output layer; 19.5 GiB weights + 716.8 MiB KV cache + 1.0 GiB compute of 80.0 GiB free");
  EXPECT_EQ(lines[1],
            "CPU: layers 0-2, routed experts of layers 3-5, 7, token embedding; 27.5 GiB weights (mapped) + 2.0 GiB KV cache + 100.0 MiB compute");
}

TEST(MemoryPlan, LayerRanges) {
  EXPECT_EQ(layer_ranges({}), "");
  EXPECT_EQ(layer_ranges({4}), "4");
  EXPECT_EQ(layer_ranges({0, 1, 2, 5, 7, 8}), "0-2, 5, 7-8");
}

TEST(MemoryPlan, ParsesSizes) {
  EXPECT_EQ(parse_size("60GiB", "--gpu-memory"), 60 * GiB);
  EXPECT_EQ(parse_size("512MiB", "--gpu-memory"), 512 * MiB);
  EXPECT_EQ(parse_size("1.5G", "--gpu-memory"), GiB + GiB / 2);
  EXPECT_EQ(parse_size("2gb", "--gpu-memory"), 2000000000u);
  EXPECT_EQ(parse_size("64 KiB", "--gpu-memory"), 65536u);
  EXPECT_EQ(parse_size("100B", "--gpu-memory"), 100u);
  for (const char* bad : {"60", "GiB", "-1GiB", "12 apples", "", "1e30TiB", "nanGiB"}) {
    const std::string msg = test::error_of([&] { parse_size(bad, "--gpu-memory"); });
    EXPECT_NE(msg.find("--gpu-memory '" + std::string(bad) + "' is not a size"), std::string::npos) << bad << ": " << msg;
  }
  EXPECT_EQ(format_gib(92 * GiB + GiB * 3 / 10), "92.3 GiB");
  EXPECT_EQ(format_gib(MiB), "1.0 MiB");
}
