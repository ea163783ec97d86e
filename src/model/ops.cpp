#include "model/ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <optional>

#include "common/error.h"
#include "cpu/kernels.h"
#include "cpu/kernels_simd.h"
#include "quant/dequant.h"
#include "quant/fp16.h"

namespace jing::model {

const gguf::TensorInfo& Weights::find(const std::string& name, std::initializer_list<int64_t> shape) const {
  const gguf::TensorInfo* t = f_.find_tensor(name);
  if (!t) throw Error("model file is missing tensor '" + name + "'");
  int d = 0;
  for (int64_t want : shape) {
    if (t->ne[d] != want) {
      std::string got, exp;
      for (int k = 0; k < t->n_dims; ++k) got += (k ? "x" : "") + std::to_string(t->ne[k]);
      for (int64_t v : shape) exp += (exp.empty() ? "" : "x") + std::to_string(v);
      throw Error("tensor '" + name + "' has shape " + got + ", expected " + exp);
    }
    ++d;
  }
  return *t;
}

static cpu::WeightView view_of(const gguf::TensorInfo& t, int64_t cols, int64_t rows) {
  return {t.type, t.data, cols, rows, row_size(t.type, cols)};
}

cpu::WeightView Weights::matrix(const std::string& name, int64_t cols, int64_t rows) const {
  return view_of(find(name, {cols, rows}), cols, rows);
}

std::optional<cpu::WeightView> Weights::optional_matrix(const std::string& name, int64_t cols, int64_t rows) const {
  if (!f_.find_tensor(name)) return std::nullopt;
  return matrix(name, cols, rows);
}

cpu::WeightView Weights::experts(const std::string& name, int64_t cols, int64_t rows, int64_t n_expert) const {
  return view_of(find(name, {cols, rows, n_expert}), cols, rows);
}

std::vector<float> Weights::vector(const std::string& name, int64_t n) const {
  const auto& t = find(name, {n});
  std::vector<float> v(static_cast<size_t>(t.n_elements()));
  dequantize_row(t.type, t.data, v.data(), t.n_elements());
  return v;
}

std::vector<float> Weights::optional_vector(const std::string& name, int64_t n) const {
  return f_.find_tensor(name) ? vector(name, n) : std::vector<float>{};
}

void matmul(const Ctx& c, const cpu::WeightView& w, const float* x, int64_t n, float* y) {
  cpu::matmul(w, x, n, y, c.n_threads);
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t dim, float eps) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x + t * dim;
    float* yr = y + t * dim;
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / dim) + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * scale * w[i];
  }
}

void add_bias(float* y, const std::vector<float>& b, int64_t n) {
  if (b.empty()) return;
  for (int64_t t = 0; t < n; ++t) add(y + t * static_cast<int64_t>(b.size()), b.data(), static_cast<int64_t>(b.size()));
}

void add(float* y, const float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] += x[i];
}

