// Older deepseek2 GGUFs (converted before llama.cpp split MLA's up-projection, e.g. the first
// published R1 quants) store one attn_kv_b tensor [n_head * (nope + v)][kv_lora]: per head, nope
// rows that expand the latent to the key's non-rotary part, then v rows that expand it to the value.
// Absorbed attention needs the key part transposed (latent-sized output per head), so the split
// is made once at load time into owned float16 matrices laid out like attn_k_b / attn_v_b.
#pragma once
#include <cstdint>
#include <vector>

#include "cpu/matmul.h"
#include "gguf/gguf.h"

namespace jing::model {

struct SplitKvB {
  std::vector<uint16_t> k_b_data, v_b_data;  // float16 bits; the views point into these
  cpu::WeightView k_b;  // per head [kv_lora][nope]  (expert(k_b, h) selects head h)
  cpu::WeightView v_b;  // per head [v][kv_lora]
};

// Throws jing::Error when the tensor's shape does not match the hparams or its type cannot be read.
SplitKvB split_kv_b(const gguf::TensorInfo& kv_b, int n_head, int nope, int head_v, int kv_lora);

}  // namespace jing::model
