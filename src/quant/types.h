// The ggml tensor types, with the ids GGUF files store (ggml.h, 2026) and their block geometry.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace jing {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3,  // 4 and 5 (Q4_2, Q4_3) were removed
  Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  // 31..33 (Q4_0_4_4 ...) and 36..38 (IQ4_NL_4_4 ...) were removed from GGUF files
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41, Q2_0 = 42,
};

struct TypeTraits {
  GgmlType type;
  std::string_view name;  // as ggml prints it: "q4_K", "f16", ...
  int64_t block_size;     // elements per block
  size_t type_size;       // bytes per block
};

// Traits of a type id read from a file; nullopt for ids ggml does not (or no longer) define.
std::optional<TypeTraits> type_traits(uint32_t id);
const TypeTraits& traits(GgmlType t);  // for known types
std::optional<GgmlType> type_from_name(std::string_view name);  // case-insensitive
// Bytes taken by n elements of type t; n must be a multiple of the block size.
inline size_t row_size(GgmlType t, int64_t n) {
  const TypeTraits& tr = traits(t);
  return static_cast<size_t>(n / tr.block_size) * tr.type_size;
}

}  // namespace jing
