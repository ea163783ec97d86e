// The attention cache: for every layer, sequence and position, the key row and value row
// (f16 by default; q8_0 halves it again). For MLA (deepseek2) the "key" row holds the compressed
// latent plus the roped key part and there is no value row.
#pragma once
#include <cstdint>
#include <vector>

#include "quant/types.h"

namespace jing::runtime {

class KvCache {
 public:
  KvCache(int n_layer, int n_seq, int n_ctx, int k_width, int v_width, GgmlType type);

  int n_ctx() const { return n_ctx_; }
  int n_seq() const { return n_seq_; }
  size_t bytes() const { return k_.size() + v_.size(); }

  // Stores one row (k_width / v_width floats) at a position.
  void store_k(int layer, int seq, int pos, const float* row);
  void store_v(int layer, int seq, int pos, const float* row);
  // Reads positions [0, n) of a sequence as float rows: out[n][width].
  void load_k(int layer, int seq, int n, float* out) const;
  void load_v(int layer, int seq, int n, float* out) const;

 private:
  size_t offset(int layer, int seq, int pos, size_t row_bytes) const;
  int n_seq_, n_ctx_, k_width_, v_width_;
  GgmlType type_;
  size_t k_row_, v_row_;
  std::vector<uint8_t> k_, v_;
};

}  // namespace jing::runtime
