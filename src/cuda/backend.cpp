// CudaBackend (backend.h): construction, memory and placement, the dense ops, attention and the
// recording of steps as CUDA graphs.
#include "cuda/backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>

#include "common/error.h"

namespace jing::model {

namespace {

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1u << 30));
  return buf;
}

}  // namespace

CudaBackend::CudaBackend(int device) : device_(device) {
  cuda::set_device(device);
  name_ = "CUDA" + std::to_string(device) + " (" + cuda::device_name(device) + ")";
  main_stream_ = std::make_unique<cuda::Stream>();
  main_matmul_ = std::make_unique<cuda::Matmul>(*main_stream_);
  side_stream_ = std::make_unique<cuda::Stream>();
  side_matmul_ = std::make_unique<cuda::Matmul>(*side_stream_);
  cuda::check(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), "cudaEventCreate");
  cuda::check(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming), "cudaEventCreate");
  cuda::check(cudaEventCreateWithFlags(&crossed_, cudaEventDisableTiming), "cudaEventCreate");
  stream_ = main_stream_.get(), matmul_ = main_matmul_.get();
  route_done_ = static_cast<unsigned*>(device_alloc(cuda::ops::kMaxRouteTokens * sizeof(unsigned), "routing counters"));
  cuda::check(cudaMemset(route_done_, 0, cuda::ops::kMaxRouteTokens * sizeof(unsigned)), "cudaMemset (routing counters)");
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  cudaStreamSynchronize(static_cast<cudaStream_t>(side_stream_->handle()));
  cudaStreamSynchronize(static_cast<cudaStream_t>(main_stream_->handle()));
  cudaEventDestroy(fork_), cudaEventDestroy(join_), cudaEventDestroy(crossed_);
  for (auto& [_, g] : graphs_) cudaGraphExecDestroy(g.first);
  for (void* p : owned_) cudaFree(p);
  if (meta_) cudaFree(meta_);
  if (moe_idx_) cudaFree(moe_idx_);
  if (pinned_) cudaFreeHost(pinned_);
}

void CudaBackend::connect(const CudaBackend& other) {
  if (other.device_ == device_ || std::find(peers_.begin(), peers_.end(), other.device_) != peers_.end()) return;
  peers_.push_back(other.device_);
  // Direct access to the other GPU's memory where the pair allows it (NVLink, PCIe peer): for
  // plain allocations and for the other's pool (stream-ordered allocations need their own
  // grant). Without it the copies still work, staged by the driver.
  int can = 0;
  if (cudaDeviceCanAccessPeer(&can, device_, other.device_) != cudaSuccess || !can) return cudaGetLastError(), void();
  if (cudaDeviceEnablePeerAccess(other.device_, 0) != cudaSuccess) cudaGetLastError();  // already enabled
  cudaMemPool_t pool = nullptr;
  cudaMemAccessDesc access{};
  access.location.type = cudaMemLocationTypeDevice, access.location.id = device_, access.flags = cudaMemAccessFlagsProtReadWrite;
  if (cudaDeviceGetDefaultMemPool(&pool, other.device_) != cudaSuccess || cudaMemPoolSetAccess(pool, &access, 1) != cudaSuccess) cudaGetLastError();
}

bool CudaBackend::copy_from(Backend& from, float* dst, const float* src, size_t n) {
  auto* other = dynamic_cast<CudaBackend*>(&from);
  if (!other) return false;
  use();
  connect(*other);
  // Ordered after the source's queued work; the source's stream then waits for the read, so a
  // buffer it frees next is not reused while the copy still reads it.
  other->use();
  cuda::check(cudaEventRecord(other->crossed_, other->s()), "cross (record)");
  use();
  cuda::check(cudaStreamWaitEvent(s(), other->crossed_, 0), "cross (wait)");
  cuda::check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDefault, s()), "copy between GPUs");
  cuda::check(cudaEventRecord(crossed_, s()), "cross (record)");
  cuda::check(cudaStreamWaitEvent(other->s(), crossed_, 0), "cross (wait)");
  return true;
}

void CudaBackend::wait_for(Backend& from) {
  auto* other = dynamic_cast<CudaBackend*>(&from);
  if (!other || other == this) return;
  other->use();
  cuda::check(cudaEventRecord(other->crossed_, other->s()), "join (record)");
  use();
  cuda::check(cudaStreamWaitEvent(s(), other->crossed_, 0), "join (wait)");
}

