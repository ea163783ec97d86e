// llama-quantize's named mixes: which type each tensor of a model gets.
#pragma once
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "quant/types.h"

namespace jing {

struct Mix {
  std::string name;      // "Q4_K_M"
  GgmlType base;         // most matrices
  GgmlType more_bits;    // attn_v / ffn_down in the layers that get more bits (and output)
  int64_t file_type;     // general.file_type (llama.h's enum)
};

// Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, Q5_0, Q4_0, IQ4_XS, IQ4_NL, F16, BF16, F32.
// Throws jing::Error listing the known names.
Mix mix_from_name(const std::string& name);

struct TensorTypeOverride {
  std::regex pattern;
  std::string text;
  GgmlType type;
};
TensorTypeOverride parse_override(const std::string& spec);  // "REGEX=TYPE"

// The type a tensor gets: overrides first, then the mix's rules; 1-D tensors stay F32, and rows
// that do not split into the type's blocks fall back as llama.cpp does.
GgmlType choose_type(const Mix& mix, const gguf::TensorInfo& t, int n_layer, const std::vector<TensorTypeOverride>& overrides);

}  // namespace jing
