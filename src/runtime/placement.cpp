#include "runtime/placement.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>

#include "common/error.h"
#include "runtime/tensor_overrides.h"
#ifdef JING_WITH_CUDA
#include "cuda/device.h"
#endif

namespace jing::runtime {

ModelSizes model_sizes(const gguf::File& f, int n_layer, const LayerShape& shape, int n_vocab, const model::ModelOptions& opts) {
  ModelSizes s;
  s.layer_bytes.assign(static_cast<size_t>(n_layer), 0);
  s.expert_bytes.assign(static_cast<size_t>(n_layer), 0);
  for (const auto& t : f.tensors()) {
    const TensorGroup g = classify_tensor(t.name, n_layer);
    const auto k = static_cast<size_t>(g.layer);
    switch (g.kind) {
      case TensorGroup::Layer: {
        // deepseek2 files may carry attn_kv_b beside its split k_b / v_b, which are what is read.
        const auto kv_b = t.name.rfind(".attn_kv_b.weight");
        if (kv_b != std::string::npos && f.find_tensor(t.name.substr(0, kv_b) + ".attn_k_b.weight")) break;
        s.layer_bytes[k] += t.nbytes;
        break;
      }
      case TensorGroup::Experts:
      case TensorGroup::Router: s.expert_bytes[k] += t.nbytes; break;
      case TensorGroup::Input: s.input_bytes += t.nbytes; break;
      case TensorGroup::Output: s.output_bytes += t.nbytes; break;
      case TensorGroup::Other: break;
    }
  }
  if (!f.find_tensor("output.weight")) {  // tied: the embedding table projects back
    s.tied_output = true;
    s.output_bytes += s.input_bytes;
  }
  auto kv_layer = [&](GgmlType type) {
    if (type == GgmlType::Q8_0 && (shape.k_width % 32 || shape.v_width % 32)) type = GgmlType::F16;  // as KvCache does
    const uint64_t row = row_size(type, shape.k_width) + row_size(type, shape.v_width);
    return static_cast<uint64_t>(std::max(opts.n_seq, 1)) * static_cast<uint64_t>(std::max(opts.n_ctx, 1)) * row;
  };
  s.kv_layer_gpu = kv_layer(GgmlType::F16);  // the CUDA backend keeps f16 whatever the type asked
  s.kv_layer_cpu = kv_layer(opts.kv_type);
  s.compute_gpu = compute_estimate(Device::Gpu, opts.n_batch, shape.act_floats, n_vocab);
  s.compute_cpu = compute_estimate(Device::Cpu, opts.n_batch, shape.act_floats, n_vocab);
  return s;
}

bool wants_gpu(const model::ModelOptions& opts) {
  if (opts.n_gpu_layers != 0) return true;  // N, or auto
  for (const auto& o : parse_tensor_overrides(opts.tensor_overrides))
    if (o.device >= 0) return true;
  return false;
}

uint64_t gpu_free_bytes(int device) {
#ifdef JING_WITH_CUDA
  return cuda::memory_info(device).free;
#else
  return 0;
#endif
}

int gpu_count() {
#ifdef JING_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

uint64_t ram_available() {
  if (const char* test = std::getenv("JING_TEST_MEM_AVAILABLE"); test && *test) return parse_size(test, "JING_TEST_MEM_AVAILABLE");
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemAvailable:") return kib * 1024;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::numeric_limits<uint64_t>::max();  // unknown: nothing to check against
}

PlacementPlan plan_placement(const gguf::File& f, int n_layer, const LayerShape& shape, int n_vocab, const model::ModelOptions& opts,
                             const uint64_t* gpu_free) {
  std::vector<std::string> names;
  for (const auto& t : f.tensors()) names.push_back(t.name);
  const int gpu_index = std::max(0, opts.main_gpu);
  const OverrideRequests req = match_tensor_overrides(parse_tensor_overrides(opts.tensor_overrides), names, n_layer, gpu_index);
  const ModelSizes s = model_sizes(f, n_layer, shape, n_vocab, opts);
  PlacementPlan plan;
  plan.unused = req.unused;
  Budget b;
  b.gpu_name = "CUDA" + std::to_string(gpu_index);
  if (!opts.use_mmap) b.ram = ram_available();
  std::string what = "the model";
  if (!gpu_free) {
    plan.placement = Placement::all(n_layer, Device::Cpu);
  } else {
    b.gpu = *gpu_free;
    if (opts.gpu_memory > 0 && opts.gpu_memory < b.gpu) b.gpu = opts.gpu_memory, b.gpu_capped = true;
    const int n_cpu_moe = std::max(0, opts.n_cpu_moe);
    if (opts.n_gpu_layers < 0) {
      what = "-ngl auto";
      plan.placement = auto_place(s, auto_pins(n_layer, n_cpu_moe, req), b);
    } else {
      what = "-ngl " + std::to_string(opts.n_gpu_layers);
      plan.placement = ngl_placement(n_layer, opts.n_gpu_layers, n_cpu_moe, req, what, b.gpu_name);
    }
  }
  check_fits(s, plan.placement, b, what);
  plan.lines = describe(s, plan.placement, b);
  plan.sizes = s;
  return plan;
}

std::vector<double> parse_tensor_split(const std::string& spec) {
  std::vector<double> shares;
  for (size_t at = 0;;) {
    const size_t end = spec.find_first_of(",/", at);
    const std::string item = spec.substr(at, end == std::string::npos ? std::string::npos : end - at);
    char* rest = nullptr;
    const double v = std::strtod(item.c_str(), &rest);
    if (item.empty() || *rest != '\0' || !(v >= 0) || v > 1e9)
      throw Error("--tensor-split '" + spec + "': give each GPU's share as a number, e.g. 3,1");
    shares.push_back(v);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  if (std::none_of(shares.begin(), shares.end(), [](double v) { return v > 0; }))
    throw Error("--tensor-split '" + spec + "': every share is 0; give the GPU to use a share above 0");
  return shares;
}

std::vector<Placement> split_over_gpus(const Placement& p, const std::vector<double>& shares) {
  const int n = static_cast<int>(p.layers.size());
  std::vector<int> gpu_layers;
  for (int l = 0; l < n; ++l)
    if (p.layers[static_cast<size_t>(l)] == Device::Gpu) gpu_layers.push_back(l);
  const std::vector<int> gpu_of = split_layers(static_cast<int>(gpu_layers.size()), shares);
  std::vector<Placement> parts(shares.size(), Placement::all(n, Device::Cpu));
  for (size_t j = 0; j < gpu_layers.size(); ++j) {
    const auto l = static_cast<size_t>(gpu_layers[j]);
    parts[static_cast<size_t>(gpu_of[j])].layers[l] = Device::Gpu;
    if (p.experts[l] == Device::Gpu) parts[static_cast<size_t>(gpu_of[j])].experts[l] = Device::Gpu;
  }
  for (int l = 0; l < n; ++l)  // experts on the GPU beside a CPU layer (-ot): the first GPU
    if (p.layers[static_cast<size_t>(l)] != Device::Gpu && p.experts[static_cast<size_t>(l)] == Device::Gpu) parts[0].experts[static_cast<size_t>(l)] = Device::Gpu;
  if (p.input == Device::Gpu) parts[0].input = Device::Gpu;
  if (p.output == Device::Gpu) parts[gpu_layers.empty() ? parts.size() - 1 : static_cast<size_t>(gpu_of.back())].output = Device::Gpu;
  return parts;
}

std::vector<int> split_layers(int layers, const std::vector<double>& shares) {
  double total = 0;
  for (double v : shares) total += std::max(0.0, v);
  std::vector<int> gpu_of(static_cast<size_t>(std::max(layers, 0)), 0);
  if (total <= 0) return gpu_of;
  // GPU k takes the layers up to round(layers * (shares 0..k) / total).
  double cum = 0;
  int from = 0;
  for (size_t k = 0; k < shares.size(); ++k) {
    cum += std::max(0.0, shares[k]);
    const int to = k + 1 == shares.size() ? layers : static_cast<int>(std::lround(layers * cum / total));
    for (int l = from; l < to; ++l) gpu_of[static_cast<size_t>(l)] = static_cast<int>(k);
    from = std::max(from, to);
  }
  return gpu_of;
}

}  // namespace jing::runtime
