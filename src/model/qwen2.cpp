// Qwen2 (R1-Distill-Qwen 1.5B-32B): Llama's block with biases on the q/k/v projections and
// NeoX-style rotary embeddings (first half / second half pairs).
#include "model/transformer.h"

namespace jing::model {

std::unique_ptr<Model> make_qwen2(gguf::File file, const ModelOptions& opts) {
  return std::make_unique<Transformer>(std::move(file), opts, TransformerStyle{.qkv_bias = true, .qk_norm = false, .neox_rope = true});
}

}  // namespace jing::model
