// Q4_K weights in tiles of 8 rows x 256 columns, the layout the CPU's decode kernel reads fastest:
// each tile holds the same 1,152 bytes as the 8 rows' blocks, reordered so one 64-byte load is a
// chunk of all 8 rows (no per-row reduction, the activations shared by the 8 rows). A tiled
// matrix occupies the bytes of the plain one, group g of 8 rows at g * 8 * row_bytes, so experts
// and per-head matrices keep their offsets. Only the CPU backend makes and reads them.
#pragma once
#include <cstdint>
#include <vector>

#include "cpu/matmul.h"

namespace jing::cpu {

// Whether this machine's kernels read tiled Q4_K and w can be tiled (Q4_K, rows a multiple of 8).
bool q4k_tiles_fit(const WeightView& w);

// n_rows (a multiple of 8) plain rows -> tiles, and back.
void tile_q4k(const void* rows, int64_t n_rows, int64_t cols, void* tiles);
void untile_q4k(const void* tiles, int64_t n_rows, int64_t cols, void* rows);

}  // namespace jing::cpu
