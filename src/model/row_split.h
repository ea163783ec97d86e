// Tensor parallelism (--split-mode row, Megatron style): each of K backends holds a share of every
// layer's heads and feed-forward width. The first products of a block are split by rows (q, k, v;
// gate, up: each backend computes its heads / its part of n_ff), the second by columns (wo, down:
// each backend multiplies its part of the input), so each backend ends a block with a partial sum
// of the block's output; an all-reduce makes it whole on every backend, and each keeps its own copy
// of the residual stream.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "model/backend.h"

namespace jing::model::row_split {

// Rows [first, first + count) of w: a view into w's data.
cpu::WeightView rows(const cpu::WeightView& w, int64_t first, int64_t count);
// Whether w's rows can be cut into `parts` column slices of whole blocks.
bool columns_split(const cpu::WeightView& w, int parts);
// Columns [first, first + count) of every row of w (whole blocks of its format), packed into
// `store`, which holds the bytes while a backend may still read them (the CPU's, unless it copies).
cpu::WeightView columns(const cpu::WeightView& w, int64_t first, int64_t count, std::vector<uint8_t>& store);
// Elements [first, first + count) of v (a bias slice); empty stays empty.
std::vector<float> part(const std::vector<float>& v, int64_t first, int64_t count);
// Every parts[k].second (n floats on backend parts[k].first) becomes the sum of them all, the same
// bits on every backend: through `group` (NCCL) where given and able, else added in order on the
// first backend (GPU to GPU copies where the pair can) and copied back.
void all_reduce(const std::vector<std::pair<Backend*, float*>>& parts, size_t n, Collectives* group = nullptr);

}  // namespace jing::model::row_split