float* CudaBackend::receive(Backend& from, const float* src, size_t n) {
  auto* other = dynamic_cast<CudaBackend*>(&from);
  if (!other) return nullptr;
  use();
  connect(*other);
  other->use();
  other->connect(*this);
  // Allocated from this GPU's pool but in the source's stream order, and copied there: the
  // source never waits for this GPU's queue (which may still hold an earlier part of a pipelined
  // batch), and this stream waits only for the copy.
  cudaMemPool_t pool = nullptr;
  void* p = nullptr;
  const size_t bytes = std::max<size_t>(n, 1) * sizeof(float);
  cuda::check(cudaDeviceGetDefaultMemPool(&pool, device_), "cudaDeviceGetDefaultMemPool");
  cuda::check(cudaMallocFromPoolAsync(&p, bytes, pool, other->s()), "cudaMallocFromPoolAsync (between GPUs)");
  // (A plain copy between the peers' addresses: a stream capture may hold it, where it refuses
  // cudaMemcpyPeerAsync; expert parallelism crosses inside a recorded step.)
  cuda::check(cudaMemcpyAsync(p, src, n * sizeof(float), cudaMemcpyDefault, other->s()), "copy between GPUs");
  cuda::check(cudaEventRecord(other->crossed_, other->s()), "cross (record)");
  use();
  cuda::check(cudaStreamWaitEvent(s(), other->crossed_, 0), "cross (wait)");
  return static_cast<float*>(p);
}

void CudaBackend::begin_side() {
  use();
  cuda::check(cudaEventRecord(fork_, s()), "fork");
  stream_ = side_stream_.get(), matmul_ = side_matmul_.get();
  cuda::check(cudaStreamWaitEvent(s(), fork_, 0), "fork");
}

float* CudaBackend::alloc(size_t n) {
  use();
  void* p = nullptr;
  cuda::check(cudaMallocAsync(&p, std::max<size_t>(n, 1) * sizeof(float), s()), "cudaMallocAsync (activations)");
  return static_cast<float*>(p);
}

