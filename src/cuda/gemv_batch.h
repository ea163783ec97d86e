// Several matrix-vector products in one launch (MoE experts chosen on the device, MLA's per-head
// products): product p (blockIdx.y) multiplies one token's activations with one matrix of a
// [n_mats][rows][cols] tensor. Shared by the host launchers and the kernels.
#pragma once
#include <cstdint>

namespace jing::cuda {

struct GemvBatch {
  int count = 0;                 // products; 0: an ordinary (unbatched) call
  const int32_t* ids = nullptr;  // matrix of product p: ids[p] (device memory, written by an earlier kernel)...
  int id_first = 0, id_count = 1 << 30;  // ...minus id_first; ids outside [id_first, id_first + id_count): no product
                                         // (this GPU's share of the experts, expert parallelism)
  int n_mats = 1;                // ...or, without ids, p % n_mats
  int64_t mat_bytes = 0;         // bytes from one matrix to the next
  int busy = 0;                  // products expected to hold work (0: count), which the grid spreads over
                                 // (another GPU's share of the experts: those products are empty)
  int x_div = 1;                 // product p reads activation row p / x_div
  int64_t y_stride = 0;          // and writes rows values at y + p * y_stride
  // Grouped products instead (a prompt's tokens sorted by expert): blockIdx.y = work item i of
  // items[3 i ..] = {matrix, first row, rows (<= 8; 0: nothing)}, written by an earlier kernel:
  // that many consecutive activation rows times the matrix, written at y + first * y_stride
  // (count = the number of items).
  const int32_t* items = nullptr;
  int item_rows = 8;  // the most rows of an item (2, 4 or 8): the kernel computes that many token columns
};

// Weights of one format sharing one input (q, k and v; gate and up) in one launch: blockIdx.y
// picks the weight, whose row count may differ from the others'.
struct GemvPart {
  const void* w = nullptr;
  int64_t rows = 0;
  float* y = nullptr;
};
constexpr int kMaxGemvParts = 3;
struct GemvParts {
  int count = 0;  // 0: one weight (the call's own)
  GemvPart part[kMaxGemvParts];
};

}  // namespace jing::cuda
