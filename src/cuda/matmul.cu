// cuda::Matmul: picks the decode kernels (few tokens) or f16 panels + cuBLAS (many tokens).
#include "cuda/matmul.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "cuda/check.h"
#include "cuda/formats.cuh"
#include "cuda/kernels.h"

namespace jing::cuda {
namespace {

void check_blas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) throw Error(std::string("cuBLAS: ") + what + " failed (status " + std::to_string(static_cast<int>(st)) + ")");
}

// The f16 copy of the weights is made a panel of rows at a time, so scratch stays bounded.
// (Expanding panel p + 1 on a side stream while panel p multiplies was measured slower on an
// H200: the expansion fills the SMs, and smaller products lose more than the overlap gains.)
constexpr size_t kPanelBytes = size_t{128} << 20;

}  // namespace

bool supports(GgmlType t) {
  return detail::activation_kind(t) == fmt::Act::F32 ? (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16)
                                                      : fmt::with_format(t, [](auto) {});
}

struct Matmul::State {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  DeviceBuffer act;    // quantized activations / f16 or bf16 activations
  DeviceBuffer panel;  // f16 weights
  DeviceBuffer half_x;  // f16 activations of the tensor-core path
  fmt::Tables tab;
  ~State() {
    if (blas) cublasDestroy(blas);
  }
};

Matmul::Matmul(const Stream& stream) : s_(std::make_unique<State>()) {
  s_->stream = static_cast<cudaStream_t>(stream.handle());
  s_->tab = detail::device_tables();
  check_blas(cublasCreate(&s_->blas), "cublasCreate");
  check_blas(cublasSetStream(s_->blas, s_->stream), "cublasSetStream");
}

Matmul::~Matmul() = default;

namespace {

// The decode kernel of the call's format family.
void launch_gemv(const detail::GemvCall& c, cudaStream_t s) {
  if (!detail::gemv_legacy(c, s) && !detail::gemv_kquant(c, s) && !detail::gemv_iq(c, s) && !detail::gemv_other(c, s))
    throw Error("CUDA matmul: no decode kernel for tensor type " + std::string(traits(c.type).name));
}

void validate(const WeightView& w, int64_t n_tokens) {
  if (!supports(w.type)) throw Error("CUDA matmul: no kernel for tensor type " + std::string(traits(w.type).name));
  if (w.cols % traits(w.type).block_size)
    throw Error("CUDA matmul: row length is not a multiple of the block size");
  if (w.row_bytes < row_size(w.type, w.cols)) throw Error("CUDA matmul: row_bytes shorter than a row");
  if (n_tokens < 0) throw Error("CUDA matmul: negative token count");
}

}  // namespace

void Matmul::run(const WeightView& w, const float* x, int64_t n_tokens, float* y) {
  const bool float_weights = detail::activation_kind(w.type) == fmt::Act::F32;
  if (n_tokens <= kMaxGemvTokens) run_gemv(w, x, n_tokens, y);
  else if (float_weights || n_tokens > kGemvTokensBlockFormats) run_gemm(w, x, n_tokens, y);
  else if (many_sequences_ && few_supported(w)) run_few(w, x, n_tokens, y);
  else run_gemv(w, x, n_tokens, y);  // 8 tokens at a time
}

int Matmul::rounding_kind(GgmlType type) { return static_cast<int>(detail::activation_kind(type)); }

Matmul::Rounded Matmul::rounded_buffer(size_t n) {
  s_->act.reserve(n + n / 32 * 16);
  return {s_->act.as<int8_t>(), s_->act.as<uint8_t>() + n};  // n is a multiple of 32: the records stay 16-byte aligned
}

Matmul::Rounded Matmul::round(int kind, const float* x, size_t n) {
  const Rounded r = rounded_buffer(n);
  detail::quantize_activations(static_cast<fmt::Act>(kind), x, static_cast<int64_t>(n), r.q, r.rec, s_->stream);
  return r;
}

