// Where a layer runs. Model files are written once against this op set; each device implements
// it (CPU here in src/model/backend_cpu.cpp, CUDA in src/cuda/backend.cu). Placement is a property
// of the layers (each holds the backend it runs on and its weights placed there), never of the
// model code: activations move between backends where consecutive layers differ.
// Pointers passed to a backend's ops live in that backend's memory.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "cpu/matmul.h"
#include "model/model.h"
#include "quant/types.h"

namespace jing::model {

struct Rope;
struct AttentionShape;
struct MoeRouting;
struct MoeWeights;

class Backend {
 public:
  virtual ~Backend() = default;
  // Called with the host bytes of weights this backend has copied into its own memory (the
  // model drops their pages from its file mapping, so the process holds one copy).
  std::function<void(const void*, size_t)> weights_copied;
  virtual std::string name() const = 0;
  virtual bool is_cpu() const = 0;

  // Activation memory (float32) and copies across the host boundary.
  virtual float* alloc(size_t n) = 0;
  virtual void release(float* p) = 0;
  virtual void upload(float* dst, const float* src, size_t n) = 0;    // host -> backend
  virtual void download(float* dst, const float* src, size_t n) = 0;  // backend -> host (waits)
  virtual void copy(float* dst, const float* src, size_t n) = 0;      // within the backend
  // n floats from another backend's memory into this one's without the host (GPU to GPU), ordered
  // after the work queued on both; false when this pair cannot (the caller goes through the host).
  virtual bool copy_from(Backend& from, float* dst, const float* src, size_t n) { return false; }
  // n floats from another backend's memory into a new buffer of this one (release() frees it),
  // ordered after the work queued on the source only; null when this pair cannot.
  virtual float* receive(Backend& from, const float* src, size_t n) { return nullptr; }
  // This backend's queue waits for everything queued on `other` so far (GPUs: an event). Work
  // that spreads one step over several GPUs ends with it, so the step's record on this GPU holds
  // the others' work (their buffers' releases included) joined back.
  virtual void wait_for(Backend& other) {}

  // Weights kept for the model's life: the same view (or vector) in memory this backend reads.
  virtual cpu::WeightView place(const cpu::WeightView& w) = 0;
  // A table read row by row (the token embedding): placed as place() does, never in a layout for products.
  virtual cpu::WeightView place_table(const cpu::WeightView& w) { return place(w); }
  virtual const float* place(const std::vector<float>& v) = 0;  // empty: nullptr

  // The batch every op of this forward pass works on (positions and sequences).
  virtual void begin(const Batch& b) = 0;

  virtual void embed(const cpu::WeightView& table, const std::vector<int32_t>& tokens, float* out) = 0;
  virtual void matmul(const cpu::WeightView& w, const float* x, int64_t n, float* y) = 0;
  virtual void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t dim, float eps) = 0;
  virtual void add_bias(float* y, const float* b, int64_t n, int64_t width) = 0;  // b null: nothing
  virtual void add(float* y, const float* x, int64_t count) = 0;
  virtual void silu_mul(float* gate, const float* up, int64_t count) = 0;  // gate = silu(gate) * up
  // Rotates the first n_rot dims of each head of x[n][n_head][head_stride] at the batch's positions.
  virtual void rope(const Rope& r, float* x, int64_t n, int n_head, int head_stride) = 0;

  // Fused forms (a backend may do them in one pass; these defaults are the ops above in turn).
  // y_i = W_i x for several weights sharing one input.
  struct Product {
    const cpu::WeightView* w;
    float* y;
  };
  virtual void matmuls(std::initializer_list<Product> products, const float* x, int64_t n) {
    for (const auto& p : products) matmul(*p.w, x, n, p.y);
  }
  // x += h, then y = norm(x) * w (the residual add and the next sublayer's norm; y may be h).
  virtual void add_rms_norm(float* x, const float* h, const float* w, float* y, int64_t n, int64_t dim, float eps) {
    add(x, h, n * dim);
    rms_norm(x, w, y, n, dim, eps);
  }
  // x += h (h null: x as it is), normed = norm(x) * w, then y_i = W_i normed for weights sharing
  // that input (a backend may round the norm's output for the products in the same pass).
  virtual void norm_matmuls(float* x, const float* h, const float* w, float* normed, int64_t n, int64_t dim, float eps,
                            std::initializer_list<Product> products) {
    if (h) add_rms_norm(x, h, w, normed, n, dim, eps);
    else rms_norm(x, w, normed, n, dim, eps);
    matmuls(products, normed, n);
  }
  // out = down(silu(gate) * up); gate is overwritten.
  virtual void swiglu_matmul(float* gate, const float* up, int64_t n, int64_t n_ff, const cpu::WeightView& down, float* out) {
    silu_mul(gate, up, n * n_ff);
    matmul(down, gate, n, out);
  }
  // The attention inputs after their projections: biases, optional per-head norms of q and k,
  // rotary embeddings, then k and v into the cache of `layer`.
  struct AttentionInputs {
    float *q, *k, *v;
    const float *bq, *bk, *bv, *q_norm, *k_norm;  // null: none
    int64_t n;
    int n_head, n_head_kv, head_dim, head_dim_v;
    float eps;
    const Rope* rope;
  };
  virtual void attention_inputs(const AttentionInputs& a, int layer);

