#include "model/row_split.h"

#include <cstring>

#include "common/error.h"
#include "quant/types.h"

namespace jing::model::row_split {

cpu::WeightView rows(const cpu::WeightView& w, int64_t first, int64_t count) {
  cpu::WeightView v = w;
  v.data = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(first) * w.row_bytes;
  v.rows = count;
  return v;
}

namespace {
int64_t block_weights(GgmlType t) {
  const auto traits = type_traits(static_cast<uint32_t>(t));
  if (!traits) throw Error("row split: unknown weight format");
  return traits->block_size;
}
}  // namespace

bool columns_split(const cpu::WeightView& w, int parts) {
  if (parts < 1 || w.cols % parts || w.tiled) return false;
  const int64_t b = block_weights(w.type);
  return (w.cols / parts) % b == 0 && w.row_bytes % static_cast<size_t>(w.cols / b) == 0;
}

cpu::WeightView columns(const cpu::WeightView& w, int64_t first, int64_t count, std::vector<uint8_t>& store) {
  const int64_t b = block_weights(w.type);
  if (first % b || count % b || first + count > w.cols) throw Error("row split: a column slice must be whole blocks of the row");
  const size_t block_bytes = w.row_bytes / static_cast<size_t>(w.cols / b);
  const size_t from = static_cast<size_t>(first / b) * block_bytes, bytes = static_cast<size_t>(count / b) * block_bytes;
  store.resize(bytes * static_cast<size_t>(w.rows));
  for (int64_t r = 0; r < w.rows; ++r)
    std::memcpy(store.data() + static_cast<size_t>(r) * bytes, static_cast<const uint8_t*>(w.data) + static_cast<size_t>(r) * w.row_bytes + from, bytes);
  cpu::WeightView v = w;
  v.data = store.data(), v.cols = count, v.row_bytes = bytes;
  return v;
}

std::vector<float> part(const std::vector<float>& v, int64_t first, int64_t count) {
  if (v.empty()) return {};
  return {v.begin() + first, v.begin() + first + count};
}

void all_reduce(const std::vector<std::pair<Backend*, float*>>& parts, size_t n, Collectives* group) {
  if (parts.size() < 2 || (group && group->all_reduce(parts, n))) return;
  Backend& first = *parts[0].first;
  for (size_t k = 1; k < parts.size(); ++k) {
    const Buf other = copy_to(first, *parts[k].first, parts[k].second, n);
    first.add(parts[0].second, other.data(), static_cast<int64_t>(n));
  }
  for (size_t k = 1; k < parts.size(); ++k) copy_between(*parts[k].first, parts[k].second, first, parts[0].second, n);
}

}  // namespace jing::model::row_split
