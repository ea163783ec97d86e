// Launching the decode kernels of gemv.cuh for one format: the token count picks the kernel
// (1, 2, 4 or 8 tokens wide), the grid covers the SMs once and the warps loop over row groups.
#pragma once
#include <algorithm>
#include <cstdlib>

#include "cuda/check.h"
#include "cuda/gemv.cuh"
#include "cuda/gemv_short.cuh"
#include "cuda/kernels.h"

namespace jing::cuda::detail {

constexpr int kGemvRows = 2;  // rows per warp of the float kernels
constexpr int kMaxGemvBatchTokens = 8;  // tokens of a grouped work item

template <class Kernel>
int64_t resident_blocks(Kernel kernel) {
  int per_sm = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kGemvWarps * 32, 0), "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  return int64_t{std::max(per_sm, 1)} * sm_count();
}

template <class F, int NT>
void launch_gemv_q8(const GemvArgs& a, cudaStream_t s) {
  if constexpr (NT == 1) {
    static const bool off = std::getenv("JING_NO_SHORT_GEMV") != nullptr;  // measurement switch
    if (const int ipr = off ? 0 : short_row_items<F>(a)) {
      const int64_t per_block = kGemvWarps * (32 / ipr);
      launch_pdl(gemv_short_kernel<F>, dim3(static_cast<unsigned>((a.rows + per_block - 1) / per_block), static_cast<unsigned>(a.batch.count)),
                 dim3(kGemvWarps * 32), s, "gemv_short", a, ipr);
      return;
    }
  }
  constexpr int R = gemv_rows<F>();
  auto kernel = gemv_q8_kernel<F, NT, R>;
  static const int64_t max_blocks = resident_blocks(kernel);
  int64_t rows = a.rows;
  for (int i = 0; i < a.parts.count; ++i) rows = std::max(rows, a.parts.part[i].rows);
  const int64_t groups = (rows + R - 1) / R, products = std::max({a.batch.count, a.parts.count, 1});
  const int64_t busy = a.batch.busy > 0 ? std::min<int64_t>(a.batch.busy, products) : products;
  const int64_t blocks = std::min((groups + kGemvWarps - 1) / kGemvWarps, std::max<int64_t>(max_blocks / busy, 1));
  // Few rows of many chunks (ffn_down: 1536 x 8960 on the 1.5B: 96 blocks, ncu 9 us with the weights
  // in L2) leave most SMs idle and each warp streaming its rows alone: there the block's warps can
  // split each row group's chunks, a block a group: 1.5B decode +3-5% (7B and ds-small even;
  // docs/PERFORMANCE.md). JING_NO_GEMV_SPLIT=1 turns it off.
  static const bool split_on = std::getenv("JING_NO_GEMV_SPLIT") == nullptr;
  const int chunks = static_cast<int>((a.blocks + chunk_blocks<F, R>() - 1) / chunk_blocks<F, R>());
  if (split_on && products == 1 && !a.batch.items && blocks < 2 * sm_count() && chunks >= kGemvWarps) {
    GemvArgs split = a;
    split.k_split = kGemvWarps;
    launch_pdl(kernel, dim3(static_cast<unsigned>(groups)), dim3(kGemvWarps * 32), s, "gemv_q8", split);
    return;
  }
  launch_pdl(kernel, dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(products)), dim3(kGemvWarps * 32), s, "gemv_q8", a);
}

