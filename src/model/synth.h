// Real-shape models with random weights, for measuring speed without downloads.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "quant/types.h"

#include <nlohmann/json.hpp>

namespace jing::model {

struct SynthShape {
  std::string arch;
  int n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_vocab = 0, head_dim = 0, n_ctx = 4096;
  float rope_base = 10000.0f;
  // deepseek2
  int q_lora = 0, kv_lora = 0, rope_dim = 0, nope = 0, v_dim = 0, n_expert = 0, n_expert_used = 0, n_shared = 0, n_ff_exp = 0;
  int n_dense = 0, n_group = 1, n_group_used = 1;
};

// A named shape (1.5b ... 671b) of an architecture, or a JSON file with SynthShape's fields.
SynthShape synth_shape(const std::string& arch, const std::string& shape);

struct SynthTensor {
  std::string name;
  GgmlType type;
  std::vector<int64_t> shape;
};

struct SynthOptions {
  std::string mix = "Q4_K_M";
  int split = 1;                          // parts, named like published splits (X-00001-of-00003.gguf)
  bool dry_run = false;                   // plan only: nothing is written
  std::vector<SynthTensor>* plan = nullptr;  // filled with every tensor's name, type and shape
  std::optional<std::filesystem::path> vocab;  // GGUF whose tokenizer is copied
  std::optional<std::string> chat_template;    // tokenizer.chat_template (over the vocabulary's)
  std::optional<int> layers;                   // fewer layers than the shape has
  uint64_t seed = 42;
};

void write_synth(const SynthShape& shape, const SynthOptions& opts, const std::filesystem::path& out);

}  // namespace jing::model
