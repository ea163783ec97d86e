#include "cpu/kernels.h"

namespace jing::cpu {

bool matmul_fast(const WeightView&, const float*, int64_t, float*, int) { return false; }

}  // namespace jing::cpu
