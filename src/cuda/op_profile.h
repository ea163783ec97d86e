// JING_CUDA_PROFILE=1: where a step's GPU time goes, per op of the CUDA backend.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace jing::model {

// JING_CUDA_PROFILE=1: GPU time per op (CUDA events around each op, read at every download;
// graphs off), printed when the backend goes away. For finding where a step's time goes.
class OpProfile {
 public:
  bool on = std::getenv("JING_CUDA_PROFILE") != nullptr;
  struct Scope {
    OpProfile* p;
    const char* name;
    cudaStream_t s;
    cudaEvent_t a = nullptr, b = nullptr;
    Scope(OpProfile* prof, const char* n, cudaStream_t st) : p(prof), name(n), s(st) {
      if (!p->on) return;
      cudaEventCreate(&a), cudaEventCreate(&b);
      cudaEventRecord(a, s);
    }
    ~Scope() {
      if (!p->on) return;
      cudaEventRecord(b, s);
      p->pending.push_back({name, a, b});
    }
  };
  void collect() {
    for (auto& [name, a, b] : pending) {
      float ms = 0;
      cudaEventElapsedTime(&ms, a, b);
      auto& [calls, total] = totals[name];
      ++calls, total += ms;
      cudaEventDestroy(a), cudaEventDestroy(b);
    }
    pending.clear();
  }
  ~OpProfile() {
    if (!on || totals.empty()) return;
    double all = 0;
    for (auto& [_, v] : totals) all += v.second;
    std::fprintf(stderr, "GPU time per op (JING_CUDA_PROFILE):\n");
    for (auto& [name, v] : totals)
      std::fprintf(stderr, "  %-18s %8ld calls %10.2f ms %8.2f us/call %5.1f%%\n", name.c_str(), v.first, v.second,
                   1e3 * v.second / static_cast<double>(v.first), 100.0 * v.second / all);
  }
  std::vector<std::tuple<std::string, cudaEvent_t, cudaEvent_t>> pending;
  std::map<std::string, std::pair<long, double>> totals;
};

}  // namespace jing::model