void silu_mul(float* gate, const float* up, int64_t count) {
  for (int64_t i = 0; i < count; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void softmax(float* x, int64_t n) {
  float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void get_row(const gguf::TensorInfo& table, int64_t row, float* out) {
  if (row < 0 || row >= table.ne[1]) throw Error("token id " + std::to_string(row) + " is outside the vocabulary");
  dequantize_row(table.type, table.data + row * table.row_bytes(), out, table.ne[0]);
}

void get_row(const cpu::WeightView& table, int64_t row, float* out) {
  if (row < 0 || row >= table.rows) throw Error("token id " + std::to_string(row) + " is outside the vocabulary");
  dequantize_row(table.type, static_cast<const uint8_t*>(table.data) + row * table.row_bytes, out, table.cols);
}

namespace {

// YaRN's blend between interpolation and extrapolation, per rotary dimension pair.
float yarn_ramp(float low, float high, int i0) {
  const float y = (i0 / 2 - low) / std::max(0.001f, high - low);
  return 1 - std::min(1.0f, std::max(0.0f, y));
}

float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * std::log(n_ctx_orig / (n_rot * 2 * std::numbers::pi_v<float>)) / (2 * std::log(base));
}

}  // namespace

void Rope::yarn_corr_dims(float& corr_low, float& corr_high) const {
  corr_low = corr_high = 0;
  if (ext_factor != 0.0f) {
    corr_low = std::max(0.0f, std::floor(yarn_corr_dim(n_rot, n_ctx_orig, beta_fast, freq_base)));
    corr_high = std::min(static_cast<float>(n_rot - 1), std::ceil(yarn_corr_dim(n_rot, n_ctx_orig, beta_slow, freq_base)));
  }
}

float Rope::theta_scale() const { return std::pow(freq_base, -2.0f / n_rot); }

float Rope::mscale() const { return ext_factor != 0.0f ? attn_factor * (1.0f + 0.1f * std::log(1.0f / freq_scale)) : attn_factor; }

// ggml's angles: each pair's from the previous one's by one multiplication (not a power per pair);
// a different formula moves the angle by ulps, which a quantized model carries into its logits.
void Rope::apply(float* x, int64_t n, int n_head, int head_stride, const int32_t* pos) const {
  float corr_low = 0, corr_high = 0;
  yarn_corr_dims(corr_low, corr_high);
  const float theta_scale = this->theta_scale(), yarn_mscale = mscale();
  std::vector<float> cs(static_cast<size_t>(n_rot));  // cos, sin pairs per position
  for (int64_t t = 0; t < n; ++t) {
    float theta_extrap = static_cast<float>(pos[t]);
    for (int i0 = 0; i0 < n_rot; i0 += 2) {
      const float ff = freq_factors.empty() ? 1.0f : freq_factors[static_cast<size_t>(i0 / 2)];
      const float te = theta_extrap / ff;
      const float ti = freq_scale * te;
      float theta = ti;
      if (ext_factor != 0.0f) {
        const float mix = yarn_ramp(corr_low, corr_high, i0) * ext_factor;
        theta = ti * (1 - mix) + te * mix;
      }
      // cos and sin through double, rounded once: correctly rounded, so the GPU's agree (glibc's
      // float cosf/sinf differ from that in about 1.3% of angles).
      cs[static_cast<size_t>(i0)] = static_cast<float>(std::cos(static_cast<double>(theta))) * yarn_mscale;
      cs[static_cast<size_t>(i0) + 1] = static_cast<float>(std::sin(static_cast<double>(theta))) * yarn_mscale;
      theta_extrap *= theta_scale;
    }
    for (int h = 0; h < n_head; ++h) {
      float* v = x + (t * n_head + h) * head_stride;
      for (int i0 = 0; i0 < n_rot; i0 += 2) {
        const int a = neox ? i0 / 2 : i0, b = neox ? i0 / 2 + n_rot / 2 : i0 + 1;
        const float c = cs[static_cast<size_t>(i0)], s = cs[static_cast<size_t>(i0) + 1];
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

void attention(const Ctx& c, const AttentionShape& s, const float* q, int64_t q_stride, const runtime::KvCache& kv, int layer,
               const std::vector<int32_t>& seq, const std::vector<int32_t>& pos, float* out) {
  const int64_t n = static_cast<int64_t>(seq.size());
  if (s.dk > 1024 || s.dv > 1024) throw Error("attention heads wider than 1024 are not supported");
  const int group = s.n_head / s.n_head_kv;
  const int kw = s.n_head_kv * s.dk, vw = s.v_in_k ? kw : s.n_head_kv * s.dv;
  const int threads = c.n_threads > 0 ? c.n_threads : cpu::default_threads();
  // Each sequence's cache is decoded to float once per call, then shared by its tokens.
  std::map<int32_t, int32_t> span;  // seq -> positions needed
  for (int64_t t = 0; t < n; ++t) span[seq[static_cast<size_t>(t)]] = std::max(span[seq[static_cast<size_t>(t)]], pos[static_cast<size_t>(t)] + 1);
  std::map<int32_t, std::pair<std::vector<float>, std::vector<float>>> cache;
  for (auto [sq, len] : span) {
    auto& [keys, values] = cache[sq];
    keys.resize(static_cast<size_t>(len) * kw);
    kv.load_k(layer, sq, len, keys.data());
    if (!s.v_in_k) {
      values.resize(static_cast<size_t>(len) * vw);
      kv.load_v(layer, sq, len, values.data());
    }
  }
  int64_t work = 0;
  for (int64_t t = 0; t < n; ++t) work += static_cast<int64_t>(pos[static_cast<size_t>(t)] + 1) * s.n_head * (s.dk + s.dv);
  const int used = cpu::threads_for(work, threads);
  const bool simd = cpu::simd_available(), avx512 = cpu::avx512_available();
#pragma omp parallel for num_threads(used) schedule(dynamic, 1) if (used > 1)
  for (int64_t th = 0; th < n * s.n_head; ++th) {
    const int64_t t = th / s.n_head;
    const int h = static_cast<int>(th % s.n_head), hk = h / group;
    const int len = pos[static_cast<size_t>(t)] + 1;
    const auto& [keys, values] = cache.at(seq[static_cast<size_t>(t)]);
    const float* vbase = s.v_in_k ? keys.data() : values.data();
    // ggml's CPU flash attention over an f16 cache, step for step: the query meets the keys as
    // f16, the softmax runs online, and the weighted values accumulate in f16. (Its rounding is
    // what llama.cpp's logits carry; the error it adds is far below that of a quantized model.)
    float qh[1024];
    for (int d = 0; d < s.dk; ++d) qh[d] = fp16_to_fp32(fp32_to_fp16(q[t * q_stride + h * s.dk + d]));
    uint16_t acc[1024] = {};
    float sum = 0, max = -INFINITY;
    for (int j = 0; j < len; ++j) {
      const float* kj = keys.data() + j * kw + hk * s.dk;
      const float score = (avx512 ? cpu::avx512::score_dot(qh, kj, s.dk) : simd ? cpu::avx2::score_dot(qh, kj, s.dk) : cpu::score_dot(qh, kj, s.dk)) * s.scale;
      float ms = 1, vs = 1;
      if (score > max) {
        ms = std::exp(max - score);
        max = score;
      } else {
        vs = std::exp(score - max);
      }
      const float* vj = vbase + j * vw + hk * (s.v_in_k ? s.dk : s.dv);
      if (avx512) {
        cpu::avx512::f16_scale_mad(acc, ms, vj, vs, s.dv);
      } else if (simd) {
        cpu::avx2::f16_scale_mad(acc, ms, vj, vs, s.dv);
      } else {
        if (ms != 1.0f)
          for (int d = 0; d < s.dv; ++d) acc[d] = fp32_to_fp16(fp16_to_fp32(acc[d]) * ms);
        for (int d = 0; d < s.dv; ++d) acc[d] = fp32_to_fp16(std::fma(vj[d], vs, fp16_to_fp32(acc[d])));
      }
      sum = sum * ms + vs;
    }
    float* o = out + (t * s.n_head + h) * s.dv;
    for (int d = 0; d < s.dv; ++d) o[d] = fp16_to_fp32(acc[d]) / sum;
  }
}

}  // namespace jing::model