void Matmul::run_same_input(const WeightView* const* ws, float* const* ys, int count, const float* x, int64_t n_tokens) {
  bool shared = count > 1 && n_tokens >= 1 && n_tokens <= kMaxGemvTokens;
  const fmt::Act kind = shared ? detail::activation_kind(ws[0]->type) : fmt::Act::F32;
  for (int i = 0; shared && i < count; ++i)
    shared = kind != fmt::Act::F32 && detail::activation_kind(ws[i]->type) == kind && ws[i]->cols == ws[0]->cols && ws[i]->rows > 0;
  if (!shared) {
    for (int i = 0; i < count; ++i) run(*ws[i], x, n_tokens, ys[i]);
    return;
  }
  run_rounded(ws, ys, count, round(static_cast<int>(kind), x, static_cast<size_t>(n_tokens) * static_cast<size_t>(ws[0]->cols)), n_tokens);
}

void Matmul::run_rounded(const WeightView* const* ws, float* const* ys, int count, const Rounded& x, int64_t n_tokens) {
  for (int i = 0; i < count; ++i) validate(*ws[i], n_tokens);
  if (n_tokens < 1 || n_tokens > kMaxGemvTokens) throw Error("CUDA matmul: rounded activations of 1 to 8 tokens only");
  // Weights of one format and row size go out in one launch, up to kMaxGemvParts at a time.
  bool done[8] = {};
  for (int i = 0; i < count && i < 8; ++i) {
    if (done[i]) continue;
    const WeightView& w = *ws[i];
    detail::GemvCall c{w.type, w.data, w.row_bytes, w.rows, w.cols, x.q, x.rec, nullptr, static_cast<int>(n_tokens), ys[i], s_->tab};
    for (int j = i; j < count && j < 8 && c.parts.count < kMaxGemvParts; ++j) {
      if (done[j] || ws[j]->type != w.type || ws[j]->row_bytes != w.row_bytes) continue;
      c.parts.part[c.parts.count++] = {ws[j]->data, ws[j]->rows, ys[j]};
      done[j] = true;
    }
    if (c.parts.count == 1) c.parts.count = 0;
    launch_gemv(c, s_->stream);
  }
}

namespace {

// The activation kind all weights of a batched call share (validated: same kind and columns).
fmt::Act batched_kind(const WeightView* const* ws, int count) {
  const fmt::Act kind = detail::activation_kind(ws[0]->type);
  for (int i = 0; i < count; ++i) {
    validate(*ws[i], 1);
    if (detail::activation_kind(ws[i]->type) != kind || ws[i]->cols != ws[0]->cols)
      throw Error("CUDA matmul: batched weights of one call take the same activations");
  }
  return kind;
}

}  // namespace

void Matmul::launch_batched(const WeightView* const* ws, float* const* ys, int count, GemvBatch b, const int8_t* xq, const void* xrec,
                            const float* x) {
  for (int i = 0; i < count; ++i) {
    const WeightView& w = *ws[i];
    b.mat_bytes = static_cast<int64_t>(w.rows) * static_cast<int64_t>(w.row_bytes);
    detail::GemvCall c{w.type, w.data, w.row_bytes, w.rows, w.cols, xq, xrec, x, 1, ys[i], s_->tab, b};
    launch_gemv(c, s_->stream);
  }
}

void Matmul::run_batched(const WeightView* const* ws, float* const* ys, int count, GemvBatch b, const float* x, int64_t x_rows) {
  if (count <= 0 || b.count <= 0) return;
  const fmt::Act kind = batched_kind(ws, count);
  if (kind == fmt::Act::F32) return launch_batched(ws, ys, count, b, nullptr, nullptr, x);
  const Rounded r = round(static_cast<int>(kind), x, static_cast<size_t>(x_rows) * static_cast<size_t>(ws[0]->cols));
  launch_batched(ws, ys, count, b, r.q, r.rec, nullptr);
}

void Matmul::run_batched_rounded(const WeightView* const* ws, float* const* ys, int count, GemvBatch b, const Rounded& x) {
  if (count <= 0 || b.count <= 0) return;
  if (batched_kind(ws, count) == fmt::Act::F32) throw Error("CUDA matmul: rounded activations are for block-format weights");
  launch_batched(ws, ys, count, b, x.q, x.rec, nullptr);
}

