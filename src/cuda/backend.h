// The CUDA implementation of the model op set (src/model/backend.h): weights copied to the GPU in
// their GGUF block formats (VRAM for weights = their bytes in the file), activations and the f16
// KV cache in device memory, every op asynchronous on one stream (and a side stream for work
// beside it); only download() waits. The ops are defined in backend.cpp, the MoE layer's in
// backend_moe.cpp.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cuda/check.h"
#include "cuda/device.h"
#include "cuda/matmul.h"
#include "cuda/model_ops.h"
#include "cuda/op_profile.h"
#include "model/backend.h"
#include "model/moe.h"
#include "model/ops.h"

namespace jing::model {

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int device);
  ~CudaBackend() override;

  std::string name() const override { return name_; }
  bool is_cpu() const override { return false; }

  // The side stream has its own matmul scratch; its allocations are ordered on it (and captured
  // into the same graph, which the fork and join events connect).
  void begin_side() override;
  void end_side() override {
    use();
    cuda::check(cudaEventRecord(join_, s()), "join");
    stream_ = main_stream_.get(), matmul_ = main_matmul_.get();
  }
  void join_side() override {
    use();
    cuda::check(cudaStreamWaitEvent(s(), join_, 0), "join");
  }

  float* alloc(size_t n) override;
  bool copy_from(Backend& from, float* dst, const float* src, size_t n) override;
  float* receive(Backend& from, const float* src, size_t n) override;
  void wait_for(Backend& other) override;
  void release(float* p) override {
    use();
    cudaFreeAsync(p, s());
  }
  void upload(float* dst, const float* src, size_t n) override {
    use();
    cuda::check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyHostToDevice, s()), "upload");
  }
  // Large results (a step's logits) come through pinned memory: a pageable copy of 600 KB took
  // several times as long as the pinned copy and the memcpy after it.
  static constexpr size_t kCopyPiece = size_t{1} << 20;
  void download(float* dst, const float* src, size_t n) override;
  void copy(float* dst, const float* src, size_t n) override {
    use();
    cuda::check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, s()), "copy");
  }

  cpu::WeightView place(const cpu::WeightView& w) override;
  const float* place(const std::vector<float>& v) override;

  void begin(const Batch& b) override;

  void embed(const cpu::WeightView& table, const std::vector<int32_t>& tokens, float* out) override;
  void matmul(const cpu::WeightView& w, const float* x, int64_t n, float* y) override {
    use();
    OpProfile::Scope scope_(&prof_, "matmul", s());
    if (n > 0) matmul_->run(w, x, n, y);
  }
  void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t dim, float eps) override {
    use();
    OpProfile::Scope scope_(&prof_, "rms_norm", s());
    cuda::ops::rms_norm(x, w, y, n, dim, eps, stream_->handle());
  }
  void add_bias(float* y, const float* b, int64_t n, int64_t width) override {
    use();
    cuda::ops::add_bias(y, b, n, width, stream_->handle());
  }
  void add(float* y, const float* x, int64_t count) override {
    use();
    OpProfile::Scope scope_(&prof_, "add", s());
    cuda::ops::add(y, x, count, stream_->handle());
  }
  void silu_mul(float* gate, const float* up, int64_t count) override {
    use();
    OpProfile::Scope scope_(&prof_, "silu_mul", s());
    cuda::ops::silu_mul(gate, up, count, stream_->handle());
  }
  void rope(const Rope& r, float* x, int64_t n, int n_head, int head_stride) override {
    use();
    OpProfile::Scope scope_(&prof_, "rope", s());
    cuda::ops::rope(rope_params(r), x, n, n_head, head_stride, meta_, stream_->handle());
  }

  void matmuls(std::initializer_list<Product> products, const float* x, int64_t n) override;
  void add_rms_norm(float* x, const float* h, const float* w, float* y, int64_t n, int64_t dim, float eps) override {
    use();
    OpProfile::Scope scope_(&prof_, "add_rms_norm", s());
    cuda::ops::add_rms_norm(x, h, w, y, n, dim, eps, stream_->handle());
  }
  void norm_matmuls(float* x, const float* h, const float* w, float* normed, int64_t n, int64_t dim, float eps,
                    std::initializer_list<Product> products) override;
  void swiglu_matmul(float* gate, const float* up, int64_t n, int64_t n_ff, const cpu::WeightView& down, float* out) override;
  void attention_inputs(const AttentionInputs& a, int layer) override;

  void init_cache(int n_layer, int n_seq, int n_ctx, int k_width, int v_width, GgmlType type, const std::vector<uint8_t>& here) override;
  void store_kv(int layer, const float* k, const float* v, int64_t n) override;
  void mla_inputs(const MlaInputs& m, int layer) override;
  void attention(const AttentionShape& sh, const float* q, int64_t q_stride, int layer, float* out) override;
  size_t cache_bytes() const override { return cache_bytes_; }
  size_t weight_bytes() const override { return weight_bytes_; }

  cpu::WeightView place_experts(const cpu::WeightView& w, int n_expert) override;
  void head_matmuls(const HeadProducts& p) override;
  void head_matmuls_one_by_one(const HeadProducts& p);
  void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t width) override;
  void rms_norm_rows(float* x, int64_t stride, const float* w, int64_t n, int64_t dim, float eps) override {
    use();
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
  void moe_ffn(const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, int n_embd, int n_ff, float* out) override;

  // Expert parallelism (model/backend.h): the routing alone, then this GPU's share of the mix.
  bool route_experts(const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, float* routes) override;
  void experts_share(const MoeRouting& r, const MoeWeights& share, int first, int count, const float* routes, const float* x, int64_t n, int n_embd,
                     int n_ff, float* out) override;
  // Whether n tokens' pairs take the per-pair products (few) or the grouped ones.
  static bool per_pair(const MoeRouting& r, int64_t n);
  // Few tokens, routed (ids, wts): every (token, expert) product of one weight in one launch
  // (with `share`: only the pairs of its experts, w holding those from share.first).
  void moe_ffn_on_device(const cuda::ops::MoeRouteParams& rp, const MoeWeights& w, const int32_t* ids, const float* wts, const float* x, int64_t n,
                         int n_embd, int n_ff, float* out, cuda::ops::ExpertShare share = {});
  // A prompt's many tokens, routed (ids, wts): the (token, expert) pairs grouped by expert on the
  // device (moe_group), and each expert's rows multiplied 8 at a time (grouped GEMV work items),
  // so an expert's weights are read once per 8 of its tokens and nothing goes back to the host.
  void moe_ffn_grouped(const cuda::ops::MoeRouteParams& rp, const MoeWeights& w, const int32_t* ids, const float* wts, const float* x, int64_t n,
                       int n_embd, int n_ff, float* out, cuda::ops::ExpertShare share = {});
  bool grouped_formats(const MoeWeights& w) const {
    return cuda::Matmul::rounding_kind(w.gate.type) && cuda::Matmul::rounding_kind(w.down.type);
  }
  // The router's product and the routing: each token's chosen experts and their weights,
  // [n][n_used] each, into ids and wts; in one launch (fuse) where the router is plain float32.
  void route_into(const cuda::ops::MoeRouteParams& rp, const MoeWeights& w, const float* x, int64_t n, bool fuse, int32_t* ids, float* wts);
  // The fused router's per-token counters (zeros between calls; made before any recording).
  unsigned* route_done() { return route_done_; }
  // The experts' SwiGLU for `pairs` (token, expert) rows as batch b picks them: gate and up of
  // x's x_rows rows into g and u, then down into d (SwiGLU rounding its output for the down
  // products where their format allows).
  void expert_swiglu(const MoeWeights& w, cuda::GemvBatch b, const float* x, int64_t x_rows, int64_t pairs, int n_embd, int n_ff, float* g, float* u,
                     float* d);
  static constexpr size_t kPinnedFrom = size_t{64} << 10;
  bool reserve_pinned(size_t bytes);
  std::pair<int32_t*, float*> reserve_moe_idx(size_t n);  // room for n chosen experts: {token rows or ids, weights}
  // A host vector kept on the device for the model's life (the routing bias, RoPE frequency
  // factors), placed on first use; null when empty.
  const float* device_vector(const std::vector<float>& v);

  // The 8-bit block kind that products of n tokens of `cols` values all take on the decode path,
  // or 0 when they take none (float weights, more tokens, differing kinds, partial blocks).
  int rounded_kind(std::initializer_list<Product> products, int64_t n, int64_t cols) const;
  void run_rounded(std::initializer_list<Product> products, const cuda::Matmul::Rounded& r, int64_t n);

  // Scratch that recorded steps read by address; a graph recorded before any of it was
  // reallocated (a longer prompt later) must not be replayed.
  uint64_t buffers_generation() const { return reallocations_ + cuda::DeviceBuffer::allocations(); }

  bool capture_begin() override;
  void capture_end(int key) override;
  bool replay(int key) override;
  int step_variant() const override { return attention_band_; }

 private:
  friend class NcclCollectives;  // (cuda/nccl.cpp) runs on each GPU's stream
  cudaStream_t s() const { return static_cast<cudaStream_t>(stream_->handle()); }
  void connect(const CudaBackend& other);  // peer access to the other GPU's memory, once
  // Every entry point (the Backend overrides) first makes this backend's device the current one
  // (the helpers they call rely on it): one thread drives several GPUs
  // (layers split over them), and the server loads a model in one thread and runs it in another,
  // where a GPU other than CUDA0 would not be current. (A query when it already is: cheap, and
  // allowed while a step is being recorded.)
  void use() const {
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess || current != device_) cuda::set_device(device_);
  }
  cuda::ops::RopeParams rope_params(const Rope& r);
  // The key cache of a layer placed here (the GPU keeps none for the CPU's layers).
  uint16_t* cache_k(int layer) const;
  void* device_alloc(size_t bytes, const char* what);
  void* device_copy(const void* src, size_t bytes, const char* what);
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
  cudaEvent_t crossed_ = nullptr;  // a copy from another GPU read its source (copy_from)
  std::vector<int> peers_;         // GPUs whose memory this one's copies read directly
  unsigned* route_done_ = nullptr;
  std::vector<void*> owned_;
  std::unordered_map<const void*, const void*> placed_;
  std::unordered_map<const float*, const float*> vectors_;  // host vectors placed here (device_vector)
  size_t weight_bytes_ = 0, cache_bytes_ = 0;
  const Batch* batch_ = nullptr;
  int32_t* meta_ = nullptr;  // positions [meta_cap_], then sequences [meta_cap_]
  size_t meta_cap_ = 0;
  int attention_band_ = 0;  // of the batch begun last (cuda::ops::attention_band)
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

}  // namespace jing::model
