#include "gguf/summary.h"

#include <cstdio>

namespace jing::gguf {

std::string file_type_name(int64_t ft) {
  // llama.h's enum llama_ftype (values that were removed are absent).
  switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 19: return "IQ2_XXS";
    case 20: return "IQ2_XS";
    case 21: return "Q2_K_S";
    case 22: return "IQ3_XS";
    case 23: return "IQ3_XXS";
    case 24: return "IQ1_S";
    case 25: return "IQ4_NL";
    case 26: return "IQ3_S";
    case 27: return "IQ3_M";
    case 28: return "IQ2_S";
    case 29: return "IQ2_M";
    case 30: return "IQ4_XS";
    case 31: return "IQ1_M";
    case 32: return "BF16";
    case 36: return "TQ1_0";
    case 37: return "TQ2_0";
    case 38: return "MXFP4_MOE";
    case 39: return "NVFP4";
    default: return "";
  }
}

std::string format_parameters(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ull) std::snprintf(buf, sizeof buf, "%.1fB", n / 1e9);
  else if (n >= 1000000ull) std::snprintf(buf, sizeof buf, "%.0fM", n / 1e6);
  else if (n >= 1000ull) std::snprintf(buf, sizeof buf, "%.0fK", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  return buf;
}

std::string format_bytes(uint64_t n) {
  char buf[32];
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

ModelSummary summarize(const File& f) {
  ModelSummary s;
  s.architecture = f.architecture();
  s.name = f.get_string("general.name").value_or("");
  s.license = f.get_string("general.license").value_or("");
  s.context_length = f.arch_int("context_length");
  s.embedding_length = f.arch_int("embedding_length");
  s.block_count = f.arch_int("block_count");
  s.head_count = f.arch_int("attention.head_count");
  s.head_count_kv = f.arch_int("attention.head_count_kv");
  s.expert_count = f.arch_int("expert_count");
  s.expert_used_count = f.arch_int("expert_used_count");
  if (auto ft = f.get_int("general.file_type")) s.file_type = file_type_name(*ft);
  s.tokenizer_model = f.get_string("tokenizer.ggml.model").value_or("");
  s.tokenizer_pre = f.get_string("tokenizer.ggml.pre").value_or("");
  if (const Array* tokens = f.get_array("tokenizer.ggml.tokens")) s.vocab_size = static_cast<int64_t>(tokens->items.size());
  s.has_chat_template = f.has("tokenizer.chat_template");
  s.file_size = f.total_file_size();
  s.n_parts = f.n_parts();
  s.n_tensors = static_cast<int64_t>(f.tensors().size());
  for (const auto& t : f.tensors()) {
    s.parameters += static_cast<uint64_t>(t.n_elements());
    TypeUsage& u = s.types[std::string(traits(t.type).name)];
    u.tensors++;
    u.bytes += t.nbytes;
  }
  uint64_t best = 0;
  for (const auto& [name, u] : s.types)
    if (u.bytes > best) best = u.bytes, s.dominant_type = name;
  return s;
}

nlohmann::json ModelSummary::to_json() const {
  nlohmann::json j;
  j["architecture"] = architecture;
  j["name"] = name;
  j["parameters"] = parameters;
  j["parameters_text"] = format_parameters(parameters);
  auto opt = [&](const char* key, const std::optional<int64_t>& v) { j[key] = v ? nlohmann::json(*v) : nlohmann::json(); };
  opt("context_length", context_length);
  opt("embedding_length", embedding_length);
  opt("block_count", block_count);
  opt("head_count", head_count);
  opt("head_count_kv", head_count_kv);
  opt("expert_count", expert_count);
  opt("expert_used_count", expert_used_count);
  opt("vocab_size", vocab_size);
  j["file_type"] = file_type;
  j["quantization"] = file_type.empty() ? dominant_type : file_type;
  nlohmann::json types = nlohmann::json::object();
  for (const auto& [name, u] : this->types) types[name] = {{"tensors", u.tensors}, {"bytes", u.bytes}};
  j["types"] = types;
  j["tensor_count"] = n_tensors;
  j["tokenizer"] = {{"model", tokenizer_model}, {"pre", tokenizer_pre}};
  j["chat_template"] = has_chat_template;
  j["license"] = license;
  j["file_size"] = file_size;
  j["parts"] = n_parts;
  return j;
}

}  // namespace jing::gguf
