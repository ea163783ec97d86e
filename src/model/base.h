// What every architecture shares: the GGUF file, the KV cache, batch validation, and the
// final norm + output projection. An architecture implements layers(); see llama.cpp et al.
#pragma once
#include <memory>
#include <optional>

#include "model/model.h"
#include "model/ops.h"
#include "runtime/kv_cache.h"

namespace jing::model {

class BaseModel : public Model {
 public:
  BaseModel(gguf::File file, const ModelOptions& opts);

  const gguf::File& file() const override { return file_; }
  std::string arch() const override { return file_.architecture(); }
  int n_vocab() const override { return n_vocab_; }
  int n_embd() const override { return n_embd_; }
  int n_ctx() const override { return opts_.n_ctx; }
  int n_ctx_train() const override { return n_ctx_train_; }
  int n_seq() const override { return opts_.n_seq; }
  int kv_length(int seq) const override { return kv_->length(seq); }
  void kv_truncate(int seq, int n_keep) override;

  std::vector<float> forward(const Batch& batch, Output out) override;

 protected:
  // Runs every layer over x [n][n_embd] in place (the cache already sized by init_cache).
  virtual void layers(float* x, const Batch& b) = 0;
  void init_cache(int n_layer, int k_width, int v_width);
  int64_t arch_int(const std::string& key, std::optional<int64_t> fallback = std::nullopt) const;
  float arch_float(const std::string& key, float fallback) const;

  gguf::File file_;
  ModelOptions opts_;
  Weights w_;
  Ctx ctx_;
  std::unique_ptr<runtime::KvCache> kv_;
  int n_vocab_ = 0, n_embd_ = 0, n_ctx_train_ = 0;
  float norm_eps_ = 1e-5f;
  const gguf::TensorInfo* tok_embd_ = nullptr;
  std::vector<float> output_norm_;
  cpu::WeightView output_;
};

// Factories of the architectures (one file each).
std::unique_ptr<Model> make_llama(gguf::File file, const ModelOptions& opts);
std::unique_ptr<Model> make_qwen2(gguf::File file, const ModelOptions& opts);
std::unique_ptr<Model> make_qwen3(gguf::File file, const ModelOptions& opts);
std::unique_ptr<Model> make_deepseek2(gguf::File file, const ModelOptions& opts);

}  // namespace jing::model