  // MLA and MoE (deepseek2).
  // MLA's attention inputs after the projections: every head's q_pe and the shared k_pe rotated,
  // the latent part of each kv row normed, the rows [latent | k_pe] into the cache of `layer`, and
  // each head's rotated q_pe written after its absorbed query in qa (rows of kv_lora + n_rot per
  // head). q's q_nope is left as it is; kv's contents afterwards are unspecified.
  struct MlaInputs {
    float *q, *kv, *qa;
    const float* kv_norm;
    int64_t n;
    int n_head, head_k, nope, kv_lora, n_rot;
    float eps;
    const Rope* rope;
  };
  virtual void mla_inputs(const MlaInputs& m, int layer) {
    const int kw = m.kv_lora + m.n_rot;
    rope(*m.rope, m.q + m.nope, m.n, m.n_head, m.head_k);
    rope(*m.rope, m.kv + m.kv_lora, m.n, 1, kw);
    rms_norm_rows(m.kv, kw, m.kv_norm, m.n, m.kv_lora, m.eps);
    store_kv(layer, m.kv, nullptr, m.n);
    copy_rows(m.qa + m.kv_lora, kw, m.q + m.nope, m.head_k, m.n * m.n_head, m.n_rot);
  }
  // A [n_expert][rows][cols] tensor (expert-0 view) placed whole.
  virtual cpu::WeightView place_experts(const cpu::WeightView& w, int n_expert) = 0;
  // Per-head products with a [n_head][rows][cols] weight: y[t][h] = W_h x[t][h], the rows of head h
  // of token t at x + t * x_stride + h * x_head (y likewise).
  struct HeadProducts {
    cpu::WeightView w;
    int n_head;
    const float* x;
    int64_t x_stride, x_head;
    float* y;
    int64_t y_stride, y_head;
    int64_t n;
  };
  virtual void head_matmuls(const HeadProducts& p) = 0;
  virtual void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t width) = 0;
  // In place: the first dim values of each of n rows `stride` apart.
  virtual void rms_norm_rows(float* x, int64_t stride, const float* w, int64_t n, int64_t dim, float eps) = 0;
  // out = the routed experts' mix (see model/moe.h); the routing's bias stays in host memory.
  virtual void moe_ffn(const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, int n_embd, int n_ff, float* out) = 0;
  // Whether moe_ffn for one token stays on this backend (no host round trip), so it can be recorded.
  virtual bool moe_stays_on_device(const MoeRouting& r) const { return false; }
  // Expert parallelism (each GPU holds a share of every MoE layer's routed experts): the routing
  // alone, into routes [2][n][n_used] (the chosen experts' ids as int32 bits, then their weights);
  // false where this backend cannot (the caller then keeps every expert on one backend).
  virtual bool route_experts(const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, float* routes) { return false; }
  // out = the mix over the pairs whose expert is one of [first, first + count), held here as
  // `share` (its expert 0 is expert `first`); the other GPUs' shares add the rest.
  virtual void experts_share(const MoeRouting& r, const MoeWeights& share, int first, int count, const float* routes, const float* x, int64_t n,
                             int n_embd, int n_ff, float* out) {
    throw Error(name() + ": no expert parallelism");
  }

  // The attention cache of the layers placed here (rows of the batch's sequences and positions).
  // `here[l]`: layer l runs on this backend (a backend may keep no cache for the others).
  virtual void init_cache(int n_layer, int n_seq, int n_ctx, int k_width, int v_width, GgmlType type, const std::vector<uint8_t>& here) = 0;
  virtual void store_kv(int layer, const float* k, const float* v, int64_t n) = 0;
  virtual void attention(const AttentionShape& s, const float* q, int64_t q_stride, int layer, float* out) = 0;
  virtual size_t cache_bytes() const = 0;
  virtual size_t weight_bytes() const { return 0; }  // placed in this backend's own memory (not mapped)

  // Independent work: ops issued between begin_side() and end_side() may run beside those issued
  // after end_side() (a second stream), until join_side(). The side ops read only what was
  // written before begin_side() and write only buffers that outlive join_side(). Default: in order.
  virtual void begin_side() {}
  virtual void end_side() {}
  virtual void join_side() {}

  // Recording (CUDA graphs): the ops issued between capture_begin() and capture_end(key) are kept
  // and run again by replay(key) on the same pointers. Backends without it return false.
  // capture_end(kDiscard) ends a recording and keeps nothing (an op threw inside it).
  static constexpr int kDiscard = -1;
  virtual bool capture_begin() { return false; }
  virtual void capture_end(int key) {}
  virtual bool replay(int key) { return false; }
  // Which recording of a one-token step fits the step begun last: a backend whose kernels are
  // shaped by the context length (the attention's split over keys) keeps one per length band.
  virtual int step_variant() const { return 0; }
};

