// CUDA and cuBLAS status codes to jing::Error (internal to src/cuda).
#pragma once
#include <cuda_runtime_api.h>

#include <string>

#include "common/error.h"

namespace jing::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}

// After a kernel launch: a bad configuration shows here, not at the launch.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

}  // namespace jing::cuda
