#include "model/deepseek2_kv_b.h"

#include "common/error.h"
#include "quant/dequant.h"
#include "quant/fp16.h"

namespace jing::model {

SplitKvB split_kv_b(const gguf::TensorInfo& t, int n_head, int nope, int head_v, int kv_lora) {
  const int64_t per_head = nope + head_v;
  if (t.ne[0] != kv_lora || t.ne[1] != n_head * per_head || t.ne[2] != 1 || t.ne[3] != 1)
    throw Error("deepseek2: tensor " + t.name + " has shape [" + std::to_string(t.ne[0]) + ", " + std::to_string(t.ne[1]) +
                "], expected [" + std::to_string(kv_lora) + ", " + std::to_string(n_head * per_head) + "]");
  if (!can_dequantize(t.type)) throw Error("deepseek2: tensor " + t.name + " has a type Jing cannot read");
  const size_t src_row = t.nbytes / static_cast<size_t>(t.ne[1]);

  SplitKvB s;
  s.k_b_data.resize(static_cast<size_t>(n_head) * kv_lora * nope);
  s.v_b_data.resize(static_cast<size_t>(n_head) * head_v * kv_lora);
  std::vector<float> row(static_cast<size_t>(kv_lora));
  for (int h = 0; h < n_head; ++h)
    for (int r = 0; r < per_head; ++r) {
      dequantize_row(t.type, t.data + static_cast<size_t>(h * per_head + r) * src_row, row.data(), kv_lora);
      if (r < nope) {  // key row r: becomes column r of head h's [kv_lora][nope] matrix
        uint16_t* dst = s.k_b_data.data() + static_cast<size_t>(h) * kv_lora * nope + r;
        for (int c = 0; c < kv_lora; ++c) dst[static_cast<size_t>(c) * nope] = fp32_to_fp16(row[static_cast<size_t>(c)]);
      } else {
        uint16_t* dst = s.v_b_data.data() + (static_cast<size_t>(h) * head_v + (r - nope)) * kv_lora;
        for (int c = 0; c < kv_lora; ++c) dst[c] = fp32_to_fp16(row[static_cast<size_t>(c)]);
      }
    }
  s.k_b = {GgmlType::F16, s.k_b_data.data(), nope, kv_lora, static_cast<size_t>(nope) * 2};
  s.v_b = {GgmlType::F16, s.v_b_data.data(), kv_lora, head_v, static_cast<size_t>(kv_lora) * 2};
  return s;
}

}  // namespace jing::model
