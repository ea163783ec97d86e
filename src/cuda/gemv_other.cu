// Decode kernels of the ternary and float formats.
#include "cuda/gemv_launch.cuh"

namespace jing::cuda::detail {
JING_GEMV_FAMILY(gemv_other, fmt::TQ1_0, fmt::TQ2_0, fmt::F32, fmt::F16, fmt::BF16)
}