void CudaBackend::download(float* dst, const float* src, size_t n) {
  use();
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

cpu::WeightView CudaBackend::place(const cpu::WeightView& w) {
  use();
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

const float* CudaBackend::place(const std::vector<float>& v) {
  use();
  if (v.empty()) return nullptr;
  weight_bytes_ += v.size() * sizeof(float);
  return static_cast<const float*>(device_copy(v.data(), v.size() * sizeof(float), "weights"));
}

void CudaBackend::begin(const Batch& b) {
  use();
  batch_ = &b;
  const size_t n = b.size();
  if (meta_cap_ < n) {
    if (meta_) cudaFree(meta_);
    ++reallocations_;  // recorded steps hold the old pointer
    meta_cap_ = std::max<size_t>(n, 512);
    cuda::check(cudaMalloc(reinterpret_cast<void**>(&meta_), 2 * meta_cap_ * sizeof(int32_t)), "cudaMalloc (batch)");
  }
  int32_t last = 0;
  for (int32_t q : b.pos) last = std::max(last, q);
  attention_band_ = cuda::ops::attention_band(int64_t{last} + 1);
  upload_i32(meta_, b.pos.data(), n);
  upload_i32(meta_ + meta_cap_, b.seq.data(), n);
  // A step of several sequences (the server's streams, with a new prompt's chunk among them)
  // takes the tensor-core products that read each weight once for all tokens; one sequence's
  // prompt chunks keep the decode kernels, which round as the CPU engine does (docs/PERFORMANCE.md).
  const bool several = b.several_sequences();
  main_matmul_->set_many_sequences(several);
  side_matmul_->set_many_sequences(several);
}

void CudaBackend::embed(const cpu::WeightView& table, const std::vector<int32_t>& tokens, float* out) {
  use();
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

void CudaBackend::matmuls(std::initializer_list<Product> products, const float* x, int64_t n) {
  use();
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

void CudaBackend::norm_matmuls(float* x, const float* h, const float* w, float* normed, int64_t n, int64_t dim, float eps,
                               std::initializer_list<Product> products) {
  use();
  const int kind = rounded_kind(products, n, dim);
  if (!kind) return Backend::norm_matmuls(x, h, w, normed, n, dim, eps, products);
  OpProfile::Scope scope_(&prof_, "norm_matmuls", s());
  const auto r = matmul_->rounded_buffer(static_cast<size_t>(n * dim));
  cuda::ops::norm_round(x, h, w, normed, n, dim, eps, kind, r.q, r.rec, stream_->handle());
  run_rounded(products, r, n);
}

void CudaBackend::swiglu_matmul(float* gate, const float* up, int64_t n, int64_t n_ff, const cpu::WeightView& down, float* out) {
  use();
  const int kind = rounded_kind({{&down, out}}, n, n_ff);
  if (!kind) return Backend::swiglu_matmul(gate, up, n, n_ff, down, out);
  OpProfile::Scope scope_(&prof_, "swiglu_matmul", s());
  const auto r = matmul_->rounded_buffer(static_cast<size_t>(n * n_ff));
  cuda::ops::silu_mul_round(gate, up, n * n_ff, kind, r.q, r.rec, stream_->handle());
  run_rounded({{&down, out}}, r, n);
}

void CudaBackend::attention_inputs(const AttentionInputs& a, int layer) {
  use();
  OpProfile::Scope scope_(&prof_, "attention_inputs", s());
  // Per-head norms (qwen3) or odd head sizes take the separate ops.
  if (a.q_norm || a.k_norm || a.head_dim % 2 || a.rope->n_rot > a.head_dim) return Backend::attention_inputs(a, layer);
  const cuda::ops::QkvParams p{a.n_head, a.n_head_kv, a.head_dim, a.head_dim_v, n_ctx_, a.bq, a.bk, a.bv};
  cuda::ops::qkv_into_cache(rope_params(*a.rope), p, a.q, a.k, a.v, a.n, meta_ + meta_cap_, meta_, cache_k(layer),
                            v_[static_cast<size_t>(layer)], stream_->handle());
}

void CudaBackend::init_cache(int n_layer, int n_seq, int n_ctx, int k_width, int v_width, GgmlType type, const std::vector<uint8_t>& here) {
  use();
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

void CudaBackend::store_kv(int layer, const float* k, const float* v, int64_t n) {
  use();
  const int32_t *pos = meta_, *seq = meta_ + meta_cap_;
  cuda::ops::store_rows_f16(cache_k(layer), k, n, k_width_, seq, pos, n_ctx_, stream_->handle());
  if (v) cuda::ops::store_rows_f16(v_.at(static_cast<size_t>(layer)), v, n, v_width_, seq, pos, n_ctx_, stream_->handle());
}

void CudaBackend::mla_inputs(const MlaInputs& m, int layer) {
  use();
  OpProfile::Scope scope_(&prof_, "mla_inputs", s());
  if (m.kv_lora + m.n_rot != k_width_ || v_width_ != 0) throw Error("mla_inputs: the cache rows are not [latent | k_pe]");
  const cuda::ops::MlaParams mp{m.n_head, m.head_k, m.nope, m.kv_lora, m.n_rot, n_ctx_, m.eps};
  cuda::ops::mla_inputs(rope_params(*m.rope), mp, m.q, m.kv, m.qa, m.kv_norm, m.n, meta_ + meta_cap_, meta_, cache_k(layer),
                        stream_->handle());
}

void CudaBackend::attention(const AttentionShape& sh, const float* q, int64_t q_stride, int layer, float* out) {
  use();
  OpProfile::Scope scope_(&prof_, "attention", s());
  cuda::ops::AttentionParams p{sh.n_head, sh.n_head_kv, sh.dk, sh.dv, sh.scale, n_ctx_, k_width_, v_width_, sh.v_in_k, attention_band_};
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

cpu::WeightView CudaBackend::place_experts(const cpu::WeightView& w, int n_expert) {
  use();
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

void CudaBackend::head_matmuls(const HeadProducts& p) {
  use();
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

void CudaBackend::head_matmuls_one_by_one(const HeadProducts& p) {
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

void CudaBackend::copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t width) {
  use();
  if (rows <= 0 || width <= 0) return;
  cuda::check(cudaMemcpy2DAsync(dst, dst_stride * sizeof(float), src, src_stride * sizeof(float), width * sizeof(float), rows,
                                cudaMemcpyDeviceToDevice, s()),
              "copy_rows");
}

bool CudaBackend::reserve_pinned(size_t bytes) {
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

const float* CudaBackend::device_vector(const std::vector<float>& v) {
  if (v.empty()) return nullptr;
  auto it = vectors_.find(v.data());
  if (it == vectors_.end()) it = vectors_.emplace(v.data(), place(v)).first;
  return it->second;
}

int CudaBackend::rounded_kind(std::initializer_list<Product> products, int64_t n, int64_t cols) const {
  if (n < 1 || n > cuda::Matmul::kMaxGemvTokens || products.size() == 0 || products.size() > 8) return 0;
  const int kind = cuda::Matmul::rounding_kind(products.begin()->w->type);
  for (const auto& p : products)
    if (cuda::Matmul::rounding_kind(p.w->type) != kind || p.w->cols != cols || p.w->rows <= 0) return 0;
  return cols % cuda::ops::rounding_block(kind) == 0 ? kind : 0;
}

void CudaBackend::run_rounded(std::initializer_list<Product> products, const cuda::Matmul::Rounded& r, int64_t n) {
  const cpu::WeightView* ws[8];
  float* ys[8];
  int count = 0;
  for (const auto& p : products) ws[count] = p.w, ys[count++] = p.y;
  matmul_->run_rounded(ws, ys, count, r, n);
}

bool CudaBackend::capture_begin() {
  use();
  if (std::getenv("JING_NO_CUDA_GRAPHS") || prof_.on) return false;
  capture_generation_ = buffers_generation();
  if (cudaStreamBeginCapture(s(), cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return true;
}

void CudaBackend::capture_end(int key) {
  use();
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  const bool ok = cudaStreamEndCapture(s(), &graph) == cudaSuccess && graph && buffers_generation() == capture_generation_ &&
                  cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
  if (graph) cudaGraphDestroy(graph);
  if (!ok || key == kDiscard) {
    if (exec) cudaGraphExecDestroy(exec);
    cudaGetLastError();
    return;
  }
  if (auto it = graphs_.find(key); it != graphs_.end()) cudaGraphExecDestroy(it->second.first);
  graphs_[key] = {exec, capture_generation_};
}

bool CudaBackend::replay(int key) {
  use();
  auto it = graphs_.find(key);
  if (it == graphs_.end()) return false;
  if (it->second.second != buffers_generation()) {  // stale: the caller records it again
    cudaGraphExecDestroy(it->second.first);
    graphs_.erase(it);
    return false;
  }
  return cudaGraphLaunch(it->second.first, s()) == cudaSuccess;
}

cuda::ops::RopeParams CudaBackend::rope_params(const Rope& r) {
  cuda::ops::RopeParams p;
  p.n_rot = r.n_rot, p.neox = r.neox, p.freq_scale = r.freq_scale, p.ext_factor = r.ext_factor;
  p.theta_scale = r.theta_scale(), p.mscale = r.mscale();
  r.yarn_corr_dims(p.corr_low, p.corr_high);
  p.freq_factors = device_vector(r.freq_factors);
  return p;
}

uint16_t* CudaBackend::cache_k(int layer) const {
  uint16_t* k = k_.at(static_cast<size_t>(layer));
  if (!k) throw Error("CUDA: layer " + std::to_string(layer) + " has no KV cache on " + name_ + " (it runs on another device)");
  return k;
}

void* CudaBackend::device_alloc(size_t bytes, const char* what) {
  void* p = nullptr;
  if (cudaMalloc(&p, std::max<size_t>(bytes, 1)) != cudaSuccess) {
    cudaGetLastError();
    throw Error(std::string("not enough GPU memory on ") + name_ + " for the " + what + " (" + gib(bytes) + " more, " +
                gib(cuda::memory_info(device_).free) + " free, " + gib(weight_bytes_) + " of weights placed); lower --n-gpu-layers");
  }
  owned_.push_back(p);
  return p;
}

void* CudaBackend::device_copy(const void* src, size_t bytes, const char* what) {
  void* p = device_alloc(bytes, what);
  cuda::check(cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice), "upload of weights");
  return p;
}

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
