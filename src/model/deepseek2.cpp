// DeepSeek-V2/V3/R1: multi-head latent attention (MLA) and a mixture of experts.
//
// MLA compresses keys and values into one latent per token: c = norm(W_dkv x) (kv_lora_rank
// wide) plus a shared roped key part k_pe. The cache holds only [c | k_pe]. Queries are absorbed
// into the latent space: for head h, q_h = [W_kb,h q_nope,h | rope(q_pe,h)], so
// score(h, j) = q_h . [c_j | k_pe_j] and the head's output is W_vb,h (sum_j p_j c_j): attention
// becomes multi-query attention over the latents (n_head_kv = 1, value = the latent itself).
// Positions use YaRN-scaled rotary embeddings; its magnitude correction enters the softmax scale.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "model/base.h"
#include "model/deepseek2_kv_b.h"
#include "model/moe.h"

namespace jing::model {
namespace {

class DeepSeek2 : public BaseModel {
 public:
  DeepSeek2(gguf::File file, const ModelOptions& opts) : BaseModel(std::move(file), opts) {
    const int n_layer = static_cast<int>(arch_int("block_count"));
    n_head_ = static_cast<int>(arch_int("attention.head_count"));
    q_lora_ = static_cast<int>(arch_int("attention.q_lora_rank", 0));
    kv_lora_ = static_cast<int>(arch_int("attention.kv_lora_rank"));
    n_rot_ = static_cast<int>(arch_int("rope.dimension_count"));
    // Head sizes "after decompression": newer converters write them as *_mla keys.
    head_k_ = static_cast<int>(arch_int("attention.key_length_mla", arch_int("attention.key_length")));
    head_v_ = static_cast<int>(arch_int("attention.value_length_mla", arch_int("attention.value_length")));
    nope_ = head_k_ - n_rot_;
    if (nope_ < 1) throw Error("deepseek2: key length must exceed the rotary dimensions");
    n_dense_ = static_cast<int>(arch_int("leading_dense_block_count", 0));
    n_ff_ = static_cast<int>(arch_int("feed_forward_length"));
    n_ff_exp_ = static_cast<int>(arch_int("expert_feed_forward_length", 0));
    const int n_shared = static_cast<int>(arch_int("expert_shared_count", 0));
    moe_.n_expert = static_cast<int>(arch_int("expert_count", 0));
    moe_.n_expert_used = static_cast<int>(arch_int("expert_used_count", 0));
    pipeline_decode_ = n_layer > n_dense_;  // routed experts: a batch's cost grows with its tokens (BaseModel::micro_batches)
    moe_.n_group = static_cast<int>(arch_int("expert_group_count", 1));
    moe_.n_group_used = static_cast<int>(arch_int("expert_group_used_count", 1));
    moe_.normalize = file_.get_bool(arch() + ".expert_weights_norm").value_or(false);
    moe_.scale = arch_float("expert_weights_scale", 1.0f);
    // Files without the key are DeepSeek-V2 (softmax); R1/V3 GGUFs say 2 (sigmoid).
    moe_.gating = arch_int("expert_gating_func", 1) == 2 ? MoeRouting::Gating::Sigmoid : MoeRouting::Gating::Softmax;
    if (n_layer > n_dense_ && (moe_.n_expert <= 0 || moe_.n_expert_used <= 0 || moe_.n_expert_used > moe_.n_expert))
      throw Error("deepseek2: expert_count / expert_used_count are missing or inconsistent");
    if (moe_.n_group < 1 || moe_.n_expert % moe_.n_group || moe_.n_group_used > moe_.n_group) moe_.n_group = moe_.n_group_used = 1;

    setup_rope();

    // A token's activations in a layer: x, h, o, the shared output; q, the latent row, q_a, the
    // absorbed queries, attended latents and heads; a dense feed-forward, or routed + shared experts.
    const int kw = kv_lora_ + n_rot_;
    const uint64_t act_floats = 4 * n_embd_ + n_head_ * head_k_ + kw * (1 + n_head_) + q_lora_ + n_head_ * (kv_lora_ + head_v_) +
                                2 * n_ff_ + (3 * moe_.n_expert_used + 2 * n_shared) * n_ff_exp_;
    place_layers(n_layer, {kw, 0, act_floats});
    layers_.reserve(static_cast<size_t>(n_layer));  // wk_b/wv_b may point into a layer's own buffers
    const auto gpus = expert_parallel_gpus();  // several: every MoE layer's routed experts shared out over them
    for (int i = 0; i < n_layer; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      Backend& be = layer_backend(i);
      layers_.emplace_back();
      Layer& l = layers_.back();
      l.be = &be;
      l.attn_norm = be.place(w_.vector(p + "attn_norm.weight", n_embd_));
      l.ffn_norm = be.place(w_.vector(p + "ffn_norm.weight", n_embd_));
      if (q_lora_ > 0) {
        l.wq_a = be.place(w_.matrix(p + "attn_q_a.weight", n_embd_, q_lora_));
        l.q_a_norm = be.place(w_.vector(p + "attn_q_a_norm.weight", q_lora_));
        l.wq_b = be.place(w_.matrix(p + "attn_q_b.weight", q_lora_, n_head_ * head_k_));
      } else {
        l.wq_b = be.place(w_.matrix(p + "attn_q.weight", n_embd_, n_head_ * head_k_));
      }
      l.wkv_a = be.place(w_.matrix(p + "attn_kv_a_mqa.weight", n_embd_, kv_lora_ + n_rot_));
      l.kv_a_norm = be.place(w_.vector(p + "attn_kv_a_norm.weight", kv_lora_));
      if (const auto* kv_b = file_.find_tensor(p + "attn_kv_b.weight"); kv_b && !file_.find_tensor(p + "attn_k_b.weight")) {
        l.kv_b_split = split_kv_b(*kv_b, n_head_, nope_, head_v_, kv_lora_);  // older converters' layout
        l.wk_b = be.place_experts(l.kv_b_split.k_b, n_head_);
        l.wv_b = be.place_experts(l.kv_b_split.v_b, n_head_);
      } else {
        l.wk_b = be.place_experts(w_.experts(p + "attn_k_b.weight", nope_, kv_lora_, n_head_), n_head_);
        l.wv_b = be.place_experts(w_.experts(p + "attn_v_b.weight", kv_lora_, head_v_, n_head_), n_head_);
      }
      l.wo = be.place(w_.matrix(p + "attn_output.weight", n_head_ * head_v_, n_embd_));
      if (i < n_dense_) {
        l.gate = be.place(w_.matrix(p + "ffn_gate.weight", n_embd_, n_ff_));
        l.up = be.place(w_.matrix(p + "ffn_up.weight", n_embd_, n_ff_));
        l.down = be.place(w_.matrix(p + "ffn_down.weight", n_ff_, n_embd_));
      } else {
        Backend& ebe = expert_backend(i);  // the router goes with its experts
        l.moe_be = &ebe;
        l.moe.router = ebe.place(w_.matrix(p + "ffn_gate_inp.weight", n_embd_, moe_.n_expert));
        l.moe.bias = w_.optional_vector(p + "exp_probs_b.bias", moe_.n_expert);  // the backend places it as it needs
        const cpu::WeightView gate = w_.experts(p + "ffn_gate_exps.weight", n_embd_, n_ff_exp_, moe_.n_expert),
                              up = w_.experts(p + "ffn_up_exps.weight", n_embd_, n_ff_exp_, moe_.n_expert),
                              down = w_.experts(p + "ffn_down_exps.weight", n_ff_exp_, n_embd_, moe_.n_expert);
        if (gpus.size() > 1 && &ebe == &be) {  // each GPU a share of the experts (BaseModel::expert_parallel_gpus)
          const int k_count = static_cast<int>(gpus.size());
          for (int k = 0; k < k_count; ++k) {
            ExpertShare sh;
            sh.be = gpus[static_cast<size_t>(k)];
            sh.first = moe_.n_expert * k / k_count, sh.count = moe_.n_expert * (k + 1) / k_count - sh.first;
            sh.w.gate = sh.be->place_experts(expert(gate, sh.first), sh.count);
            sh.w.up = sh.be->place_experts(expert(up, sh.first), sh.count);
            sh.w.down = sh.be->place_experts(expert(down, sh.first), sh.count);
            l.shares.push_back(sh);
          }
        } else {
          l.moe.gate = ebe.place_experts(gate, moe_.n_expert);
          l.moe.up = ebe.place_experts(up, moe_.n_expert);
          l.moe.down = ebe.place_experts(down, moe_.n_expert);
        }
        if (n_shared > 0) {
          l.gate = be.place(w_.matrix(p + "ffn_gate_shexp.weight", n_embd_, n_ff_exp_ * n_shared));
          l.up = be.place(w_.matrix(p + "ffn_up_shexp.weight", n_embd_, n_ff_exp_ * n_shared));
          l.down = be.place(w_.matrix(p + "ffn_down_shexp.weight", n_ff_exp_ * n_shared, n_embd_));
          shared_ff_ = n_ff_exp_ * n_shared;
        }
      }
    }
    if (gpus.size() > 1 && n_layer > n_dense_) {
      std::fprintf(stderr, "placement: every MoE layer's routed experts shared out over %zu GPUs (expert parallelism)\n", gpus.size());
      pipeline_decode_ = false;  // every GPU works on each MoE layer already
      experts_shared_ = true;
    }
    init_backend_caches(kv_lora_ + n_rot_, 0);  // the latent and the roped key: nothing else
  }

