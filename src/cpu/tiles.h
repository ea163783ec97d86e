// Token tiling shared by the matrix kernels: a tile's token count must be a compile-time
// constant so that its accumulators live in registers.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

namespace jing::cpu {
namespace {

// Calls tile(t0, std::integral_constant<int, n>{}) over n_tokens in tiles of T, the last one
// holding the n_tokens % T left over.
template <int T, class F>
void token_tiles(int64_t n_tokens, F&& tile) {
  int64_t t = 0;
  for (; t + T <= n_tokens; t += T) tile(t, std::integral_constant<int, T>{});
  const int64_t rest = n_tokens - t;
  [&]<int... I>(std::integer_sequence<int, I...>) {
    ((rest == I + 1 ? tile(t, std::integral_constant<int, I + 1>{}) : void()), ...);
  }(std::make_integer_sequence<int, T - 1>{});
}

}  // namespace
}  // namespace jing::cpu
