// The decoder block shared by llama, qwen2 and qwen3 (pre-norm, GQA attention with rotary
// embeddings, SwiGLU feed-forward). Architectures differ only in the switches below.
#pragma once
#include "model/base.h"

namespace jing::model {

struct TransformerStyle {
  bool qkv_bias = false;  // qwen2: q/k/v projections carry biases
  bool qk_norm = false;   // qwen3: RMSNorm over each q and k head before rope
  bool neox_rope = false; // qwen: rotate (i, i + d/2) pairs; llama's converted weights use (2i, 2i+1)
};

class Transformer : public BaseModel {
 public:
  Transformer(gguf::File file, const ModelOptions& opts, TransformerStyle style);

 protected:
  void layers(Buf& x, const Batch& b, int first, int end) override;

 private:
  void setup_rope_scaling();
  // Whether each layer can be shared out over `parts` backends (model/row_split.h): heads, KV
  // heads and n_ff divide, and wo / down split into column slices of whole blocks.
  bool rows_divide(int parts) const;
  // A layer's weights on one backend: the whole layer, or under a row split that backend's share
  // (its heads' rows of wq/wk/wv and columns of wo, its part of gate/up rows and down columns).
  struct Shard {
    Backend* be = nullptr;
    const float *attn_norm = nullptr, *ffn_norm = nullptr, *bq = nullptr, *bk = nullptr, *bv = nullptr, *q_norm = nullptr, *k_norm = nullptr;
    cpu::WeightView wq, wk, wv, wo, gate, up, down;
  };
  struct Layer {
    std::vector<Shard> shards;  // one, or one per row_shards_ backend
    Backend& be() const { return *shards.front().be; }
  };
  Shard place_shard(Backend& be, const std::string& prefix, int k, int parts);
  TransformerStyle style_;
  int n_head_ = 0, n_head_kv_ = 0, head_dim_k_ = 0, head_dim_v_ = 0, n_ff_ = 0;
  Rope rope_;
  std::vector<Layer> layers_;
  std::vector<std::vector<uint8_t>> column_slices_;  // packed wo / down shares the CPU may read in place
};

}  // namespace jing::model
