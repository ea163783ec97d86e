// The i-quants' sub-block scales as 16-bit vectors ready for PMADDWD, as constant tables (one load
// instead of building them per sub-block): 2 s + 1 for a 4-bit s; the pair of a byte's two 4-bit
// scales (low nibble: values 0..15, high: 16..31).
#pragma once
#include <cstdint>

namespace jing::cpu {

struct OddScaleTables {
  int16_t one[16][16], nibbles[256][16];
};
constexpr OddScaleTables make_odd_scales() {
  OddScaleTables t{};
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) t.one[i][j] = static_cast<int16_t>(2 * i + 1);
  for (int i = 0; i < 256; ++i)
    for (int j = 0; j < 16; ++j) t.nibbles[i][j] = static_cast<int16_t>(2 * (j < 8 ? i & 15 : i >> 4) + 1);
  return t;
}
alignas(64) inline constexpr OddScaleTables kOddScales = make_odd_scales();

}  // namespace jing::cpu
