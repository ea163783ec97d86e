// Reference dequantization: any ggml block format to float32, bit-identical to ggml's to_float.
#pragma once
#include <cstdint>

#include "quant/types.h"

namespace jing {

// n must be a multiple of the type's block size. Throws jing::Error for types with no decoder.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

bool can_dequantize(GgmlType type);

}  // namespace jing
