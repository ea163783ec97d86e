// Run-time choice of fast kernels. Activations are rounded to the weight type's 8-bit partner
// format (Q8_K, Q8_0, Q8_1) once per call, as ggml does; then
//  - fewer than 8 tokens: the AVX2 dot product of each (row, token) (kernels*_avx2.cpp);
//  - 8 tokens and more, or a type without a dot product: the matrix kernels over weight panels,
//    AVX-512 VNNI (gemm_*_avx512.cpp) or AVX2 (gemm_kquant_avx2.cpp, 256-value formats);
//  - float weights (F16/BF16/F32): FMA dot products, or the AVX-512 float matrix kernel from 4 tokens.
// CPUs without AVX2+FMA+F16C, and anything not covered, take matmul's portable path.
#include "cpu/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/cpu_features.h"
#include "cpu/kernels_simd.h"
#include "cpu/row_tiles.h"
#include "quant/fp16.h"
#include "quant/quantize_row.h"

namespace jing::cpu {

namespace {

// Below this many tokens the matrix-vector kernels win: unpacking a weight panel for the
// matrix-matrix kernel costs about as much as reading it for a few tokens.
constexpr int64_t kGemmMinTokens = 8;
constexpr int64_t kGemmFloatMinTokens = 4;

using QuantDot = float (*)(const void*, const void*, int64_t);

}  // namespace

// q . k in cpu::avx512::score_dot's order, so that every path (and the GPU) gives the same bits:
// 32 running sums by FMA (sum l: dims l, l + 32, ...; a tail of fewer than 16 in sums 16 up),
// then l + (l + 16), l + (l + 8), l + (l + 4), l + (l + 2), [0] + [1].
float score_dot(const float* a, const float* b, int64_t n) {
  float p[32] = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 32; ++l) p[l] = std::fma(a[i + l], b[i + l], p[l]);
  if (i + 16 <= n) {
    for (int l = 0; l < 16; ++l) p[l] = std::fma(a[i + l], b[i + l], p[l]);
    i += 16;
  }
  for (int64_t l = 0; i + l < n; ++l) p[16 + l] = std::fma(a[i + l], b[i + l], p[16 + l]);
  for (int l = 0; l < 16; ++l) p[l] += p[l + 16];
  for (int w = 8; w >= 2; w /= 2)
    for (int l = 0; l < w; ++l) p[l] += p[l + w];
  return p[0] + p[1];
}

bool simd_available() { return cpu_features::avx2(); }
bool avx512_available() { return cpu_features::avx512(); }

// The AVX2/AVX-512 row dot product of a block format and the activation format it takes, or null.
static QuantDot row_dot(GgmlType type, GgmlType& act) {
  act = GgmlType::Q8_K;
  switch (type) {
    case GgmlType::Q4_K: return cpu_features::avx512() ? avx512::dot_q4_K : avx2::dot_q4_K;
    case GgmlType::Q6_K: return cpu_features::avx512() ? avx512::dot_q6_K : avx2::dot_q6_K;
    case GgmlType::Q5_K: return cpu_features::avx512() ? avx512::dot_q5_K : avx2::dot_q5_K;
    case GgmlType::Q2_K: return cpu_features::avx512() ? avx512::dot_q2_K : avx2::dot_q2_K;
    case GgmlType::Q3_K: return cpu_features::avx512() ? avx512::dot_q3_K : avx2::dot_q3_K;
    case GgmlType::IQ1_S: return avx2::dot_iq1_s;
    case GgmlType::IQ4_XS: return avx2::dot_iq4_xs;
    case GgmlType::IQ1_M: return cpu_features::avx512() ? avx512::dot_iq1_m : avx2::dot_iq1_m;
    case GgmlType::IQ2_XXS: return cpu_features::avx512() ? avx512::dot_iq2_xxs : avx2::dot_iq2_xxs;
    case GgmlType::IQ2_XS: return cpu_features::avx512() ? avx512::dot_iq2_xs : avx2::dot_iq2_xs;
    case GgmlType::IQ2_S: return avx2::dot_iq2_s;
    case GgmlType::IQ3_XXS: return cpu_features::avx512() ? avx512::dot_iq3_xxs : avx2::dot_iq3_xxs;
    case GgmlType::IQ3_S: return cpu_features::avx512() ? avx512::dot_iq3_s : avx2::dot_iq3_s;
    case GgmlType::Q8_0: act = GgmlType::Q8_0; return avx2::dot_q8_0;
    case GgmlType::Q4_0: act = GgmlType::Q8_0; return avx2::dot_q4_0;
    case GgmlType::Q5_0: act = GgmlType::Q8_0; return cpu_features::avx512() ? avx512::dot_q5_0 : avx2::dot_q5_0;
    case GgmlType::IQ4_NL: act = GgmlType::Q8_0; return avx2::dot_iq4_nl;
    case GgmlType::MXFP4: act = GgmlType::Q8_0; return avx2::dot_mxfp4;
    case GgmlType::Q4_1: act = GgmlType::Q8_1; return avx2::dot_q4_1;
    case GgmlType::Q5_1: act = GgmlType::Q8_1; return avx2::dot_q5_1;
    default: return nullptr;
  }
}

