// Where a model's parts go, decided at load from its GGUF and the options (-ngl N or auto, -ot,
// --cpu-moe / --n-cpu-moe, --gpu-memory, --no-mmap): the sizes the planner weighs, the devices'
// budgets, the checked plan. The pure parts are in memory_plan.h and tensor_overrides.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/model.h"
#include "runtime/memory_plan.h"

namespace jing::runtime {

// What only the architecture knows: one cache row's widths and the activation floats a token
// needs while a layer runs (for the compute estimate).
struct LayerShape {
  int k_width = 0, v_width = 0;
  uint64_t act_floats = 0;
};

// The byte counts of a model file under these options (opts.n_ctx and n_seq already resolved).
ModelSizes model_sizes(const gguf::File& f, int n_layer, const LayerShape& shape, int n_vocab, const model::ModelOptions& opts);

// Whether the options ask for a GPU at all (-ngl above 0, -ngl auto, or -ot naming CUDAn).
bool wants_gpu(const model::ModelOptions& opts);
uint64_t gpu_free_bytes(int device);  // 0 in a build without CUDA
int gpu_count();                      // the GPUs this process sees (0 without CUDA or a driver)
// /proc/meminfo's MemAvailable (JING_TEST_MEM_AVAILABLE=SIZE stands in for it in tests).
uint64_t ram_available();

struct PlacementPlan {
  Placement placement;
  ModelSizes sizes;                 // what it was weighed with
  std::vector<std::string> lines;   // describe(): the plan for the load log
  std::vector<std::string> unused;  // -ot specs that matched no tensor
};
// gpu_free: the free memory of the GPU in use, or null without one (then everything stays on the
// CPU and only --no-mmap's RAM check applies). Throws jing::Error when an override cannot be
// honoured or the placement does not fit, before any weight is placed.
PlacementPlan plan_placement(const gguf::File& f, int n_layer, const LayerShape& shape, int n_vocab, const model::ModelOptions& opts,
                             const uint64_t* gpu_free);

// llama.cpp's -ts/--tensor-split "3,1" (or "3/1"): share i for the i-th GPU. Throws jing::Error on
// a bad list or when every share is 0.
std::vector<double> parse_tensor_split(const std::string& spec);

// Which of the GPUs (by their shares) takes each of `layers` consecutive GPU layers: whole layers,
// in order, the counts in proportion to the shares (llama.cpp's layer split).
std::vector<int> split_layers(int layers, const std::vector<double>& shares);

// A placement's GPU part over several GPUs: part k has Device::Gpu where GPU k holds something
// (its share of the GPU layers, in order, with their routed experts; the token embedding on the
// first GPU, the output layer with the last GPU layer), Device::Cpu elsewhere.
std::vector<Placement> split_over_gpus(const Placement& p, const std::vector<double>& shares);

}  // namespace jing::runtime
