// Qwen3 (R1-0528-Qwen3-8B): Qwen2 without q/k/v biases, with an RMSNorm over every query and key
// head before the rotary embedding.
#include "model/transformer.h"

namespace jing::model {

std::unique_ptr<Model> make_qwen3(gguf::File file, const ModelOptions& opts) {
  return std::make_unique<Transformer>(std::move(file), opts, TransformerStyle{.qkv_bias = false, .qk_norm = true, .neox_rope = true});
}

}  // namespace jing::model
