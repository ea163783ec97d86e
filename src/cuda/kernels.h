// The kernel launchers behind cuda::Matmul and cuda::dequantize_rows (internal to src/cuda).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuda/format_util.cuh"
#include "cuda/gemv_batch.h"
#include "quant/types.h"

namespace jing::cuda::detail {

// The IQ/FP4 lookup tables on the current device, copied there on first use.
fmt::Tables device_tables();
int sm_count();  // of the current device

// Activations rounded to 8 bits as the CPU engine does for weight type `weight`:
// q[n][cols] and one 16-byte record {d, s, sum0, sum1} per 32 values.
fmt::Act activation_kind(GgmlType weight);
void quantize_activations(fmt::Act kind, const float* x, int64_t n_values, int8_t* q, void* rec, cudaStream_t s);
// The rounded values q * d as f16 (the matrix path's activations).
void q8_to_half(const int8_t* q, const void* rec, void* out, int64_t n_values, cudaStream_t s);
void float_to_half(const float* x, void* out, int64_t n_values, cudaStream_t s);
// x = hi + lo with both bfloat16: products with bf16 weights through two bf16 GEMMs keep ~16 bits.
void float_to_bf16_split(const float* x, void* hi, void* lo, int64_t n_values, cudaStream_t s);

// rows x cols weights (rows row_bytes apart) to float or f16, dst row-major with `cols` per row.
bool dequantize(GgmlType type, const void* src, size_t row_bytes, int64_t rows, int64_t cols, void* dst, bool to_half,
                const fmt::Tables& tab, cudaStream_t s);

// Rows ids[0..n) of a table (row_bytes apart) to float, dst [n][cols].
bool dequantize_gather(GgmlType type, const void* table, size_t row_bytes, const int32_t* ids, int64_t n, int64_t cols, float* dst,
                       const fmt::Tables& tab, cudaStream_t s);

// y[n][rows] = W x for n_tokens <= 8; false for types the family does not hold.
struct GemvCall {
  GgmlType type;
  const void* w;
  size_t row_bytes;
  int64_t rows, cols;
  const int8_t* xq;   // quantized activations (block formats)
  const void* xrec;
  const float* x;     // float activations (float formats)
  int n_tokens;
  float* y;
  fmt::Tables tab;
  GemvBatch batch = {};  // several products of one token each (n_tokens == 1)
  GemvParts parts = {};  // several weights of this format (block formats only): w, rows, y unused
};
bool gemv_legacy(const GemvCall& c, cudaStream_t s);
bool gemv_kquant(const GemvCall& c, cudaStream_t s);
bool gemv_iq(const GemvCall& c, cudaStream_t s);
bool gemv_other(const GemvCall& c, cudaStream_t s);

// y = W x on the tensor cores for many tokens (mma_f16.cu): x f16 [rows of activations][cols].
// Dense: blockIdx.y takes mma_f16_token_tile() tokens of n_tokens, y [n_tokens][y_stride].
// Grouped: items[3 i ..] = {matrix, first row, rows (<= the token tile)}, as GemvBatch's.
struct MmaCall {
  GgmlType type;
  const void* w;
  size_t row_bytes;
  int64_t rows, cols;
  int64_t mat_bytes;  // grouped: from one matrix to the next
  const void* x;       // __half
  float* y;
  int64_t y_stride;
  const int32_t* items;  // null: dense
  int64_t n_tokens;      // dense
  fmt::Tables tab;
};
bool mma_f16_supported(GgmlType type);
void mma_f16(const MmaCall& c, int n_blocks_y, cudaStream_t s);
int mma_f16_token_tile();
// The same for up to 64 tokens per block (mmv_f16.cu): each weight read once for all of them, for
// batched decode (run_few: dense, blockIdx.y takes 64 tokens; MmaCall's work items work as in mma_f16).
void mmv_f16(const MmaCall& c, int max_tokens, int n_blocks_y, cudaStream_t s);
// Dense products of formats decoded into fragments, activations shared by 128 rows (mmv_frag.cu);
// false where it does not apply (mmv_f16 then).
bool mmv_frag(const MmaCall& c, int max_tokens, cudaStream_t s);

}  // namespace jing::cuda::detail
