#include "quant/mix.h"

#include <algorithm>
#include <map>

#include "common/error.h"

namespace jing {

Mix mix_from_name(const std::string& raw) {
  std::string name;
  for (char c : raw) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::map<std::string, Mix> mixes = {
      {"F32", {"F32", GgmlType::F32, GgmlType::F32, 0}},       {"F16", {"F16", GgmlType::F16, GgmlType::F16, 1}},
      {"BF16", {"BF16", GgmlType::BF16, GgmlType::BF16, 32}},  {"Q8_0", {"Q8_0", GgmlType::Q8_0, GgmlType::Q8_0, 7}},
      {"Q4_0", {"Q4_0", GgmlType::Q4_0, GgmlType::Q4_0, 2}},   {"Q5_0", {"Q5_0", GgmlType::Q5_0, GgmlType::Q5_0, 8}},
      {"Q6_K", {"Q6_K", GgmlType::Q6_K, GgmlType::Q6_K, 18}},  {"Q5_K_M", {"Q5_K_M", GgmlType::Q5_K, GgmlType::Q6_K, 17}},
      {"Q5_K_S", {"Q5_K_S", GgmlType::Q5_K, GgmlType::Q5_K, 16}}, {"Q4_K_M", {"Q4_K_M", GgmlType::Q4_K, GgmlType::Q6_K, 15}},
      {"Q4_K_S", {"Q4_K_S", GgmlType::Q4_K, GgmlType::Q5_K, 14}}, {"IQ4_XS", {"IQ4_XS", GgmlType::IQ4_XS, GgmlType::IQ4_XS, 30}},
      {"IQ4_NL", {"IQ4_NL", GgmlType::IQ4_NL, GgmlType::IQ4_NL, 25}},
      // Approximations of llama.cpp's rules (its Q3_K_M/Q2_K also vary attn_output/attn_v by layer).
      {"Q3_K_M", {"Q3_K_M", GgmlType::Q3_K, GgmlType::Q4_K, 12}}, {"Q3_K_S", {"Q3_K_S", GgmlType::Q3_K, GgmlType::Q3_K, 11}},
      {"Q2_K", {"Q2_K", GgmlType::Q2_K, GgmlType::Q3_K, 10}},
  };
  auto it = mixes.find(name);
  if (it != mixes.end()) return it->second;
  // Unsloth's dynamic R1 mixes, from their published description (unsloth.ai/blog/deepseekr1-dynamic):
  // routed experts at 1.56-2.5 bits with down_proj kept higher in part of the layers, attention,
  // shared experts and dense layers at 4 bits, output at 6.
  struct Ud {
    const char* name;
    GgmlType experts, down, down_early;
    int64_t file_type;
  };
  static const Ud ud[] = {{"UD-IQ1_S", GgmlType::IQ1_S, GgmlType::IQ1_S, GgmlType::IQ2_XXS, 24},
                          {"UD-IQ1_M", GgmlType::IQ1_M, GgmlType::IQ2_XXS, GgmlType::IQ2_XXS, 31},
                          {"UD-IQ2_XXS", GgmlType::IQ2_XXS, GgmlType::IQ2_XXS, GgmlType::Q2_K, 19},
                          {"UD-Q2_K_XL", GgmlType::Q2_K, GgmlType::Q2_K, GgmlType::Q3_K, 10}};
  for (const auto& u : ud)
    if (name == u.name) {
      Mix m{u.name, GgmlType::Q4_K, GgmlType::Q6_K, u.file_type};
      m.experts = u.experts, m.experts_down = u.down, m.experts_down_early = u.down_early;
      return m;
    }
  // Any block type on its own (llama.h's file types where one exists).
  if (auto t = type_from_name(name); t && traits(*t).block_size > 1) {
    static const std::map<GgmlType, int64_t> ftype = {
        {GgmlType::IQ2_XXS, 19}, {GgmlType::IQ2_XS, 20}, {GgmlType::IQ3_XXS, 23}, {GgmlType::IQ1_S, 24}, {GgmlType::IQ3_S, 26},
        {GgmlType::IQ2_S, 28},   {GgmlType::IQ1_M, 31},  {GgmlType::Q2_K, 10},    {GgmlType::Q3_K, 11}, {GgmlType::Q4_K, 14},
        {GgmlType::Q5_K, 16},    {GgmlType::Q4_1, 3},    {GgmlType::Q5_1, 9},    {GgmlType::TQ1_0, 36}, {GgmlType::TQ2_0, 37},
        {GgmlType::MXFP4, 38}};
    auto f = ftype.find(*t);
    Mix m{name, *t, *t, f == ftype.end() ? 0 : f->second};
    m.uniform = true;
    return m;
  }
  std::string known;
  for (const auto& [k, _] : mixes) known += (known.empty() ? "" : ", ") + k;
  known += ", UD-IQ1_S, UD-IQ1_M, UD-IQ2_XXS, UD-Q2_K_XL, or any block type (IQ1_S, IQ2_XXS, Q5_K, ...)";
  throw Error("unknown quantization type '" + raw + "' (available: " + known + ")");
}

TensorTypeOverride parse_override(const std::string& spec) {
  auto eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0) throw Error("--tensor-type expects REGEX=TYPE, got '" + spec + "'");
  auto type = type_from_name(spec.substr(eq + 1));
  if (!type) throw Error("--tensor-type: unknown type '" + spec.substr(eq + 1) + "'");
  try {
    return {std::regex(spec.substr(0, eq)), spec.substr(0, eq), *type};
  } catch (const std::regex_error& e) {
    throw Error("--tensor-type: bad regex '" + spec.substr(0, eq) + "': " + e.what());
  }
}

