#include "runtime/kv_cache.h"

#include <string>

#include "common/error.h"
#include "quant/dequant.h"
#include "quant/quantize_row.h"

namespace jing::runtime {

KvCache::KvCache(int n_layer, int n_seq, int n_ctx, int k_width, int v_width, GgmlType type)
    : n_seq_(n_seq), n_ctx_(n_ctx), k_width_(k_width), v_width_(v_width), type_(type) {
  if (type != GgmlType::F16 && type != GgmlType::Q8_0 && type != GgmlType::F32)
    throw Error("unsupported KV cache type " + std::string(traits(type).name) + " (use f16 or q8_0)");
  if (type == GgmlType::Q8_0 && (k_width % 32 || v_width % 32)) type_ = GgmlType::F16;  // rows must hold whole blocks
  k_row_ = k_width ? row_size(type_, k_width) : 0;
  v_row_ = v_width ? row_size(type_, v_width) : 0;
  const size_t rows = static_cast<size_t>(n_layer) * n_seq * n_ctx;
  try {
    k_.resize(rows * k_row_);
    v_.resize(rows * v_row_);
  } catch (const std::bad_alloc&) {
    throw Error("not enough memory for a KV cache of " + std::to_string(n_ctx) + " positions x " + std::to_string(n_seq) +
                " sequences; lower --ctx-size or --parallel");
  }
}

size_t KvCache::offset(int layer, int seq, int pos, size_t row_bytes) const {
  return ((static_cast<size_t>(layer) * n_seq_ + seq) * n_ctx_ + pos) * row_bytes;
}

void KvCache::store_k(int layer, int seq, int pos, const float* row) {
  quantize_row(type_, row, k_.data() + offset(layer, seq, pos, k_row_), k_width_);
}
void KvCache::store_v(int layer, int seq, int pos, const float* row) {
  quantize_row(type_, row, v_.data() + offset(layer, seq, pos, v_row_), v_width_);
}
void KvCache::load_k(int layer, int seq, int n, float* out) const {
  dequantize_row(type_, k_.data() + offset(layer, seq, 0, k_row_), out, static_cast<int64_t>(n) * k_width_);
}
void KvCache::load_v(int layer, int seq, int n, float* out) const {
  dequantize_row(type_, v_.data() + offset(layer, seq, 0, v_row_), out, static_cast<int64_t>(n) * v_width_);
}

}  // namespace jing::runtime
