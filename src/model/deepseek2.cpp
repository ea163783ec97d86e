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

#include "common/error.h"
#include "model/base.h"
#include <cstdio>

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

    layers_.reserve(static_cast<size_t>(n_layer));  // wk_b/wv_b may point into a layer's own buffers
    for (int i = 0; i < n_layer; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      Layer l;
      l.attn_norm = w_.vector(p + "attn_norm.weight", n_embd_);
      l.ffn_norm = w_.vector(p + "ffn_norm.weight", n_embd_);
      if (q_lora_ > 0) {
        l.wq_a = w_.matrix(p + "attn_q_a.weight", n_embd_, q_lora_);
        l.q_a_norm = w_.vector(p + "attn_q_a_norm.weight", q_lora_);
        l.wq_b = w_.matrix(p + "attn_q_b.weight", q_lora_, n_head_ * head_k_);
      } else {
        l.wq_b = w_.matrix(p + "attn_q.weight", n_embd_, n_head_ * head_k_);
      }
      l.wkv_a = w_.matrix(p + "attn_kv_a_mqa.weight", n_embd_, kv_lora_ + n_rot_);
      l.kv_a_norm = w_.vector(p + "attn_kv_a_norm.weight", kv_lora_);
      if (const auto* kv_b = file_.find_tensor(p + "attn_kv_b.weight"); kv_b && !file_.find_tensor(p + "attn_k_b.weight")) {
        l.kv_b_split = split_kv_b(*kv_b, n_head_, nope_, head_v_, kv_lora_);  // older converters' layout
        l.wk_b = l.kv_b_split.k_b;
        l.wv_b = l.kv_b_split.v_b;
      } else {
        l.wk_b = w_.experts(p + "attn_k_b.weight", nope_, kv_lora_, n_head_);
        l.wv_b = w_.experts(p + "attn_v_b.weight", kv_lora_, head_v_, n_head_);
      }
      l.wo = w_.matrix(p + "attn_output.weight", n_head_ * head_v_, n_embd_);
      if (i < n_dense_) {
        l.gate = w_.matrix(p + "ffn_gate.weight", n_embd_, n_ff_);
        l.up = w_.matrix(p + "ffn_up.weight", n_embd_, n_ff_);
        l.down = w_.matrix(p + "ffn_down.weight", n_ff_, n_embd_);
      } else {
        l.moe.router = w_.matrix(p + "ffn_gate_inp.weight", n_embd_, moe_.n_expert);
        l.moe.bias = w_.optional_vector(p + "exp_probs_b.bias", moe_.n_expert);
        l.moe.gate = w_.experts(p + "ffn_gate_exps.weight", n_embd_, n_ff_exp_, moe_.n_expert);
        l.moe.up = w_.experts(p + "ffn_up_exps.weight", n_embd_, n_ff_exp_, moe_.n_expert);
        l.moe.down = w_.experts(p + "ffn_down_exps.weight", n_ff_exp_, n_embd_, moe_.n_expert);
        if (n_shared > 0) {
          l.gate = w_.matrix(p + "ffn_gate_shexp.weight", n_embd_, n_ff_exp_ * n_shared);
          l.up = w_.matrix(p + "ffn_up_shexp.weight", n_embd_, n_ff_exp_ * n_shared);
          l.down = w_.matrix(p + "ffn_down_shexp.weight", n_ff_exp_ * n_shared, n_embd_);
          shared_ff_ = n_ff_exp_ * n_shared;
        }
      }
      layers_.push_back(std::move(l));
    }
    init_cache(n_layer, kv_lora_ + n_rot_, 0);  // the latent and the roped key: nothing else
    if (opts.n_gpu_layers > 0) std::fprintf(stderr, "note: deepseek2 (MLA + MoE) runs on the CPU in this build; its GPU path is not written yet\n");
  }

 protected:
  // MLA and MoE are written against the CPU functions still: every layer runs on the CPU.
  void layers(Buf& x, const Batch& b) override { layers_cpu(x.data(), b); }
  void layers_cpu(float* x, const Batch& b);

 private:
  struct Layer {
    std::vector<float> attn_norm, ffn_norm, q_a_norm, kv_a_norm;
    cpu::WeightView wq_a, wq_b, wkv_a, wk_b, wv_b, wo, gate, up, down;
    MoeWeights moe;
    SplitKvB kv_b_split;  // owns wk_b/wv_b for files with the combined attn_kv_b tensor
  };

  void setup_rope();
  void attention_block(const Layer& l, int layer, const float* h, const Batch& b, float* out);
  void dense_ffn(const cpu::WeightView& gate, const cpu::WeightView& up, const cpu::WeightView& down, int n_ff, const float* h,
                 int64_t n, float* out);

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

