#include "model/transformer.h"

#include "model/row_split.h"

#include <algorithm>
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
  place_layers(n_layer, {k_width, v_width, act_floats}, rows_divide(row_split_parts()));
  for (int i = 0; i < n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    Layer l;
    if (row_shards_.empty()) l.shards.push_back(place_shard(layer_backend(i), p, 0, 1));
    for (size_t k = 0; k < row_shards_.size(); ++k)
      l.shards.push_back(place_shard(*row_shards_[k], p, static_cast<int>(k), static_cast<int>(row_shards_.size())));
    layers_.push_back(std::move(l));
  }
  // The packed slices that a backend copied are no longer read (a CPU reading in place keeps its).
  for (auto& slice : column_slices_) {
    const bool read_in_place = std::any_of(layers_.begin(), layers_.end(), [&](const Layer& l) {
      return std::any_of(l.shards.begin(), l.shards.end(), [&](const Shard& s) { return s.wo.data == slice.data() || s.down.data == slice.data(); });
    });
    if (!read_in_place) std::vector<uint8_t>().swap(slice);
  }
  init_backend_caches(k_width, v_width);
}

bool Transformer::rows_divide(int parts) const {
  if (parts <= 1 || n_head_kv_ % parts || n_head_ % parts || n_ff_ % parts) return false;
  const auto wo = w_.matrix("blk.0.attn_output.weight", n_head_ * head_dim_v_, n_embd_);
  const auto down = w_.matrix("blk.0.ffn_down.weight", n_ff_, n_embd_);
  return row_split::columns_split(wo, parts) && row_split::columns_split(down, parts);
}

