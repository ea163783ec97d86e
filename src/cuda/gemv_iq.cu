// Decode kernels of the i-quants.
#include "cuda/gemv_launch.cuh"

namespace jing::cuda::detail {
JING_GEMV_FAMILY(gemv_iq, fmt::IQ2_XXS, fmt::IQ2_XS, fmt::IQ2_S, fmt::IQ3_XXS, fmt::IQ3_S, fmt::IQ1_S, fmt::IQ1_M, fmt::IQ4_XS)
}