namespace {

// llama.cpp gives more bits to the first and last eighth of the layers and every third between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::atoi(name.c_str() + 4);
}

GgmlType fallback(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_K: return GgmlType::Q5_0;
    case GgmlType::Q5_K: return GgmlType::Q5_1;
    case GgmlType::Q6_K: return GgmlType::Q8_0;
    case GgmlType::IQ4_XS: return GgmlType::IQ4_NL;
    case GgmlType::IQ4_NL: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q4_1:
      return GgmlType::F16;
    default: return traits(t).block_size == 256 ? GgmlType::Q5_0 : GgmlType::F16;  // other 256-value formats
  }
}

// Rows that do not split into the type's blocks fall back as llama.cpp does (the low-bit and
// i-quants to Q5_0-class types first).
GgmlType fit_rows(GgmlType type, const gguf::TensorInfo& t) {
  while (traits(type).block_size > 1 && t.ne[0] % traits(type).block_size != 0) type = fallback(type);
  return type;
}

}  // namespace

GgmlType choose_type(const Mix& mix, const gguf::TensorInfo& t, int n_layer, const std::vector<TensorTypeOverride>& overrides) {
  GgmlType type = mix.base;
  bool overridden = false;
  for (const auto& o : overrides)
    if (std::regex_search(t.name, o.pattern)) {
      type = o.type;
      overridden = true;
      break;
    }
  if (!overridden) {
    if (t.n_dims == 1 || t.name.find("_norm") != std::string::npos) return GgmlType::F32;
    if (t.name.find("exp_probs_b") != std::string::npos || t.name.find("ffn_gate_inp") != std::string::npos) return GgmlType::F32;
    const int layer = layer_of(t.name);
    if (mix.experts) {  // Unsloth dynamic: experts by their own rules, the output at 6 bits
      if (t.name.find("_exps") != std::string::npos)
        type = t.name.find("ffn_down") == std::string::npos ? *mix.experts
               : layer < std::max(n_layer / 4, 3)          ? *mix.experts_down_early  // at least layers 0-2
                                                          : *mix.experts_down;
      else if (t.name == "output.weight") type = GgmlType::Q6_K;
      return fit_rows(type, t);
    }
    if (mix.uniform) return fit_rows(type, t);
    const bool k_mix = mix.base == GgmlType::Q2_K || mix.base == GgmlType::Q3_K || mix.base == GgmlType::Q4_K || mix.base == GgmlType::Q5_K;
    if (t.name == "output.weight") type = k_mix ? GgmlType::Q6_K : mix.more_bits;
    else if ((t.name.find("attn_v.weight") != std::string::npos || t.name.find("ffn_down") != std::string::npos) && layer >= 0 &&
             use_more_bits(layer, n_layer))
      type = mix.more_bits;
  }
  return fit_rows(type, t);
}

}  // namespace jing