void Matmul::run_gemv(const WeightView& w, const float* x, int64_t n_tokens, float* y) {
  validate(w, n_tokens);
  if (n_tokens == 0 || w.rows == 0) return;
  const fmt::Act kind = detail::activation_kind(w.type);
  detail::GemvCall c{w.type, w.data, w.row_bytes, w.rows, w.cols, nullptr, nullptr, x, 0, y, s_->tab};
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxGemvTokens) {  // more than 8 tokens: 8 at a time
    c.n_tokens = static_cast<int>(std::min<int64_t>(kMaxGemvTokens, n_tokens - t0));
    c.x = x + t0 * w.cols;
    c.y = y + t0 * w.rows;
    if (kind != fmt::Act::F32) {
      const Rounded r = round(static_cast<int>(kind), c.x, static_cast<size_t>(c.n_tokens) * static_cast<size_t>(w.cols));
      c.xq = r.q, c.xrec = r.rec;
    }
    launch_gemv(c, s_->stream);
  }
}

// The tensor-core path for 9-64 tokens takes block formats at their blocks' own alignment.
bool Matmul::few_supported(const WeightView& w) {
  static const bool off = std::getenv("JING_MMV_OFF") != nullptr;  // measurement switch: 8 tokens at a time instead
  const auto align = static_cast<size_t>(fmt::gcd16(static_cast<int>(traits(w.type).type_size)));  // the formats' kAlign
  return !off && detail::mma_f16_supported(w.type) && (reinterpret_cast<uintptr_t>(w.data) | w.row_bytes) % align == 0;
}

void Matmul::run_few(const WeightView& w, const float* x, int64_t n_tokens, float* y) {
  validate(w, n_tokens);
  if (n_tokens == 0 || w.rows == 0) return;
  const void* xh = to_half(w.type, x, static_cast<size_t>(n_tokens * w.cols));
  const detail::MmaCall c{w.type, w.data, w.row_bytes, w.rows, w.cols, 0, xh, y, w.rows, nullptr, n_tokens, s_->tab};
  detail::mmv_f16(c, static_cast<int>(n_tokens), static_cast<int>((n_tokens + 63) / 64), s_->stream);
}

bool Matmul::grouped_supported(GgmlType type) { return detail::mma_f16_supported(type); }
int Matmul::grouped_item_rows() { return detail::mma_f16_token_tile(); }

const void* Matmul::to_half(GgmlType type, const float* x, size_t n) {
  const fmt::Act kind = detail::activation_kind(type);
  s_->half_x.reserve(n * 2);
  if (kind == fmt::Act::F32) {
    detail::float_to_half(x, s_->half_x.data(), static_cast<int64_t>(n), s_->stream);
  } else {
    const Rounded r = round(static_cast<int>(kind), x, n);
    detail::q8_to_half(r.q, r.rec, s_->half_x.data(), static_cast<int64_t>(n), s_->stream);
  }
  return s_->half_x.data();
}

void Matmul::run_grouped(const WeightView& w, const int32_t* items, int n_items, const void* x_half, float* y, int64_t y_stride) {
  validate(w, 1);
  if (n_items <= 0 || w.rows == 0) return;
  const detail::MmaCall c{w.type, w.data, w.row_bytes, w.rows, w.cols, static_cast<int64_t>(w.rows) * static_cast<int64_t>(w.row_bytes),
                          x_half, y, y_stride, items, 0, s_->tab};
  detail::mma_f16(c, n_items, s_->stream);
}

