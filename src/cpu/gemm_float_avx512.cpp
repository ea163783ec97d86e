// Matrix-matrix product of float weights (F16 / BF16 / F32) and of every block format without an
// integer kernel, with float activations, on AVX-512 (the several-token path of float models, of
// the server's batched decode steps, and of the rarer quant types: their rows are decoded exactly
// and then multiplied in float; callers round the activations through the partner format first).
//
// A panel of 32 weight rows is widened to float once per call, transposed so that one register
// holds sixteen rows at one k; a tile of 32 rows x T tokens then needs one broadcast of x[t][k] and
// two FMAs per token and k, with no horizontal sums. K is taken in chunks so the panel stays in L2.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "cpu/avx512_util.h"
#include "cpu/kernels_simd.h"
#include "cpu/matmul.h"
#include "cpu/tiles.h"
#include "quant/dequant.h"

namespace jing::cpu::avx512 {

namespace {

constexpr int64_t kChunk = 1024;  // k per panel chunk: 1024 x 32 floats = 128 KiB

struct AlignedFloats {
  float* p = nullptr;
  size_t n = 0;
  ~AlignedFloats() { ::operator delete(p, std::align_val_t{64}); }
  float* get(size_t want) {
    if (want > n) {
      ::operator delete(p, std::align_val_t{64});
      p = static_cast<float*>(::operator new(want * sizeof(float), std::align_val_t{64}));
      n = want;
    }
    return p;
  }
};

// Sixteen consecutive weights of one row as float.
inline __m512 widen16(GgmlType type, const uint8_t* row, int64_t k) {
  switch (type) {
    case GgmlType::F16: return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
    case GgmlType::BF16:
      return _mm512_castsi512_ps(_mm512_slli_epi32(
          _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k))), 16));
    default: return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  }
}

inline float widen1(GgmlType type, const uint8_t* row, int64_t k) {
  uint16_t h;
  switch (type) {
    case GgmlType::F16: std::memcpy(&h, row + 2 * k, 2); return _cvtsh_ss(h);
    case GgmlType::BF16: {
      std::memcpy(&h, row + 2 * k, 2);
      const uint32_t u = static_cast<uint32_t>(h) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    }
    default: {
      float f;
      std::memcpy(&f, row + 4 * k, 4);
      return f;
    }
  }
}

// panel[k][32] = W[r0 + r][k0 + k] for k < kn (rows past n_rows are zero). Block formats are
// decoded by the exact scalar decoders into `decoded` first (k0 and kn are multiples of the block).
void widen_panel(const WeightView& w, int64_t r0, int64_t n_rows, int64_t k0, int64_t kn, float* panel,
                 std::vector<float>& decoded) {
  alignas(64) float tmp[16][16];
  if (n_rows < kRows) std::memset(panel, 0, static_cast<size_t>(kn) * kRows * sizeof(float));  // (full rows are all written)
  const bool block_format = w.type != GgmlType::F16 && w.type != GgmlType::BF16 && w.type != GgmlType::F32;
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* row = static_cast<const uint8_t*>(w.data) + (r0 + r) * w.row_bytes;
    GgmlType type = w.type;
    int64_t kb = k0;  // index of panel k = 0 within `row`
    if (block_format) {
      const auto& tr = traits(w.type);
      decoded.resize(static_cast<size_t>(kn));
      dequantize_row(w.type, row + k0 / tr.block_size * tr.type_size, decoded.data(), kn);
      row = reinterpret_cast<const uint8_t*>(decoded.data());
      type = GgmlType::F32, kb = 0;
    }
    int64_t k = 0;
    for (; k + 16 <= kn; k += 16) {
      _mm512_store_ps(tmp[0], widen16(type, row, kb + k));
      for (int j = 0; j < 16; ++j) panel[(k + j) * kRows + r] = tmp[0][j];
    }
    for (; k < kn; ++k) panel[k * kRows + r] = widen1(type, row, kb + k);
  }
}

template <int T>
void tile(const float* panel, int64_t kn, const float* const* x, float* const* out, bool accumulate, __mmask16 m0,
          __mmask16 m1) {
  __m512 C[2][T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) C[0][t] = C[1][t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kn; ++k, panel += kRows) {
    const __m512 w0 = _mm512_load_ps(panel), w1 = _mm512_load_ps(panel + 16);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m512 a = _mm512_set1_ps(x[t][k]);
      C[0][t] = _mm512_fmadd_ps(w0, a, C[0][t]);
      C[1][t] = _mm512_fmadd_ps(w1, a, C[1][t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    if (accumulate) {
      C[0][t] = _mm512_add_ps(C[0][t], _mm512_maskz_loadu_ps(m0, out[t]));
      C[1][t] = _mm512_add_ps(C[1][t], _mm512_maskz_loadu_ps(m1, out[t] + 16));
    }
    _mm512_mask_storeu_ps(out[t], m0, C[0][t]);
    _mm512_mask_storeu_ps(out[t] + 16, m1, C[1][t]);
  }
}

}  // namespace

bool gemm_float(const WeightView& w, const float* x, int64_t n_tokens, float* y, int n_threads) {
  if (!can_dequantize(w.type) || w.cols % traits(w.type).block_size) return false;
  const int64_t rows = w.rows, cols = w.cols;
  constexpr int T = 6;
  for_each_panel<std::vector<float>>(rows, kRows, n_threads, [&](int64_t r0, int n_rows, std::vector<float>& decoded) {
    thread_local AlignedFloats buffer;  // kept between calls
    float* panel = buffer.get(static_cast<size_t>(std::min(cols, kChunk)) * kRows);
    const auto masks = row_masks(n_rows);  // (no structured binding: lambdas capture these)
    const __mmask16 m0 = masks.first, m1 = masks.second;
    for (int64_t k0 = 0; k0 < cols; k0 += kChunk) {
      const int64_t kn = std::min(kChunk, cols - k0);
      widen_panel(w, r0, n_rows, k0, kn, panel, decoded);
      const bool acc = k0 > 0;
      token_tiles<T>(n_tokens, [&](int64_t t0, auto n) {
        const float* xs[n];
        float* out[n];
        for (int i = 0; i < n; ++i) xs[i] = x + (t0 + i) * cols + k0, out[i] = y + (t0 + i) * rows + r0;
        tile<n>(panel, kn, xs, out, acc, m0, m1);
      });
    }
  });
  return true;
}

}  // namespace jing::cpu::avx512
