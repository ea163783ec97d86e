// The small op set model files are written against. Activations are float32, row-major
// [n_tokens][width]. Each op has a CPU implementation here; a device backend implements the same set.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/matmul.h"
#include "gguf/gguf.h"
#include "runtime/kv_cache.h"

namespace jing::model {

using Act = std::vector<float>;

// Weights by GGUF name, with shape checks and clear errors; vectors (norms, biases) as float.
class Weights {
 public:
  explicit Weights(const gguf::File& f) : f_(f) {}
  // A matrix [rows][cols] (GGUF ne = {cols, rows}); throws naming the tensor when absent or misshapen.
  cpu::WeightView matrix(const std::string& name, int64_t cols, int64_t rows) const;
  std::optional<cpu::WeightView> optional_matrix(const std::string& name, int64_t cols, int64_t rows) const;
  // A 3-D expert tensor [n_expert][rows][cols]; the view covers expert 0 (see expert()).
  cpu::WeightView experts(const std::string& name, int64_t cols, int64_t rows, int64_t n_expert) const;
  std::vector<float> vector(const std::string& name, int64_t n) const;
  std::vector<float> optional_vector(const std::string& name, int64_t n) const;  // empty when absent
  const gguf::File& file() const { return f_; }

 private:
  const gguf::TensorInfo& find(const std::string& name, std::initializer_list<int64_t> shape) const;
  const gguf::File& f_;
};

inline cpu::WeightView expert(const cpu::WeightView& w, int e) {
  cpu::WeightView v = w;
  v.data = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(e) * w.rows * w.row_bytes;
  return v;
}

struct Ctx {
  int n_threads = 0;
};

// y = W x for every token row (y: [n][rows]).
void matmul(const Ctx& c, const cpu::WeightView& w, const float* x, int64_t n, float* y);
void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t dim, float eps);
void add_bias(float* y, const std::vector<float>& b, int64_t n);
void add(float* y, const float* x, int64_t count);
void silu_mul(float* gate, const float* up, int64_t count);  // gate = silu(gate) * up
void softmax(float* x, int64_t n);
// Row i of an embedding table of any type.
void get_row(const gguf::TensorInfo& table, int64_t row, float* out);
void get_row(const cpu::WeightView& table, int64_t row, float* out);

// Rotary position embedding of `n_rot` leading dims of each head.
struct Rope {
  int n_rot = 0;
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;         // 1 / linear scaling factor
  bool neox = false;               // pairs (i, i + n_rot/2) instead of (2i, 2i+1)
  std::vector<float> freq_factors;  // per pair divisor (Llama 3.1 rope_freqs), empty: none
  // YaRN (ext_factor > 0): blends interpolated and extrapolated frequencies, scales magnitudes.
  float ext_factor = 0.0f, attn_factor = 1.0f, beta_fast = 32.0f, beta_slow = 1.0f;
  int n_ctx_orig = 0;
  // Rotates x[n][n_head][head_stride] in place (the first n_rot dims of each head) at positions pos[n].
  void apply(float* x, int64_t n, int n_head, int head_stride, const int32_t* pos) const;
  // YaRN's ramp bounds (the pair indices between which it blends); 0, 0 without YaRN.
  void yarn_corr_dims(float& low, float& high) const;
  // The ratio between consecutive pairs' angles, and the magnitude factor (YaRN's included): the
  // GPU takes them from here so that its angles are the CPU's to the bit.
  float theta_scale() const;
  float mscale() const;
};

// Causal attention of each batch token over its own sequence's cache rows [0, pos].
// q: [n][n_head][dk] with q row stride q_stride; out: [n][n_head][dv].
struct AttentionShape {
  int n_head, n_head_kv, dk, dv;
  float scale;
  bool v_in_k = false;  // MLA: the value is the first dv entries of the cached key row
};
void attention(const Ctx& c, const AttentionShape& s, const float* q, int64_t q_stride, const runtime::KvCache& kv, int layer,
               const std::vector<int32_t>& seq, const std::vector<int32_t>& pos, float* out);

}  // namespace jing::model
