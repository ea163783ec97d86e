#include "cpu/row_tiles.h"

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "common/cpu_features.h"
#include "common/error.h"
#include "cpu/kernels_simd.h"
#include "quant/blocks.h"
#include "quant/types.h"

namespace jing::cpu {

using blocks::iq4_xs;
using blocks::q2_K;
using blocks::q4_0;
using blocks::q4_K;
using blocks::q5_K;

namespace {

// Calls fields(t, q, r) for row r's block q and the tile t holding it, for every (row, block) of
// n_rows rows; fields moves the block's fields between the layouts with `move(tile_bytes,
// row_bytes, n)`, which copies one way or the other.
template <class Block, int kBlockValues, class Fields>
void each_block(uint8_t* tiles, uint8_t* rows, int64_t n_rows, int64_t cols, Fields fields) {
  constexpr int64_t kTile = 8 * sizeof(Block);
  const int64_t nb = cols / kBlockValues;
  for (int64_t g = 0; g < n_rows / 8; ++g)
    for (int64_t b = 0; b < nb; ++b)
      for (int r = 0; r < 8; ++r) fields(tiles + (g * nb + b) * kTile, rows + ((g * 8 + r) * nb + b) * static_cast<int64_t>(sizeof(Block)), r);
}

// One 64-byte chunk: 8 bytes of each row, [rows 0-7 bytes 0-3 | rows 0-7 bytes 4-7].
template <class Move>
void move_chunk(uint8_t* chunk, uint8_t* row_bytes, int r, Move move) {
  move(chunk + r * 4, row_bytes, 4);
  move(chunk + 32 + r * 4, row_bytes + 4, 4);
}

// Q4_K tile (1,152 bytes): d[8] and dmin[8] (f16), the three 32-bit scale words of each row
// transposed ([word][row]), then 16 chunks of qs (chunk c: bytes 8c..8c+7 of each row). Q5_K's
// (1,408 bytes) is the same (its fields but qh sit where Q4_K's do) with 4 chunks of qh after it.
template <class Block, class Move>
void each_k45_field(uint8_t* tiles, uint8_t* rows, int64_t n_rows, int64_t cols, Move move) {
  each_block<Block, 256>(tiles, rows, n_rows, cols, [&](uint8_t* t, uint8_t* q, int r) {
    move(t + 2 * r, q + offsetof(Block, d), 2);
    move(t + 16 + 2 * r, q + offsetof(Block, dmin), 2);
    for (int k = 0; k < 3; ++k) move(t + 32 + (k * 8 + r) * 4, q + offsetof(Block, scales) + 4 * k, 4);
    for (int c = 0; c < 16; ++c) move_chunk(t + 128 + c * 64, q + offsetof(Block, qs) + 8 * c, r, move);
    if constexpr (std::is_same_v<Block, q5_K>)
      for (int c = 0; c < 4; ++c) move_chunk(t + 1152 + c * 64, q + offsetof(q5_K, qh) + 8 * c, r, move);
  });
}

// Q2_K tile (672 bytes): d[8] and dmin[8] (f16), the 16 sub-block scale bytes of each row
// transposed ([sub-block][row]), then 8 chunks of qs.
template <class Move>
void each_q2k_field(uint8_t* tiles, uint8_t* rows, int64_t n_rows, int64_t cols, Move move) {
  each_block<q2_K, 256>(tiles, rows, n_rows, cols, [&](uint8_t* t, uint8_t* q, int r) {
    move(t + 2 * r, q + offsetof(q2_K, d), 2);
    move(t + 16 + 2 * r, q + offsetof(q2_K, dmin), 2);
    for (int j = 0; j < 16; ++j) move(t + 32 + j * 8 + r, q + offsetof(q2_K, scales) + j, 1);
    for (int c = 0; c < 8; ++c) move_chunk(t + 160 + c * 64, q + offsetof(q2_K, qs) + 8 * c, r, move);
  });
}

// Q4_0 tile (144 bytes, one 32-value block of 8 rows): d[8] (f16), then 2 chunks of qs.
template <class Move>
void each_q40_field(uint8_t* tiles, uint8_t* rows, int64_t n_rows, int64_t cols, Move move) {
  each_block<q4_0, 32>(tiles, rows, n_rows, cols, [&](uint8_t* t, uint8_t* q, int r) {
    move(t + 2 * r, q + offsetof(q4_0, d), 2);
    for (int c = 0; c < 2; ++c) move_chunk(t + 16 + c * 64, q + offsetof(q4_0, qs) + 8 * c, r, move);
  });
}

// IQ4_XS tile (1,088 bytes): d[8] (f16), scales_h[8] (16-bit), the 4 scales_l bytes of each row
// transposed ([byte][row]), then 16 chunks of qs.
template <class Move>
void each_iq4xs_field(uint8_t* tiles, uint8_t* rows, int64_t n_rows, int64_t cols, Move move) {
  each_block<iq4_xs, 256>(tiles, rows, n_rows, cols, [&](uint8_t* t, uint8_t* q, int r) {
    move(t + 2 * r, q + offsetof(iq4_xs, d), 2);
    move(t + 16 + 2 * r, q + offsetof(iq4_xs, scales_h), 2);
    for (int k = 0; k < 4; ++k) move(t + 32 + k * 8 + r, q + offsetof(iq4_xs, scales_l) + k, 1);
    for (int c = 0; c < 16; ++c) move_chunk(t + 64 + c * 64, q + offsetof(iq4_xs, qs) + 8 * c, r, move);
  });
}

template <class Move>
void each_field(GgmlType type, uint8_t* tiles, uint8_t* rows, int64_t n_rows, int64_t cols, Move move) {
  if (type == GgmlType::Q4_K) each_k45_field<q4_K>(tiles, rows, n_rows, cols, move);
  else if (type == GgmlType::Q5_K) each_k45_field<q5_K>(tiles, rows, n_rows, cols, move);
  else if (type == GgmlType::Q2_K) each_q2k_field(tiles, rows, n_rows, cols, move);
  else if (type == GgmlType::Q4_0) each_q40_field(tiles, rows, n_rows, cols, move);
  else if (type == GgmlType::IQ4_XS) each_iq4xs_field(tiles, rows, n_rows, cols, move);
  else throw Error("no tiled layout for this weight type");
}

}  // namespace

static_assert(sizeof(q4_K) == 144 && sizeof(q5_K) == 176 && sizeof(q2_K) == 84 && sizeof(q4_0) == 18 && sizeof(iq4_xs) == 136, "tiled blocks");

bool tiles_fit(const WeightView& w) {
  if (!cpu_features::avx512() || !tiles_dot8(w.type)) return false;
  const TypeTraits& tr = traits(w.type);
  return w.rows % 8 == 0 && w.cols % tr.block_size == 0 && w.row_bytes == static_cast<size_t>(w.cols / tr.block_size) * tr.type_size;
}

void tile_rows(GgmlType type, const void* rows, int64_t n_rows, int64_t cols, void* tiles) {
  each_field(type, static_cast<uint8_t*>(tiles), const_cast<uint8_t*>(static_cast<const uint8_t*>(rows)), n_rows, cols,
             [](uint8_t* t, const uint8_t* q, size_t n) { std::memcpy(t, q, n); });
}

void untile_rows(GgmlType type, const void* tiles, int64_t n_rows, int64_t cols, void* rows) {
  each_field(type, const_cast<uint8_t*>(static_cast<const uint8_t*>(tiles)), static_cast<uint8_t*>(rows), n_rows, cols,
             [](const uint8_t* t, uint8_t* q, size_t n) { std::memcpy(q, t, n); });
}

const uint8_t* plain_rows(const WeightView& w, const uint8_t* rows, int64_t n_rows, std::vector<uint8_t>& plain) {
  if (!w.tiled) return rows;
  plain.resize(static_cast<size_t>(n_rows) * w.row_bytes);
  untile_rows(w.type, rows, n_rows, w.cols, plain.data());
  return plain.data();
}

TilesDot8 tiles_dot8(GgmlType type) {
  static const bool prefetch = !cpu_features::amd();
  if (type == GgmlType::Q4_K) return prefetch ? avx512::q4k_tiles_dot8_prefetch : avx512::q4k_tiles_dot8;
  if (type == GgmlType::Q5_K) return prefetch ? avx512::q5k_tiles_dot8_prefetch : avx512::q5k_tiles_dot8;
  if (type == GgmlType::Q2_K) return prefetch ? avx512::q2k_tiles_dot8_prefetch : avx512::q2k_tiles_dot8;
  if (type == GgmlType::Q4_0) return prefetch ? avx512::q40_tiles_dot8_prefetch : avx512::q40_tiles_dot8;
  if (type == GgmlType::IQ4_XS) return prefetch ? avx512::iq4xs_tiles_dot8_prefetch : avx512::iq4xs_tiles_dot8;
  return nullptr;
}

}  // namespace jing::cpu