 protected:
  void layers(Buf& x, const Batch& b, int first, int end) override;
  // A decode step can be recorded when every MoE layer routes on its own device: experts in RAM
  // (--cpu-moe) or routing the device cannot do would need the host in the middle of the step.
  bool step_recordable() const override {
    return std::all_of(layers_.begin(), layers_.end(),
                       [&](const Layer& l) { return !l.moe_be || (l.moe_be == l.be && l.be->moe_stays_on_device(moe_)); });
  }

 private:
  struct ExpertShare {  // experts [first, first + count) of a layer, held by one GPU
    Backend* be = nullptr;
    int first = 0, count = 0;
    MoeWeights w;  // gate, up and down of those experts (the router stays with the layer)
  };
  struct Layer {
    Backend* be = nullptr;      // where this layer runs; its weights are placed there
    Backend* moe_be = nullptr;  // where its router and routed experts live and run (--cpu-moe: the CPU)
    const float *attn_norm = nullptr, *ffn_norm = nullptr, *q_a_norm = nullptr, *kv_a_norm = nullptr;
    cpu::WeightView wq_a, wq_b, wkv_a, wk_b, wv_b, wo, gate, up, down;
    MoeWeights moe;
    SplitKvB kv_b_split;  // owns wk_b/wv_b for files with the combined attn_kv_b tensor
    std::vector<ExpertShare> shares;  // expert parallelism: every GPU's share (else the experts are in moe)
  };
  // o = the routed experts' mix with the experts shared out over the GPUs: routed here, each
  // GPU mixes the pairs of its own experts, the others' mixes come back and are added.
  void expert_parallel(Backend& be, const Layer& l, const float* h, int64_t n, float* o);