bool matvecs_fast(const WeightView* ws, const float* const* xs, float* const* ys, int count, int n_threads) {
  if (!cpu_features::avx2() || count <= 0) return false;
  std::vector<QuantDot> dots(static_cast<size_t>(count));
  std::vector<size_t> act_row(static_cast<size_t>(count)), act_at(static_cast<size_t>(count) + 1, 0);
  // Where each product's rows start among all rows (the threads' shares are counted in rows).
  std::vector<int64_t> first_cost(static_cast<size_t>(count) + 1, 0);
  std::vector<GgmlType> acts(static_cast<size_t>(count));
  int64_t work = 0;
  for (int i = 0; i < count; ++i) {
    const WeightView& w = ws[i];
    dots[i] = row_dot(w.type, acts[i]);
    if (!dots[i] || w.cols % traits(acts[i]).block_size) return false;
    act_row[i] = row_size(acts[i], w.cols);
    act_at[i + 1] = act_at[i] + act_row[i];
    first_cost[i + 1] = first_cost[i] + w.rows;
    work += w.rows * w.cols;
  }
  std::vector<uint8_t> xq(act_at[static_cast<size_t>(count)]);
  for (int i = 0; i < count; ++i) {
    // Products sharing an input (gate and up) round it once.
    const bool same = i > 0 && xs[i] == xs[i - 1] && acts[i] == acts[i - 1] && ws[i].cols == ws[i - 1].cols;
    if (same) std::memcpy(xq.data() + act_at[i], xq.data() + act_at[i - 1], act_row[i]);
    else quantize_row(acts[i], xs[i], xq.data() + act_at[i], ws[i].cols);
  }
  const int64_t total = first_cost[static_cast<size_t>(count)];
  n_threads = threads_for(work, n_threads);
  // Each thread takes the units whose rows start in its share of all rows (a tiled unit weighs 8).
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
  {
    const int nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t lo = total * id / nt, hi = total * (id + 1) / nt;
    int i = 0;
    while (i + 1 < count && first_cost[i + 1] <= lo) ++i;
    for (; i < count && first_cost[i] < hi; ++i) {
      const WeightView& w = ws[i];
      const auto* base = static_cast<const uint8_t*>(w.data);
      const int64_t step = w.tiled ? 8 : 1;
      const TilesDot8 dot8 = w.tiled ? tiles_dot8(w.type) : nullptr;
      const int64_t from = std::max(lo, first_cost[i]) - first_cost[i], to = std::min(hi, first_cost[i + 1]) - first_cost[i];
      for (int64_t r = (from + step - 1) / step * step; r < to; r += step) {
        if (dot8) dot8(base + r * w.row_bytes, xq.data() + act_at[i], w.cols, ys[i] + r);
        else ys[i][r] = dots[i](base + r * w.row_bytes, xq.data() + act_at[i], w.cols);
      }
    }
  }
  return true;
}

