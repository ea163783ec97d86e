// The CPU implementation of the op set: the kernels of src/cpu through the functions of ops.h,
// weights read in place from the mapped GGUF, the cache in host memory.
#include <algorithm>
#include <deque>

#include <omp.h>

#include "cpu/matmul.h"
#include "model/backend.h"
#include "model/moe.h"
#include "model/ops.h"
#include "runtime/kv_cache.h"

namespace jing::model {

namespace {

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(int n_threads) { ctx_.n_threads = n_threads; }
  std::string name() const override { return "CPU"; }
  bool is_cpu() const override { return true; }

  float* alloc(size_t n) override { return new float[n]; }
  void release(float* p) override { delete[] p; }
  void upload(float* dst, const float* src, size_t n) override { std::copy_n(src, n, dst); }
  void download(float* dst, const float* src, size_t n) override { std::copy_n(src, n, dst); }
  void copy(float* dst, const float* src, size_t n) override { std::copy_n(src, n, dst); }

  cpu::WeightView place(const cpu::WeightView& w) override { return w; }  // the mapping is already host memory
  const float* place(const std::vector<float>& v) override {
    if (v.empty()) return nullptr;
    return vectors_.emplace_back(v).data();
  }

  void begin(const Batch& b) override { batch_ = &b; }

  void embed(const cpu::WeightView& table, const std::vector<int32_t>& tokens, float* out) override {
    for (size_t i = 0; i < tokens.size(); ++i) get_row(table, tokens[i], out + i * table.cols);
  }
  void matmul(const cpu::WeightView& w, const float* x, int64_t n, float* y) override { model::matmul(ctx_, w, x, n, y); }
  // One token: the products sharing its input in one parallel region (q, k, v; gate, up), rows
  // of all of them split over the threads, instead of a region each.
  void matmuls(std::initializer_list<Product> products, const float* x, int64_t n) override {
    if (n != 1 || products.size() < 2 || products.size() > 8) return Backend::matmuls(products, x, n);
    cpu::WeightView ws[8];
    const float* xs[8];
    float* ys[8];
    int count = 0;
    for (const auto& p : products) ws[count] = *p.w, xs[count] = x, ys[count++] = p.y;
    cpu::matvecs(ws, xs, ys, count, ctx_.n_threads);
  }
  void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t dim, float eps) override { model::rms_norm(x, w, y, n, dim, eps); }
  void add_bias(float* y, const float* b, int64_t n, int64_t width) override {
    if (b)
      for (int64_t t = 0; t < n; ++t) model::add(y + t * width, b, width);
  }
  void add(float* y, const float* x, int64_t count) override { model::add(y, x, count); }
  void silu_mul(float* gate, const float* up, int64_t count) override { model::silu_mul(gate, up, count); }
  void rope(const Rope& r, float* x, int64_t n, int n_head, int head_stride) override { r.apply(x, n, n_head, head_stride, batch_->pos.data()); }

  void init_cache(int n_layer, int n_seq, int n_ctx, int k_width, int v_width, GgmlType type, const std::vector<uint8_t>&) override {
    kv_ = std::make_unique<runtime::KvCache>(n_layer, n_seq, n_ctx, k_width, v_width, type);
    k_width_ = k_width, v_width_ = v_width;
  }
  void store_kv(int layer, const float* k, const float* v, int64_t n) override {
    for (int64_t t = 0; t < n; ++t) {
      const int s = batch_->seq[static_cast<size_t>(t)], p = batch_->pos[static_cast<size_t>(t)];
      kv_->store_k(layer, s, p, k + t * k_width_);
      if (v) kv_->store_v(layer, s, p, v + t * v_width_);
    }
  }
  void attention(const AttentionShape& s, const float* q, int64_t q_stride, int layer, float* out) override {
    model::attention(ctx_, s, q, q_stride, *kv_, layer, batch_->seq, batch_->pos, out);
  }
  size_t cache_bytes() const override { return kv_ ? kv_->bytes() : 0; }

  cpu::WeightView place_experts(const cpu::WeightView& w, int) override { return w; }
  // The heads' products are small (one head's 128 x 512 matrix): the heads run in parallel, each
  // product on one thread, rather than one after another on all of them.
  void head_matmuls(const HeadProducts& p) override {
    const int threads = ctx_.n_threads > 0 ? ctx_.n_threads : cpu::default_threads();
    const Ctx one_thread{1};
    const int64_t n = p.n, cols = p.w.cols, rows = p.w.rows;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      std::vector<float> in(static_cast<size_t>(n * cols)), out(static_cast<size_t>(n * rows));
#pragma omp for schedule(static)
      for (int hd = 0; hd < p.n_head; ++hd) {
        for (int64_t t = 0; t < n; ++t) std::copy_n(p.x + t * p.x_stride + hd * p.x_head, cols, in.data() + t * cols);
        model::matmul(one_thread, expert(p.w, hd), in.data(), n, out.data());
        for (int64_t t = 0; t < n; ++t) std::copy_n(out.data() + t * rows, rows, p.y + t * p.y_stride + hd * p.y_head);
      }
    }
  }
  void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t width) override {
    for (int64_t r = 0; r < rows; ++r) std::copy_n(src + r * src_stride, width, dst + r * dst_stride);
  }
  void rms_norm_rows(float* x, int64_t stride, const float* w, int64_t n, int64_t dim, float eps) override {
    for (int64_t t = 0; t < n; ++t) model::rms_norm(x + t * stride, w, x + t * stride, 1, dim, eps);
  }
  void moe_ffn(const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, int n_embd, int n_ff, float* out) override {
    model::moe_ffn(ctx_, r, w, x, n, n_embd, n_ff, out);
  }

 private:
  Ctx ctx_;
  const Batch* batch_ = nullptr;
  std::deque<std::vector<float>> vectors_;
  std::unique_ptr<runtime::KvCache> kv_;
  int k_width_ = 0, v_width_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int n_threads) { return std::make_unique<CpuBackend>(n_threads); }

void Backend::attention_inputs(const AttentionInputs& a, int layer) {
  const int q_width = a.n_head * a.head_dim, k_width = a.n_head_kv * a.head_dim, v_width = a.n_head_kv * a.head_dim_v;
  add_bias(a.q, a.bq, a.n, q_width);
  add_bias(a.k, a.bk, a.n, k_width);
  add_bias(a.v, a.bv, a.n, v_width);
  if (a.q_norm) rms_norm(a.q, a.q_norm, a.q, a.n * a.n_head, a.head_dim, a.eps);
  if (a.k_norm) rms_norm(a.k, a.k_norm, a.k, a.n * a.n_head_kv, a.head_dim, a.eps);
  rope(*a.rope, a.q, a.n, a.n_head, a.head_dim);
  rope(*a.rope, a.k, a.n, a.n_head_kv, a.head_dim);
  store_kv(layer, a.k, a.v, a.n);
}

Buf move_to(Backend& be, Buf x) {
  if (x.backend() == &be) return x;
  std::vector<float> host(x.size());
  x.backend()->download(host.data(), x.data(), x.size());
  Buf y(be, x.size());
  be.upload(y.data(), host.data(), host.size());
  return y;
}

#ifndef JING_WITH_CUDA
std::unique_ptr<Backend> make_gpu_backend(int, std::string* why) {
  if (why) *why = "this build has no GPU support";
  return nullptr;
}
#endif

}  // namespace jing::model
