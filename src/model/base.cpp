#include "model/base.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "common/error.h"
#include "cpu/matmul.h"

namespace jing::model {

BaseModel::BaseModel(gguf::File file, const ModelOptions& opts) : file_(std::move(file)), opts_(opts), w_(file_) {
  ctx_.n_threads = opts.n_threads > 0 ? opts.n_threads : cpu::default_threads();
  n_embd_ = static_cast<int>(arch_int("embedding_length"));
  n_ctx_train_ = static_cast<int>(arch_int("context_length", 4096));
  if (opts_.n_ctx <= 0) opts_.n_ctx = n_ctx_train_;
  if (opts_.n_seq <= 0) opts_.n_seq = 1;
  norm_eps_ = arch_float("attention.layer_norm_rms_epsilon", 1e-5f);
  tok_embd_ = file_.find_tensor("token_embd.weight");
  if (!tok_embd_) throw Error("model file is missing tensor 'token_embd.weight'");
  n_vocab_ = static_cast<int>(tok_embd_->ne[1]);
  output_norm_ = w_.vector("output_norm.weight", n_embd_);
  // Models with tied embeddings have no output.weight: the embedding table projects back.
  auto out = w_.optional_matrix("output.weight", n_embd_, n_vocab_);
  output_ = out ? *out : w_.matrix("token_embd.weight", n_embd_, n_vocab_);
}

int64_t BaseModel::arch_int(const std::string& key, std::optional<int64_t> fallback) const {
  if (auto v = file_.arch_int(key)) return *v;
  if (fallback) return *fallback;
  throw Error("model metadata is missing " + file_.architecture() + "." + key);
}

float BaseModel::arch_float(const std::string& key, float fallback) const {
  return static_cast<float>(file_.arch_float(key).value_or(fallback));
}

void BaseModel::init_cache(int n_layer, int k_width, int v_width) {
  kv_ = std::make_unique<runtime::KvCache>(n_layer, opts_.n_seq, opts_.n_ctx, k_width, v_width, opts_.kv_type);
}

void BaseModel::kv_truncate(int seq, int n_keep) {
  if (seq < 0 || seq >= opts_.n_seq) throw Error("sequence " + std::to_string(seq) + " does not exist");
  kv_->set_length(seq, std::clamp(n_keep, 0, kv_->length(seq)));
}

std::vector<float> BaseModel::forward(const Batch& b, Output out) {
  const int64_t n = static_cast<int64_t>(b.size());
  if (n == 0) return {};
  if (b.pos.size() != b.tokens.size() || b.seq.size() != b.tokens.size() || b.want_logits.size() != b.tokens.size())
    throw Error("batch arrays differ in length");
  // Positions of each sequence must continue its cache without gaps.
  std::map<int, int> next;
  for (int64_t i = 0; i < n; ++i) {
    const int s = b.seq[static_cast<size_t>(i)];
    if (s < 0 || s >= opts_.n_seq) throw Error("sequence " + std::to_string(s) + " does not exist");
    auto [it, fresh] = next.emplace(s, kv_->length(s));
    if (b.pos[static_cast<size_t>(i)] != it->second)
      throw Error("position " + std::to_string(b.pos[static_cast<size_t>(i)]) + " of sequence " + std::to_string(s) +
                  " does not follow its cache (" + std::to_string(it->second) + ")");
    if (it->second >= opts_.n_ctx)
      throw Error("context is full: sequence " + std::to_string(s) + " holds " + std::to_string(opts_.n_ctx) +
                  " tokens (raise --ctx-size)");
    ++it->second;
  }

  std::vector<float> x(static_cast<size_t>(n * n_embd_));
  for (int64_t i = 0; i < n; ++i) get_row(*tok_embd_, b.tokens[static_cast<size_t>(i)], x.data() + i * n_embd_);
  layers(x.data(), b);
  for (auto [s, len] : next) kv_->set_length(s, len);

  // Only the rows that were asked for go through the output norm and projection.
  std::vector<float> picked;
  int64_t m = 0;
  for (int64_t i = 0; i < n; ++i)
    if (b.want_logits[static_cast<size_t>(i)]) {
      picked.insert(picked.end(), x.begin() + i * n_embd_, x.begin() + (i + 1) * n_embd_);
      ++m;
    }
  rms_norm(picked.data(), output_norm_.data(), picked.data(), m, n_embd_, norm_eps_);
  if (out == Output::Embeddings) return picked;
  std::vector<float> logits(static_cast<size_t>(m * n_vocab_));
  matmul(ctx_, output_, picked.data(), m, logits.data());
  return logits;
}

std::unique_ptr<Model> Model::load(const std::filesystem::path& path, const ModelOptions& opts) {
  gguf::File f = gguf::File::open(path);
  const std::string arch = f.architecture();
  if (opts.n_gpu_layers > 0) {
#ifndef JING_WITH_CUDA
    static bool said = false;
    if (!said) std::fprintf(stderr, "note: this build has no GPU support; all layers run on the CPU\n");
    said = true;
#endif
  }
  if (arch == "llama") return make_llama(std::move(f), opts);
  if (arch == "qwen2") return make_qwen2(std::move(f), opts);
  if (arch == "qwen3") return make_qwen3(std::move(f), opts);
  if (arch == "deepseek2") return make_deepseek2(std::move(f), opts);
  if (arch.empty()) throw Error(path.string() + " has no general.architecture: not a model file (a vocab-only GGUF?)");
  throw Error("architecture '" + arch + "' is not supported (llama, qwen2, qwen3, deepseek2 are)");
}

}  // namespace jing::model
