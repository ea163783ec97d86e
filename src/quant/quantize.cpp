#include "quant/quantize.h"

#include <string>

#include "common/error.h"
#include "quant/quantize_detail.h"
#include "quant/quantize_row.h"

namespace jing {

bool can_quantize(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q4_1:
    case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

size_t quantize_rows(GgmlType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row, const float* imatrix) {
  if (!can_quantize(type)) throw Error("no quantizer for " + std::string(traits(type).name));
  if (n_per_row % traits(type).block_size)
    throw Error("rows of " + std::to_string(n_per_row) + " do not split into " + std::string(traits(type).name) + " blocks");
  const size_t rs = row_size(type, n_per_row);
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* x = src + r * n_per_row;
    void* y = out + static_cast<size_t>(r) * rs;
    switch (type) {
      case GgmlType::Q4_0: detail::quantize_q4_0(x, y, n_per_row); break;
      case GgmlType::Q4_1: detail::quantize_q4_1(x, y, n_per_row); break;
      case GgmlType::Q5_0: detail::quantize_q5_0(x, y, n_per_row); break;
      case GgmlType::Q5_1: detail::quantize_q5_1(x, y, n_per_row); break;
      case GgmlType::Q2_K: detail::quantize_q2_K(x, y, n_per_row, imatrix); break;
      case GgmlType::Q3_K: detail::quantize_q3_K(x, y, n_per_row, imatrix); break;
      case GgmlType::Q4_K: detail::quantize_q4_K(x, y, n_per_row, imatrix); break;
      case GgmlType::Q5_K: detail::quantize_q5_K(x, y, n_per_row, imatrix); break;
      case GgmlType::Q6_K: detail::quantize_q6_K(x, y, n_per_row, imatrix); break;
      case GgmlType::IQ4_NL: detail::quantize_iq4_nl(x, y, n_per_row, imatrix); break;
      case GgmlType::IQ4_XS: detail::quantize_iq4_xs(x, y, n_per_row, imatrix); break;
      default: quantize_row(type, x, y, n_per_row); break;  // F32, F16, BF16, Q8_0
    }
  }
  return static_cast<size_t>(n_rows) * rs;
}

}  // namespace jing
