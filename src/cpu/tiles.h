// The loops every matrix kernel runs: weight panels over the threads, token tiles within a panel.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace jing::cpu {
namespace {

// Calls body(r0, n_rows, scratch) for every panel of panel_rows rows of a rows-row matrix: each
// thread takes one contiguous range of panels (weights stream in order) with its own Scratch.
template <class Scratch, class F>
void for_each_panel(int64_t rows, int panel_rows, int n_threads, F&& body) {
  const int64_t n_panels = (rows + panel_rows - 1) / panel_rows;
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
  {
    Scratch scratch;
#pragma omp for schedule(static)
    for (int64_t pi = 0; pi < n_panels; ++pi) {
      const int64_t r0 = pi * panel_rows;
      body(r0, static_cast<int>(std::min<int64_t>(panel_rows, rows - r0)), scratch);
    }
  }
}

// Calls tile(t0, std::integral_constant<int, n>{}) over n_tokens in tiles of T, the last one
// holding the n_tokens % T left over (a compile-time count keeps a tile's accumulators in
// registers).
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
