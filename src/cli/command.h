// Subcommands register themselves: each src/cli/<name>.cpp holds one `Registrar` that adds its
// CLI11 subcommand, so main.cpp never changes when a command is added.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "common/error.h"
#include "model/model.h"

namespace jing::cli {

using Setup = std::function<void(CLI::App& app)>;

struct Registrar {
  explicit Registrar(Setup setup);
};

// Exit with this status from inside a callback (after printing whatever the command wants).
struct ExitCode {
  int code;
};

// llama.cpp's GPU flags, shared by run, serve, bench, logits and perplexity.
struct GpuFlags {
  int n_gpu_layers = 0;
  int main_gpu = 0;
  std::string device;  // "CUDA1" picks GPU 1; "none" or "CPU" keeps everything on the CPU
  std::string flash_attn = "auto";
  bool cpu_moe = false;  // routed experts of every layer in RAM
  int n_cpu_moe = 0;     // ... of the first N layers
};

inline void add_gpu_flags(CLI::App* cmd, GpuFlags& g) {
  cmd->add_option("--n-gpu-layers,--gpu-layers", g.n_gpu_layers, "Layers on the GPU, the last ones first (-ngl; 99: all)");
  cmd->add_option("--main-gpu", g.main_gpu, "GPU to use (-mg)")->check(CLI::Range(0, 255));
  cmd->add_option("--device", g.device, "Device: CUDA0, CUDA1, ... or none (-dev)");
  cmd->add_flag("--cpu-moe", g.cpu_moe, "Keep the routed experts of every layer in RAM, run by the CPU");
  cmd->add_option("--n-cpu-moe", g.n_cpu_moe, "Keep the routed experts of the first N layers in RAM")->check(CLI::Range(0, 100000));
  cmd->add_option("--flash-attn", g.flash_attn, "Flash attention: on, off or auto (-fa; attention is always fused)")->expected(0, 1)->default_str("auto");
}

inline void apply_gpu_flags(const GpuFlags& g, model::ModelOptions& mo) {
  mo.n_gpu_layers = g.n_gpu_layers;
  mo.main_gpu = g.main_gpu;
  mo.n_cpu_moe = g.cpu_moe ? 100000 : g.n_cpu_moe;
  if (g.device.empty()) return;
  if (g.device == "none" || g.device == "CPU" || g.device == "cpu") {
    mo.n_gpu_layers = 0;
  } else if (g.device.rfind("CUDA", 0) == 0 && g.device.size() > 4 && g.device.find_first_not_of("0123456789", 4) == std::string::npos) {
    mo.main_gpu = std::stoi(g.device.substr(4));
  } else {
    throw Error("unknown --device '" + g.device + "' (CUDA0, CUDA1, ... or none)");
  }
}

}  // namespace jing::cli
