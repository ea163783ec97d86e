// Decode kernels of the 32-weight block formats.
#include "cuda/gemv_launch.cuh"

namespace jing::cuda::detail {
JING_GEMV_FAMILY(gemv_legacy, fmt::Q4_0, fmt::Q4_1, fmt::Q5_0, fmt::Q5_1, fmt::Q8_0, fmt::IQ4_NL, fmt::MXFP4)
}
