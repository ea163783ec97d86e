// Subcommands register themselves: each src/cli/<name>.cpp holds one `Registrar` that adds its
// CLI11 subcommand, so main.cpp never changes when a command is added.
#pragma once
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/model.h"
#include "runtime/memory_plan.h"
#include "runtime/placement.h"
#include "runtime/tensor_overrides.h"

namespace jing::cli {

using Setup = std::function<void(CLI::App& app)>;

struct Registrar {
  explicit Registrar(Setup setup);
};

// Exit with this status from inside a callback (after printing whatever the command wants).
struct ExitCode {
  int code;
};

// llama.cpp's GPU and memory flags, shared by run, serve, bench, logits and perplexity.
struct GpuFlags {
  std::string n_gpu_layers;  // N, "auto" or "all"; empty (not given): auto
  int main_gpu = 0;
  std::string device;  // "CUDA1" picks GPU 1; "none" or "CPU" keeps everything on the CPU
  std::string flash_attn = "auto";
  bool cpu_moe = false;  // routed experts of every layer in RAM
  int n_cpu_moe = 0;     // ... of the first N layers
  std::vector<std::string> override_tensor;  // -ot REGEX=DEVICE
  std::string gpu_memory;                    // --gpu-memory SIZE
  bool no_mmap = false, mlock = false;
  std::string split_mode = "layer";  // -sm none | layer | row (row: tensor parallel where the architecture can)
  std::string tensor_split;          // -ts 3,1: shares per GPU
};

inline void add_gpu_flags(CLI::App* cmd, GpuFlags& g) {
  cmd->add_option("--n-gpu-layers,--gpu-layers", g.n_gpu_layers,
                  "Layers on the GPU, the last ones first (-ngl; 99 or all: every layer and the output; auto, the default: as many as fit)");
  cmd->add_option("--main-gpu", g.main_gpu, "GPU to use (-mg)")->check(CLI::Range(0, 255));
  cmd->add_option("--device", g.device, "Device: CUDA0, CUDA1, ... or none (-dev)");
  cmd->add_flag("--cpu-moe", g.cpu_moe, "Keep the routed experts of every layer in RAM, run by the CPU");
  cmd->add_option("--n-cpu-moe", g.n_cpu_moe, "Keep the routed experts of the first N layers in RAM")->check(CLI::Range(0, 100000));
  cmd->add_option("--override-tensor", g.override_tensor,
                  "Place the tensors a regex matches: REGEX=CPU or REGEX=CUDA0 (-ot; may repeat; first match wins), e.g. exps=CPU")
      ->allow_extra_args(false);
  cmd->add_option("--gpu-memory", g.gpu_memory, "Most GPU memory to plan for, e.g. 60GiB (default: what is free)");
  cmd->add_flag("--no-mmap", g.no_mmap, "Read the CPU's weights into RAM (huge pages where allowed) instead of mapping the file; the plan checks RAM");
  cmd->add_flag("--mlock", g.mlock, "Keep the CPU's weights resident in RAM (mlock)");
  cmd->add_option("--split-mode", g.split_mode,
                  "How a model spreads over several GPUs (-ts or -dev lists): none (the main GPU), layer (whole layers per GPU) or row (-sm; "
                  "each layer's heads and feed-forward shared out, tensor parallel; llama, qwen2 and qwen3, else whole layers)")
      ->check(CLI::IsMember({"none", "layer", "row"}));
  cmd->add_option("--tensor-split", g.tensor_split,
                  "Each GPU's share of the layers, e.g. 3,1 (-ts; of the GPUs -dev lists, else CUDA0, CUDA1, ...)");
  cmd->add_option("--flash-attn", g.flash_attn, "Flash attention: on, off or auto (-fa; attention is always fused)")->expected(0, 1)->default_str("auto");
}

inline void apply_gpu_flags(const GpuFlags& g, model::ModelOptions& mo) {
  const std::string& ngl = g.n_gpu_layers;
  if (ngl.empty() || ngl == "auto") {
    mo.n_gpu_layers = model::kGpuLayersAuto;
  } else if (ngl == "all") {
    mo.n_gpu_layers = 1 << 20;
  } else if (ngl.size() <= 7 && ngl.find_first_not_of("0123456789") == std::string::npos) {
    mo.n_gpu_layers = std::stoi(ngl);
  } else {
    throw Error("--n-gpu-layers '" + ngl + "': give a number of layers, all or auto");
  }
  mo.main_gpu = g.main_gpu;
  mo.n_cpu_moe = g.cpu_moe ? 100000 : g.n_cpu_moe;
  runtime::parse_tensor_overrides(g.override_tensor);  // a bad regex or device fails before loading
  mo.tensor_overrides = g.override_tensor;
  mo.gpu_memory = g.gpu_memory.empty() ? 0 : runtime::parse_size(g.gpu_memory, "--gpu-memory");
  if (!g.gpu_memory.empty() && mo.gpu_memory == 0) throw Error("--gpu-memory must be above 0 (use -ngl 0 to keep the GPU out)");
  mo.use_mmap = !g.no_mmap;
  mo.mlock = g.mlock;
  // The GPUs: -dev's list (llama.cpp: -dev CUDA0,CUDA1), else as many as -ts has shares.
  std::vector<int> devices;
  for (size_t at = 0; !g.device.empty();) {
    const size_t end = g.device.find(',', at);
    const std::string d = g.device.substr(at, end == std::string::npos ? std::string::npos : end - at);
    if (d == "none" || d == "CPU" || d == "cpu") {
      mo.n_gpu_layers = 0;
      return;
    }
    if (d.rfind("CUDA", 0) != 0 || d.size() <= 4 || d.size() >= 8 || d.find_first_not_of("0123456789", 4) != std::string::npos)
      throw Error("unknown --device '" + g.device + "' (CUDA0, CUDA1, ... or none)");
    const int index = std::stoi(d.substr(4));
    if (std::find(devices.begin(), devices.end(), index) == devices.end()) devices.push_back(index);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  std::vector<double> shares(devices.size(), 1.0);  // -dev alone: equal shares
  if (!g.tensor_split.empty() && g.split_mode != "none") {  // llama.cpp: -sm none keeps the main GPU
    shares = runtime::parse_tensor_split(g.tensor_split);
    if (devices.empty())
      for (size_t i = 0; i < shares.size(); ++i) devices.push_back(static_cast<int>(i));
    shares.resize(devices.size(), 0.0);  // a GPU without a share takes no layers
  }
  // Several GPUs and no list: all of them, layers in proportion to their free memory (llama.cpp's
  // default, --split-mode layer); -sm none keeps to the main GPU.
  if (devices.empty() && g.tensor_split.empty() && g.split_mode != "none" && mo.n_gpu_layers != 0)
    if (const int count = runtime::gpu_count(); count > 1)
      for (int i = 0; i < count; ++i) devices.push_back(i), shares.push_back(static_cast<double>(runtime::gpu_free_bytes(i)) / (1 << 30));
  if (devices.empty()) return;
  std::vector<std::pair<int, double>> split;
  for (size_t i = 0; i < devices.size(); ++i)
    if (shares[i] > 0) split.push_back({devices[i], shares[i]});
  if (split.empty()) throw Error("--tensor-split '" + g.tensor_split + "' gives none of the --device GPUs a share");
  mo.main_gpu = split.front().first;
  if (g.split_mode == "none" || split.size() == 1) return;
  mo.gpu_split = split;
  mo.row_split = g.split_mode == "row";
}

}  // namespace jing::cli