template <class F>
void gemv_block_format(const GemvCall& c, cudaStream_t s) {
  GemvArgs a;
  a.w = static_cast<const uint8_t*>(c.w), a.row_bytes = c.row_bytes, a.rows = c.rows;
  a.blocks = static_cast<int>(c.cols / F::kWeights);
  a.xq = c.xq, a.xrec = static_cast<const float4*>(c.xrec), a.cols = c.cols;
  a.n_tokens = c.n_tokens, a.y = c.y, a.tab = c.tab, a.batch = c.batch, a.parts = c.parts;
  if (c.batch.items) {
    if (c.batch.item_rows <= 2) launch_gemv_q8<F, 2>(a, s);
    else if (c.batch.item_rows <= 4) launch_gemv_q8<F, 4>(a, s);
    else launch_gemv_q8<F, kMaxGemvBatchTokens>(a, s);
  }
  else if (c.n_tokens == 1 || c.batch.count) launch_gemv_q8<F, 1>(a, s);
  else if (c.n_tokens == 2) launch_gemv_q8<F, 2>(a, s);
  else if (c.n_tokens <= 4) launch_gemv_q8<F, 4>(a, s);
  else launch_gemv_q8<F, 8>(a, s);
}

template <class F, int NT>
void launch_gemv_float(const GemvFloatArgs& a, bool vector_path, cudaStream_t s) {
  const unsigned products = static_cast<unsigned>(std::max(a.batch.count, 1));
  const int64_t row_groups = (a.rows + kGemvRows * kGemvWarps - 1) / (kGemvRows * kGemvWarps);
  static const bool off = std::getenv("JING_NO_SHORT_GEMV") != nullptr;
  if (NT == 1 && vector_path && !a.batch.count && row_groups < 2 * sm_count() && !off) {  // few rows: a block per row
    launch_pdl(gemv_float_row_kernel<F>, dim3(static_cast<unsigned>(a.rows)), dim3(kGemvWarps * 32), s, "gemv_float_row", a);
    return;
  }
  if (vector_path) {
    const int64_t groups = (a.rows + kGemvRows - 1) / kGemvRows;
    launch_pdl(gemv_float_kernel<F, NT, kGemvRows>, dim3(static_cast<unsigned>((groups + kGemvWarps - 1) / kGemvWarps), products),
               dim3(kGemvWarps * 32), s, "gemv_float", a);
  } else {
    launch_pdl(gemv_float_scalar_kernel<F>, dim3(static_cast<unsigned>((a.rows + kGemvWarps - 1) / kGemvWarps), products), dim3(kGemvWarps * 32),
               s, "gemv_float", a);
  }
}

template <class F>
void gemv_float_format(const GemvCall& c, cudaStream_t s) {
  GemvFloatArgs a;
  a.w = static_cast<const uint8_t*>(c.w), a.row_bytes = c.row_bytes, a.rows = c.rows, a.cols = c.cols;
  a.x = c.x, a.n_tokens = c.n_tokens, a.y = c.y, a.batch = c.batch;
  const bool vec = c.cols % 8 == 0 && c.row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(c.w) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(c.x) % 16 == 0 && (!c.batch.count || c.batch.mat_bytes % 16 == 0);
  if (c.n_tokens == 1 || c.batch.count) launch_gemv_float<F, 1>(a, vec, s);
  else if (c.n_tokens == 2) launch_gemv_float<F, 2>(a, vec, s);
  else if (c.n_tokens <= 4) launch_gemv_float<F, 4>(a, vec, s);
  else launch_gemv_float<F, 8>(a, vec, s);
}

// Each gemv_*.cu instantiates the kernels of its formats only (compile time splits four ways).
#define JING_GEMV_FAMILY(name, ...)                                              \
  bool name(const GemvCall& c, cudaStream_t s) {                                 \
    bool found = false;                                                          \
    fmt::with_format(c.type, [&](auto f) {                                       \
      using F = decltype(f);                                                     \
      if constexpr (is_one_of<F, __VA_ARGS__>()) {                               \
        if constexpr (F::kAct == fmt::Act::F32) gemv_float_format<F>(c, s);      \
        else gemv_block_format<F>(c, s);                                         \
        found = true;                                                            \
      }                                                                          \
    });                                                                          \
    return found;                                                                \
  }

template <class F, class... Fs>
constexpr bool is_one_of() {
  return (std::is_same_v<F, Fs> || ...);
}

}  // namespace jing::cuda::detail
