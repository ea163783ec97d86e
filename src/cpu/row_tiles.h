// Q4_K, Q5_K, Q2_K, Q4_0 and IQ4_XS weights in tiles of 8 rows x one block (256 or 32 columns),
// the layout the CPU's decode kernels read fastest: each tile holds the same bytes as the 8 rows'
// blocks, reordered so one 64-byte load is a chunk of all 8 rows (no per-row reduction, the
// activations shared by the 8 rows). A tiled matrix occupies the bytes of the plain one, group g
// of 8 rows at g * 8 * row_bytes, so experts and per-head matrices keep their offsets. Only the
// CPU backend makes and reads them.
#pragma once
#include <cstdint>
#include <vector>

#include "cpu/matmul.h"

namespace jing::cpu {

// Whether this machine's kernels read w's format tiled and w can be tiled (one of the formats
// above, rows a multiple of 8, plain rows of whole blocks).
bool tiles_fit(const WeightView& w);

// n_rows (a multiple of 8) plain rows of `type` -> tiles, and back.
void tile_rows(GgmlType type, const void* rows, int64_t n_rows, int64_t cols, void* tiles);
void untile_rows(GgmlType type, const void* tiles, int64_t n_rows, int64_t cols, void* rows);

// The rows a matrix kernel reads: rows itself, or (tiled) n_rows rows from it untiled into plain.
const uint8_t* plain_rows(const WeightView& w, const uint8_t* rows, int64_t n_rows, std::vector<uint8_t>& plain);

// The decode kernel of a tiled format: y8[0..7] = one group of 8 tiled rows times x (one row of the
// format's activations, as the row kernels take: Q8_K, or Q8_0 for Q4_0).
using TilesDot8 = void (*)(const void* group, const void* x_q8k, int64_t cols, float* y8);
TilesDot8 tiles_dot8(GgmlType type);

}  // namespace jing::cpu