// Activations of one forward pass on one backend, freed with the object.
class Buf {
 public:
  Buf() = default;
  Buf(Backend& be, size_t n) : be_(&be), p_(be.alloc(n)), n_(n) {}
  ~Buf() { reset(); }
  static Buf adopt(Backend& be, float* p, size_t n) {  // p from be (alloc, receive)
    Buf b;
    b.be_ = &be, b.p_ = p, b.n_ = n;
    return b;
  }
  Buf(Buf&& o) noexcept : be_(o.be_), p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  Buf& operator=(Buf&& o) noexcept {
    if (this != &o) reset(), be_ = o.be_, p_ = o.p_, n_ = o.n_, o.p_ = nullptr, o.n_ = 0;
    return *this;
  }
  float* data() const { return p_; }
  size_t size() const { return n_; }
  Backend* backend() const { return be_; }
  void reset() {
    if (p_) be_->release(p_);
    p_ = nullptr, n_ = 0;
  }

 private:
  Backend* be_ = nullptr;
  float* p_ = nullptr;
  size_t n_ = 0;
};

// x on `be`: itself when already there, else a copy (GPU to GPU where it can, else through the host).
Buf move_to(Backend& be, Buf x);
// A copy on `to` of n floats at src in `from`'s memory (GPU to GPU where it can).
Buf copy_to(Backend& to, Backend& from, const float* src, size_t n);
// n floats from `from`'s memory into `to`'s: GPU to GPU where the pair can (copy_from), else
// through the host.
void copy_between(Backend& to, float* dst, Backend& from, const float* src, size_t n);

// Weights placed on the CPU stay in the file's mapping, or (copy: --no-mmap) are read into RAM of
// their own; lock (--mlock) keeps them resident.
struct CpuWeights {
  bool copy = false, lock = false;
  bool tile = false;  // the tiled formats into 8-row tiles where the CPU has their kernels (cpu/row_tiles.h; the model: unless JING_TILES=0)
  bool huge = false;  // copied into huge-page memory unasked, where RAM has room (else mapped)
};
std::unique_ptr<Backend> make_cpu_backend(int n_threads, CpuWeights weights = {});
// The GPU backend for a device, or null (with the reason in *why) when this build or machine has none.
std::unique_ptr<Backend> make_gpu_backend(int device, std::string* why);

// Collective operations over several GPU backends (NCCL), made once at load for the GPUs of a
// split, in their order.
class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual std::string name() const = 0;
  // Every parts[k].second (n floats on backend parts[k].first; the group's GPUs in its order)
  // becomes the sum of them all, the same bits on every GPU; false where this group cannot (the
  // caller then sums otherwise).
  virtual bool all_reduce(const std::vector<std::pair<Backend*, float*>>& parts, size_t n) = 0;
};
// Where a group of GPUs spanning several processes (one per machine, each driving the same number
// of GPUs) meets: process 0 serves the group's id at `address` (host:port), the others fetch it
// there (runtime/rendezvous.h). The default is one process holding the whole group.
struct GroupSetup {
  std::string address;
  int processes = 1, process = 0;
};
// NCCL communicators over these GPU backends (ranks process * gpus.size() and on); null where that
// cannot be (a build without CUDA, no NCCL library, fewer than two GPUs in all), `why` saying so.
std::unique_ptr<Collectives> make_gpu_collectives(const std::vector<Backend*>& gpus, std::string* why, const GroupSetup& setup = {});

}  // namespace jing::model
