// Llama (R1-Distill-Llama 8B/70B): pre-norm decoder, GQA, rotary embeddings on adjacent pairs
// (the GGUF converter permutes q/k for this), optional Llama-3.1 frequency factors, SwiGLU.
#include "model/transformer.h"

namespace jing::model {

std::unique_ptr<Model> make_llama(gguf::File file, const ModelOptions& opts) {
  return std::make_unique<Transformer>(std::move(file), opts, TransformerStyle{.qkv_bias = false, .qk_norm = false, .neox_rope = false});
}

}  // namespace jing::model
