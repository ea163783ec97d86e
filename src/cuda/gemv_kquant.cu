// Decode kernels of the k-quants.
#include "cuda/gemv_launch.cuh"

namespace jing::cuda::detail {
JING_GEMV_FAMILY(gemv_kquant, fmt::Q2_K, fmt::Q3_K, fmt::Q4_K, fmt::Q5_K, fmt::Q6_K)
}
