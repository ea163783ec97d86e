// The CUDA implementation of the model op set (src/model/backend.h): weights copied to the GPU in
// their GGUF block formats (VRAM for weights = their bytes in the file), activations and the f16
// KV cache in device memory, every op asynchronous on one stream; only download() waits.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <map>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "cuda/check.h"
#include "cuda/device.h"
#include "cuda/matmul.h"
#include "cuda/model_ops.h"
#include "cuda/op_profile.h"
#include "model/backend.h"
#include "model/moe.h"
#include "model/ops.h"

namespace jing::model {

namespace {

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1u << 30));
  return buf;
}

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    cuda::set_device(device);
    name_ = "CUDA" + std::to_string(device) + " (" + cuda::device_name(device) + ")";
    main_stream_ = std::make_unique<cuda::Stream>();
    main_matmul_ = std::make_unique<cuda::Matmul>(*main_stream_);
    side_stream_ = std::make_unique<cuda::Stream>();
    side_matmul_ = std::make_unique<cuda::Matmul>(*side_stream_);
    cuda::check(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), "cudaEventCreate");
    cuda::check(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming), "cudaEventCreate");
    stream_ = main_stream_.get(), matmul_ = main_matmul_.get();
    route_done_ = static_cast<unsigned*>(device_alloc(cuda::ops::kMaxRouteTokens * sizeof(unsigned), "routing counters"));
    cuda::check(cudaMemset(route_done_, 0, cuda::ops::kMaxRouteTokens * sizeof(unsigned)), "cudaMemset (routing counters)");
  }
  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(static_cast<cudaStream_t>(side_stream_->handle()));
    cudaStreamSynchronize(static_cast<cudaStream_t>(main_stream_->handle()));
    cudaEventDestroy(fork_), cudaEventDestroy(join_);
    for (auto& [_, g] : graphs_) cudaGraphExecDestroy(g.first);
    for (void* p : owned_) cudaFree(p);
    if (meta_) cudaFree(meta_);
    if (moe_idx_) cudaFree(moe_idx_);
    if (pinned_) cudaFreeHost(pinned_);
  }

  std::string name() const override { return name_; }
  bool is_cpu() const override { return false; }

  // The side stream has its own matmul scratch; its allocations are ordered on it (and captured
  // into the same graph, which the fork and join events connect).
  void begin_side() override {
    cuda::check(cudaEventRecord(fork_, s()), "fork");
    stream_ = side_stream_.get(), matmul_ = side_matmul_.get();
    cuda::check(cudaStreamWaitEvent(s(), fork_, 0), "fork");
  }
  void end_side() override {
    cuda::check(cudaEventRecord(join_, s()), "join");
    stream_ = main_stream_.get(), matmul_ = main_matmul_.get();
  }
  void join_side() override { cuda::check(cudaStreamWaitEvent(s(), join_, 0), "join"); }

  float* alloc(size_t n) override {
    void* p = nullptr;
    cuda::check(cudaMallocAsync(&p, std::max<size_t>(n, 1) * sizeof(float), s()), "cudaMallocAsync (activations)");
    return static_cast<float*>(p);
  }
  void release(float* p) override { cudaFreeAsync(p, s()); }
  void upload(float* dst, const float* src, size_t n) override {
    cuda::check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyHostToDevice, s()), "upload");
  }
  // Large results (a step's logits) come through pinned memory: a pageable copy of 600 KB took
  // several times as long as the pinned copy and the memcpy after it.
  static constexpr size_t kCopyPiece = size_t{1} << 20;
  void download(float* dst, const float* src, size_t n) override {
    const size_t bytes = n * sizeof(float);
    if (bytes >= kPinnedFrom && reserve_pinned(bytes)) {
      cuda::check(cudaMemcpyAsync(pinned_, src, bytes, cudaMemcpyDeviceToHost, s()), "download");
      stream_->synchronize();
      // Many sequences' logits (32 x 152k floats: 19 MB a step) are copied out by all cores:
      // one core takes ~2 ms, the GPU's part of such a step ~9.
      const int64_t pieces = static_cast<int64_t>((bytes + kCopyPiece - 1) / kCopyPiece);
#pragma omp parallel for schedule(static) if (pieces > 4)
      for (int64_t p = 0; p < pieces; ++p) {
        const size_t at = static_cast<size_t>(p) * kCopyPiece;
        std::memcpy(reinterpret_cast<uint8_t*>(dst) + at, static_cast<const uint8_t*>(pinned_) + at, std::min(kCopyPiece, bytes - at));
      }
    } else {
      cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s()), "download");
      stream_->synchronize();
    }
    if (prof_.on) prof_.collect();
  }
  void copy(float* dst, const float* src, size_t n) override {
    cuda::check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, s()), "copy");
  }

  cpu::WeightView place(const cpu::WeightView& w) override {
    cpu::WeightView d = w;
    auto it = placed_.find(w.data);  // tied embeddings: the table is also the output projection
    if (it != placed_.end()) return d.data = it->second, d;
    const size_t bytes = static_cast<size_t>(w.rows) * w.row_bytes;
    d.data = device_copy(w.data, bytes, "weights");
    if (weights_copied) weights_copied(w.data, bytes);
    weight_bytes_ += bytes;
    placed_.emplace(w.data, d.data);
    return d;
  }
  const float* place(const std::vector<float>& v) override {
    if (v.empty()) return nullptr;
    weight_bytes_ += v.size() * sizeof(float);
    return static_cast<const float*>(device_copy(v.data(), v.size() * sizeof(float), "weights"));
  }

  void begin(const Batch& b) override {
    batch_ = &b;
    const size_t n = b.size();
    if (meta_cap_ < n) {
      if (meta_) cudaFree(meta_);
      ++reallocations_;  // recorded steps hold the old pointer
      meta_cap_ = std::max<size_t>(n, 512);
      cuda::check(cudaMalloc(reinterpret_cast<void**>(&meta_), 2 * meta_cap_ * sizeof(int32_t)), "cudaMalloc (batch)");
    }
    upload_i32(meta_, b.pos.data(), n);
    upload_i32(meta_ + meta_cap_, b.seq.data(), n);
    // A step of several sequences (the server's streams, with a new prompt's chunk among them)
    // takes the tensor-core products that read each weight once for all tokens; one sequence's
    // prompt chunks keep the decode kernels, which round as the CPU engine does (docs/PERFORMANCE.md).
    const bool several = std::any_of(b.seq.begin(), b.seq.end(), [&](int32_t s) { return s != b.seq.front(); });
    main_matmul_->set_many_sequences(several);
    side_matmul_->set_many_sequences(several);
  }

  void embed(const cpu::WeightView& table, const std::vector<int32_t>& tokens, float* out) override {
    OpProfile::Scope scope_(&prof_, "embed", s());
    for (int32_t t : tokens)
      if (t < 0 || t >= table.rows) throw Error("token id " + std::to_string(t) + " is outside the vocabulary");
    if (tokens.size() == 1) {  // a decode step: no upload of the id
      cuda::dequantize_rows(table.type, static_cast<const uint8_t*>(table.data) + static_cast<size_t>(tokens[0]) * table.row_bytes, out, 1,
                            table.cols, *stream_);
      return;
    }
    Buf ids(*this, tokens.size());  // a prompt: its ids to the device, then one launch
    upload_i32(reinterpret_cast<int32_t*>(ids.data()), tokens.data(), tokens.size());
    cuda::dequantize_gather(table.type, table.data, table.row_bytes, reinterpret_cast<const int32_t*>(ids.data()), static_cast<int64_t>(tokens.size()),
                            table.cols, out, *stream_);
  }
  void matmul(const cpu::WeightView& w, const float* x, int64_t n, float* y) override {
    OpProfile::Scope scope_(&prof_, "matmul", s());
    if (n > 0) matmul_->run(w, x, n, y);
  }
  void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t dim, float eps) override {
    OpProfile::Scope scope_(&prof_, "rms_norm", s());
    cuda::ops::rms_norm(x, w, y, n, dim, eps, stream_->handle());
  }
  void add_bias(float* y, const float* b, int64_t n, int64_t width) override { cuda::ops::add_bias(y, b, n, width, stream_->handle()); }
  void add(float* y, const float* x, int64_t count) override {
    OpProfile::Scope scope_(&prof_, "add", s());
    cuda::ops::add(y, x, count, stream_->handle());
  }
  void silu_mul(float* gate, const float* up, int64_t count) override {
    OpProfile::Scope scope_(&prof_, "silu_mul", s());
    cuda::ops::silu_mul(gate, up, count, stream_->handle());
  }
  void rope(const Rope& r, float* x, int64_t n, int n_head, int head_stride) override {
    OpProfile::Scope scope_(&prof_, "rope", s());
    cuda::ops::rope(rope_params(r), x, n, n_head, head_stride, meta_, stream_->handle());
  }

  void matmuls(std::initializer_list<Product> products, const float* x, int64_t n) override {
    OpProfile::Scope scope_(&prof_, "matmuls", s());
    const cpu::WeightView* ws[8];
    float* ys[8];
    int count = 0;
    for (const auto& p : products) {
      if (count == 8) break;
      ws[count] = p.w, ys[count++] = p.y;
    }
    if (static_cast<size_t>(count) != products.size()) return Backend::matmuls(products, x, n);
    if (n > 0) matmul_->run_same_input(ws, ys, count, x, n);
  }
  void add_rms_norm(float* x, const float* h, const float* w, float* y, int64_t n, int64_t dim, float eps) override {
    OpProfile::Scope scope_(&prof_, "add_rms_norm", s());
    cuda::ops::add_rms_norm(x, h, w, y, n, dim, eps, stream_->handle());
  }
  void norm_matmuls(float* x, const float* h, const float* w, float* normed, int64_t n, int64_t dim, float eps,
                    std::initializer_list<Product> products) override {
    const int kind = rounded_kind(products, n, dim);
    if (!kind) return Backend::norm_matmuls(x, h, w, normed, n, dim, eps, products);
    OpProfile::Scope scope_(&prof_, "norm_matmuls", s());
    const auto r = matmul_->rounded_buffer(static_cast<size_t>(n * dim));
    cuda::ops::norm_round(x, h, w, normed, n, dim, eps, kind, r.q, r.rec, stream_->handle());
    run_rounded(products, r, n);
  }
  void swiglu_matmul(float* gate, const float* up, int64_t n, int64_t n_ff, const cpu::WeightView& down, float* out) override {
    const int kind = rounded_kind({{&down, out}}, n, n_ff);
    if (!kind) return Backend::swiglu_matmul(gate, up, n, n_ff, down, out);
    OpProfile::Scope scope_(&prof_, "swiglu_matmul", s());
    const auto r = matmul_->rounded_buffer(static_cast<size_t>(n * n_ff));
    cuda::ops::silu_mul_round(gate, up, n * n_ff, kind, r.q, r.rec, stream_->handle());
    run_rounded({{&down, out}}, r, n);
  }
  void attention_inputs(const AttentionInputs& a, int layer) override {
    OpProfile::Scope scope_(&prof_, "attention_inputs", s());
    // Per-head norms (qwen3) or odd head sizes take the separate ops.
    if (a.q_norm || a.k_norm || a.head_dim % 2 || a.rope->n_rot > a.head_dim) return Backend::attention_inputs(a, layer);
    const cuda::ops::QkvParams p{a.n_head, a.n_head_kv, a.head_dim, a.head_dim_v, n_ctx_, a.bq, a.bk, a.bv};
    cuda::ops::qkv_into_cache(rope_params(*a.rope), p, a.q, a.k, a.v, a.n, meta_ + meta_cap_, meta_, cache_k(layer),
                              v_[static_cast<size_t>(layer)], stream_->handle());
  }

  void init_cache(int n_layer, int n_seq, int n_ctx, int k_width, int v_width, GgmlType type, const std::vector<uint8_t>& here) override {
    if (type != GgmlType::F16) {
      static bool said = false;
      if (!said) std::fprintf(stderr, "note: the GPU keeps its KV cache in f16 (q8_0 is not written for CUDA yet)\n");
      said = true;
    }
    n_ctx_ = n_ctx, k_width_ = k_width, v_width_ = v_width;
    const size_t k_layer = static_cast<size_t>(n_seq) * n_ctx * k_width * 2, v_layer = static_cast<size_t>(n_seq) * n_ctx * v_width * 2;
    const auto mem = cuda::memory_info(device_);
    const auto layers_here = static_cast<size_t>(std::count(here.begin(), here.end(), 1));  // only the layers that run here
    cache_bytes_ = (k_layer + v_layer) * layers_here;
    if (cache_bytes_ + (size_t{512} << 20) > mem.free)
      throw Error("the KV cache needs " + gib(cache_bytes_) + " on " + name_ + " but " + gib(mem.free) +
                  " is free after the weights; lower --ctx-size or --parallel, or --n-gpu-layers");
    k_.assign(static_cast<size_t>(n_layer), nullptr);
    v_.assign(static_cast<size_t>(n_layer), nullptr);
    for (int l = 0; l < n_layer; ++l) {
      if (!here.at(static_cast<size_t>(l))) continue;
      k_[static_cast<size_t>(l)] = static_cast<uint16_t*>(device_alloc(k_layer, "KV cache"));
      if (v_layer) v_[static_cast<size_t>(l)] = static_cast<uint16_t*>(device_alloc(v_layer, "KV cache"));
    }
    std::fprintf(stderr, "%s: weights %s, KV cache %s (f16), %s free\n", name_.c_str(), gib(weight_bytes_).c_str(), gib(cache_bytes_).c_str(),
                 gib(cuda::memory_info(device_).free).c_str());
  }
  void store_kv(int layer, const float* k, const float* v, int64_t n) override {
    const int32_t *pos = meta_, *seq = meta_ + meta_cap_;
    cuda::ops::store_rows_f16(cache_k(layer), k, n, k_width_, seq, pos, n_ctx_, stream_->handle());
    if (v) cuda::ops::store_rows_f16(v_.at(static_cast<size_t>(layer)), v, n, v_width_, seq, pos, n_ctx_, stream_->handle());
  }
  void mla_inputs(const MlaInputs& m, int layer) override {
    OpProfile::Scope scope_(&prof_, "mla_inputs", s());
    if (m.kv_lora + m.n_rot != k_width_ || v_width_ != 0) throw Error("mla_inputs: the cache rows are not [latent | k_pe]");
    const cuda::ops::MlaParams mp{m.n_head, m.head_k, m.nope, m.kv_lora, m.n_rot, n_ctx_, m.eps};
    cuda::ops::mla_inputs(rope_params(*m.rope), mp, m.q, m.kv, m.qa, m.kv_norm, m.n, meta_ + meta_cap_, meta_, cache_k(layer),
                          stream_->handle());
  }
  void attention(const AttentionShape& sh, const float* q, int64_t q_stride, int layer, float* out) override {
    OpProfile::Scope scope_(&prof_, "attention", s());
    cuda::ops::AttentionParams p{sh.n_head, sh.n_head_kv, sh.dk, sh.dv, sh.scale, n_ctx_, k_width_, v_width_, sh.v_in_k};
    const int64_t n = static_cast<int64_t>(batch_->size());
    // A prompt of many tokens takes the tensor cores (the f16 rounding chain of the decode kernel
    // is kept where the CPU engine's numbers must be matched closely: decode and short batches).
    if (n > cuda::Matmul::kGemvTokensBlockFormats && cuda::ops::attention_prompt_supported(p) && !std::getenv("JING_ATTN_SCALAR")) {
      const Batch& b = *batch_;
      bool one_sequence = true;
      for (int64_t i = 1; i < n && one_sequence; ++i) one_sequence = b.seq[i] == b.seq[0] && b.pos[i] == b.pos[0] + i;
      if (one_sequence)
        return cuda::ops::attention_prompt_f16(p, q, q_stride, cache_k(layer), v_[static_cast<size_t>(layer)], b.seq[0], b.pos[0], n,
                                               out, stream_->handle());
    }
    Buf scratch(*this, cuda::ops::attention_scratch_floats(p, n));
    cuda::ops::attention_f16(p, q, q_stride, cache_k(layer), v_[static_cast<size_t>(layer)], meta_ + meta_cap_, meta_, n, out,
                             scratch.data(), stream_->handle());
  }
  size_t cache_bytes() const override { return cache_bytes_; }
  size_t weight_bytes() const override { return weight_bytes_; }

  cpu::WeightView place_experts(const cpu::WeightView& w, int n_expert) override {
    cpu::WeightView d = w;
    auto it = placed_.find(w.data);
    if (it != placed_.end()) return d.data = it->second, d;
    const size_t bytes = static_cast<size_t>(n_expert) * static_cast<size_t>(w.rows) * w.row_bytes;
    d.data = device_copy(w.data, bytes, "expert weights");
    if (weights_copied) weights_copied(w.data, bytes);
    weight_bytes_ += bytes;
    placed_.emplace(w.data, d.data);
    return d;
  }
  void head_matmuls(const HeadProducts& p) override {
    OpProfile::Scope scope_(&prof_, "head_matmuls", s());
    const int64_t cols = p.w.cols, count = p.n * p.n_head;
    // Decode kernels up to the token count run() gives them (block formats: 64, so a batch of
    // many sequences does not fall to one launch per head below).
    const int64_t most = cuda::Matmul::rounding_kind(p.w.type) ? cuda::Matmul::kGemvTokensBlockFormats : cuda::Matmul::kMaxGemvTokens;
    if (p.n <= most && p.y_stride == p.n_head * p.y_head) {
      // Few tokens: every (token, head) product in one launch, reading its head's matrix; the
      // inputs packed into rows first (x holds them strided), the outputs written in place.
      Buf in;
      const float* rows = p.x;  // already packed (MLA's attended latents): read in place
      if (p.x_head != cols || p.x_stride != p.n_head * p.x_head) {
        in = Buf(*this, static_cast<size_t>(count * cols));
        if (p.x_stride == p.n_head * p.x_head) copy_rows(in.data(), cols, p.x, p.x_head, count, cols);  // rows x_head apart
        else for (int hd = 0; hd < p.n_head; ++hd) copy_rows(in.data() + hd * cols, p.n_head * cols, p.x + hd * p.x_head, p.x_stride, p.n, cols);
        rows = in.data();
      }
      cuda::GemvBatch b;
      b.count = static_cast<int>(count), b.n_mats = p.n_head, b.y_stride = p.y_head;
      const cpu::WeightView* ws[1] = {&p.w};
      float* ys[1] = {p.y};
      matmul_->run_batched(ws, ys, 1, b, rows, count);
      return;
    }
    // Prompts: one batched f16 product for all heads where the matrix path takes them.
    if (!matmul_->run_heads(p.w, p.n_head, p.x, p.x_stride, p.x_head, p.n, p.y, p.y_stride, p.y_head)) head_matmuls_one_by_one(p);
  }
  void head_matmuls_one_by_one(const HeadProducts& p) {
    // One head at a time: its rows gathered, multiplied, scattered back.
    const int64_t cols = p.w.cols, rows = p.w.rows;
    Buf in(*this, static_cast<size_t>(p.n * cols)), out(*this, static_cast<size_t>(p.n * rows));
    for (int hd = 0; hd < p.n_head; ++hd) {
      copy_rows(in.data(), cols, p.x + hd * p.x_head, p.x_stride, p.n, cols);
      cpu::WeightView w = p.w;
      w.data = static_cast<const uint8_t*>(p.w.data) + static_cast<size_t>(hd) * static_cast<size_t>(rows) * p.w.row_bytes;
      matmul_->run(w, in.data(), p.n, out.data());
      copy_rows(p.y + hd * p.y_head, p.y_stride, out.data(), rows, p.n, rows);
    }
  }
  void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t width) override {
    if (rows <= 0 || width <= 0) return;
    cuda::check(cudaMemcpy2DAsync(dst, dst_stride * sizeof(float), src, src_stride * sizeof(float), width * sizeof(float), rows,
                                  cudaMemcpyDeviceToDevice, s()),
                "copy_rows");
  }
  void rms_norm_rows(float* x, int64_t stride, const float* w, int64_t n, int64_t dim, float eps) override {
    cuda::ops::rms_norm_strided(x, stride, w, x, n, dim, eps, stream_->handle());
  }
  static cuda::ops::MoeRouteParams route_params(const MoeRouting& r) {
    return {r.n_expert, r.n_expert_used, r.n_group, r.n_group_used, r.gating == MoeRouting::Gating::Sigmoid, r.normalize, r.scale};
  }
  bool moe_stays_on_device(const MoeRouting& r) const override {
    return cuda::ops::moe_route_supported(route_params(r)) && !std::getenv("JING_MOE_HOST");
  }
  // Few tokens (each chosen expert mostly distinct): routing on the device, then every (token,
  // expert) product in one batched launch per weight, nothing back to the host. Otherwise routing
  // on the host (one round trip per MoE layer) and per chosen expert: its tokens gathered, the
  // expert's SwiGLU, the weighted rows added back, so each expert's weights are read once.
  void moe_ffn(const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, int n_embd, int n_ff, float* out) override {
    OpProfile::Scope scope_(&prof_, "moe_ffn", s());
    Buf logits(*this, static_cast<size_t>(n * r.n_expert));
    const auto rp = route_params(r);
    // Few (token, expert) pairs: each pair's products straight from the expert's weights. More (a
    // prompt): grouped by expert, each expert read once per 8 (or 64) of its tokens. (With a quarter
    // of the experts as the limit, 32 streams on the R1 shape took 9.1 ms per MoE layer grouped:
    // those kernels compute 8 token columns for items of one or two tokens. JING_MOE_PAIRS_UP_TO
    // sets the limit for measuring.)
    static const char* rule = std::getenv("JING_MOE_PAIRS_UP_TO");
    const int64_t up_to = rule ? std::atoll(rule) : std::max(r.n_expert, 8 * r.n_expert_used);
    const bool per_pair = n * r.n_expert_used <= up_to;
    if (moe_stays_on_device(r) && per_pair) {
      reserve_moe_idx(static_cast<size_t>(n * rp.n_used));
      auto* ids = static_cast<int32_t*>(moe_idx_);
      auto* wts = reinterpret_cast<float*>(ids + moe_idx_cap_);
      if (w.router.type == GgmlType::F32 && w.router.row_bytes == static_cast<size_t>(w.router.cols) * 4 && !std::getenv("JING_ROUTE_UNFUSED") &&
          cuda::ops::moe_router_route(rp, static_cast<const float*>(w.router.data), w.router.cols, x, n, device_vector(w.bias), logits.data(),
                                      route_done(), ids, wts, s()))
        return moe_ffn_on_device(rp, w, ids, wts, x, n, n_embd, n_ff, out);
    }
    matmul_->run(w.router, x, n, logits.data());
    if (moe_stays_on_device(r)) {
      if (per_pair) {
        const auto [ids, wts] = route_on_device(rp, w, logits.data(), n);
        return moe_ffn_on_device(rp, w, ids, wts, x, n, n_embd, n_ff, out);
      }
      if (cuda::Matmul::rounding_kind(w.gate.type) && cuda::Matmul::rounding_kind(w.down.type))
        return moe_ffn_grouped(rp, w, logits.data(), x, n, n_embd, n_ff, out);
    }
    std::vector<float> host(static_cast<size_t>(n * r.n_expert));
    download(host.data(), logits.data(), host.size());
    std::vector<std::vector<std::pair<int32_t, float>>> users(static_cast<size_t>(r.n_expert));
    for (int64_t t = 0; t < n; ++t)
      for (auto [e, wt] : route(r, host.data() + t * r.n_expert, w.bias)) users[static_cast<size_t>(e)].push_back({static_cast<int32_t>(t), wt});
    std::vector<int32_t> rows;
    std::vector<float> weights;
    std::vector<std::pair<int, size_t>> spans;  // (expert, first index)
    for (int e = 0; e < r.n_expert; ++e) {
      if (users[static_cast<size_t>(e)].empty()) continue;
      spans.push_back({e, rows.size()});
      for (auto [t, wt] : users[static_cast<size_t>(e)]) rows.push_back(t), weights.push_back(wt);
    }
    cuda::check(cudaMemsetAsync(out, 0, static_cast<size_t>(n * n_embd) * sizeof(float), s()), "moe: clear");
    if (rows.empty()) return;
    reserve_moe_idx(rows.size());
    auto* d_rows = static_cast<int32_t*>(moe_idx_);
    auto* d_wts = reinterpret_cast<float*>(static_cast<int32_t*>(moe_idx_) + moe_idx_cap_);
    cuda::check(cudaMemcpyAsync(d_rows, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice, s()), "moe: rows");
    cuda::check(cudaMemcpyAsync(d_wts, weights.data(), weights.size() * 4, cudaMemcpyHostToDevice, s()), "moe: weights");
    size_t most = 0;
    for (size_t i = 0; i < spans.size(); ++i) most = std::max(most, (i + 1 < spans.size() ? spans[i + 1].second : rows.size()) - spans[i].second);
    Buf xs(*this, most * n_embd), g(*this, most * n_ff), u(*this, most * n_ff), d(*this, most * n_embd);
    for (size_t i = 0; i < spans.size(); ++i) {
      const auto [e, first] = spans[i];
      const int64_t m = static_cast<int64_t>((i + 1 < spans.size() ? spans[i + 1].second : rows.size()) - first);
      cuda::ops::gather_rows(xs.data(), x, d_rows + first, m, n_embd, stream_->handle());
      const cpu::WeightView ge = expert(w.gate, e), ue = expert(w.up, e), de = expert(w.down, e);
      const cpu::WeightView* ws[2] = {&ge, &ue};
      float* ys[2] = {g.data(), u.data()};
      matmul_->run_same_input(ws, ys, 2, xs.data(), m);
      cuda::ops::silu_mul(g.data(), u.data(), m * n_ff, stream_->handle());
      matmul_->run(de, g.data(), m, d.data());
      cuda::ops::scatter_add_rows(out, d.data(), d_rows + first, d_wts + first, m, n_embd, stream_->handle());
    }
  }

  // Few tokens, routed (ids, wts): every (token, expert) product of one weight in one launch.
  void moe_ffn_on_device(const cuda::ops::MoeRouteParams& rp, const MoeWeights& w, const int32_t* ids, const float* wts, const float* x, int64_t n,
                         int n_embd, int n_ff, float* out) {
    const int64_t pairs = n * rp.n_used;
    Buf g(*this, static_cast<size_t>(pairs * n_ff)), u(*this, static_cast<size_t>(pairs * n_ff)), d(*this, static_cast<size_t>(pairs * n_embd));
    cuda::GemvBatch b;
    b.count = static_cast<int>(pairs), b.ids = ids, b.x_div = rp.n_used;
    expert_swiglu(w, b, x, n, pairs, n_embd, n_ff, g.data(), u.data(), d.data());
    cuda::ops::moe_combine(out, d.data(), wts, n, rp.n_used, n_embd, stream_->handle());
  }
  // A prompt's many tokens: routing on the device, the (token, expert) pairs grouped by expert
  // there (moe_group), and each expert's rows multiplied 8 at a time (grouped GEMV work items),
  // so an expert's weights are read once per 8 of its tokens and nothing goes back to the host.
  void moe_ffn_grouped(const cuda::ops::MoeRouteParams& rp, const MoeWeights& w, const float* logits, const float* x, int64_t n, int n_embd,
                       int n_ff, float* out) {
    // A prompt's many tokens go to the tensor cores (64 rows of an expert per work item), as the
    // dense products of a prompt do; fewer take the grouped decode kernels (8 rows per item).
    const bool tensor_cores = n > cuda::Matmul::kGemvTokensBlockFormats && !std::getenv("JING_MOE_GEMV") &&
                              cuda::Matmul::grouped_supported(w.gate.type) && cuda::Matmul::grouped_supported(w.up.type) &&
                              cuda::Matmul::grouped_supported(w.down.type);
    const int item_rows = tensor_cores ? cuda::Matmul::grouped_item_rows() : 8;
    const int64_t pairs = n * rp.n_used, max_items = cuda::ops::moe_max_items(pairs, rp.n_expert, item_rows);
    const auto [ids, wts] = route_on_device(rp, w, logits, n);
    Buf index(*this, static_cast<size_t>(2 * pairs + 3 * max_items));  // int32: pair rows, row tokens, work items
    auto* pair_row = reinterpret_cast<int32_t*>(index.data());
    int32_t *row_token = pair_row + pairs, *items = row_token + pairs;
    cuda::ops::moe_group(ids, n, rp.n_used, rp.n_expert, item_rows, pair_row, row_token, items, stream_->handle());
    Buf xs(*this, static_cast<size_t>(pairs * n_embd)), g(*this, static_cast<size_t>(pairs * n_ff)), u(*this, static_cast<size_t>(pairs * n_ff)),
        d(*this, static_cast<size_t>(pairs * n_embd));
    cuda::ops::gather_rows(xs.data(), x, row_token, pairs, n_embd, stream_->handle());
    if (tensor_cores) {
      const auto size = static_cast<size_t>(pairs);
      const int count = static_cast<int>(max_items);
      const void* xh = matmul_->to_half(w.gate.type, xs.data(), size * n_embd);
      matmul_->run_grouped(w.gate, items, count, xh, g.data(), n_ff);
      if (cuda::Matmul::rounding_kind(w.up.type) != cuda::Matmul::rounding_kind(w.gate.type)) xh = matmul_->to_half(w.up.type, xs.data(), size * n_embd);
      matmul_->run_grouped(w.up, items, count, xh, u.data(), n_ff);
      cuda::ops::silu_mul(g.data(), u.data(), pairs * n_ff, stream_->handle());
      matmul_->run_grouped(w.down, items, count, matmul_->to_half(w.down.type, g.data(), size * n_ff), d.data(), n_embd);
    } else {
      cuda::GemvBatch b;
      b.count = static_cast<int>(max_items), b.items = items;
      expert_swiglu(w, b, xs.data(), pairs, pairs, n_embd, n_ff, g.data(), u.data(), d.data());
    }
    cuda::ops::moe_combine(out, d.data(), wts, n, rp.n_used, n_embd, stream_->handle(), pair_row);
  }
  // Each token's chosen experts and their weights, [n][n_used] each, in moe_idx_.
  // The fused router's per-token counters (zeros between calls; made before any recording).
  unsigned* route_done() { return route_done_; }
  std::pair<int32_t*, float*> route_on_device(const cuda::ops::MoeRouteParams& rp, const MoeWeights& w, const float* logits, int64_t n) {
    reserve_moe_idx(static_cast<size_t>(n * rp.n_used));
    auto* ids = static_cast<int32_t*>(moe_idx_);
    auto* wts = reinterpret_cast<float*>(ids + moe_idx_cap_);
    cuda::ops::moe_route(rp, logits, device_vector(w.bias), n, ids, wts, stream_->handle());
    return {ids, wts};
  }
  // The experts' SwiGLU for `pairs` (token, expert) rows as batch b picks them: gate and up of
  // x's x_rows rows into g and u, then down into d (SwiGLU rounding its output for the down
  // products where their format allows).
  void expert_swiglu(const MoeWeights& w, cuda::GemvBatch b, const float* x, int64_t x_rows, int64_t pairs, int n_embd, int n_ff, float* g,
                     float* u, float* d) {
    b.y_stride = n_ff;
    const cpu::WeightView* gu[2] = {&w.gate, &w.up};
    float* gu_out[2] = {g, u};
    matmul_->run_batched(gu, gu_out, 2, b, x, x_rows);
    b.x_div = 1, b.y_stride = n_embd;
    const cpu::WeightView* dn[1] = {&w.down};
    float* d_out[1] = {d};
    if (const int kind = rounded_kind({{&w.down, d}}, 1, n_ff)) {
      const auto r = matmul_->rounded_buffer(static_cast<size_t>(pairs * n_ff));
      cuda::ops::silu_mul_round(g, u, pairs * n_ff, kind, r.q, r.rec, stream_->handle());
      matmul_->run_batched_rounded(dn, d_out, 1, b, r);
    } else {
      cuda::ops::silu_mul(g, u, pairs * n_ff, stream_->handle());
      matmul_->run_batched(dn, d_out, 1, b, g, pairs);
    }
  }
  static constexpr size_t kPinnedFrom = size_t{64} << 10;
  bool reserve_pinned(size_t bytes) {
    if (pinned_cap_ >= bytes) return true;
    if (pinned_) cudaFreeHost(pinned_);
    pinned_ = nullptr, pinned_cap_ = 0;
    if (cudaMallocHost(&pinned_, bytes) != cudaSuccess) {  // no pinned memory: the plain copy
      cudaGetLastError();
      pinned_ = nullptr;
      return false;
    }
    pinned_cap_ = bytes;
    return true;
  }
  void reserve_moe_idx(size_t n) {
    if (moe_idx_cap_ >= n) return;
    if (moe_idx_) cudaFree(moe_idx_);
    ++reallocations_;
    moe_idx_cap_ = std::max<size_t>(n, 1024);
    cuda::check(cudaMalloc(&moe_idx_, moe_idx_cap_ * 8), "cudaMalloc (moe)");
  }
  // A host vector kept on the device for the model's life (the routing bias, RoPE frequency
  // factors), placed on first use; null when empty.
  const float* device_vector(const std::vector<float>& v) {
    if (v.empty()) return nullptr;
    auto it = vectors_.find(v.data());
    if (it == vectors_.end()) it = vectors_.emplace(v.data(), place(v)).first;
    return it->second;
  }

  // The 8-bit block kind that products of n tokens of `cols` values all take on the decode path,
  // or 0 when they take none (float weights, more tokens, differing kinds, partial blocks).
  int rounded_kind(std::initializer_list<Product> products, int64_t n, int64_t cols) const {
    if (n < 1 || n > cuda::Matmul::kMaxGemvTokens || products.size() == 0 || products.size() > 8) return 0;
    const int kind = cuda::Matmul::rounding_kind(products.begin()->w->type);
    for (const auto& p : products)
      if (cuda::Matmul::rounding_kind(p.w->type) != kind || p.w->cols != cols || p.w->rows <= 0) return 0;
    return cols % cuda::ops::rounding_block(kind) == 0 ? kind : 0;
  }
  void run_rounded(std::initializer_list<Product> products, const cuda::Matmul::Rounded& r, int64_t n) {
    const cpu::WeightView* ws[8];
    float* ys[8];
    int count = 0;
    for (const auto& p : products) ws[count] = p.w, ys[count++] = p.y;
    matmul_->run_rounded(ws, ys, count, r, n);
  }

  // Scratch that recorded steps read by address; a graph recorded before any of it was
  // reallocated (a longer prompt later) must not be replayed.
  uint64_t buffers_generation() const { return reallocations_ + cuda::DeviceBuffer::allocations(); }

  bool capture_begin() override {
    if (std::getenv("JING_NO_CUDA_GRAPHS") || prof_.on) return false;
    capture_generation_ = buffers_generation();
    if (cudaStreamBeginCapture(s(), cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return true;
  }
  void capture_end(int key) override {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    const bool ok = cudaStreamEndCapture(s(), &graph) == cudaSuccess && graph && buffers_generation() == capture_generation_ &&
                    cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
    if (graph) cudaGraphDestroy(graph);
    if (!ok) {
      cudaGetLastError();
      return;
    }
    if (auto it = graphs_.find(key); it != graphs_.end()) cudaGraphExecDestroy(it->second.first);
    graphs_[key] = {exec, capture_generation_};
  }
  bool replay(int key) override {
    auto it = graphs_.find(key);
    if (it == graphs_.end()) return false;
    if (it->second.second != buffers_generation()) {  // stale: the caller records it again
      cudaGraphExecDestroy(it->second.first);
      graphs_.erase(it);
      return false;
    }
    return cudaGraphLaunch(it->second.first, s()) == cudaSuccess;
  }

 private:
  cudaStream_t s() const { return static_cast<cudaStream_t>(stream_->handle()); }
  cuda::ops::RopeParams rope_params(const Rope& r) {
    cuda::ops::RopeParams p;
    p.n_rot = r.n_rot, p.neox = r.neox, p.freq_base = r.freq_base, p.freq_scale = r.freq_scale, p.ext_factor = r.ext_factor;
    p.attn_factor = r.attn_factor;
    r.yarn_corr_dims(p.corr_low, p.corr_high);
    p.freq_factors = device_vector(r.freq_factors);
    return p;
  }
  // The key cache of a layer placed here (the GPU keeps none for the CPU's layers).
  uint16_t* cache_k(int layer) const {
    uint16_t* k = k_.at(static_cast<size_t>(layer));
    if (!k) throw Error("CUDA: layer " + std::to_string(layer) + " has no KV cache on " + name_ + " (it runs on another device)");
    return k;
  }
  void* device_alloc(size_t bytes, const char* what) {
    void* p = nullptr;
    if (cudaMalloc(&p, std::max<size_t>(bytes, 1)) != cudaSuccess) {
      cudaGetLastError();
      throw Error(std::string("not enough GPU memory on ") + name_ + " for the " + what + " (" + gib(bytes) + " more, " +
                  gib(cuda::memory_info(device_).free) + " free, " + gib(weight_bytes_) + " of weights placed); lower --n-gpu-layers");
    }
    owned_.push_back(p);
    return p;
  }
  void* device_copy(const void* src, size_t bytes, const char* what) {
    void* p = device_alloc(bytes, what);
    cuda::check(cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice), "upload of weights");
    return p;
  }
  void upload_i32(int32_t* dst, const int32_t* src, size_t n) {
    cuda::check(cudaMemcpyAsync(dst, src, n * sizeof(int32_t), cudaMemcpyHostToDevice, s()), "upload (batch)");
  }

  int device_;
  std::string name_;
  std::unique_ptr<cuda::Stream> main_stream_, side_stream_;
  std::unique_ptr<cuda::Matmul> main_matmul_, side_matmul_;
  cuda::Stream* stream_ = nullptr;  // where ops go now: the main stream, or the side one (begin_side)
  cuda::Matmul* matmul_ = nullptr;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  unsigned* route_done_ = nullptr;
  std::vector<void*> owned_;
  std::unordered_map<const void*, const void*> placed_;
  std::unordered_map<const float*, const float*> vectors_;  // host vectors placed here (device_vector)
  size_t weight_bytes_ = 0, cache_bytes_ = 0;
  const Batch* batch_ = nullptr;
  int32_t* meta_ = nullptr;  // positions [meta_cap_], then sequences [meta_cap_]
  size_t meta_cap_ = 0;
  int n_ctx_ = 0, k_width_ = 0, v_width_ = 0;
  std::vector<uint16_t*> k_, v_;
  std::unordered_map<int, std::pair<cudaGraphExec_t, uint64_t>> graphs_;  // with the buffers' generation when recorded
  uint64_t reallocations_ = 0, capture_generation_ = 0;
  OpProfile prof_;
  void* pinned_ = nullptr;  // staging for large downloads
  size_t pinned_cap_ = 0;
  void* moe_idx_ = nullptr;  // token rows, then weights, of the chosen experts
  size_t moe_idx_cap_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_gpu_backend(int device, std::string* why) {
  if (!cuda::available()) {
    if (why) *why = "no CUDA GPU or driver found";
    return nullptr;
  }
  if (device < 0 || device >= cuda::device_count()) {
    if (why) *why = "GPU " + std::to_string(device) + " does not exist (" + std::to_string(cuda::device_count()) + " found)";
    return nullptr;
  }
  return std::make_unique<CudaBackend>(device);
}

}  // namespace jing::model
