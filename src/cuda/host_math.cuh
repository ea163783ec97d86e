// Float functions with the CPU engine's results: a quantized model carries an ulp of difference
// in an exponential or an angle into its logits, so where the CPU calls glibc the GPU must agree.
#pragma once
#include <cuda_runtime.h>

namespace jing::cuda {

// e^x rounded once from double: differs from glibc's expf in about 0.06% of arguments, CUDA's
// expf in about 30% (measured on the H200 machine). A few double operations: used per key or per
// element, not per weight.
__device__ __forceinline__ float exp_as_host(float x) { return static_cast<float>(exp(static_cast<double>(x))); }

}  // namespace jing::cuda