bool Matmul::run_heads(const WeightView& w, int n_heads, const float* x, int64_t x_stride, int64_t x_head, int64_t n, float* y, int64_t y_stride,
                       int64_t y_head) {
  const fmt::Act kind = detail::activation_kind(w.type);
  const int64_t block = kind == fmt::Act::Q8_K ? 256 : kind == fmt::Act::F32 ? 1 : 32, K = w.cols, N = w.rows;
  const bool f16 = w.type == GgmlType::F16;
  // Up to kGemvTokensBlockFormats tokens (f16 weights: kMaxGemvTokens) the decode kernels keep the
  // CPU engine's 8-bit rounding, as run() does for every product (f16 moved the quantized
  // fixtures' logits by 2-3e-2).
  if (n <= (f16 ? kMaxGemvTokens : kGemvTokensBlockFormats) || (kind == fmt::Act::F32 && !f16) || K % block || x_head % block || x_stride % block ||
      w.row_bytes != row_size(w.type, K) || n_heads < 1)
    return false;
  validate(w, n);
  const void* xh = to_half(w.type, x, static_cast<size_t>(n * x_stride));  // whole rows: each head's blocks are its own
  const void* a = w.data;
  if (!f16) {
    s_->panel.reserve(static_cast<size_t>(n_heads * N * K * 2));
    detail::dequantize(w.type, w.data, w.row_bytes, n_heads * N, K, s_->panel.data(), true, s_->tab, s_->stream);
    a = s_->panel.data();
  }
  const float one = 1.f, zero = 0.f;
  check_blas(cublasGemmStridedBatchedEx(s_->blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(n), static_cast<int>(K), &one, a,
                                        CUDA_R_16F, static_cast<int>(K), N * K, xh, CUDA_R_16F, static_cast<int>(x_stride), x_head, &zero, y,
                                        CUDA_R_32F, static_cast<int>(y_stride), y_head, n_heads, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             "cublasGemmStridedBatchedEx");
  return true;
}

void Matmul::run_gemm(const WeightView& w, const float* x, int64_t n_tokens, float* y) {
  validate(w, n_tokens);
  if (n_tokens == 0 || w.rows == 0) return;
  const int64_t N = w.rows, K = w.cols, T = n_tokens;
  const size_t n = static_cast<size_t>(T * K);
  const float one = 1.f, zero = 0.f;
  // Column-major view: Y (N x T, ld N) = W^T (W is K x N, ld K) * X (K x T, ld K).
  auto gemm = [&](const void* a, int64_t lda, cudaDataType at, const void* b, cudaDataType bt, float* c, int64_t m, const float* beta) {
    check_blas(cublasGemmEx(s_->blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m), static_cast<int>(T), static_cast<int>(K), &one, a, at,
                            static_cast<int>(lda), b, bt, static_cast<int>(K), beta, c, CUDA_R_32F, static_cast<int>(N), CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
  };
  const bool dense_rows = w.row_bytes == row_size(w.type, K);
  if (w.type == GgmlType::F32 && dense_rows) {
    check_blas(cublasSgemm(s_->blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(T), static_cast<int>(K), &one,
                           static_cast<const float*>(w.data), static_cast<int>(K), x, static_cast<int>(K), &zero, y, static_cast<int>(N)),
               "cublasSgemm");
    return;
  }
  if (w.type == GgmlType::F16 && dense_rows) {
    gemm(w.data, K, CUDA_R_16F, to_half(w.type, x, n), CUDA_R_16F, y, N, &zero);
    return;
  }
  if (w.type == GgmlType::BF16 && dense_rows) {
    // bf16 keeps 8 bits: x as hi + lo (two products, the second accumulated) keeps the
    // activations' precision, so only the weights' own rounding remains.
    s_->act.reserve(n * 4);
    void* hi = s_->act.data();
    void* lo = s_->act.as<uint8_t>() + n * 2;
    detail::float_to_bf16_split(x, hi, lo, static_cast<int64_t>(n), s_->stream);
    gemm(w.data, K, CUDA_R_16BF, hi, CUDA_R_16BF, y, N, &zero);
    gemm(w.data, K, CUDA_R_16BF, lo, CUDA_R_16BF, y, N, &one);
    return;
  }
  const void* xh = to_half(w.type, x, n);
  if (dense_rows && std::getenv("JING_MMA_DENSE") && detail::mma_f16_supported(w.type)) {  // measurement switch
    const detail::MmaCall c{w.type, w.data, w.row_bytes, N, K, 0, xh, y, N, nullptr, T, s_->tab};
    detail::mma_f16(c, static_cast<int>((T + detail::mma_f16_token_tile() - 1) / detail::mma_f16_token_tile()), s_->stream);
    return;
  }
  // Block formats (and float rows with padding): activations rounded as the decode path does
  // (so both paths and the CPU agree), to f16 (xh above); weights to f16 a panel of rows at a time.
  const int64_t panel_rows = std::max<int64_t>(128, static_cast<int64_t>(kPanelBytes / (static_cast<size_t>(K) * 2)) / 128 * 128);
  s_->panel.reserve(static_cast<size_t>(std::min(panel_rows, N) * K * 2));
  for (int64_t r0 = 0; r0 < N; r0 += panel_rows) {
    const int64_t nr = std::min(panel_rows, N - r0);
    detail::dequantize(w.type, static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes, w.row_bytes, nr, K, s_->panel.data(), true, s_->tab,
                       s_->stream);
    gemm(s_->panel.data(), K, CUDA_R_16F, xh, CUDA_R_16F, y + r0, nr, &zero);
  }
}

}  // namespace jing::cuda
