// The CPU implementation of the op set: the kernels of src/cpu through the functions of ops.h,
// weights read in place from the mapped GGUF, the cache in host memory.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <new>
#include <unordered_map>

#include <omp.h>

#include "common/error.h"
#include "cpu/matmul.h"
#include "cpu/row_tiles.h"
#include "gguf/gguf.h"
#include "model/backend.h"
#include "model/moe.h"
#include "model/ops.h"
#include "runtime/kv_cache.h"
#include "runtime/placement.h"

namespace jing::model {

namespace {

class CpuBackend : public Backend {
 public:
  CpuBackend(int n_threads, CpuWeights weights) : weights_(weights) { ctx_.n_threads = n_threads; }
  ~CpuBackend() override {
    for (const auto& b : buffers_) munmap(b.p, b.bytes);
  }
  CpuBackend(const CpuBackend&) = delete;
  CpuBackend& operator=(const CpuBackend&) = delete;
  std::string name() const override { return "CPU"; }
  bool is_cpu() const override { return true; }

  float* alloc(size_t n) override { return new float[n]; }
  void release(float* p) override { delete[] p; }
  void upload(float* dst, const float* src, size_t n) override { std::copy_n(src, n, dst); }
  void download(float* dst, const float* src, size_t n) override { std::copy_n(src, n, dst); }
  void copy(float* dst, const float* src, size_t n) override { std::copy_n(src, n, dst); }

  // The mapping is already host memory: weights are used in place unless --no-mmap / --mlock.
  cpu::WeightView place(const cpu::WeightView& w) override { return hold(w, 1, true); }
  cpu::WeightView place_table(const cpu::WeightView& w) override { return hold(w, 1, false); }
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
  // The element-wise ops of a batch split their elements (norms their rows) over the threads: on
  // one thread, a 32-token step's SwiGLU alone kept the other cores waiting for 5% of the step.
  // Each element is computed as on one thread, so the results keep their bits.
  void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t dim, float eps) override {
    split(n, dim, [&](int64_t from, int64_t to) { model::rms_norm(x + from * dim, w, y + from * dim, to - from, dim, eps); });
  }
  void add_bias(float* y, const float* b, int64_t n, int64_t width) override {
    if (b)
      split(n, width, [&](int64_t from, int64_t to) {
        for (int64_t t = from; t < to; ++t) model::add(y + t * width, b, width);
      });
  }
  void add(float* y, const float* x, int64_t count) override {
    split(count, 1, [&](int64_t from, int64_t to) { model::add(y + from, x + from, to - from); });
  }
  void silu_mul(float* gate, const float* up, int64_t count) override {
    split(count, 8, [&](int64_t from, int64_t to) { model::silu_mul(gate + from, up + from, to - from); });
  }
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

  cpu::WeightView place_experts(const cpu::WeightView& w, int n_expert) override { return hold(w, n_expert, true); }
  size_t weight_bytes() const override { return copied_bytes_; }
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
    split(n, dim, [&](int64_t from, int64_t to) {
      for (int64_t t = from; t < to; ++t) model::rms_norm(x + t * stride, w, x + t * stride, 1, dim, eps);
    });
  }
  void moe_ffn(const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, int n_embd, int n_ff, float* out) override {
    model::moe_ffn(ctx_, r, w, x, n, n_embd, n_ff, out);
  }
  bool route_experts(const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, float* routes) override {
    model::moe_route_into(ctx_, r, w, x, n, routes);
    return true;
  }
  void experts_share(const MoeRouting& r, const MoeWeights& share, int first, int count, const float* routes, const float* x, int64_t n, int n_embd,
                     int n_ff, float* out) override {
    model::moe_mix_share(ctx_, r, share, first, count, routes, x, n, n_embd, n_ff, out);
  }

 private:
  // fn(from, to) over [0, items) in one contiguous range per thread; small jobs (items x cost
  // under ~64k element operations) stay on the calling thread, where waking the others costs more.
  template <class Fn>
  void split(int64_t items, int64_t cost, Fn&& fn) const {
    const int threads = ctx_.n_threads > 0 ? ctx_.n_threads : cpu::default_threads();
    const int used = static_cast<int>(std::min<int64_t>(threads, items * cost / 65536));
    if (used <= 1) return fn(int64_t{0}, items);
#pragma omp parallel num_threads(used)
    {
      const int64_t k = omp_get_thread_num(), per = (items + used - 1) / used;
      const int64_t from = std::min(items, k * per), to = std::min(items, from + per);
      if (from < to) fn(from, to);
    }
  }

