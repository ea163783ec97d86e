#include "quant/types.h"

#include <array>
#include <cctype>

#include "common/error.h"

namespace jing {
namespace {

// Block geometry from ggml-common.h (block_* structs): elements per block and bytes per block.
constexpr std::array kTypes = {
    TypeTraits{GgmlType::F32, "f32", 1, 4},          TypeTraits{GgmlType::F16, "f16", 1, 2},
    TypeTraits{GgmlType::Q4_0, "q4_0", 32, 18},      TypeTraits{GgmlType::Q4_1, "q4_1", 32, 20},
    TypeTraits{GgmlType::Q5_0, "q5_0", 32, 22},      TypeTraits{GgmlType::Q5_1, "q5_1", 32, 24},
    TypeTraits{GgmlType::Q8_0, "q8_0", 32, 34},      TypeTraits{GgmlType::Q8_1, "q8_1", 32, 36},
    TypeTraits{GgmlType::Q2_K, "q2_K", 256, 84},     TypeTraits{GgmlType::Q3_K, "q3_K", 256, 110},
    TypeTraits{GgmlType::Q4_K, "q4_K", 256, 144},    TypeTraits{GgmlType::Q5_K, "q5_K", 256, 176},
    TypeTraits{GgmlType::Q6_K, "q6_K", 256, 210},    TypeTraits{GgmlType::Q8_K, "q8_K", 256, 292},
    TypeTraits{GgmlType::IQ2_XXS, "iq2_xxs", 256, 66}, TypeTraits{GgmlType::IQ2_XS, "iq2_xs", 256, 74},
    TypeTraits{GgmlType::IQ3_XXS, "iq3_xxs", 256, 98}, TypeTraits{GgmlType::IQ1_S, "iq1_s", 256, 50},
    TypeTraits{GgmlType::IQ4_NL, "iq4_nl", 32, 18},  TypeTraits{GgmlType::IQ3_S, "iq3_s", 256, 110},
    TypeTraits{GgmlType::IQ2_S, "iq2_s", 256, 82},   TypeTraits{GgmlType::IQ4_XS, "iq4_xs", 256, 136},
    TypeTraits{GgmlType::I8, "i8", 1, 1},            TypeTraits{GgmlType::I16, "i16", 1, 2},
    TypeTraits{GgmlType::I32, "i32", 1, 4},          TypeTraits{GgmlType::I64, "i64", 1, 8},
    TypeTraits{GgmlType::F64, "f64", 1, 8},          TypeTraits{GgmlType::IQ1_M, "iq1_m", 256, 56},
    TypeTraits{GgmlType::BF16, "bf16", 1, 2},        TypeTraits{GgmlType::TQ1_0, "tq1_0", 256, 54},
    TypeTraits{GgmlType::TQ2_0, "tq2_0", 256, 66},   TypeTraits{GgmlType::MXFP4, "mxfp4", 32, 17},
    TypeTraits{GgmlType::NVFP4, "nvfp4", 64, 36},    TypeTraits{GgmlType::Q1_0, "q1_0", 128, 18},
    TypeTraits{GgmlType::Q2_0, "q2_0", 64, 18},
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t id) {
  for (const auto& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return t;
  return std::nullopt;
}

const TypeTraits& traits(GgmlType type) {
  for (const auto& t : kTypes)
    if (t.type == type) return t;
  throw Error("unknown ggml type id " + std::to_string(static_cast<uint32_t>(type)));
}

std::optional<GgmlType> type_from_name(std::string_view name) {
  for (const auto& t : kTypes)
    if (iequals(t.name, name)) return t.type;
  return std::nullopt;
}

}  // namespace jing
