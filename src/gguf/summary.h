// What `jing show`, `jing list` and the server's /api/show report about a model file.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "gguf/gguf.h"

namespace jing::gguf {

struct TypeUsage {
  int64_t tensors = 0;
  uint64_t bytes = 0;
};

struct ModelSummary {
  std::string architecture;
  std::string name;               // general.name
  uint64_t parameters = 0;        // elements over all tensors
  std::optional<int64_t> context_length, embedding_length, block_count, head_count, head_count_kv,
      expert_count, expert_used_count, vocab_size;
  std::map<std::string, TypeUsage> types;  // by ggml type name
  std::string dominant_type;      // the type holding the most bytes (the "quantization")
  std::string file_type;          // general.file_type as llama.cpp names it, when present
  std::string tokenizer_model, tokenizer_pre;
  bool has_chat_template = false;
  std::string license;
  uint64_t file_size = 0;
  int n_parts = 1;
  int64_t n_tensors = 0;

  nlohmann::json to_json() const;
};

ModelSummary summarize(const File& file);
// "7.6B", "494M": parameter counts the way Ollama prints them.
std::string format_parameters(uint64_t n);
std::string format_bytes(uint64_t n);  // "1.04 GiB"
// llama.cpp's names for general.file_type values ("Q4_K_M", ...), "" when unknown.
std::string file_type_name(int64_t file_type);

}  // namespace jing::gguf
