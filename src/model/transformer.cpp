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
  // A token's activations in a layer: x and h, q/k/v, the attended heads, gate and up.
  const uint64_t act_floats = 2 * n_embd_ + q_width + k_width + v_width + n_head_ * head_dim_v_ + 2 * n_ff_;
  place_layers(n_layer, {k_width, v_width, act_floats});
  for (int i = 0; i < n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    Backend& be = layer_backend(i);
    Layer l;
    l.be = &be;
    l.attn_norm = be.place(w_.vector(p + "attn_norm.weight", n_embd_));
    l.ffn_norm = be.place(w_.vector(p + "ffn_norm.weight", n_embd_));
    l.wq = be.place(w_.matrix(p + "attn_q.weight", n_embd_, q_width));
    l.wk = be.place(w_.matrix(p + "attn_k.weight", n_embd_, k_width));
    l.wv = be.place(w_.matrix(p + "attn_v.weight", n_embd_, v_width));
    l.wo = be.place(w_.matrix(p + "attn_output.weight", n_head_ * head_dim_v_, n_embd_));
    l.bq = be.place(w_.optional_vector(p + "attn_q.bias", q_width));
    l.bk = be.place(w_.optional_vector(p + "attn_k.bias", k_width));
    l.bv = be.place(w_.optional_vector(p + "attn_v.bias", v_width));
    if (style.qk_norm) {
      l.q_norm = be.place(w_.vector(p + "attn_q_norm.weight", head_dim_k_));
      l.k_norm = be.place(w_.vector(p + "attn_k_norm.weight", head_dim_k_));
    }
    l.gate = be.place(w_.matrix(p + "ffn_gate.weight", n_embd_, n_ff_));
    l.up = be.place(w_.matrix(p + "ffn_up.weight", n_embd_, n_ff_));
    l.down = be.place(w_.matrix(p + "ffn_down.weight", n_ff_, n_embd_));
    layers_.push_back(std::move(l));
  }
  init_backend_caches(k_width, v_width);
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

void Transformer::layers(Buf& x, const Batch& b, int first, int end) {
  const int64_t n = static_cast<int64_t>(b.size());
  const int q_width = n_head_ * head_dim_k_, k_width = n_head_kv_ * head_dim_k_, v_width = n_head_kv_ * head_dim_v_;
  const AttentionShape shape{n_head_, n_head_kv_, head_dim_k_, head_dim_v_, 1.0f / std::sqrt(static_cast<float>(head_dim_k_))};
  auto size = [n](int width) { return static_cast<size_t>(n * width); };
  Buf h, q, k, v, attn, gate, up;  // scratch on the backend of the layers now running

  for (size_t li = static_cast<size_t>(first); li < static_cast<size_t>(end); ++li) {
    const Layer& l = layers_[li];
    const int layer = static_cast<int>(li);
    Backend& be = *l.be;
    if (h.backend() != &be) {
      x = move_to(be, std::move(x));
      h = Buf(be, size(n_embd_)), q = Buf(be, size(q_width)), k = Buf(be, size(k_width)), v = Buf(be, size(v_width));
      attn = Buf(be, size(n_head_ * head_dim_v_)), gate = Buf(be, size(n_ff_)), up = Buf(be, size(n_ff_));
    }
    // Attention: h = norm(x); q, k, v = h W; rope; cache k, v; x += attend(q) Wo
    // (the previous layer's feed-forward output joins x in the same pass as this norm)
    const bool first_here = li == 0 || layers_[li - 1].be != &be;
    be.norm_matmuls(x.data(), first_here ? nullptr : h.data(), l.attn_norm, h.data(), n, n_embd_, norm_eps_,
                    {{&l.wq, q.data()}, {&l.wk, k.data()}, {&l.wv, v.data()}});
    be.attention_inputs({q.data(), k.data(), v.data(), l.bq, l.bk, l.bv, l.q_norm, l.k_norm, n, n_head_, n_head_kv_, head_dim_k_,
                         head_dim_v_, norm_eps_, &rope_},
                        layer);
    be.attention(shape, q.data(), q_width, layer, attn.data());
    be.matmul(l.wo, attn.data(), n, h.data());

    // Feed-forward: x += (silu(norm(x) Wg) * norm(x) Wu) Wd
    be.norm_matmuls(x.data(), h.data(), l.ffn_norm, h.data(), n, n_embd_, norm_eps_, {{&l.gate, gate.data()}, {&l.up, up.data()}});
    be.swiglu_matmul(gate.data(), up.data(), n, n_ff_, l.down, h.data());
    if (li + 1 == layers_.size() || layers_[li + 1].be != &be) be.add(x.data(), h.data(), n * n_embd_);
  }
}

}  // namespace jing::model
