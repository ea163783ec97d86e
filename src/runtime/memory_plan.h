// Memory planning: what a placement of a model's parts costs on the GPU and in RAM, whether it
// fits, and the automatic placement that fills the GPU. Pure functions over byte counts (no
// devices), so they are tested with made-up sizes; runtime/placement.cpp feeds them a model's.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace jing::runtime {

enum class Device : uint8_t { Cpu, Gpu };

// Where each part of a model lives (and runs).
struct Placement {
  std::vector<Device> layers;   // per layer: attention, norms, dense or shared feed-forward
  std::vector<Device> experts;  // per layer: routed experts with their router (MoE layers)
  Device input = Device::Cpu;   // the token embedding lookup
  Device output = Device::Cpu;  // output norm and projection

  static Placement all(int n_layer, Device d);
  int layers_on(Device d) const;
  bool uses(Device d) const;  // holds any layer, experts or the output layer
};

// Byte counts the plan weighs: weights from the GGUF tensor infos (the GPU holds them in their file
// formats), the cache from its shape, scratch from compute_estimate().
struct ModelSizes {
  std::vector<uint64_t> layer_bytes;   // per layer: everything but the routed experts
  std::vector<uint64_t> expert_bytes;  // per layer: routed experts + router (0: a dense layer)
  uint64_t input_bytes = 0;            // token embedding table
  uint64_t output_bytes = 0;           // output norm + projection (the embedding table when tied)
  bool tied_output = false;            // ... then one copy serves both where they share a device
  uint64_t kv_layer_gpu = 0, kv_layer_cpu = 0;  // one layer's cache (the GPU keeps f16)
  uint64_t compute_gpu = 0, compute_cpu = 0;    // scratch while a device runs layers

  int n_layer() const { return static_cast<int>(layer_bytes.size()); }
  bool has_experts(int layer) const { return expert_bytes.at(static_cast<size_t>(layer)) > 0; }
};

struct Usage {
  uint64_t weights = 0, kv = 0, compute = 0;
  uint64_t total() const { return weights + kv + compute; }
};
Usage usage_on(Device d, const ModelSizes& s, const Placement& p);
// GPU k's part of a row split over `parts` GPUs (--split-mode row: every layer's weights and
// cache shared out evenly; the token embedding and the output layer on GPU 0).
Usage row_split_usage(const ModelSizes& s, int k, int parts);

// What a device may take. The GPU's figure is its free memory (or the --gpu-memory cap); RAM is
// checked only when set (--no-mmap: the CPU's weights are read into memory, not mapped).
struct Budget {
  uint64_t gpu = 0;
  std::string gpu_name = "CUDA0";
  bool gpu_capped = false;  // the figure is --gpu-memory's
  std::optional<uint64_t> ram;
};

// Throws jing::Error when the placement does not fit, naming the sizes and the flags to change;
// `what` says where the placement came from ("-ngl 40").
void check_fits(const ModelSizes& s, const Placement& p, const Budget& b, const std::string& what);

// Choices the automatic placement keeps (from -ot and --n-cpu-moe); empty vectors: none.
struct Pins {
  std::vector<std::optional<Device>> layers, experts;
  std::optional<Device> input, output;
};

// Fills the GPU: everything there if it fits, else the embedding table to the CPU, then routed
// experts (first layers first), then whole layers (first first), then nothing on the GPU at all.
// Pinned parts never move; throws (as check_fits) when they alone do not fit.
Placement auto_place(const ModelSizes& s, const Pins& pins, const Budget& b);

// GPU scratch for a forward pass: the activations of n_batch tokens (act_floats each, counted
// twice: buffers of two layer groups meet, and products read rounded copies), the logits of every
// token, and a reserve for the CUDA context's pools and the BLAS workspace. CPU: activations only.
uint64_t compute_estimate(Device d, int n_batch, uint64_t act_floats, int n_vocab);

// The plan, one or two lines per device, for the load log.
std::vector<std::string> describe(const ModelSizes& s, const Placement& p, const Budget& b);
// "0-19, 25, 30-39"
std::string layer_ranges(const std::vector<int>& layers);

// "60GiB", "512MiB", "1.5GB" (binary KiB/MiB/GiB/TiB and K/M/G/T, decimal KB/MB/GB/TB); throws
// jing::Error otherwise. `flag` names the option in the message.
uint64_t parse_size(const std::string& text, const std::string& flag);
std::string format_gib(uint64_t bytes);  // "92.3 GiB", or "512.0 MiB" below 1 GiB
uint64_t peak_rss_bytes();               // the process's peak resident memory so far (0 if unknown)

}  // namespace jing::runtime