Transformer::Shard Transformer::place_shard(Backend& be, const std::string& p, int k, int parts) {
  // Share k of parts: heads [k H / parts, (k + 1) H / parts) (and likewise the KV heads, so each
  // query head's KV head stays with it), columns of n_ff likewise. parts == 1: the whole layer.
  const int q_width = n_head_ * head_dim_k_, k_width = n_head_kv_ * head_dim_k_, v_width = n_head_kv_ * head_dim_v_;
  const int64_t q0 = q_width / parts * k, k0 = k_width / parts * k, v0 = v_width / parts * k, o0 = n_head_ * head_dim_v_ / parts * k;
  const int64_t f0 = n_ff_ / parts * k;
  auto columns = [&](const cpu::WeightView& w, int64_t first, int64_t count) {
    if (parts == 1) return be.place(w);
    // Each slice keeps its own buffer until the whole model is placed: backends remember what
    // they copied by address, so a freed slice's address must not come back for another one.
    column_slices_.emplace_back();
    return be.place(row_split::columns(w, first, count, column_slices_.back()));
  };
  auto bias = [&](const std::string& name, int width, int64_t first) {
    return be.place(row_split::part(w_.optional_vector(p + name, width), first, width / parts));
  };
  Shard s;
  s.be = &be;
  s.attn_norm = be.place(w_.vector(p + "attn_norm.weight", n_embd_));
  s.ffn_norm = be.place(w_.vector(p + "ffn_norm.weight", n_embd_));
  s.wq = be.place(row_split::rows(w_.matrix(p + "attn_q.weight", n_embd_, q_width), q0, q_width / parts));
  s.wk = be.place(row_split::rows(w_.matrix(p + "attn_k.weight", n_embd_, k_width), k0, k_width / parts));
  s.wv = be.place(row_split::rows(w_.matrix(p + "attn_v.weight", n_embd_, v_width), v0, v_width / parts));
  s.wo = columns(w_.matrix(p + "attn_output.weight", n_head_ * head_dim_v_, n_embd_), o0, n_head_ * head_dim_v_ / parts);
  s.bq = bias("attn_q.bias", q_width, q0);
  s.bk = bias("attn_k.bias", k_width, k0);
  s.bv = bias("attn_v.bias", v_width, v0);
  if (style_.qk_norm) {
    s.q_norm = be.place(w_.vector(p + "attn_q_norm.weight", head_dim_k_));
    s.k_norm = be.place(w_.vector(p + "attn_k_norm.weight", head_dim_k_));
  }
  s.gate = be.place(row_split::rows(w_.matrix(p + "ffn_gate.weight", n_embd_, n_ff_), f0, n_ff_ / parts));
  s.up = be.place(row_split::rows(w_.matrix(p + "ffn_up.weight", n_embd_, n_ff_), f0, n_ff_ / parts));
  s.down = columns(w_.matrix(p + "ffn_down.weight", n_ff_, n_embd_), f0, n_ff_ / parts);
  return s;
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
  auto size = [n](int width) { return static_cast<size_t>(n * width); };
  // Per backend of the layers now running (one, or a row split's shards): the residual x (each
  // shard its own copy), the normed input / block output h, and the block's scratch.
  struct Lane {
    Buf x, h, q, k, v, attn, gate, up;
  };
  std::vector<Lane> lanes;
  for (size_t li = static_cast<size_t>(first); li < static_cast<size_t>(end); ++li) {
    const Layer& l = layers_[li];
    const int layer = static_cast<int>(li);
    const int parts = static_cast<int>(l.shards.size());
    const int nh = n_head_ / parts, nkv = n_head_kv_ / parts, ff = n_ff_ / parts;
    const int q_width = nh * head_dim_k_, k_width = nkv * head_dim_k_, v_width = nkv * head_dim_v_;
    const bool first_here = lanes.empty() || lanes.front().h.backend() != &l.be();
    if (first_here) {
      if (!lanes.empty()) x = std::move(lanes.front().x);
      x = move_to(l.be(), std::move(x));
      lanes = std::vector<Lane>(static_cast<size_t>(parts));
      for (int k = 0; k < parts; ++k) {
        Backend& be = *l.shards[static_cast<size_t>(k)].be;
        Lane& ln = lanes[static_cast<size_t>(k)];
        ln.x = k == 0 ? std::move(x) : copy_to(be, l.be(), lanes.front().x.data(), size(n_embd_));
        ln.h = Buf(be, size(n_embd_)), ln.q = Buf(be, size(q_width)), ln.k = Buf(be, size(k_width)), ln.v = Buf(be, size(v_width));
        ln.attn = Buf(be, size(nh * head_dim_v_)), ln.gate = Buf(be, size(ff)), ln.up = Buf(be, size(ff));
      }
    }
    const AttentionShape shape{nh, nkv, head_dim_k_, head_dim_v_, 1.0f / std::sqrt(static_cast<float>(head_dim_k_))};
    auto reduce = [&] {  // each shard's h holds a partial sum: make it whole everywhere
      std::vector<std::pair<Backend*, float*>> hs;
      for (int k = 0; k < parts; ++k) hs.push_back({l.shards[static_cast<size_t>(k)].be, lanes[static_cast<size_t>(k)].h.data()});
      row_split::all_reduce(hs, size(n_embd_), collectives_.get());
    };
    // Attention: h = norm(x); q, k, v = h W; rope; cache k, v; x += attend(q) Wo
    // (the previous layer's feed-forward output joins x in the same pass as this norm)
    for (int k = 0; k < parts; ++k) {
      const Shard& s = l.shards[static_cast<size_t>(k)];
      Lane& ln = lanes[static_cast<size_t>(k)];
      Backend& be = *s.be;
      be.norm_matmuls(ln.x.data(), first_here ? nullptr : ln.h.data(), s.attn_norm, ln.h.data(), n, n_embd_, norm_eps_,
                      {{&s.wq, ln.q.data()}, {&s.wk, ln.k.data()}, {&s.wv, ln.v.data()}});
      be.attention_inputs({ln.q.data(), ln.k.data(), ln.v.data(), s.bq, s.bk, s.bv, s.q_norm, s.k_norm, n, nh, nkv, head_dim_k_, head_dim_v_,
                           norm_eps_, &rope_},
                          layer);
      be.attention(shape, ln.q.data(), q_width, layer, ln.attn.data());
      be.matmul(s.wo, ln.attn.data(), n, ln.h.data());
    }
    if (parts > 1) reduce();
    // Feed-forward: x += (silu(norm(x) Wg) * norm(x) Wu) Wd
    for (int k = 0; k < parts; ++k) {
      const Shard& s = l.shards[static_cast<size_t>(k)];
      Lane& ln = lanes[static_cast<size_t>(k)];
      s.be->norm_matmuls(ln.x.data(), ln.h.data(), s.ffn_norm, ln.h.data(), n, n_embd_, norm_eps_, {{&s.gate, ln.gate.data()}, {&s.up, ln.up.data()}});
      s.be->swiglu_matmul(ln.gate.data(), ln.up.data(), n, ff, s.down, ln.h.data());
    }
    if (parts > 1) reduce();
    // Leaving these backends: the residual goes on from the first shard only (the others' copies
    // end here; the first waits for them below, so a recorded step ends joined).
    if (li + 1 == layers_.size() || &layers_[li + 1].be() != &l.be()) l.be().add(lanes.front().x.data(), lanes.front().h.data(), n * n_embd_);
  }
  if (lanes.empty()) return;
  x = std::move(lanes.front().x);
  std::vector<Backend*> shards;
  for (const Shard& s : layers_[static_cast<size_t>(end - 1)].shards) shards.push_back(s.be);
  lanes.clear();
  for (size_t k = 1; k < shards.size(); ++k) shards.front()->wait_for(*shards[k]);  // a recorded step ends joined
}

}  // namespace jing::model