  void setup_rope();
  // out = attention over norm(x + residual) (x updated; residual may be null; h gets the normed rows).
  void attention_block(Backend& be, const Layer& l, int layer, float* x, const float* residual, float* h, int64_t n, float* out);
  void dense_ffn(Backend& be, const cpu::WeightView& gate, const cpu::WeightView& up, const cpu::WeightView& down, int n_ff,
                 const float* h, int64_t n, float* out);

  int n_head_ = 0, q_lora_ = 0, kv_lora_ = 0, n_rot_ = 0, head_k_ = 0, head_v_ = 0, nope_ = 0;
  int n_dense_ = 0, n_ff_ = 0, n_ff_exp_ = 0, shared_ff_ = 0;
  float kq_scale_ = 1.0f;
  Rope rope_;
  MoeRouting moe_;
  std::vector<Layer> layers_;
};

void DeepSeek2::setup_rope() {
  rope_.n_rot = n_rot_;
  rope_.freq_base = arch_float("rope.freq_base", 10000.0f);
  rope_.neox = false;
  float mscale = 1.0f;
  const std::string type = file_.get_string(arch() + ".rope.scaling.type").value_or("none");
  const float factor = arch_float("rope.scaling.factor", 1.0f);
  if (type == "yarn" && factor > 1.0f) {
    rope_.freq_scale = 1.0f / factor;
    rope_.ext_factor = 1.0f;
    rope_.beta_fast = arch_float("rope.scaling.yarn_beta_fast", 32.0f);
    rope_.beta_slow = arch_float("rope.scaling.yarn_beta_slow", 1.0f);
    rope_.n_ctx_orig = static_cast<int>(arch_int("rope.scaling.original_context_length", n_ctx_train_));
    // The converter stores 0.1 * mscale_all_dim. YaRN's magnitude factor
    // (0.1 * mscale * ln(factor) + 1) is applied to the softmax scale (squared, since it would
    // multiply both q and k), so the rotation itself carries none: attn_factor cancels Rope's own.
    const float log_mul = arch_float("rope.scaling.yarn_log_multiplier", 0.0f) / 0.1f;
    rope_.attn_factor = 1.0f / (1.0f + 0.1f * std::log(factor));
    mscale = log_mul != 0.0f ? 1.0f + 0.1f * log_mul * std::log(factor) : 1.0f;
  } else if (type == "linear" && factor > 0.0f) {
    rope_.freq_scale = 1.0f / factor;
  }
  kq_scale_ = mscale * mscale / std::sqrt(static_cast<float>(head_k_));
}

void DeepSeek2::attention_block(Backend& be, const Layer& l, int layer, float* x, const float* residual, float* h, int64_t n, float* out) {
  const int kw = kv_lora_ + n_rot_;  // one cache row: [latent | k_pe]
  auto size = [n](int64_t width) { return static_cast<size_t>(n * width); };
  Buf q(be, size(n_head_ * head_k_)), kv(be, size(kw));
  if (q_lora_ > 0) {  // q through its low-rank bottleneck (normed), kv's latent from the same input
    Buf qa(be, size(q_lora_));
    be.norm_matmuls(x, residual, l.attn_norm, h, n, n_embd_, norm_eps_, {{&l.wq_a, qa.data()}, {&l.wkv_a, kv.data()}});
    be.norm_matmuls(qa.data(), nullptr, l.q_a_norm, qa.data(), n, q_lora_, norm_eps_, {{&l.wq_b, q.data()}});
  } else {
    be.norm_matmuls(x, residual, l.attn_norm, h, n, n_embd_, norm_eps_, {{&l.wq_b, q.data()}, {&l.wkv_a, kv.data()}});
  }
  // Absorbed queries: [W_kb,h q_nope,h | rope(q_pe,h)] per head; MQA over the cached [norm(c) | rope(k_pe)] rows.
  Buf qa(be, size(n_head_ * kw));
  be.mla_inputs({q.data(), kv.data(), qa.data(), l.kv_a_norm, n, n_head_, head_k_, nope_, kv_lora_, n_rot_, norm_eps_, &rope_}, layer);
  be.head_matmuls({l.wk_b, n_head_, q.data(), n_head_ * head_k_, head_k_, qa.data(), n_head_ * kw, kw, n});
  Buf latent(be, size(n_head_ * kv_lora_));
  be.attention({n_head_, 1, kw, kv_lora_, kq_scale_, true}, qa.data(), n_head_ * kw, layer, latent.data());

  // Decompress each head's attended latent through W_vb,h, then the output projection.
  Buf heads(be, size(n_head_ * head_v_));
  be.head_matmuls({l.wv_b, n_head_, latent.data(), n_head_ * kv_lora_, kv_lora_, heads.data(), n_head_ * head_v_, head_v_, n});
  be.matmul(l.wo, heads.data(), n, out);
}

void DeepSeek2::dense_ffn(Backend& be, const cpu::WeightView& gate, const cpu::WeightView& up, const cpu::WeightView& down, int n_ff,
                          const float* h, int64_t n, float* out) {
  Buf g(be, static_cast<size_t>(n * n_ff)), u(be, static_cast<size_t>(n * n_ff));
  be.matmuls({{&gate, g.data()}, {&up, u.data()}}, h, n);
  be.swiglu_matmul(g.data(), u.data(), n, n_ff, down, out);
}

void DeepSeek2::layers(Buf& x, const Batch& b, int first, int end) {
  const int64_t n = static_cast<int64_t>(b.size());
  const size_t width = static_cast<size_t>(n * n_embd_);
  Buf h, o, shared;  // scratch on the backend of the layers now running
  for (size_t li = static_cast<size_t>(first); li < static_cast<size_t>(end); ++li) {
    const Layer& l = layers_[li];
    Backend& be = *l.be;
    if (h.backend() != &be) {
      x = move_to(be, std::move(x));
      h = Buf(be, width), o = Buf(be, width), shared = Buf(be, width);
    }
    // x += attend(norm(x)); the previous layer's feed-forward output o joins x in the same pass.
    const bool fresh = li == 0 || layers_[li - 1].be != &be;
    attention_block(be, l, static_cast<int>(li), x.data(), fresh ? nullptr : o.data(), h.data(), n, o.data());

    // x += ffn(norm(x)): dense in the first layers, then routed experts plus the shared ones.
    be.add_rms_norm(x.data(), o.data(), l.ffn_norm, h.data(), n, n_embd_, norm_eps_);
    if (static_cast<int>(li) < n_dense_) {
      dense_ffn(be, l.gate, l.up, l.down, n_ff_, h.data(), n, o.data());
    } else {
      // The shared experts beside the routed ones (they read the same input; a second stream).
      if (shared_ff_ > 0) {
        be.begin_side();
        dense_ffn(be, l.gate, l.up, l.down, shared_ff_, h.data(), n, shared.data());
        be.end_side();
      }
      if (!l.shares.empty()) {
        expert_parallel(be, l, h.data(), n, o.data());
      } else if (l.moe_be == &be) {
        be.moe_ffn(moe_, l.moe, h.data(), n, n_embd_, n_ff_exp_, o.data());
      } else {  // experts in RAM: the normed input goes to their backend and the mix comes back
        Buf hx(be, width);
        be.copy(hx.data(), h.data(), width);
        Buf hm = move_to(*l.moe_be, std::move(hx)), om(*l.moe_be, width);
        l.moe_be->moe_ffn(moe_, l.moe, hm.data(), n, n_embd_, n_ff_exp_, om.data());
        Buf ob = move_to(be, std::move(om));
        be.copy(o.data(), ob.data(), width);
      }
      if (shared_ff_ > 0) {
        be.join_side();
        be.add(o.data(), shared.data(), n * n_embd_);
      }
    }
    if (li + 1 == layers_.size() || layers_[li + 1].be != &be) be.add(x.data(), o.data(), n * n_embd_);
  }
}

void DeepSeek2::expert_parallel(Backend& be, const Layer& l, const float* h, int64_t n, float* o) {
  const size_t width = static_cast<size_t>(n * n_embd_), routes_n = static_cast<size_t>(2 * n * moe_.n_expert_used);
  Buf routes(be, routes_n);
  if (!be.route_experts(moe_, l.moe, h, n, routes.data())) throw Error(be.name() + ": cannot route experts for expert parallelism");
  // The other GPUs' shares first, so that they run while this GPU mixes its own; their mixes
  // come back only after that (this GPU's queue must not wait for theirs before its own work).
  std::vector<Buf> mixes;
  for (const ExpertShare& sh : l.shares) {
    if (sh.be == &be) continue;
    Backend& g = *sh.be;
    const Buf hx = copy_to(g, be, h, width), rx = copy_to(g, be, routes.data(), routes_n);
    mixes.emplace_back(g, width);
    g.experts_share(moe_, sh.w, sh.first, sh.count, rx.data(), hx.data(), n, n_embd_, n_ff_exp_, mixes.back().data());
  }
  for (const ExpertShare& sh : l.shares)
    if (sh.be == &be) be.experts_share(moe_, sh.w, sh.first, sh.count, routes.data(), h, n, n_embd_, n_ff_exp_, o);
  for (Buf& mix : mixes) be.add(o, move_to(be, std::move(mix)).data(), n * n_embd_);
  mixes.clear();
  for (const ExpertShare& sh : l.shares) be.wait_for(*sh.be);  // (their buffers' releases too: a recorded step ends joined)
}

}  // namespace

std::unique_ptr<Model> make_deepseek2(gguf::File file, const ModelOptions& opts) {
  return std::make_unique<DeepSeek2>(std::move(file), opts);
}

}  // namespace jing::model
