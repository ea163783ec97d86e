// GPU matrix products over weights kept on the device in their GGUF block format (the contract
// of src/cpu/matmul.h, with device pointers).
#pragma once
#include <cstdint>
#include <memory>

#include "cpu/matmul.h"
#include "cuda/device.h"
#include "cuda/gemv_batch.h"
#include "quant/types.h"

namespace jing::cuda {

// As cpu::WeightView; `data` is a device pointer.
using WeightView = cpu::WeightView;

bool supports(GgmlType type);

// y[m][n] = sum_k W[n][k] x[m][k] for m < n_tokens; x [n_tokens][cols] and y [n_tokens][rows]
// float32 in device memory. Few tokens read the weights in their format, up to kMaxGemvTokens
// per pass (activations rounded to 8-bit blocks as the CPU engine does); more tokens expand the
// weights to f16 panels and multiply with cuBLAS. Owns the cuBLAS handle and scratch memory of its
// stream; calls are asynchronous on that stream.
class Matmul {
 public:
  static constexpr int kMaxGemvTokens = 8;
  // run() takes the decode path up to this many tokens for block formats, up to kMaxGemvTokens
  // for float weights. Up to 16 tokens two passes beat expanding to f16 on an H200
  // (docs/PERFORMANCE.md); up to 64 the decode path is kept for its rounding: it is the CPU
  // engine's (8-bit activation blocks, exact integer dots), where f16 weights move quantized
  // models' logits by 2-4e-2. It costs little where batches of that size come from (32 server
  // streams: 4 passes ~ one f16 product); prompts of more tokens take the matrix path.
  static constexpr int kGemvTokensBlockFormats = 64;

  explicit Matmul(const Stream& stream);
  ~Matmul();
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  void run(const WeightView& w, const float* x, int64_t n_tokens, float* y);
  // ys[i] = ws[i] x for products sharing one input (q, k, v; gate, up): on the decode path the
  // activations are rounded once for all of them.
  void run_same_input(const WeightView* const* ws, float* const* ys, int count, const float* x, int64_t n_tokens);
  // The decode path in two steps, for kernels that round their own output on the way out (the
  // norm before q/k/v, SwiGLU before the down product): rounding_kind(type) is the 8-bit block
  // kind a weight type takes (fmt::Act: 0 = none, float weights), rounded_buffer() the scratch
  // to round n values into, run_rounded() the products of up to kMaxGemvTokens rounded tokens.
  static int rounding_kind(GgmlType type);
  struct Rounded {
    int8_t* q;
    void* rec;
  };
  Rounded rounded_buffer(size_t n_values);
  void run_rounded(const WeightView* const* ws, float* const* ys, int count, const Rounded& x, int64_t n_tokens);
  // Several products of one token each in one launch per weight (see GemvBatch): ws[i] is the
  // first matrix of a [n_mats][rows][cols] tensor, x holds x_rows activation rows, ys[i] the
  // outputs. The weights share one activation rounding. b.mat_bytes is taken from each weight.
  void run_batched(const WeightView* const* ws, float* const* ys, int count, GemvBatch b, const float* x, int64_t x_rows);
  // The same over activations already rounded (rounded_buffer(), for block-format weights).
  void run_batched_rounded(const WeightView* const* ws, float* const* ys, int count, GemvBatch b, const Rounded& x);
  // Many tokens grouped by matrix (a prompt's tokens sorted by expert) on the tensor cores:
  // x_half = to_half(type, x, n) (rounded as the matrix path rounds), items as GemvBatch's
  // grouped items with up to grouped_item_rows() rows each, y rows at first row * y_stride.
  static bool grouped_supported(GgmlType type);
  static int grouped_item_rows();
  const void* to_half(GgmlType type, const float* x, size_t n_values);
  void run_grouped(const WeightView& w, const int32_t* items, int n_items, const void* x_half, float* y, int64_t y_stride);
  // Per-head products of many tokens (MLA's absorbed heads) in one batched cuBLAS call: y_h = W_h
  // x_h for the n_heads matrices back to back from w, x_h at x + h * x_head (token rows x_stride
  // apart), y_h at y + h * y_head (rows y_stride apart). False where run() would take the decode
  // path (kGemvTokensBlockFormats tokens or fewer; f16: kMaxGemvTokens) and for shapes it does not take (activation
  // blocks across heads, padded rows, bf16/f32 weights): the caller goes head by head.
  bool run_heads(const WeightView& w, int n_heads, const float* x, int64_t x_stride, int64_t x_head, int64_t n, float* y, int64_t y_stride,
                 int64_t y_head);
  // The two paths, for tests and benchmarks (run() picks by token count).
  void run_gemv(const WeightView& w, const float* x, int64_t n_tokens, float* y);
  void run_gemm(const WeightView& w, const float* x, int64_t n_tokens, float* y);
  // Whether the tokens of the next calls belong to several sequences (a batched decode step):
  // then 9-64 tokens take run_few (f16 weights on the tensor cores), else the decode kernels.
  void set_many_sequences(bool on) { many_sequences_ = on; }
  static bool few_supported(const WeightView& w);
  void run_few(const WeightView& w, const float* x, int64_t n_tokens, float* y);

 private:
  Rounded round(int kind, const float* x, size_t n_values);  // rounded_buffer() filled with x
  void launch_batched(const WeightView* const* ws, float* const* ys, int count, GemvBatch b, const int8_t* xq, const void* xrec, const float* x);
  struct State;
  std::unique_ptr<State> s_;
  bool many_sequences_ = false;
};

// n_rows rows of `cols` weights (stored back to back, row_size(type, cols) bytes each) to float32
// in device memory, bit-identical to the CPU's dequantize_row. Asynchronous on the stream.
void dequantize_rows(GgmlType type, const void* src, float* dst, int64_t n_rows, int64_t cols, const Stream& stream);
// Rows ids[0..n) (device memory) of a table whose rows are row_bytes apart, the same way.
void dequantize_gather(GgmlType type, const void* table, size_t row_bytes, const int32_t* ids, int64_t n, int64_t cols, float* dst,
                       const Stream& stream);

}  // namespace jing::cuda
