#include "cpu/q4k_tiles.h"

#include <cstring>

#include "common/cpu_features.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"

namespace jing::cpu {

using blocks::q4_K;

namespace {

constexpr int kTileBytes = 8 * sizeof(q4_K);  // 1,152
static_assert(sizeof(q4_K) == 144, "Q4_K block");

// Offsets within a tile: d[8] and dmin[8] (f16), the three 32-bit scale words of each row
// transposed ([word][row]), then 16 chunks of [rows 0-7 bytes 0-3 | rows 0-7 bytes 4-7] of qs.
constexpr int kD = 0, kDmin = 16, kScales = 32, kQs = 128;

}  // namespace

bool q4k_tiles_fit(const WeightView& w) {
  return cpu_features::avx512() && w.type == GgmlType::Q4_K && w.rows % 8 == 0 && w.cols % 256 == 0 && w.row_bytes == static_cast<size_t>(w.cols / 256) * sizeof(q4_K);
}

void tile_q4k(const void* rows, int64_t n_rows, int64_t cols, void* tiles) {
  const int64_t nb = cols / 256;
  const auto* src = static_cast<const q4_K*>(rows);
  auto* dst = static_cast<uint8_t*>(tiles);
  for (int64_t g = 0; g < n_rows / 8; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* t = dst + (g * nb + b) * kTileBytes;
      for (int r = 0; r < 8; ++r) {
        const q4_K& q = src[(g * 8 + r) * nb + b];
        std::memcpy(t + kD + 2 * r, &q.d, 2);
        std::memcpy(t + kDmin + 2 * r, &q.dmin, 2);
        for (int k = 0; k < 3; ++k) std::memcpy(t + kScales + (k * 8 + r) * 4, q.scales + 4 * k, 4);
        for (int c = 0; c < 16; ++c) {
          std::memcpy(t + kQs + c * 64 + r * 4, q.qs + 8 * c, 4);
          std::memcpy(t + kQs + c * 64 + 32 + r * 4, q.qs + 8 * c + 4, 4);
        }
      }
    }
}

void untile_q4k(const void* tiles, int64_t n_rows, int64_t cols, void* rows) {
  const int64_t nb = cols / 256;
  const auto* src = static_cast<const uint8_t*>(tiles);
  auto* dst = static_cast<q4_K*>(rows);
  for (int64_t g = 0; g < n_rows / 8; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* t = src + (g * nb + b) * kTileBytes;
      for (int r = 0; r < 8; ++r) {
        q4_K& q = dst[(g * 8 + r) * nb + b];
        std::memcpy(&q.d, t + kD + 2 * r, 2);
        std::memcpy(&q.dmin, t + kDmin + 2 * r, 2);
        for (int k = 0; k < 3; ++k) std::memcpy(q.scales + 4 * k, t + kScales + (k * 8 + r) * 4, 4);
        for (int c = 0; c < 16; ++c) {
          std::memcpy(q.qs + 8 * c, t + kQs + c * 64 + r * 4, 4);
          std::memcpy(q.qs + 8 * c + 4, t + kQs + c * 64 + 32 + r * 4, 4);
        }
      }
    }
}

void q4k_tiles_patterns(const void* x_q8k, int64_t cols, std::vector<int32_t>& patterns) {
  patterns.resize(static_cast<size_t>(cols / 8 * 16));
  avx512::q4k_tiles_patterns(x_q8k, cols, patterns.data());
}

void q4k_tiles_dot8(const void* group, const void* x_q8k, const int32_t* patterns, int64_t cols, float* y8) {
  avx512::q4k_tiles_dot8(group, x_q8k, patterns, cols, y8);
}

}  // namespace jing::cpu