void DeepSeek2::attention_block(const Layer& l, int layer, const float* h, const Batch& b, float* out) {
  const int64_t n = static_cast<int64_t>(b.size());
  const int kw = kv_lora_ + n_rot_;  // one cache row: [latent | k_pe]
  Act q(static_cast<size_t>(n * n_head_ * head_k_)), kv(static_cast<size_t>(n * kw));
  if (q_lora_ > 0) {
    Act qa(static_cast<size_t>(n * q_lora_));
    matmul(ctx_, l.wq_a, h, n, qa.data());
    rms_norm(qa.data(), l.q_a_norm.data(), qa.data(), n, q_lora_, norm_eps_);
    matmul(ctx_, l.wq_b, qa.data(), n, q.data());
  } else {
    matmul(ctx_, l.wq_b, h, n, q.data());
  }
  matmul(ctx_, l.wkv_a, h, n, kv.data());
  rope_.apply(q.data() + nope_, n, n_head_, head_k_, b.pos.data());  // q_pe of every head
  rope_.apply(kv.data() + kv_lora_, n, 1, kw, b.pos.data());         // the shared k_pe
  for (int64_t t = 0; t < n; ++t) {  // the latent part of each [latent | k_pe] row
    rms_norm(kv.data() + t * kw, l.kv_a_norm.data(), kv.data() + t * kw, 1, kv_lora_, norm_eps_);
    kv_->store_k(layer, b.seq[static_cast<size_t>(t)], b.pos[static_cast<size_t>(t)], kv.data() + t * kw);
  }

  // The per-head products below are small (one head's 128 x 512 matrix); the heads run in
  // parallel, each product on one thread, rather than one after another on all of them.
  const int threads = ctx_.n_threads > 0 ? ctx_.n_threads : cpu::default_threads();
  const Ctx one_thread{1};

  // Absorbed queries: [W_kb,h q_nope,h | q_pe,h] per head.
  Act qa(static_cast<size_t>(n * n_head_ * kw));
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    Act tmp_in(static_cast<size_t>(n * nope_)), tmp_out(static_cast<size_t>(n * kv_lora_));
#pragma omp for schedule(static)
    for (int hd = 0; hd < n_head_; ++hd) {
      for (int64_t t = 0; t < n; ++t)
        std::copy_n(q.data() + (t * n_head_ + hd) * head_k_, nope_, tmp_in.data() + t * nope_);
      matmul(one_thread, expert(l.wk_b, hd), tmp_in.data(), n, tmp_out.data());
      for (int64_t t = 0; t < n; ++t) {
        float* dst = qa.data() + (t * n_head_ + hd) * kw;
        std::copy_n(tmp_out.data() + t * kv_lora_, kv_lora_, dst);
        std::copy_n(q.data() + (t * n_head_ + hd) * head_k_ + nope_, n_rot_, dst + kv_lora_);
      }
    }
  }
  Act latent(static_cast<size_t>(n * n_head_ * kv_lora_));
  attention(ctx_, {n_head_, 1, kw, kv_lora_, kq_scale_, true}, qa.data(), n_head_ * kw, *kv_, layer, b.seq, b.pos, latent.data());

  // Decompress each head's attended latent through W_vb,h, then the output projection.
  Act heads(static_cast<size_t>(n * n_head_ * head_v_));
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    Act lin(static_cast<size_t>(n * kv_lora_)), hv(static_cast<size_t>(n * head_v_));
#pragma omp for schedule(static)
    for (int hd = 0; hd < n_head_; ++hd) {
      for (int64_t t = 0; t < n; ++t)
        std::copy_n(latent.data() + (t * n_head_ + hd) * kv_lora_, kv_lora_, lin.data() + t * kv_lora_);
      matmul(one_thread, expert(l.wv_b, hd), lin.data(), n, hv.data());
      for (int64_t t = 0; t < n; ++t) std::copy_n(hv.data() + t * head_v_, head_v_, heads.data() + (t * n_head_ + hd) * head_v_);
    }
  }
  matmul(ctx_, l.wo, heads.data(), n, out);
}

void DeepSeek2::dense_ffn(const cpu::WeightView& gate, const cpu::WeightView& up, const cpu::WeightView& down, int n_ff,
                          const float* h, int64_t n, float* out) {
  Act g(static_cast<size_t>(n * n_ff)), u(static_cast<size_t>(n * n_ff));
  matmul(ctx_, gate, h, n, g.data());
  matmul(ctx_, up, h, n, u.data());
  silu_mul(g.data(), u.data(), n * n_ff);
  matmul(ctx_, down, g.data(), n, out);
}

void DeepSeek2::layers_cpu(float* x, const Batch& b) {
  const int64_t n = static_cast<int64_t>(b.size());
  Act h(static_cast<size_t>(n * n_embd_)), o(static_cast<size_t>(n * n_embd_)), shared(static_cast<size_t>(n * n_embd_));
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    rms_norm(x, l.attn_norm.data(), h.data(), n, n_embd_, norm_eps_);
    attention_block(l, static_cast<int>(li), h.data(), b, o.data());
    add(x, o.data(), n * n_embd_);

    rms_norm(x, l.ffn_norm.data(), h.data(), n, n_embd_, norm_eps_);
    if (static_cast<int>(li) < n_dense_) {
      dense_ffn(l.gate, l.up, l.down, n_ff_, h.data(), n, o.data());
    } else {
      moe_ffn(ctx_, moe_, l.moe, h.data(), n, n_embd_, n_ff_exp_, o.data());
      if (shared_ff_ > 0) {
        dense_ffn(l.gate, l.up, l.down, shared_ff_, h.data(), n, shared.data());
        add(o.data(), shared.data(), n * n_embd_);
      }
    }
    add(x, o.data(), n * n_embd_);
  }
}

}  // namespace

std::unique_ptr<Model> make_deepseek2(gguf::File file, const ModelOptions& opts) {
  return std::make_unique<DeepSeek2>(std::move(file), opts);
}

}  // namespace jing::model
