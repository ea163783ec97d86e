// Weight quantizers: float rows to ggml block formats, optionally guided by importance weights
// (an imatrix: one weight per column) that say which columns' errors matter most.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace jing {

// Quantizes n_rows rows of n_per_row floats into dst (row_size(type, n_per_row) bytes per row).
// Returns the bytes written. Throws jing::Error for types without a quantizer.
size_t quantize_rows(GgmlType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row, const float* imatrix = nullptr);
bool can_quantize(GgmlType type);

}  // namespace jing