  // --no-mmap: the weight's bytes copied into memory of their own (once per tensor and layout:
  // tied embeddings place the same table twice); --mlock: that memory, or the mapping, kept
  // resident. Matrices of the tiled formats (`tile`, where the kernels read them; cpu/row_tiles.h)
  // are copied into 8-row tiles.
  cpu::WeightView hold(const cpu::WeightView& w, int n_mats, bool tile) {
    const size_t bytes = static_cast<size_t>(n_mats) * static_cast<size_t>(w.rows) * w.row_bytes;
    // Tiles are anonymous memory the kernel cannot page back to the file: only while RAM has room
    // (2 GiB kept free); past that the weights stay mapped as they are.
    constexpr uint64_t kKeepFree = uint64_t{2} << 30;
    const bool wants_tile = tile && weights_.tile && w.data && cpu::tiles_fit(w), wants_huge = !weights_.copy && weights_.huge && w.data;
    const bool room = (wants_tile || wants_huge) && runtime::ram_available() > bytes + kKeepFree;  // (reads /proc/meminfo)
    tile = wants_tile && room;
    const bool copy = weights_.copy || (wants_huge && room);
    if (!w.data || (!copy && !weights_.lock && !tile)) return w;
    cpu::WeightView v = w;
    if (copy || tile) {
      auto it = copies_.find({w.data, tile});
      if (it == copies_.end()) {
        // Anonymous memory in huge pages where the kernel allows (fewer TLB misses while a
        // product streams the weights).
        void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED && !weights_.copy && !tile) return w;  // unasked copy: stay mapped
        if (mem == MAP_FAILED)
          throw Error("not enough memory to read " + std::to_string(bytes >> 20) + " MiB of weights into RAM (" + std::to_string(copied_bytes_ >> 20) +
                      " MiB read so far); " + (weights_.copy ? "leave out --no-mmap to map the file" : "JING_TILES=0 keeps tiled formats mapped"));
        madvise(mem, bytes, MADV_HUGEPAGE);
        auto* at = static_cast<uint8_t*>(mem);
        if (tile) tile_parallel(w, n_mats, at);
        else std::memcpy(at, w.data, bytes);
        // The mapped pages just read leave the process (the file stays in the page cache), so RSS
        // holds one copy of the weights, not two.
        gguf::drop_pages(w.data, bytes);
        copied_bytes_ += bytes;
        buffers_.push_back({at, bytes});
        it = copies_.emplace(std::make_pair(w.data, tile), at).first;
        lock(at, bytes);
      }
      v.data = it->second;
      v.tiled = tile;
    } else {
      lock(w.data, bytes);
    }
    return v;
  }
  void tile_parallel(const cpu::WeightView& w, int n_mats, uint8_t* out) const {
    const int64_t groups = static_cast<int64_t>(n_mats) * w.rows / 8;
    const size_t group_bytes = 8 * w.row_bytes;
#pragma omp parallel for num_threads(ctx_.n_threads > 0 ? ctx_.n_threads : cpu::default_threads()) schedule(static)
    for (int64_t g = 0; g < groups; ++g) cpu::tile_rows(w.type, static_cast<const uint8_t*>(w.data) + g * group_bytes, 8, w.cols, out + g * group_bytes);
  }
  void lock(const void* p, size_t bytes) {
    if (!weights_.lock) return;
    const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t from = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
    if (mlock(reinterpret_cast<const void*>(from), reinterpret_cast<uintptr_t>(p) + bytes - from) != 0 && !lock_warned_) {
      std::fprintf(stderr, "warning: --mlock: cannot lock the weights in RAM (%s); raise the limit with `ulimit -l unlimited`\n",
                   std::strerror(errno));
      lock_warned_ = true;
    }
  }

  CpuWeights weights_;
  struct KeyHash {
    size_t operator()(const std::pair<const void*, bool>& k) const { return std::hash<const void*>()(k.first) ^ static_cast<size_t>(k.second); }
  };
  std::unordered_map<std::pair<const void*, bool>, uint8_t*, KeyHash> copies_;  // (mapped bytes, tiled) -> copy
  struct Mapping {
    void* p;
    size_t bytes;
  };
  std::vector<Mapping> buffers_;  // unmapped with the backend
  size_t copied_bytes_ = 0;
  bool lock_warned_ = false;
  Ctx ctx_;
  const Batch* batch_ = nullptr;
  std::deque<std::vector<float>> vectors_;
  std::unique_ptr<runtime::KvCache> kv_;
  int k_width_ = 0, v_width_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int n_threads, CpuWeights weights) { return std::make_unique<CpuBackend>(n_threads, weights); }

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
  return copy_to(be, *x.backend(), x.data(), x.size());
}

Buf copy_to(Backend& to, Backend& from, const float* src, size_t n) {
  if (float* p = to.receive(from, src, n)) return Buf::adopt(to, p, n);
  Buf y(to, n);
  copy_between(to, y.data(), from, src, n);
  return y;
}

void copy_between(Backend& to, float* dst, Backend& from, const float* src, size_t n) {
  if (to.copy_from(from, dst, src, n)) return;
  std::vector<float> host(n);
  from.download(host.data(), src, n);
  to.upload(dst, host.data(), n);
}

#ifndef JING_WITH_CUDA
std::unique_ptr<Backend> make_gpu_backend(int, std::string* why) {
  if (why) *why = "this build has no GPU support";
  return nullptr;
}
std::unique_ptr<Collectives> make_gpu_collectives(const std::vector<Backend*>&, std::string* why, const GroupSetup&) {
  if (why) *why = "this build has no GPU support";
  return nullptr;
}
#endif

}  // namespace jing::model