bool matmul_fast(const WeightView& w, const float* x, int64_t n_tokens, float* y, int n_threads) {
  if (!cpu_features::avx2()) return false;
  const int64_t rows = w.rows, cols = w.cols;
  const auto* base = static_cast<const uint8_t*>(w.data);
  n_threads = threads_for(rows * cols * n_tokens, n_threads);
  const bool float_type = w.type == GgmlType::F32 || w.type == GgmlType::F16 || w.type == GgmlType::BF16;
  if (float_type && n_tokens >= kGemmFloatMinTokens && cpu_features::avx512())
    return avx512::gemm_float(w, x, n_tokens, y, n_threads);
  if (w.type == GgmlType::BF16 && n_tokens < kGemmFloatMinTokens) {
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < n_tokens; ++t) y[t * rows + r] = avx2::dot_bf16(base + r * w.row_bytes, x + t * cols, cols);
    return true;
  }
  if (w.type == GgmlType::F32 || w.type == GgmlType::F16) {
    const bool f16 = w.type == GgmlType::F16;
    if (n_tokens < 4) {
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t t = 0; t < n_tokens; ++t)
          y[t * rows + r] = f16 ? avx2::dot_f16(base + r * w.row_bytes, x + t * cols, cols)
                                : avx2::dot_f32(reinterpret_cast<const float*>(base + r * w.row_bytes), x + t * cols, cols);
      return true;
    }
    // Several tokens: each weight row is widened to float once and meets four tokens per pass.
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
    {
      std::vector<float> row(f16 ? static_cast<size_t>(cols) : 0);
      float out[4];
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const float* wr = reinterpret_cast<const float*>(base + r * w.row_bytes);
        if (f16) {
          for (int64_t i = 0; i < cols; ++i) row[static_cast<size_t>(i)] = fp16_to_fp32(reinterpret_cast<const uint16_t*>(base + r * w.row_bytes)[i]);
          wr = row.data();
        }
        int64_t t = 0;
        for (; t + 4 <= n_tokens; t += 4) {
          avx2::dot_rows_x4(wr, x + t * cols, cols, cols, out);
          for (int k = 0; k < 4; ++k) y[(t + k) * rows + r] = out[k];
        }
        for (; t < n_tokens; ++t) y[t * rows + r] = avx2::dot_f32(wr, x + t * cols, cols);
      }
    }
    return true;
  }
  GgmlType act;
  const QuantDot dot = row_dot(w.type, act);
  // No row kernel: only the ternary formats go on, to the matrix path (which serves one token too).
  if (!dot && w.type != GgmlType::TQ1_0 && w.type != GgmlType::TQ2_0) return false;
  if (cols % traits(act).block_size) return false;
  // Activations to 8-bit blocks once per call, shared by every row.
  const size_t act_row = row_size(act, cols);
  std::vector<uint8_t> xq(act_row * static_cast<size_t>(n_tokens));
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_tokens > 1 && n_threads > 1)
  for (int64_t t = 0; t < n_tokens; ++t) quantize_row(act, x + t * cols, xq.data() + static_cast<size_t>(t) * act_row, cols);
  if (n_tokens >= kGemmMinTokens || !dot) {
    if (cpu_features::avx512() ? (act == GgmlType::Q8_K ? avx512::gemm_kquant(w, xq.data(), act_row, n_tokens, y, n_threads)
                                                   : avx512::gemm_q8(w, xq.data(), act_row, n_tokens, y, n_threads))
                          : (act == GgmlType::Q8_K ? (cpu_features::avx_vnni() ? avxvnni::gemm_kquant(w, xq.data(), act_row, n_tokens, y, n_threads)
                                                                     : avx2::gemm_kquant(w, xq.data(), act_row, n_tokens, y, n_threads))
                                                   : avx2::gemm_q8(w, xq.data(), act_row, n_tokens, y, n_threads)))
      return true;
    if (!dot) return false;
  }
  if (w.tiled) {  // tiled rows (cpu/row_tiles.h), a few tokens: 8 rows a step; tokens inner, so each group is read once
    const TilesDot8 dot8 = tiles_dot8(w.type);
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
    for (int64_t g = 0; g < rows / 8; ++g)
      for (int64_t t = 0; t < n_tokens; ++t) dot8(base + g * 8 * w.row_bytes, xq.data() + static_cast<size_t>(t) * act_row, cols, y + t * rows + 8 * g);
    return true;
  }
  // Rows in blocks of 16 per task; tokens inner, so each weight row is read once from memory.
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* wr = base + r * w.row_bytes;
    int64_t t = 0;
    if (w.type == GgmlType::Q4_K)  // unpack each weight block once for four tokens
      for (float out[4]; t + 4 <= n_tokens; t += 4) {
        avx2::dot_q4_K_x4(wr, xq.data() + static_cast<size_t>(t) * act_row, act_row, cols, out);
        for (int k = 0; k < 4; ++k) y[(t + k) * rows + r] = out[k];
      }
    for (; t < n_tokens; ++t) y[t * rows + r] = dot(wr, xq.data() + static_cast<size_t>(t) * act_row, cols);
  }
  return true;
}

}  // namespace jing::cpu
