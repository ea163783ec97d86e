// Reference quantization of float rows into the simple formats the runtime itself writes
// (KV cache rows, activations): F32, F16, BF16, Q8_0, Q8_1, Q8_K — rounding exactly as ggml.
#pragma once
#include <cstdint>

#include "quant/types.h"

namespace jing {

// n must be a multiple of the type's block size. Throws for other types. Uses AVX2 for the
// activation formats where the CPU has it (same bytes).
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);
// The scalar code alone (the reference the AVX2 versions are tested against).
void quantize_row_portable(GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace jing
