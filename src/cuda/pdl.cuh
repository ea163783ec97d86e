// Programmatic dependent launch (Hopper and later): a kernel launched with launch_pdl may start
// while the previous kernel in the stream is still running, so its launch and prologue (weight
// prefetch) overlap that kernel; it calls wait_for_previous_kernel() before touching anything
// the previous kernel writes. On older GPUs the launch is an ordinary one.
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <mutex>

#include "cuda/check.h"

namespace jing::cuda {

__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel in the stream begin launching (it still waits for this one to finish
// before reading its results).
__device__ __forceinline__ void let_next_kernel_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

bool pdl_supported();  // the current device is sm_90 or later (tables.cpp)

// Lets Kernel take `bytes` of dynamic shared memory (past the default 48 KB): asked once per
// kernel and GPU (the setting is the current device's), the answer kept (a refusal throws at
// every launch, naming `what`).
template <auto Kernel>
void allow_dynamic_smem(size_t bytes, const char* what) {
  constexpr int kMax = 64;  // GPUs
  static std::mutex mu;
  static std::array<cudaError_t, kMax> answer{};
  static std::array<bool, kMax> asked{};
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  if (dev < 0 || dev >= kMax) return check(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), what);
  std::lock_guard<std::mutex> lock(mu);
  if (!asked[dev]) answer[dev] = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), asked[dev] = true;
  check(answer[dev], what);
}

template <class... Params, class... Args>
void launch_pdl_smem(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem_bytes, cudaStream_t s, const char* name, Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem_bytes;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_supported() ? 1 : 0;
  check(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), name);
}
template <class... Params, class... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t s, const char* name, Args&&... args) {
  launch_pdl_smem(kernel, grid, block, 0, s, name, std::forward<Args>(args)...);
}

}  // namespace jing::cuda
