#include "model/transformer.h"

#include <cmath>

namespace jing::model {

Transformer::Transformer(gguf::File file, const ModelOptions& opts, TransformerStyle style)
    : BaseModel(std::move(file), opts), style_(style) {
  const int n_layer = static_cast<int>(arch_int("block_count"));
  n_head_ = static_cast<int>(arch_int("attention.head_count"));
  n_head_kv_ = static_cast<int>(arch_int("attention.head_count_kv", n_head_));
  head_dim_k_ = static_cast<int>(arch_int("attention.key_length", n_embd_ / n_head_));
  head_dim_v_ = static_cast<int>(arch_int("attention.value_length", head_dim_k_));
  n_ff_ = static_cast<int>(arch_int("feed_forward_length"));
  rope_.n_rot = static_cast<int>(arch_int("rope.dimension_count", head_dim_k_));
  rope_.freq_base = arch_float("rope.freq_base", 10000.0f);
  rope_.neox = style.neox_rope;
  setup_rope_scaling();
  rope_.freq_factors = w_.optional_vector("rope_freqs.weight", rope_.n_rot / 2);  // Llama 3.1 scaling

  const int q_width = n_head_ * head_dim_k_, k_width = n_head_kv_ * head_dim_k_, v_width = n_head_kv_ * head_dim_v_;
  for (int i = 0; i < n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    Layer l;
    l.attn_norm = w_.vector(p + "attn_norm.weight", n_embd_);
    l.ffn_norm = w_.vector(p + "ffn_norm.weight", n_embd_);
    l.wq = w_.matrix(p + "attn_q.weight", n_embd_, q_width);
    l.wk = w_.matrix(p + "attn_k.weight", n_embd_, k_width);
    l.wv = w_.matrix(p + "attn_v.weight", n_embd_, v_width);
    l.wo = w_.matrix(p + "attn_output.weight", n_head_ * head_dim_v_, n_embd_);
    l.bq = w_.optional_vector(p + "attn_q.bias", q_width);
    l.bk = w_.optional_vector(p + "attn_k.bias", k_width);
    l.bv = w_.optional_vector(p + "attn_v.bias", v_width);
    if (style.qk_norm) {
      l.q_norm = w_.vector(p + "attn_q_norm.weight", head_dim_k_);
      l.k_norm = w_.vector(p + "attn_k_norm.weight", head_dim_k_);
    }
    l.gate = w_.matrix(p + "ffn_gate.weight", n_embd_, n_ff_);
    l.up = w_.matrix(p + "ffn_up.weight", n_embd_, n_ff_);
    l.down = w_.matrix(p + "ffn_down.weight", n_ff_, n_embd_);
    layers_.push_back(std::move(l));
  }
  init_cache(n_layer, k_width, v_width);
}

// Context extension from the rope.scaling.* keys: linear interpolation, or YaRN as llama.cpp and
// transformers apply it to these architectures (frequencies blended by ramp, q and k both scaled
// by 1 + 0.1 ln(factor), which Rope adds itself when ext_factor is set).
void Transformer::setup_rope_scaling() {
  const std::string type = file_.get_string(arch() + ".rope.scaling.type").value_or("none");
  const float factor = arch_float("rope.scaling.factor", 1.0f);
  if (factor <= 1.0f || (type != "linear" && type != "yarn")) return;
  rope_.freq_scale = 1.0f / factor;
  if (type == "yarn") {
    rope_.ext_factor = arch_float("rope.scaling.yarn_ext_factor", 1.0f);
    rope_.attn_factor = arch_float("rope.scaling.attn_factor", 1.0f);
    rope_.beta_fast = arch_float("rope.scaling.yarn_beta_fast", 32.0f);
    rope_.beta_slow = arch_float("rope.scaling.yarn_beta_slow", 1.0f);
    rope_.n_ctx_orig = static_cast<int>(arch_int("rope.scaling.original_context_length", n_ctx_train_));
  }
}

void Transformer::layers(float* x, const Batch& b) {
  const int64_t n = static_cast<int64_t>(b.size());
  const int q_width = n_head_ * head_dim_k_, k_width = n_head_kv_ * head_dim_k_, v_width = n_head_kv_ * head_dim_v_;
  Act h(static_cast<size_t>(n * n_embd_)), q(static_cast<size_t>(n * q_width)), k(static_cast<size_t>(n * k_width)),
      v(static_cast<size_t>(n * v_width)), attn(static_cast<size_t>(n * n_head_ * head_dim_v_)),
      gate(static_cast<size_t>(n * n_ff_)), up(static_cast<size_t>(n * n_ff_));
  const AttentionShape shape{n_head_, n_head_kv_, head_dim_k_, head_dim_v_, 1.0f / std::sqrt(static_cast<float>(head_dim_k_))};

  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    const int layer = static_cast<int>(li);
    // Attention: h = norm(x); q, k, v = h W; rope; cache k, v; x += attend(q) Wo
    rms_norm(x, l.attn_norm.data(), h.data(), n, n_embd_, norm_eps_);
    matmul(ctx_, l.wq, h.data(), n, q.data());
    matmul(ctx_, l.wk, h.data(), n, k.data());
    matmul(ctx_, l.wv, h.data(), n, v.data());
    add_bias(q.data(), l.bq, n);
    add_bias(k.data(), l.bk, n);
    add_bias(v.data(), l.bv, n);
    if (style_.qk_norm) {
      rms_norm(q.data(), l.q_norm.data(), q.data(), n * n_head_, head_dim_k_, norm_eps_);
      rms_norm(k.data(), l.k_norm.data(), k.data(), n * n_head_kv_, head_dim_k_, norm_eps_);
    }
    rope_.apply(q.data(), n, n_head_, head_dim_k_, b.pos.data());
    rope_.apply(k.data(), n, n_head_kv_, head_dim_k_, b.pos.data());
    for (int64_t t = 0; t < n; ++t) {
      kv_->store_k(layer, b.seq[static_cast<size_t>(t)], b.pos[static_cast<size_t>(t)], k.data() + t * k_width);
      kv_->store_v(layer, b.seq[static_cast<size_t>(t)], b.pos[static_cast<size_t>(t)], v.data() + t * v_width);
    }
    attention(ctx_, shape, q.data(), q_width, *kv_, layer, b.seq, b.pos, attn.data());
    matmul(ctx_, l.wo, attn.data(), n, h.data());
    add(x, h.data(), n * n_embd_);

    // Feed-forward: x += (silu(norm(x) Wg) * norm(x) Wu) Wd
    rms_norm(x, l.ffn_norm.data(), h.data(), n, n_embd_, norm_eps_);
    matmul(ctx_, l.gate, h.data(), n, gate.data());
    matmul(ctx_, l.up, h.data(), n, up.data());
    silu_mul(gate.data(), up.data(), n * n_ff_);
    matmul(ctx_, l.down, gate.data(), n, h.data());
    add(x, h.data(), n * n_embd_);
  }
}

}  // namespace jing::model
