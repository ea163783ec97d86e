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
  Mix(std::string n, GgmlType b, GgmlType more, int64_t ftype) : name(std::move(n)), base(b), more_bits(more), file_type(ftype) {}
  std::string name;      // "Q4_K_M"
  GgmlType base;         // most matrices
  GgmlType more_bits;    // attn_v / ffn_down in the layers that get more bits (and output)
  int64_t file_type;     // general.file_type (llama.h's enum)
  bool uniform = false;  // one type wherever rows allow it (`jing synth --type IQ2_XS`)
  // Unsloth's dynamic mixes (UD-IQ1_S ...): routed experts get these types (down_exps of the first
  // quarter of the layers, and at least of layers 0-2, the early one); everything else is `base`,
  // the output Q6_K.
  std::optional<GgmlType> experts, experts_down, experts_down_early;
};

// Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, Q5_0, Q4_0, IQ4_XS, IQ4_NL, Q3_K_M, Q3_K_S, Q2_K, F16,
// BF16, F32; Unsloth's UD-IQ1_S, UD-IQ1_M, UD-IQ2_XXS, UD-Q2_K_XL (for MoE models); and any other
// ggml type name (IQ1_S, IQ2_XXS, Q5_K, ...) as a uniform mix. Throws jing::Error listing the names.
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
